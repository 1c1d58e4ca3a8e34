"""The shopify-tags gateway against our Shopify emulator over real loopback HTTP: tagsAdd/tagsRemove,
bulk mutations through staged uploads, faults, and the diff sync end to end, killed and rerun."""

import logging
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import httpx
import pytest

from pipeline.audience.gateways import AudienceGateway, AudienceTarget, GatewayError
from pipeline.audience.shopify_tags import BULK_THRESHOLD, ShopifyTagsGateway
from pipeline.audience.sync import GROUP_BATCHES, sync_segment
from pipeline.defs.exports import gateway_resource
from pipeline.settings import Settings, SettingsError
from pipeline.shopify.client import ShopifyClient
from pipeline.shopify.emulator import ShopifyEmulator
from pipeline.shopify.emulator_tags import STAGED_UPLOAD_PATH
from pipeline.warehouse.build import attach_state
from tests.audience.conftest import AS_OF, SEGMENT, kill_sync, mobile
from tests.fixtures.stores import Store, customer

TOKEN = "shpat_tags_5e1d0c9b8a7f"  # a value no log line would contain by accident
TARGET = AudienceTarget(SEGMENT)
TAG = f"smsseg:{SEGMENT}"
GRAPHQL = "/admin/api/2026-10/graphql.json"


def shop(n: int, **changes: dict) -> Store:
    """n subscribed customers with distinct mobiles; `changes` by customer number (as text) override fields."""
    return Store(
        customers=[
            customer(i, **{"phone": mobile(i), "first": f"C{i}", **changes.get(str(i), {})}) for i in range(1, n + 1)
        ]
    )


def member(i: int) -> dict:
    return {"phone": mobile(i), "customer_id": i, "first_name": f"C{i}", "last_name": "Rossi", "country": "IT"}


def gid(i: int) -> str:
    return f"gid://shopify/Customer/{i}"


@pytest.fixture
def serve(tmp_path: Path) -> Iterator:
    """serve(store, **emulator options) -> a ShopifyEmulator of that store, stopped after the test."""
    started = []

    def start(store: Store, **options: float) -> ShopifyEmulator:
        emulator = ShopifyEmulator(
            store.write(tmp_path / f"shop{len(started)}"), TOKEN, **{"bucket_size": 1e9, **options}
        )
        started.append(emulator.start())
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


def gateway(emulator: ShopifyEmulator, waits: list[float] | None = None, **options: float) -> ShopifyTagsGateway:
    waits = [] if waits is None else waits
    return ShopifyTagsGateway(store=emulator.url, token=TOKEN, **options).with_sleep(waits.append)


def tagged(emulator: ShopifyEmulator) -> set[int]:
    return {int(c["id"].rsplit("/", 1)[1]) for c in emulator.customer_tags.tagged(TAG)}


def additions(emulator: ShopifyEmulator) -> dict[int, int]:
    return {int(g.rsplit("/", 1)[1]): n for (g, tag), n in emulator.customer_tags.additions.items() if tag == TAG}


def posts(emulator: ShopifyEmulator, path: str) -> list:
    return [r for r in emulator.requests if r.method == "POST" and r.path == path]


def test_a_small_diff_tags_and_untags_customer_by_customer(serve):
    emulator = serve(shop(40))
    client = gateway(emulator)
    result = client.send_batch(TARGET, [member(i) for i in range(1, 31)], [], "r1:s:1")
    assert (result.added, result.removed, result.rejected) == (30, 0, [])
    result = client.send_batch(TARGET, [member(35)], [member(i) for i in range(1, 11)], "r2:s:1")
    assert (result.added, result.removed) == (1, 10)
    assert tagged(emulator) == set(range(11, 31)) | {35}
    assert set(additions(emulator).values()) == {1}
    assert posts(emulator, STAGED_UPLOAD_PATH) == [], "no bulk mutation for a small diff"
    # two requests check who carries the tag, then 31 adds and 10 removes, 25 mutations a request
    assert len(posts(emulator, GRAPHQL)) == 2 + 2 + 1 + 1


def test_a_big_diff_goes_as_one_bulk_mutation_a_direction(serve):
    n = BULK_THRESHOLD + 50
    emulator = serve(shop(n))
    client = gateway(emulator)
    result = client.send_batch(TARGET, [member(i) for i in range(1, n + 1)], [], "r1:s:1")
    assert (result.added, result.rejected) == (n, [])
    assert tagged(emulator) == set(range(1, n + 1))
    result = client.send_batch(TARGET, [], [member(i) for i in range(1, n + 1)], "r2:s:1")
    assert (result.removed, tagged(emulator)) == (n, set())
    uploads = posts(emulator, STAGED_UPLOAD_PATH)
    downloads = [r for r in emulator.requests if r.method == "GET"]
    assert [r.status for r in uploads] == [201, 201], "one staged file a direction"
    assert len(downloads) == 2 and all(r.status == 200 for r in downloads), "each result file read back"
    assert not any(r.carried_token for r in uploads + downloads), "storage never receives the token"
    assert set(additions(emulator).values()) == {1}
    with httpx.Client(base_url=emulator.url, headers={"X-Shopify-Access-Token": TOKEN}) as http:
        current = http.post(
            GRAPHQL,
            json={
                "query": "{ m: currentBulkOperation(type: MUTATION) { id type status } q: currentBulkOperation { id } }"
            },
        ).json()["data"]
    assert current == {
        "m": {"id": "gid://shopify/BulkOperation/2", "type": "MUTATION", "status": "COMPLETED"},
        "q": None,
    }, "the latest bulk mutation; no bulk query ran"


def test_per_customer_user_errors_reject_only_those_customers(serve):
    n = BULK_THRESHOLD + 10
    emulator = serve(shop(n + 3))
    emulator.customer_tags.refusals.update({gid(2): "Tags are invalid", gid(n + 2): "Tags are invalid"})
    client = gateway(emulator)
    bulk = client.send_batch(TARGET, [member(i) for i in range(1, n + 1)], [], "r1:s:1")
    small = client.send_batch(TARGET, [member(n + 1), member(n + 2)], [], "r1:s:2")
    assert bulk.rejected == [(mobile(2), "Shopify refused tagging customer 2: Tags are invalid")]
    assert small.rejected == [(mobile(n + 2), f"Shopify refused tagging customer {n + 2}: Tags are invalid")]
    assert (bulk.added, small.added) == (n - 1, 1)
    assert tagged(emulator) == set(range(1, n + 2)) - {2}


def test_deleted_or_redacted_customers_are_skipped_and_counted(serve):
    n = BULK_THRESHOLD + 10
    emulator = serve(shop(n))
    client = gateway(emulator)
    client.send_batch(TARGET, [member(i) for i in range(1, 6)], [], "r1:s:1")
    for i in (3, 4, 7, 8):
        emulator.customer_tags.delete(gid(i))
    small = client.send_batch(TARGET, [member(7)], [member(3)], "r2:s:1")
    big = client.send_batch(TARGET, [member(i) for i in range(6, n + 1)], [member(4)], "r2:s:2")
    gone = "no longer exists at Shopify (deleted or redacted)"
    assert small.rejected == [(mobile(7), f"customer 7 {gone}")]
    assert big.rejected == [(mobile(7), f"customer 7 {gone}"), (mobile(8), f"customer 8 {gone}")]
    assert (small.removed, big.removed, big.added) == (1, 1, n - 7)
    assert client.missing_customers == 5, "7 twice, 8, and the removes of 3 and 4"
    assert tagged(emulator) == {1, 2, 5, 6} | set(range(9, n + 1))


def test_a_failed_bulk_mutation_fails_the_batch_for_a_replay(serve):
    n = BULK_THRESHOLD + 1
    emulator = serve(shop(n))
    emulator.faults.fail_operation = "INTERNAL_SERVER_ERROR"
    with pytest.raises(GatewayError, match="ended FAILED with errorCode INTERNAL_SERVER_ERROR") as failure:
        gateway(emulator).send_batch(TARGET, [member(i) for i in range(1, n + 1)], [], "r1:s:1")
    assert failure.value.retryable, "it may have landed in part: the sync keeps the batch for a replay"
    emulator.faults.fail_operation = None
    result = gateway(emulator).send_batch(TARGET, [member(i) for i in range(1, n + 1)], [], "r1:s:1")
    assert (result.added, tagged(emulator)) == (n, set(range(1, n + 1)))


def test_a_replayed_batch_tags_no_customer_twice(serve):
    n = BULK_THRESHOLD + 20
    emulator = serve(shop(n))
    first = [member(i) for i in range(1, 101)]
    gateway(emulator).send_batch(TARGET, first, [], "killed:s:1")  # it landed, but the run died unrecorded
    replay = gateway(emulator).send_batch(TARGET, first, [], "killed:s:1")
    partial = gateway(emulator).send_batch(TARGET, [member(i) for i in range(1, n + 1)], [], "killed:s:2")
    assert (replay.added, partial.added) == (100, n)
    assert tagged(emulator) == set(range(1, n + 1))
    assert set(additions(emulator).values()) == {1}, "a replay added a tag twice"


def test_a_big_batch_asks_customer_by_customer_when_listing_the_tag_would_cost_more(serve):
    n = BULK_THRESHOLD + 50
    emulator = serve(shop(2 * n, **{str(i): {"tags": [TAG]} for i in range(1, 2 * n)}))
    client = gateway(emulator)
    result = client.send_batch(TARGET, [member(i) for i in range(n + 1, 2 * n + 1)], [], "killed:s:2")
    assert (result.added, additions(emulator)) == (n, {2 * n: 1}), "only the one without the tag was tagged"
    # a page of the tag's 599 customers, no further (asking about 300 costs less), then 2 nodes() of 250
    assert len(posts(emulator, GRAPHQL)) == 1 + 2 + 1
    assert posts(emulator, STAGED_UPLOAD_PATH) == [], "one customer to tag: no bulk mutation"


def test_a_full_set_of_bulk_mutation_slots_is_waited_for_and_the_wait_is_bounded(serve):
    n = BULK_THRESHOLD + 1
    emulator = serve(shop(n + 5))
    others = ShopifyClient(emulator.url, TOKEN, sleep=lambda s: None)
    running = []
    for i in range(5):  # another job of ours fills the shop's five slots
        path = others.stage_upload(
            "other.jsonl",
            f'{{"id": "{gid(n + 1 + i)}", "tags": ["other"]}}\n'.encode(),
            purpose="another import",
            scopes=(),
        )
        started = others.graphql(
            'mutation($p: String!) { bulkOperationRunMutation(mutation: "mutation m($id: ID!, '
            '$tags: [String!]!) { tagsAdd(id: $id, tags: $tags) { node { id } } }", '
            "stagedUploadPath: $p) { bulkOperation { id } userErrors { code } } }",
            {"p": path},
        )["bulkOperationRunMutation"]
        running.append(started["bulkOperation"]["id"])

    with pytest.raises(GatewayError, match="slot.*stayed taken") as failure:
        gateway(emulator, slot_timeout_seconds=5.0).send_batch(
            TARGET, [member(i) for i in range(1, n + 1)], [], "r1:s:1"
        )
    assert failure.value.retryable and tagged(emulator) == set()

    waits = []

    def the_other_job_finishes(seconds: float) -> None:
        if not waits:  # the first wait is for a slot; later ones poll the gateway's own operation
            others.wait_for_bulk_operation(running.pop(), "another import")
        waits.append(seconds)

    client = gateway(emulator).with_sleep(the_other_job_finishes)
    result = client.send_batch(TARGET, [member(i) for i in range(1, n + 1)], [], "r1:s:1")
    assert result.added == n and tagged(emulator) == set(range(1, n + 1))
    assert len(waits) >= 1 and len(running) == 4, "waited for exactly one slot to free"
    others.close()


def test_the_emulator_refuses_a_misspelt_field_or_argument_as_shopify_does(serve):
    emulator = serve(shop(3))
    headers = {"X-Shopify-Access-Token": TOKEN}
    with httpx.Client(base_url=emulator.url, headers=headers) as http:
        wrong_argument = http.post(
            GRAPHQL,
            json={
                "query": 'mutation { tagsAdd(id: "gid://shopify/Customer/1", tag: ["x"]) { userErrors { message } } }'
            },
        ).json()
        wrong_field = http.post(
            GRAPHQL,
            json={
                "query": 'mutation { tagsAdd(id: "gid://shopify/Customer/1", tags: ["x"]) { userErrors { mesage } } }'
            },
        ).json()
        wrong_bulk = http.post(
            GRAPHQL,
            json={
                "query": 'mutation { bulkOperationRunMutation(mutation: "mutation '
                '{ tagAdd(id: 1) { node { id } } }", stagedUploadPath: "x") '
                "{ userErrors { code message } } }"
            },
        ).json()
    assert "data" not in wrong_argument and "data" not in wrong_field
    assert wrong_argument["errors"][0]["message"] == "Field 'tagsAdd' doesn't accept argument 'tag'"
    assert wrong_field["errors"][0]["message"] == "Field 'mesage' doesn't exist on type 'UserError'"
    assert wrong_field["errors"][0]["extensions"]["code"] == "undefinedField"
    refused = wrong_bulk["data"]["bulkOperationRunMutation"]["userErrors"]
    assert refused[0]["code"] == "INVALID_MUTATION" and "tagAdd" in refused[0]["message"]
    assert additions(emulator) == {} and emulator.customer_tags.additions == {}


def test_a_wrong_token_or_a_missing_scope_fails_at_once_saying_what_to_do(serve):
    emulator = serve(shop(3))
    with pytest.raises(GatewayError, match="HTTP 401.*set SHOPIFY_ACCESS_TOKEN") as wrong:
        ShopifyTagsGateway(store=emulator.url, token="not-" + TOKEN).send_batch(TARGET, [member(1)], [], "r1:s:1")
    emulator.faults.missing_scope = "write_customers"
    with pytest.raises(GatewayError, match="lacks a scope it needs \\(write_customers\\).*approve the app") as scope:
        gateway(emulator).send_batch(TARGET, [member(1)], [], "r1:s:1")
    assert not wrong.value.retryable and not scope.value.retryable
    assert TOKEN not in str(wrong.value) + str(scope.value)
    assert tagged(emulator) == set()


def test_throttling_server_errors_and_dropped_connections_are_retried(serve):
    emulator = serve(shop(30))
    emulator.faults.throttled = 2
    emulator.faults.server_errors = 2
    emulator.faults.drop_connections = 1
    waits = []
    result = gateway(emulator, waits).send_batch(TARGET, [member(i) for i in range(1, 31)], [], "r1:s:1")
    assert result.added == 30 and tagged(emulator) == set(range(1, 31))
    assert len(waits) == 5, "one backoff per fault"
    assert sum(r.throttled for r in emulator.requests) == 2
    assert set(additions(emulator).values()) == {1}


def test_it_retries_by_the_one_policy_with_the_gateways_own_settings(serve):
    emulator = serve(shop(3))
    emulator.faults.server_errors = 100
    waits = []
    gave_up = r"gave up after 3 attempts at POST http://127\.0\.0\.1:\d+" + GRAPHQL
    with pytest.raises(GatewayError, match=gave_up) as failure:
        gateway(emulator, waits, max_attempts=3, backoff_seconds=1.0, max_backoff_seconds=1.5).send_batch(
            TARGET, [member(1)], [], "r1:s:1"
        )
    assert failure.value.retryable, "the next run replays the batch"
    assert len(waits) == 2 and all(0 <= w <= cap for w, cap in zip(waits, [1.0, 1.5], strict=True))
    assert TOKEN not in str(failure.value)


def test_the_cost_based_throttle_is_respected_without_a_throttled_reply(serve):
    # a bucket of 300 points refilling at 3000/s: the 250-point requests wait for it rather than hit it
    emulator = serve(shop(100), bucket_size=300.0, restore_rate=3000.0)
    client = ShopifyTagsGateway(store=emulator.url, token=TOKEN)
    assert client.send_batch(TARGET, [member(i) for i in range(1, 101)], [], "r1:s:1").added == 100
    assert not any(r.throttled for r in emulator.requests[2:]), "after the first replies it paces itself"


def test_an_oversize_staged_file_is_refused_with_what_to_do(serve):
    emulator = serve(shop(BULK_THRESHOLD + 1), upload_limit_bytes=1000)
    with pytest.raises(GatewayError, match="HTTP 400 \\(EntityTooLarge\\).*lower SMSSEG_BATCH_SIZE") as failure:
        gateway(emulator).send_batch(TARGET, [member(i) for i in range(1, BULK_THRESHOLD + 2)], [], "r1:s:1")
    assert not failure.value.retryable
    assert tagged(emulator) == set()


def test_list_members_pages_through_the_customers_carrying_the_tag(serve):
    tags = {str(i): {"tags": ["vip", TAG]} for i in range(1, 601) if i % 2}
    tags["3"] = {"tags": [TAG], "phone": None}  # tagged by hand, no phone: nothing to sync by
    emulator = serve(shop(600, **tags))
    held = gateway(emulator).list_members(TARGET)
    assert {m.customer_id for m in held} == {i for i in range(1, 601) if i % 2} - {3}
    assert all(m.phone == mobile(m.customer_id) and m.destination_id == gid(m.customer_id) for m in held)
    assert gateway(emulator).list_members(AudienceTarget("nobody")) == []
    assert len(posts(emulator, GRAPHQL)) == 2 + 1, "300 members are two pages of 250"


def test_settings_and_the_dagster_resource(serve, monkeypatch):
    with pytest.raises(SettingsError, match="shopify-tags needs SHOPIFY_STORE and SHOPIFY_ACCESS_TOKEN"):
        Settings.resolve(gateway="shopify-tags", env={})
    with pytest.raises(SettingsError, match="needs SHOPIFY_ACCESS_TOKEN in the environment.*write_customers"):
        Settings.resolve(env={"SMSSEG_GATEWAY": "shopify-tags", "SHOPIFY_STORE": "my-shop.myshopify.com"})
    with pytest.raises(SettingsError, match="expected one of file, http, klaviyo, shopify-tags"):
        Settings.resolve(gateway="shopify_tags", env={})
    env = {"SHOPIFY_STORE": "s.myshopify.com", "SHOPIFY_ACCESS_TOKEN": "t"}
    assert Settings.resolve(gateway="shopify-tags", env=env).gateway == "shopify-tags"

    emulator = serve(shop(3))
    monkeypatch.setenv("SHOPIFY_STORE", emulator.url)
    monkeypatch.setenv("SHOPIFY_ACCESS_TOKEN", TOKEN)

    @dg.asset
    def audience(gateway: AudienceGateway) -> None:
        assert gateway.destination == "shopify-tags"
        gateway.send_batch(TARGET, [member(1)], [], "r1:s:1")

    assert dg.materialize([audience], resources={"gateway": gateway_resource("shopify-tags", "unused")}).success
    assert tagged(emulator) == {1}


def test_sync_segment_converges_and_never_logs_the_token(audience_db, serve, caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "pipeline", "dagster"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    store = shop(400)
    emulator = serve(store)
    emulator.faults.server_errors = 1
    con = audience_db(store)
    first = sync_segment(con, gateway(emulator), SEGMENT, as_of=AS_OF, run_id="r1", batch_size=300)
    assert (first.added, first.batches) == (400, 2)
    assert tagged(emulator) == set(range(1, 401))
    con = audience_db(
        shop(400, **{str(i): {"sms_state": "UNSUBSCRIBED", "updated": "2026-10-20T10:00:00Z"} for i in range(391, 401)})
    )
    second = sync_segment(con, gateway(emulator), SEGMENT, as_of=AS_OF, run_id="r2", batch_size=300)
    assert (second.added, second.removed, second.unchanged) == (0, 10, 390)
    assert tagged(emulator) == set(range(1, 391))
    assert {m.customer_id for m in gateway(emulator).list_members(TARGET)} == set(range(1, 391))
    assert TOKEN not in caplog.text
    assert any(r.name.startswith("httpcore") for r in caplog.records), "httpcore logged at DEBUG"
    assert mobile(1) not in caplog.text, "phone numbers never reach the logs"


def test_a_sync_killed_mid_export_then_rerun_tags_everyone_once(audience_db, serve, tmp_path: Path):
    members, batch = 3000, 50
    requests_a_batch = 3  # who carries the tag, then 50 tagsAdd in two requests of 25
    kill_after = (GROUP_BATCHES + GROUP_BATCHES // 2) * requests_a_batch  # halfway through the second group
    store = shop(members)
    emulator = serve(store)
    audience_db(store).close()
    warehouse, data_dir = tmp_path / "segment-warehouse.duckdb", tmp_path / "data"
    emulator.faults.stalls, emulator.faults.stall_seconds = 10_000, 0.005  # slow enough to be caught mid-group

    env = {"SHOPIFY_STORE": emulator.url, "SHOPIFY_ACCESS_TOKEN": TOKEN}
    kill_sync(
        ShopifyTagsGateway, env, tmp_path, batch, lambda: len(posts(emulator, GRAPHQL)) >= kill_after, timeout=120
    )
    emulator.faults.stalls = 0

    applied = len(tagged(emulator))
    assert 0 < applied < members, "killed mid-export"
    con = duckdb.connect(str(warehouse))
    attach_state(con, data_dir)
    try:
        confirmed = con.execute("select count(*) from state.audience_sync_state").fetchall()[0][0]
        assert confirmed == GROUP_BATCHES * batch < applied, "Shopify holds tags that no state records"
        result = sync_segment(con, gateway(emulator), SEGMENT, as_of=AS_OF, run_id="rerun", batch_size=batch)
        synced = {row[0] for row in con.execute("select customer_id from state.audience_sync_state").fetchall()}
    finally:
        con.close()
    assert tagged(emulator) == synced == set(range(1, members + 1))
    assert set(additions(emulator).values()) == {1}, "a customer was tagged twice"
    assert result.replayed_batches == GROUP_BATCHES
    assert result.added == members - confirmed


def test_another_tag_is_another_audience_and_case_is_not() -> None:
    gateway = ShopifyTagsGateway(store="http://127.0.0.1:9", token=TOKEN)
    vips = AudienceTarget("vips")
    assert gateway.same_audience(vips, AudienceTarget("vips", tag="SMSSEG:VIPS"))
    assert not gateway.same_audience(vips, AudienceTarget("vips", tag="vip:winter"))
