"""The client against the emulator over real loopback HTTP: what an extraction writes."""

import json
import logging
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from graphql import FieldNode, parse
from shopify_store import TOKEN, customer, lines_of, order, write_jsonl, write_store

from pipeline.shopify.client import RESOURCES, ShopifyAuthError, ShopifyClient, ShopifyConfigError, bulk_query
from pipeline.shopify.emulator import ShopifyEmulator
from pipeline.store.schema import resources_in

STORE_FILES = ("shop.jsonl", "customers.jsonl", "orders.jsonl", "products.jsonl", "abandoned_checkouts.jsonl")


def test_full_extraction_equals_the_served_store_row_for_row(client, store_dir, tmp_path):
    before = datetime.now(UTC)
    result = client.extract(tmp_path / "batch")

    assert sorted(p.name for p in result.out_dir.iterdir()) == sorted([*STORE_FILES, "customer_ids.jsonl"])
    for name in STORE_FILES:
        assert lines_of(result.out_dir / name) == lines_of(store_dir / name), name
    assert result.rows == {
        "shop.jsonl": 1,
        "customers.jsonl": 7,  # three customers, a metafield, a store credit account and two addresses
        "orders.jsonl": 5,
        "products.jsonl": 4,
        "abandoned_checkouts.jsonl": 1,
        "customer_ids.jsonl": 3,
    }
    assert before <= result.started_at <= datetime.now(UTC)
    assert result.since is None


def test_output_is_bulk_format_with_children_after_their_parent(client, tmp_path):
    out = client.extract(tmp_path / "batch").out_dir
    orders = [json.loads(line) for line in (out / "orders.jsonl").read_text().splitlines()]
    assert [(o["id"].split("/")[-2], o.get("__parentId")) for o in orders] == [
        ("Order", None),
        ("LineItem", "gid://shopify/Order/1001"),
        ("LineItem", "gid://shopify/Order/1001"),
        ("Order", None),
        ("LineItem", "gid://shopify/Order/1002"),
    ]


def test_incremental_extraction_returns_only_records_updated_since(client, store_dir, tmp_path):
    since = datetime(2026, 10, 3, tzinfo=UTC)
    write_jsonl(
        store_dir / "customers.jsonl",
        [customer(1), customer(2, updated_at="2026-10-04T08:00:00Z", firstName="Grace"), customer(3)],
    )
    orders = [json.loads(line) for line in (store_dir / "orders.jsonl").read_text().splitlines()]
    orders[3] = order(1002, 2, updated_at="2026-10-05T00:00:00+02:00")
    write_jsonl(store_dir / "orders.jsonl", orders)

    result = client.extract(tmp_path / "batch", since=since)

    customers = [json.loads(line) for line in (result.out_dir / "customers.jsonl").read_text().splitlines()]
    assert [(c["id"], c["firstName"]) for c in customers] == [("gid://shopify/Customer/2", "Grace")]
    # The changed order comes with its line items, which carry no updatedAt of their own.
    assert lines_of(result.out_dir / "orders.jsonl") == lines_of(store_dir / "orders.jsonl") - lines_of(
        _only(store_dir / "orders.jsonl", tmp_path / "old_order.jsonl", "1001")
    )
    # Nothing else changed: no result URL, and an empty file for each.
    assert (result.out_dir / "products.jsonl").read_text() == ""
    assert result.rows == {
        "shop.jsonl": 1,
        "customers.jsonl": 1,
        "orders.jsonl": 2,
        "products.jsonl": 0,
        "abandoned_checkouts.jsonl": 0,
        "customer_ids.jsonl": 3,  # the sweep of ids is always whole: who is missing from it was deleted
    }


def test_the_id_sweep_leaves_out_customers_deleted_in_the_shop(client, store_dir, tmp_path):
    write_jsonl(
        store_dir / "deletions.jsonl",
        [{"customer": {"id": "gid://shopify/Customer/2"}, "deletedAt": "2026-11-02T10:00:00Z"}],
    )
    result = client.extract(tmp_path / "batch", since=datetime(2026, 10, 3, tzinfo=UTC))
    swept = [json.loads(line) for line in (result.out_dir / "customer_ids.jsonl").read_text().splitlines()]
    assert swept == [{"id": "gid://shopify/Customer/1"}, {"id": "gid://shopify/Customer/3"}]


def _only(source: Path, target: Path, order_number: str) -> Path:
    """The lines of `source` belonging to one order (the order and its line items)."""
    gid = f"gid://shopify/Order/{order_number}"
    kept = [r for r in map(json.loads, source.read_text().splitlines()) if gid in (r["id"], r.get("__parentId"))]
    write_jsonl(target, kept)
    return target


def test_incremental_query_carries_the_updated_at_filter():
    since = datetime(2026, 10, 3, 4, 5, 6, 789000, tzinfo=UTC)
    (root,) = _root_fields(bulk_query(RESOURCES[0], since))
    assert {a.name.value: a.value.value for a in root.arguments} == {"query": "updated_at:>'2026-10-03T04:05:06Z'"}


def test_bulk_queries_request_every_field_the_ingest_reads():
    for resource in RESOURCES:
        (root,) = _root_fields(bulk_query(resource))
        requested = _paths(_child(_child(root, "edges"), "node"))
        for schema_resource in resources_in(resource.file):
            for column in schema_resource.columns:
                assert (column.path in requested) != column.legacy, (resource.file, column.path)


def _root_fields(document: str) -> list[FieldNode]:
    (operation,) = parse(document).definitions
    return list(operation.selection_set.selections)


def _child(field: FieldNode, name: str) -> FieldNode | None:
    selections = field.selection_set.selections if field.selection_set else ()
    return next((f for f in selections if f.name.value == name), None)


def _paths(field: FieldNode, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    paths = set()
    for child in field.selection_set.selections if field.selection_set else ():
        if _child(child, "edges"):  # a child connection: its fields are read from the child lines
            paths |= _paths(_child(_child(child, "edges"), "node"))
        else:
            paths.add((*prefix, child.name.value))
            paths |= _paths(child, (*prefix, child.name.value))
    return paths


def test_modified_store_is_visible_to_the_next_extraction(client, store_dir, tmp_path):
    client.extract(tmp_path / "first")
    write_jsonl(store_dir / "customers.jsonl", [customer(4)])
    second = client.extract(tmp_path / "second")
    assert lines_of(second.out_dir / "customers.jsonl") == lines_of(store_dir / "customers.jsonl")


def test_bulk_operation_moves_through_its_lifecycle(emulator):
    endpoint = f"{emulator.url}/admin/api/2026-10/graphql.json"
    headers = {"X-Shopify-Access-Token": TOKEN}
    run = (
        'mutation { bulkOperationRunQuery(query: """{ customers { edges { node { id } } } }""") '
        "{ bulkOperation { id status } userErrors { field message } } }"
    )
    started = httpx.post(endpoint, json={"query": run}, headers=headers).json()
    assert started["data"]["bulkOperationRunQuery"]["bulkOperation"]["status"] == "CREATED"
    assert started["extensions"]["cost"]["throttleStatus"]["maximumAvailable"] == 1000.0
    poll = "{ currentBulkOperation { status url objectCount } }"
    statuses = [httpx.post(endpoint, json={"query": poll}, headers=headers).json() for _ in range(2)]
    assert [s["data"]["currentBulkOperation"]["status"] for s in statuses] == ["RUNNING", "COMPLETED"]
    done = statuses[-1]["data"]["currentBulkOperation"]
    assert done["objectCount"] == "3"
    assert done["url"].startswith(f"{emulator.url}/downloads/")
    body = httpx.get(done["url"]).text.splitlines()
    assert body[0] == json.dumps({"id": "gid://shopify/Customer/1"})


def test_downloads_never_carry_the_access_token(client, emulator, tmp_path):
    client.extract(tmp_path / "batch")
    downloads = [r for r in emulator.requests if r.method == "GET"]
    assert len(downloads) == 5  # four resources and the sweep of customer ids
    assert not any(r.carried_token for r in downloads)


def test_wrong_token_is_rejected_with_advice_and_without_echoing_it(emulator, tmp_path):
    secret = "shpat_wrong_secret_value"
    with ShopifyClient(emulator.url, secret, sleep=lambda s: None) as shopify:
        with pytest.raises(ShopifyAuthError, match="HTTP 401.*SHOPIFY_ACCESS_TOKEN.*read_orders") as caught:
            shopify.extract(tmp_path / "batch")
    assert secret not in str(caught.value)
    assert list((tmp_path / "batch").iterdir()) == []


def test_token_appears_in_no_log_record_exception_or_repr(emulator, store_dir, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "pipeline"):
        caplog.set_level(logging.DEBUG, logger=name)
    emulator.faults.throttled = 1
    emulator.faults.server_errors = 1
    with ShopifyClient(emulator.url, TOKEN, sleep=lambda s: None) as shopify:
        assert TOKEN not in repr(shopify)
        shopify.extract(tmp_path / "ok")
        emulator.faults.missing_scope = "read_products"
        with pytest.raises(Exception) as caught:
            shopify.extract(tmp_path / "denied")
    assert TOKEN not in str(caught.value) and TOKEN not in repr(caught.value)
    assert any(r.name.startswith("httpcore") for r in caplog.records), "httpcore debug logging was captured"
    for record in caplog.records:
        assert TOKEN not in record.getMessage(), record.name
        assert TOKEN not in (record.exc_text or "")


def test_api_version_mismatch_is_a_warning(emulator, tmp_path, caplog):
    with ShopifyClient(emulator.url, TOKEN, api_version="2024-01", sleep=lambda s: None) as shopify:
        shopify.extract(tmp_path / "batch")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "API version" in r.getMessage()]
    assert len(warnings) == 1
    assert "2026-01" in warnings[0].getMessage() and "2024-01" in warnings[0].getMessage()


def test_matching_api_version_gives_no_warning(client, tmp_path, caplog):
    client.extract(tmp_path / "batch")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize(
    ("store", "expected"),
    [
        ("my-shop.myshopify.com", "https://my-shop.myshopify.com"),
        ("http://127.0.0.1:8123/", "http://127.0.0.1:8123"),
        ("https://my-shop.myshopify.com", "https://my-shop.myshopify.com"),
    ],
)
def test_store_setting_becomes_the_base_url(store, expected):
    assert ShopifyClient(store, TOKEN).base_url == expected


@pytest.mark.parametrize("store", ["http://my-shop.myshopify.com", "my shop", "ftp://x.example"])
def test_unusable_store_setting_is_refused(store):
    with pytest.raises(ShopifyConfigError, match="SHOPIFY_STORE"):
        ShopifyClient(store, TOKEN)


def test_emulator_runs_as_a_command_and_prints_its_url(tmp_path):
    store = write_store(tmp_path / "store")
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.shopify.emulator", str(store), "--port", "0", "--token", TOKEN],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        with ShopifyClient(url, TOKEN, sleep=lambda s: None) as shopify:
            assert shopify.extract(tmp_path / "batch").rows["customers.jsonl"] == 7
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_emulator_listens_on_loopback_only(store_dir):
    with ShopifyEmulator(store_dir, token=TOKEN) as emu:
        assert emu.url.startswith("http://127.0.0.1:")
