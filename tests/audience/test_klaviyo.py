"""The Klaviyo gateway against the Klaviyo emulator over real loopback HTTP, and the emulator's own contract."""

import logging
from pathlib import Path

import dagster as dg
import duckdb
import httpx
import pytest

from pipeline.audience.gateways import AudienceGateway, AudienceTarget, GatewayError
from pipeline.audience.klaviyo import REVISION, KlaviyoGateway, _row_phone
from pipeline.audience.klaviyo_emulator import Faults, KlaviyoEmulator
from pipeline.audience.sync import GROUP_BATCHES, SyncError, sync_segment
from pipeline.defs.exports import gateway_resource
from pipeline.settings import Settings, SettingsError
from pipeline.warehouse.build import attach_state
from tests.audience.conftest import AS_OF, KLAVIYO_KEY, SEGMENT, kill_sync, mobile
from tests.fixtures.stores import Store, customer

LIST = "VIP SMS"
TARGET = AudienceTarget(SEGMENT, name=LIST)


def member(n: int, **fields: object) -> dict:
    return {
        "phone": mobile(n),
        "customer_id": n,
        "first_name": f"Ada{n}",
        "last_name": "Rossi",
        "country": "IT",
        **fields,
    }


def client(server: KlaviyoEmulator, waits: list[float] | None = None, **options: float) -> KlaviyoGateway:
    gateway = KlaviyoGateway(url=server.url, api_key=KLAVIYO_KEY, **options)
    return gateway.with_sleep(waits.append if waits is not None else lambda seconds: None)


def api(
    server: KlaviyoEmulator,
    method: str,
    path: str,
    *,
    key: str = KLAVIYO_KEY,
    revision: str | None = REVISION,
    **request: object,
) -> httpx.Response:
    headers = {"Authorization": f"Klaviyo-API-Key {key}", **({"revision": revision} if revision else {})}
    return httpx.request(method, f"{server.url}{path}", headers=headers, timeout=5, **request)


def import_body(profiles: list[dict], list_id: str | None = None) -> dict:
    body = {
        "data": {
            "type": "profile-bulk-import-job",
            "attributes": {"profiles": {"data": [{"type": "profile", "attributes": p} for p in profiles]}},
        }
    }
    if list_id:
        body["data"]["relationships"] = {"lists": {"data": [{"type": "list", "id": list_id}]}}
    return body


# --- the list ---


def test_the_list_is_created_once_then_found_by_name_or_by_its_known_id(klaviyo):
    created = client(klaviyo).upsert_audience(TARGET)
    assert created == klaviyo.list_id(LIST)
    assert client(klaviyo).upsert_audience(TARGET) == created, "a new process finds it by name"
    assert client(klaviyo).upsert_audience(TARGET, known_id=created) == created
    assert (klaviyo.received["create_list"], klaviyo.received["get_lists"], klaviyo.received["get_list"]) == (1, 2, 1)
    # a known id whose list was deleted, or renamed away from sms.list, is looked up by name again
    assert client(klaviyo).upsert_audience(TARGET, known_id="L99999") == created
    renamed = client(klaviyo).upsert_audience(AudienceTarget(SEGMENT, name="Renamed"), known_id=created)
    assert renamed != created and klaviyo.list_id("Renamed") == renamed


def test_a_list_name_klaviyo_cannot_filter_on_or_held_twice_is_refused_with_what_to_do(klaviyo):
    with pytest.raises(GatewayError, match=r"list name 'say \"hi\"' \(sms.list\).*rename the list") as failure:
        client(klaviyo).upsert_audience(AudienceTarget(SEGMENT, name='say "hi"'))
    assert not failure.value.retryable
    for _ in range(2):
        assert (
            api(
                klaviyo, "POST", "/api/lists", json={"data": {"type": "list", "attributes": {"name": LIST}}}
            ).status_code
            == 201
        )
    with pytest.raises(GatewayError, match="2 lists named 'VIP SMS' .*rename or delete all but one"):
        client(klaviyo).upsert_audience(TARGET)


# --- adds, removes, exactly once ---


def test_adds_import_profiles_to_the_list_and_return_their_profile_ids(klaviyo):
    gateway = client(klaviyo)
    gateway.upsert_audience(TARGET)
    result = gateway.send_batch(TARGET, [member(1, amount_spent=120.5), member(2, first_name=None)], [], "r:s:1")
    held = klaviyo.members(LIST)
    assert (result.added, result.rejected) == (2, [])
    assert result.ids == held and set(held) == {mobile(1), mobile(2)}
    profile = klaviyo.profiles[held[mobile(1)]]
    assert {k: profile[k] for k in ("phone_number", "external_id", "first_name", "last_name", "location")} == {
        "phone_number": mobile(1),
        "external_id": "1",
        "first_name": "Ada1",
        "last_name": "Rossi",
        "location": {"country": "IT"},
    }
    assert profile["properties"] == {"amount_spent": 120.5}
    assert "first_name" not in klaviyo.profiles[held[mobile(2)]], "a missing name is left out, not blanked"
    assert not any("subscriptions" in p for p in klaviyo.profiles.values()), "membership never sends consent"


def test_a_replayed_batch_adds_no_number_twice_in_the_same_process_or_a_new_one(klaviyo):
    first = client(klaviyo)
    first.upsert_audience(TARGET)
    batch = [member(n) for n in range(1, 6)]
    first.send_batch(TARGET, batch[:3], [], "killed:s:1")
    # the same key again: once from the process that sent it, once from a new one that knows nothing of it
    assert first.send_batch(TARGET, batch[:3], [], "killed:s:1").added == 3
    replay = client(klaviyo).send_batch(TARGET, batch, [], "killed:s:1")
    assert (replay.added, set(replay.ids)) == (5, {m["phone"] for m in batch})
    assert set(klaviyo.members(LIST)) == {m["phone"] for m in batch}
    assert klaviyo.adds_of(LIST) == dict.fromkeys((m["phone"] for m in batch), 1)
    # the numbers the list already held were imported again for their fields, without the list
    assert [job["lists"] for job in klaviyo.jobs.values()] == [[klaviyo.list_id(LIST)], [], [klaviyo.list_id(LIST)], []]


def test_a_batch_resent_by_its_process_waits_for_its_earlier_job_before_asking_the_list(klaviyo):
    klaviyo.set_faults(Faults(job_polls=5, job_seconds=3600))
    gateway = client(klaviyo, poll_attempts=3)
    gateway.upsert_audience(TARGET)
    with pytest.raises(GatewayError, match="still processing after 3 looks"):
        gateway.send_batch(TARGET, [member(1)], [], "r:s:1")
    klaviyo.set_faults(Faults())
    assert gateway.send_batch(TARGET, [member(1)], [], "r:s:1").ids == klaviyo.members(LIST)
    klaviyo.finish_jobs()  # whatever either send left running lands
    assert klaviyo.adds_of(LIST) == {mobile(1): 1}


def test_a_number_already_on_the_list_is_updated_not_added(klaviyo):
    gateway = client(klaviyo)
    gateway.upsert_audience(TARGET)
    known = klaviyo.add_profile(mobile(1), LIST)
    result = gateway.send_batch(TARGET, [member(1, first_name="Changed")], [], "r:s:1")
    assert result.ids == {mobile(1): known}
    assert klaviyo.adds_of(LIST) == {}
    assert klaviyo.profiles[known]["first_name"] == "Changed"


def test_removes_go_by_profile_id_or_by_phone_looked_up_on_the_list(klaviyo):
    gateway = client(klaviyo)
    gateway.upsert_audience(TARGET)
    ids = gateway.send_batch(TARGET, [member(n) for n in range(1, 5)], [], "r:s:1").ids
    removes = [
        {"phone": mobile(1), "customer_id": 1, "destination_id": ids[mobile(1)]},
        {"phone": mobile(2), "customer_id": 2, "destination_id": None},
        {"phone": mobile(9), "customer_id": 9, "destination_id": None},
    ]  # never on the list: already gone
    lookups = klaviyo.received["get_profiles_for_list"]
    result = gateway.send_batch(TARGET, [], removes, "r:s:2")
    assert result.removed == 3
    assert set(klaviyo.members(LIST)) == {mobile(3), mobile(4)}
    assert klaviyo.received["get_profiles_for_list"] == lookups + 1, "one lookup, for the two without an id"
    assert klaviyo.received["remove_profiles_from_list"] == 1
    assert klaviyo.profiles[ids[mobile(1)]]["phone_number"] == mobile(1), "the profile stays; only the list changes"


def test_import_errors_are_reported_per_number_and_the_rest_go_in(klaviyo):
    klaviyo.set_faults(Faults(fail_rows={mobile(2): "Phone number is not valid for SMS in this region."}))
    gateway = client(klaviyo)
    gateway.upsert_audience(TARGET)
    result = gateway.send_batch(TARGET, [member(1), member(2), {**member(3), "phone": "+39 347 000"}], [], "r:s:1")
    assert result.rejected == [
        (
            "+39 347 000",
            "Invalid input.: Invalid phone number format (Example of a valid format: +13239169023): +39 347 000",
        ),
        (mobile(2), "Invalid input.: Phone number is not valid for SMS in this region."),
    ]
    assert (result.added, set(result.ids)) == (1, {mobile(1)})
    assert set(klaviyo.members(LIST)) == {mobile(1)}


def test_an_import_error_without_its_payload_is_matched_to_its_row_by_pointer():
    rows = [member(1), member(2)]
    assert _row_phone(rows, "/data/attributes/profiles/data/1/attributes/phone_number") == mobile(2)
    for pointer in ("/data/attributes/profiles/data/2/attributes/phone_number", "/data/attributes/x", ""):
        assert _row_phone(rows, pointer) is None


def test_a_job_is_polled_through_its_states_and_a_stuck_or_cancelled_one_fails_retryably(klaviyo):
    klaviyo.set_faults(Faults(job_polls=3, job_seconds=60))
    waits = []
    gateway = client(klaviyo, waits, poll_seconds=0.25)
    gateway.upsert_audience(TARGET)
    assert gateway.send_batch(TARGET, [member(1)], [], "r:s:1").added == 1
    assert (waits, klaviyo.received["get_bulk_import_profiles_job"]) == ([0.25, 0.25], 3)

    klaviyo.set_faults(Faults(job_polls=100, job_seconds=60))
    with pytest.raises(GatewayError, match="import job J[0-9]+ still processing after 4 looks") as stuck:
        client(klaviyo, poll_attempts=4).send_batch(TARGET, [member(2)], [], "r:s:2")
    klaviyo.set_faults(Faults(cancel_jobs=True))
    with pytest.raises(GatewayError, match="cancelled import job") as cancelled:
        client(klaviyo).send_batch(TARGET, [member(3)], [], "r:s:3")
    assert stuck.value.retryable and cancelled.value.retryable
    assert set(klaviyo.members(LIST)) == {mobile(1)}


# --- limits and faults ---


def test_a_429_storm_waits_retry_after_each_time(klaviyo):
    klaviyo.set_faults(Faults(script=["ok", "ok", "429", "429", "429", *["ok"] * 20], retry_after="7"))
    waits = []
    gateway = client(klaviyo, waits)
    gateway.upsert_audience(TARGET)
    assert gateway.send_batch(TARGET, [member(1)], [], "r:s:1").added == 1
    assert waits == [7.0, 7.0, 7.0]


def test_server_errors_and_dropped_connections_are_retried_with_bounded_backoff(klaviyo):
    klaviyo.set_faults(Faults(script=["ok", "ok", "500", "drop", *["ok"] * 20]))
    waits = []
    gateway = client(klaviyo, waits, backoff_seconds=1.0, max_backoff_seconds=4.0)
    gateway.upsert_audience(TARGET)
    assert gateway.send_batch(TARGET, [member(1)], [], "r:s:1").added == 1
    assert len(waits) == 2 and all(0 <= w <= cap for w, cap in zip(waits, [1, 2], strict=True))
    assert klaviyo.adds_of(LIST) == {mobile(1): 1}

    klaviyo.set_faults(Faults(script=["500"]))
    with pytest.raises(GatewayError, match="gave up after 3 attempts at .*, last: HTTP 503 Service unavail") as failure:
        client(klaviyo, max_attempts=3).send_batch(TARGET, [member(2)], [], "r:s:2")
    assert failure.value.retryable


def test_a_batch_over_an_endpoints_limit_is_split_and_a_payload_over_5_mb_refused(klaviyo):
    gateway = client(klaviyo)
    gateway.upsert_audience(TARGET)
    adds = [member(n) for n in range(1, 10_002)]
    result = gateway.send_batch(TARGET, adds, [], "r:s:1")
    assert (result.added, klaviyo.received["bulk_import_profiles"]) == (10_001, 2)
    removes = [
        {"phone": m["phone"], "customer_id": m["customer_id"], "destination_id": result.ids[m["phone"]]}
        for m in adds[:1001]
    ]
    assert gateway.send_batch(TARGET, [], removes, "r:s:2").removed == 1001
    assert klaviyo.received["remove_profiles_from_list"] == 2
    assert len(klaviyo.members(LIST)) == 9000

    with pytest.raises(GatewayError, match="over Klaviyo's 5 MB a bulk import; lower SMSSEG_BATCH_SIZE") as failure:
        gateway.send_batch(TARGET, [member(n, notes="x" * 1000) for n in range(20_001, 26_001)], [], "r:s:3")
    assert not failure.value.retryable
    assert klaviyo.received["bulk_import_profiles"] == 2, "nothing was sent"


def test_the_emulator_refuses_what_klaviyo_refuses_in_its_error_format(klaviyo):
    list_id = client(klaviyo).upsert_audience(TARGET)
    misspelt = api(
        klaviyo, "POST", "/api/profile-bulk-import-jobs", json=import_body([{"phone_numbr": mobile(1)}], list_id)
    )
    consent = api(
        klaviyo,
        "POST",
        "/api/profile-bulk-import-jobs",
        json=import_body([{"phone_number": mobile(1), "subscriptions": {"sms": {}}}], list_id),
    )
    too_many = api(
        klaviyo,
        "POST",
        "/api/profile-bulk-import-jobs",
        json=import_body([{"phone_number": mobile(n)} for n in range(10_001)], list_id),
    )
    too_big = api(
        klaviyo,
        "POST",
        "/api/profile-bulk-import-jobs",
        json=import_body([{"phone_number": mobile(n), "properties": {"x": "y" * 600}} for n in range(9000)], list_id),
    )
    bad_filter = api(klaviyo, "GET", f"/api/lists/{list_id}/profiles", params={"filter": f"equals(phone,{mobile(1)})"})
    big_page = api(klaviyo, "GET", f"/api/lists/{list_id}/profiles", params={"page[size]": "101"})
    no_revision = api(klaviyo, "GET", "/api/lists", revision=None)
    wrong_key = api(klaviyo, "GET", "/api/lists", key="pk_wrong")
    assert misspelt.status_code == 400
    error = misspelt.json()["errors"][0]
    assert set(error) == {"id", "status", "code", "title", "detail", "source"}
    assert (error["code"], error["detail"], error["source"]) == (
        "invalid",
        "'phone_numbr' is not a valid field for the resource 'profile'.",
        {"pointer": "/data/attributes/profiles/data/0/attributes/phone_numbr"},
    )
    assert consent.json()["errors"][0]["source"]["pointer"].endswith("/attributes/subscriptions")
    assert (too_many.status_code, too_big.status_code) == (400, 413)
    assert (bad_filter.status_code, bad_filter.json()["errors"][0]["source"]) == (400, {"parameter": "filter"})
    assert (big_page.status_code, no_revision.status_code, wrong_key.status_code) == (400, 400, 401)
    assert klaviyo.jobs == {}, "a refused request starts no job"


def test_the_gateway_reports_klaviyos_refusal_with_its_detail_and_what_to_do(klaviyo):
    with pytest.raises(GatewayError, match="refused it with 401: .*check KLAVIYO_API_KEY and its scopes") as failure:
        KlaviyoGateway(url=klaviyo.url, api_key="pk_wrong").upsert_audience(TARGET)
    assert not failure.value.retryable
    with pytest.raises(GatewayError, match="refused it with 400: .*'revision' header is required"):
        KlaviyoGateway(url=klaviyo.url, api_key=KLAVIYO_KEY, revision="latest").upsert_audience(TARGET)


class Clock:
    """The emulator's time, moved on only by the gateway's waits: rate windows without racing the real clock."""

    def __init__(self) -> None:
        self.now, self.waits = 1000.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def test_the_emulator_keeps_the_documented_rate_limits_with_their_headers():
    clock = Clock()
    with KlaviyoEmulator(KLAVIYO_KEY, clock=clock) as server:
        replies = [
            api(server, "POST", "/api/lists", json={"data": {"type": "list", "attributes": {"name": f"L{i}"}}})
            for i in range(11)
        ]  # Create List: burst 10/s
        clock.now += 1
        after_a_second = api(server, "POST", "/api/lists", json={"data": {"type": "list", "attributes": {"name": "x"}}})
    assert [r.status_code for r in replies] == [201] * 10 + [429]
    assert (replies[0].headers["RateLimit-Limit"], replies[0].headers["RateLimit-Remaining"]) == ("150", "149")
    assert replies[-1].headers["Retry-After"] == "1"
    assert replies[-1].json()["errors"][0]["code"] == "throttled"
    assert (after_a_second.status_code, after_a_second.headers["RateLimit-Remaining"]) == (201, "139")


def test_the_gateway_rides_out_real_throttling_by_retry_after():
    clock = Clock()
    with KlaviyoEmulator(KLAVIYO_KEY, clock=clock) as server:
        gateway = KlaviyoGateway(url=server.url, api_key=KLAVIYO_KEY).with_sleep(clock.sleep)
        list_id = gateway.upsert_audience(TARGET)
        # ten jobs fill Bulk Import Profiles' burst of 10/s: the gateway's own import is the 11th
        for n in range(101, 111):
            assert (
                api(
                    server,
                    "POST",
                    "/api/profile-bulk-import-jobs",
                    json=import_body([{"phone_number": mobile(n)}], list_id),
                ).status_code
                == 202
            )
        assert gateway.send_batch(TARGET, [member(1)], [], "r:s:1").ids == {mobile(1): server.members(LIST)[mobile(1)]}
    assert clock.waits == [1.0]


# --- reading the list back, secrecy, wiring ---


def test_list_members_pages_through_the_whole_list(klaviyo):
    gateway = client(klaviyo)
    assert gateway.list_members(TARGET) == [], "no list yet: nothing held"
    gateway.upsert_audience(TARGET)
    ids = gateway.send_batch(TARGET, [member(n) for n in range(1, 251)], [], "r:s:1").ids
    pages = klaviyo.received["get_profiles_for_list"]
    held = client(klaviyo).list_members(TARGET)
    assert klaviyo.received["get_profiles_for_list"] - pages == 3, "100 a page"
    assert sorted((m.phone, m.customer_id, m.destination_id) for m in held) == sorted(
        (mobile(n), n, ids[mobile(n)]) for n in range(1, 251)
    )


def test_the_key_never_appears_in_logs_errors_or_reprs(audience_db, klaviyo, caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "pipeline", "dagster"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    klaviyo.set_faults(Faults(script=["429", "ok", "500", "drop", "ok", "ok"], retry_after="0"))
    con = audience_db(Store(customers=[customer(i, phone=mobile(i)) for i in range(1, 8)]))
    gateway = client(klaviyo)
    sync_segment(con, gateway, SEGMENT, as_of=AS_OF, run_id="r1", batch_size=2, target=TARGET)
    errors = []
    for bad in (
        KlaviyoGateway(url=klaviyo.url, api_key="not-" + KLAVIYO_KEY),
        KlaviyoGateway(url="http://127.0.0.1:9", api_key=KLAVIYO_KEY, max_attempts=2).with_sleep(lambda s: 0),
    ):
        with pytest.raises(GatewayError) as failure:
            bad.upsert_audience(TARGET)
        errors.append(failure.value)
    klaviyo.set_faults(Faults(script=["500"]))
    con.execute("create view segments.again as select customer_id from marts.customers")
    with pytest.raises(SyncError) as failure:
        sync_segment(con, client(klaviyo, max_attempts=2), "again", as_of=AS_OF, run_id="r2")
    errors.append(failure.value)

    assert any("HTTP Request" in r.getMessage() for r in caplog.records), "httpx logged at DEBUG/INFO"
    assert KLAVIYO_KEY not in caplog.text
    for error in errors:
        assert KLAVIYO_KEY not in str(error) and KLAVIYO_KEY not in repr(error)
    assert KLAVIYO_KEY not in repr(gateway) and KLAVIYO_KEY not in str(gateway)


def test_klaviyo_is_a_gateway_setting_that_needs_its_key(klaviyo, monkeypatch):
    with pytest.raises(SettingsError, match="gateway klaviyo needs KLAVIYO_API_KEY"):
        Settings.resolve(gateway="klaviyo", env={})
    with pytest.raises(SettingsError, match="expected one of file, http, klaviyo"):
        Settings.resolve(env={"SMSSEG_GATEWAY": "klavyo"})
    assert Settings.resolve(env={"SMSSEG_GATEWAY": "klaviyo", "KLAVIYO_API_KEY": "k"}).gateway == "klaviyo"
    with pytest.raises(GatewayError, match="KLAVIYO_API_KEY not set"):
        KlaviyoGateway.from_env({"KLAVIYO_API_URL": klaviyo.url})
    assert KlaviyoGateway.from_env({"KLAVIYO_API_KEY": "k"}).url == "https://a.klaviyo.com"

    monkeypatch.setenv("KLAVIYO_API_KEY", KLAVIYO_KEY)
    monkeypatch.setenv("KLAVIYO_API_URL", klaviyo.url)
    resource = gateway_resource("klaviyo", "unused")

    @dg.asset
    def audience(gateway: AudienceGateway) -> None:
        assert gateway.destination == "klaviyo"
        gateway.upsert_audience(TARGET)

    assert dg.materialize([audience], resources={"gateway": resource}).success
    assert klaviyo.list_id(LIST) is not None


# --- the sync, end to end ---


def test_sync_segment_keeps_the_list_equal_to_the_eligible_audience(audience_db, klaviyo):
    store = Store(customers=[customer(i, phone=mobile(i), first=f"C{i}") for i in range(1, 31)])
    con = audience_db(store)
    gateway = client(klaviyo)
    first = sync_segment(con, gateway, SEGMENT, as_of=AS_OF, run_id="n1", batch_size=7, target=TARGET)
    assert (first.added, first.batches) == (30, 5)
    assert set(klaviyo.members(LIST)) == {mobile(i) for i in range(1, 31)}

    # 1-10 unsubscribe, 11 changes name, 31-35 are new
    con = audience_db(
        Store(
            customers=[
                customer(
                    i,
                    phone=mobile(i),
                    first="Renamed" if i == 11 else f"C{i}",
                    sms_state="UNSUBSCRIBED" if i <= 10 else "SUBSCRIBED",
                )
                for i in range(1, 36)
            ]
        )
    )
    second = sync_segment(con, client(klaviyo), SEGMENT, as_of=AS_OF, run_id="n2", batch_size=7, target=TARGET)
    assert (second.added, second.updated, second.removed, second.unchanged) == (5, 1, 10, 19)
    held = klaviyo.members(LIST)
    assert set(held) == {mobile(i) for i in range(11, 36)}
    assert klaviyo.profiles[held[mobile(11)]]["first_name"] == "Renamed"
    assert set(klaviyo.adds_of(LIST).values()) == {1}, "an update re-imports the profile without adding it again"


def test_a_sync_killed_mid_export_then_rerun_converges_without_adding_any_number_twice(
    audience_db, klaviyo, tmp_path: Path
):
    members, batch = 3000, 50
    kill_after_imports = GROUP_BATCHES + GROUP_BATCHES // 2  # halfway through the second group
    assert members // batch > 2 * GROUP_BATCHES, "the kill must land in a group before the last"
    audience_db(Store(customers=[customer(i, phone=mobile(i), first=f"C{i}") for i in range(1, members + 1)])).close()
    warehouse, data_dir = tmp_path / "segment-warehouse.duckdb", tmp_path / "data"
    klaviyo.set_faults(Faults(slow_seconds=0.01))

    env = {"KLAVIYO_API_URL": klaviyo.url, "KLAVIYO_API_KEY": KLAVIYO_KEY}
    kill_sync(
        KlaviyoGateway,
        env,
        tmp_path,
        batch,
        lambda: klaviyo.received["bulk_import_profiles"] >= kill_after_imports,
        list_name=LIST,
    )

    applied = len(klaviyo.members(LIST))
    assert 0 < applied < members, "killed mid-export"
    klaviyo.set_faults(Faults())
    con = duckdb.connect(str(warehouse))
    attach_state(con, data_dir)
    try:
        confirmed = con.execute("select count(*) from state.audience_sync_state").fetchall()[0][0]
        pending = con.execute("select count(*) from state.audience_batches where status = 'planned'").fetchall()[0][0]
        assert confirmed == GROUP_BATCHES * batch < applied, "the list holds numbers of the group no state has"
        assert pending == GROUP_BATCHES
        result = sync_segment(
            con, client(klaviyo), SEGMENT, as_of=AS_OF, run_id="rerun", batch_size=batch, target=TARGET
        )
        eligible = {row[0] for row in con.execute("select phone from audience_eligible").fetchall()}
        synced = {row[0] for row in con.execute("select phone from state.audience_sync_state").fetchall()}
    finally:
        con.close()

    assert len(eligible) == members
    assert set(klaviyo.members(LIST)) == eligible == synced
    assert set(klaviyo.adds_of(LIST).values()) == {1}, "a number was added twice"
    assert result.replayed_batches == pending


def test_a_definition_naming_another_list_empties_the_old_one(audience_db, klaviyo):
    con = audience_db(Store(customers=[customer(i, phone=mobile(i), first=f"C{i}") for i in range(1, 13)]))
    sync_segment(con, client(klaviyo), SEGMENT, as_of=AS_OF, run_id="n1", batch_size=5, target=TARGET)
    renamed = AudienceTarget(SEGMENT, name="VIP SMS 2027")
    moved = sync_segment(con, client(klaviyo), SEGMENT, as_of=AS_OF, run_id="n2", batch_size=5, target=renamed)
    assert klaviyo.members(LIST) == {}, "the list the definition no longer names holds no one"
    assert set(klaviyo.members("VIP SMS 2027")) == {mobile(i) for i in range(1, 13)}
    assert moved.added == 12 and set(klaviyo.adds_of("VIP SMS 2027").values()) == {1}
    again = sync_segment(con, client(klaviyo), SEGMENT, as_of=AS_OF, run_id="n3", batch_size=5, target=renamed)
    assert (again.added, again.removed, again.unchanged) == (0, 0, 12)
    assert client(klaviyo).same_audience(TARGET, AudienceTarget(SEGMENT, name=LIST, description="renamed only"))
