"""What Shopify refuses, the emulator refuses in Shopify's words, and the client says which field it was."""

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from shopify_store import TOKEN

from pipeline.audience import shopify_tags
from pipeline.shopify import client as shopify_client
from pipeline.shopify.client import RESOURCES, ShopifyQueryError, bulk_query
from pipeline.shopify.emulator import ShopifyEmulator
from pipeline.shopify.emulator_schema import check

GRAPHQL = "/admin/api/2026-10/graphql.json"


def post(emulator, query: str) -> httpx.Response:
    return httpx.post(emulator.url + GRAPHQL, json={"query": query}, headers={"X-Shopify-Access-Token": TOKEN})


def test_a_misspelt_field_is_refused_with_shopifys_error_and_no_data(emulator):
    reply = post(emulator, "query Poll {\n  shop { name ianaTimezon }\n}")
    assert reply.status_code == 200, "Shopify answers a GraphQL refusal with HTTP 200"
    assert reply.json() == {
        "errors": [
            {
                "message": "Field 'ianaTimezon' doesn't exist on type 'Shop'",
                "locations": [{"line": 2, "column": 15}],
                "path": ["query Poll", "shop", "ianaTimezon"],
                "extensions": {"code": "undefinedField", "typeName": "Shop", "fieldName": "ianaTimezon"},
            }
        ]
    }


def test_a_misspelt_field_deep_in_a_bulk_query_is_a_user_error_and_starts_nothing(emulator):
    inner = "{ customers { edges { node { id defaultPhoneNumber { phoneNumbr } } } } }"
    reply = post(
        emulator,
        f'mutation {{ bulkOperationRunQuery(query: "{inner}") '
        "{ bulkOperation { id } userErrors { field message code } } }",
    ).json()
    assert reply["data"]["bulkOperationRunQuery"] == {
        "bulkOperation": None,
        "userErrors": [
            {
                "field": ["query"],
                "message": "Invalid bulk query: Field 'phoneNumbr' doesn't exist on type 'CustomerPhoneNumber'",
                "code": "INVALID",
            }
        ],
    }
    assert "errors" not in reply
    current = post(emulator, "{ currentBulkOperation { id } }").json()
    assert current["data"] == {"currentBulkOperation": None}, "no bulk operation was started"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "Invalid bulk query: syntax error, unexpected end of file"),
        ("{ shop { name } }", "Bulk queries must contain at least one connection."),
        (
            "{ customers(frist: 5) { edges { node { id } } } }",
            "Invalid bulk query: Field 'customers' doesn't accept argument 'frist'",
        ),
    ],
)
def test_a_bulk_query_that_cannot_run_is_a_user_error(emulator, query, message):
    reply = post(
        emulator,
        f'mutation {{ bulkOperationRunQuery(query: "{query}") {{ bulkOperation {{ id }} userErrors {{ message }} }} }}',
    ).json()
    assert reply["data"]["bulkOperationRunQuery"] == {"bulkOperation": None, "userErrors": [{"message": message}]}


def first_bulk_line(client, query: str, out: Path, what: str) -> dict:
    """Runs `query` as a bulk operation, downloads its result to `out`, returns the first line."""
    started = client.graphql(
        "mutation($q: String!) { bulkOperationRunQuery(query: $q) { bulkOperation { id } } }", {"q": query}
    )["bulkOperationRunQuery"]["bulkOperation"]
    url = client.wait_for_bulk_operation(started["id"], what)["url"]
    client.download(url, out, what)
    return json.loads(out.read_text().splitlines()[0])


def test_a_bulk_query_with_fragments_and_aliases_is_answered_field_for_field(client, emulator, tmp_path):
    inner = (
        "query { customers { edges { node { ...who ... on Customer { mail: defaultEmailAddress { emailAddress } }"
        " ... on Node { gid: id } __typename } } } } fragment who on Customer { id firstName }"
    )
    first = first_bulk_line(client, inner, tmp_path / "out.jsonl", "a bulk query with fragments")
    assert first == {
        "id": "gid://shopify/Customer/1",
        "firstName": "Ada1",
        "mail": {"emailAddress": "ada1@example.com"},
        "gid": "gid://shopify/Customer/1",
        "__typename": "Customer",
    }


def test_the_deprecated_addresses_are_still_served_but_not_asked_for(client, store_dir, tmp_path):
    """Customer.addresses is deprecated for addressesV2, not removed: a query may still ask for it."""
    lines = [json.loads(line) for line in (store_dir / "customers.jsonl").read_text().splitlines()]
    lines[0]["addresses"] = [{"countryCodeV2": "DE", "provinceCode": "BE", "city": "Berlin", "zip": "10115"}]
    (store_dir / "customers.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    inner = "{ customers { edges { node { id addresses { city } } } } }"
    first = first_bulk_line(client, inner, tmp_path / "out.jsonl", "a bulk query for addresses")
    assert first == {"id": "gid://shopify/Customer/1", "addresses": [{"city": "Berlin"}]}
    customers = next(r for r in RESOURCES if r.file == "customers.jsonl")
    assert "addressesV2" in customers.node and " addresses " not in customers.node


def test_a_mistake_inside_a_fragment_has_the_fragment_in_its_path(emulator):
    reply = post(emulator, 'query Tags { nodes(ids: ["gid://shopify/Customer/1"]) { ... on Customer { tagz } } }')
    assert reply.json()["errors"][0]["path"] == ["query Tags", "nodes", "... on Customer", "tagz"]


def test_other_mistakes_are_worded_as_shopify_words_them(emulator):
    missing = post(emulator, "mutation { bulkOperationRunQuery { userErrors { message } } }").json()
    assert missing["errors"] == [
        {
            "message": "Field 'bulkOperationRunQuery' is missing required arguments: query",
            "locations": [{"line": 1, "column": 12}],
            "path": ["mutation", "bulkOperationRunQuery"],
            "extensions": {
                "code": "missingRequiredArguments",
                "className": "Field",
                "name": "bulkOperationRunQuery",
                "arguments": "query",
            },
        }
    ]
    bare = post(emulator, "{ shop }").json()
    assert bare["errors"][0]["message"] == (
        "Field must have selections (field 'shop' returns Shop but has no selections. Did you mean 'shop { ... }'?)"
    )
    assert bare["errors"][0]["extensions"]["code"] == "selectionMismatch"
    unparsable = post(emulator, "{ shop { name }").json()
    assert unparsable == {
        "errors": [
            {"message": "syntax error, expected Name, found end of file", "locations": [{"line": 1, "column": 16}]}
        ]
    }


def test_variables_that_are_not_an_object_are_refused(emulator):
    reply = httpx.post(
        emulator.url + GRAPHQL,
        json={"query": "query($id: ID!) { node(id: $id) { id } }", "variables": ["gid://shopify/Customer/1"]},
        headers={"X-Shopify-Access-Token": TOKEN},
    )
    assert reply.status_code == 200
    assert reply.json() == {
        "errors": [{"message": "variables must be a JSON object of values by name, not ['gid://shopify/Customer/1']"}]
    }


def test_a_refused_document_costs_nothing(store_dir):
    with ShopifyEmulator(store_dir, TOKEN, restore_rate=1e-9) as emulator:  # a bucket that does not refill
        post(emulator, "{ shop { nme } }")
        cost = post(emulator, "{ shop { name } }").json()["extensions"]["cost"]
    assert cost["throttleStatus"]["currentlyAvailable"] == 999, "only the valid query was charged"


def test_every_query_the_pipeline_sends_fits_the_schema():
    since = datetime(2026, 10, 3, tzinfo=UTC)
    documents = {
        "SHOP_QUERY": shopify_client.SHOP_QUERY,
        "_RUN_BULK": shopify_client._RUN_BULK,
        "_POLL_BULK": shopify_client._POLL_BULK,
        "_STAGE_UPLOAD": shopify_client._STAGE_UPLOAD,
        "_RUN_BULK_MUTATION": shopify_client._RUN_BULK_MUTATION,
        "shopify_tags._CARRYING": shopify_tags._CARRYING,
        "shopify_tags._LIST": shopify_tags._LIST,
        **{f"bulk {r.file}": bulk_query(r) for r in RESOURCES},
        **{f"bulk {r.file} since": bulk_query(r, since) for r in RESOURCES},
    }
    for name, text in documents.items():
        document, errors = check(text)
        assert document is not None and errors == [], (name, errors)


def test_the_client_names_the_field_shopify_refused(client, monkeypatch, tmp_path):
    with pytest.raises(ShopifyQueryError, match="Field 'nme' doesn't exist on type 'Shop'"):
        client.graphql("{ shop { nme } }", purpose="reading the shop")
    customers = dataclasses.replace(RESOURCES[0], node="id fristName")
    monkeypatch.setattr(shopify_client, "RESOURCES", (customers,))
    with pytest.raises(
        ShopifyQueryError,
        match="customers bulk query: Invalid bulk query: Field 'fristName' doesn't "
        "exist on type 'Customer'.*Admin API 2026-10",
    ):
        client.extract(tmp_path / "batch")
    assert list((tmp_path / "batch").iterdir()) == [], "nothing half-extracted is left"
