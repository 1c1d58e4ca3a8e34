"""The HTTP gateway's retry rules and secrecy, and the emulator's own contract, over real loopback HTTP."""

import datetime as dt
import logging
import subprocess
import sys

import dagster as dg
import httpx
import pyarrow as pa
import pytest

from pipeline.audience.emulator import Faults, GatewayEmulator
from pipeline.audience.gateways import AudienceGateway, AudienceTarget, FileGateway, GatewayError, HttpGateway
from pipeline.audience.sync import SyncError, sync_segment
from pipeline.settings import PROJECT_DIR
from tests.audience.conftest import AS_OF, SEGMENT, TOKEN, mobile
from tests.fixtures.stores import Store, customer

TARGET = AudienceTarget(SEGMENT, name="All")
MEMBER = {"phone": mobile(1), "customer_id": 1, "first_name": "Ada", "last_name": "Rossi", "country": "IT"}


def gateway(emulator: GatewayEmulator, waits: list[float], **options: float) -> HttpGateway:
    return HttpGateway(url=emulator.url, token=TOKEN, **options).with_sleep(waits.append)


def test_429_waits_retry_after_then_succeeds(emulator):
    emulator.set_faults(Faults(script=["ok", "429", "429", "ok"], retry_after="7"))
    waits = []
    client = gateway(emulator, waits)
    client.upsert_audience(TARGET)
    assert client.send_batch(TARGET, [MEMBER], [], "r:s:1").added == 1
    assert waits == [7.0, 7.0]


def test_server_errors_back_off_capped_with_jitter_and_give_up_after_bounded_attempts(emulator):
    emulator.set_faults(Faults(script=["500"]))
    waits = []
    client = gateway(emulator, waits, max_attempts=6, backoff_seconds=1.0, max_backoff_seconds=4.0)
    with pytest.raises(GatewayError, match="gave up after 6 attempts at PUT http://127.*, last: HTTP 503") as failure:
        client.upsert_audience(TARGET)
    assert failure.value.retryable
    assert emulator.received["PUT"] == 6
    assert len(waits) == 5
    assert all(0 <= w <= cap for w, cap in zip(waits, [1, 2, 4, 4, 4], strict=True))


def test_dropped_connections_and_timeouts_are_retried_with_the_same_key(emulator):
    emulator.set_faults(Faults(script=["ok", "drop", "drop_after", "slow", "ok"], slow_step_seconds=0.5))
    client = gateway(emulator, [], timeout_seconds=0.2)
    client.upsert_audience(TARGET)
    result = client.send_batch(TARGET, [MEMBER], [], "r:s:1")
    assert (result.added, emulator.adds_of(SEGMENT)) == (1, {mobile(1): 1})


def test_other_4xx_fails_at_once_with_the_gateways_message(emulator):
    waits = []
    with pytest.raises(GatewayError, match="refused it with 404: no audience missing") as failure:
        gateway(emulator, waits).send_batch(AudienceTarget("missing"), [MEMBER], [], "r:missing:1")
    assert not failure.value.retryable
    assert (emulator.received["POST"], waits) == (1, [])


def test_the_token_never_appears_in_logs_errors_or_reprs(audience_db, emulator, caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "pipeline", "dagster"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    emulator.set_faults(Faults(script=["429", "ok", "500", "drop", "ok", "drop_after", "ok"]))
    con = audience_db(Store(customers=[customer(i, phone=mobile(i)) for i in range(1, 8)]))
    client = gateway(emulator, [])
    sync_segment(con, client, SEGMENT, as_of=AS_OF, run_id="r1", batch_size=2)
    errors = []
    for bad in (
        HttpGateway(url=emulator.url, token="not-" + TOKEN),
        HttpGateway(url="http://127.0.0.1:9", token=TOKEN, max_attempts=2).with_sleep(lambda s: None),
    ):
        with pytest.raises(GatewayError) as failure:
            bad.upsert_audience(TARGET)
        errors.append(failure.value)
    emulator.set_faults(Faults(script=["ok", "ok", "500", "500"]))  # PUT, GET the new audience, then down
    con.execute("create view segments.again as select customer_id from marts.customers")
    with pytest.raises(SyncError, match="batch 1 failed") as failure:
        sync_segment(con, gateway(emulator, [], max_attempts=2), "again", as_of=AS_OF, run_id="r2")
    errors.append(failure.value)

    assert any("HTTP Request" in r.getMessage() for r in caplog.records), "httpx logged at DEBUG/INFO"
    assert any(r.name.startswith("httpcore") for r in caplog.records), "httpcore logged at DEBUG"
    assert TOKEN not in caplog.text
    for error in errors:
        assert TOKEN not in str(error) and TOKEN not in repr(error)
    assert TOKEN not in repr(client) and TOKEN not in str(client)
    ledger = con.execute("select string_agg(coalesce(reason, ''), ' ') from state.audience_changes").fetchall()
    assert TOKEN not in ledger[0][0]


def test_gateway_from_env_names_what_is_missing():
    with pytest.raises(GatewayError, match="SMS_GATEWAY_TOKEN not set"):
        HttpGateway.from_env({"SMS_GATEWAY_URL": "http://127.0.0.1:1"})
    assert HttpGateway.from_env({"SMS_GATEWAY_URL": "http://x", "SMS_GATEWAY_TOKEN": "t"}).url == "http://x"


def test_emulator_replays_a_key_without_applying_it_again(emulator):
    headers = {"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": "k1"}
    with httpx.Client(base_url=emulator.url) as client:
        auth = {"Authorization": headers["Authorization"]}
        assert client.put(f"/audiences/{SEGMENT}", json={"name": "All"}, headers=auth).status_code == 200
        body = {"add": [MEMBER, {**MEMBER, "phone": "12345"}], "remove": []}
        first = client.post(f"/audiences/{SEGMENT}/members", json=body, headers=headers)
        replay = client.post(f"/audiences/{SEGMENT}/members", json=body, headers=headers)
        other = client.post(f"/audiences/{SEGMENT}/members", json={"add": [], "remove": []}, headers=headers)
        unauthorised = client.post(f"/audiences/{SEGMENT}/members", json=body, headers={"Idempotency-Key": "k2"})
    assert (
        first.json()
        == replay.json()
        == {"added": 1, "removed": 0, "rejected": [{"phone": "12345", "reason": "not an E.164 number"}]}
    )
    assert emulator.adds_of(SEGMENT) == {mobile(1): 1}
    assert other.status_code == 422
    assert unauthorised.status_code == 401


def test_emulator_faults_set_through_the_admin_endpoint(emulator):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=emulator.url, headers=headers) as client:
        assert client.post("/_admin/faults", json={"script": ["429"], "retry_after": "3"}).status_code == 200
        limited = client.put(f"/audiences/{SEGMENT}", json={})
        assert client.post("/_admin/faults", json={"script": ["boom"]}).status_code == 400
        state = client.get("/_admin/state").json()
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "3")
    assert state["faults"]["script"] == ["429"]


def test_emulator_command_prints_its_loopback_url():
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "pipeline.audience.emulator", "--port", "0", "--token", TOKEN],
        cwd=PROJECT_DIR,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        response = httpx.put(
            f"{url}/audiences/demo", json={"name": "Demo"}, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
        )
        assert response.json() == {"id": "demo", "members": 0}
    finally:
        process.kill()
        process.wait(timeout=10)
        process.stdout.close()


def test_gateways_are_dagster_resources_with_the_token_from_env_var(emulator, monkeypatch, tmp_path):
    monkeypatch.setenv("SMS_GATEWAY_TOKEN", TOKEN)

    @dg.asset
    def audience(gateway: AudienceGateway) -> None:
        gateway.upsert_audience(TARGET)

    resources = {"gateway": HttpGateway(url=emulator.url, token=dg.EnvVar("SMS_GATEWAY_TOKEN"))}
    assert dg.materialize([audience], resources=resources).success
    assert SEGMENT in emulator.snapshot()["audiences"]
    assert dg.materialize([audience], resources={"gateway": FileGateway(data_dir=str(tmp_path))}).success
    assert (tmp_path / "exports" / SEGMENT / ".pending").is_dir()


def test_file_gateway_gathers_every_batch_once_sorted_and_a_replay_overwrites_its_own(tmp_path):
    client = FileGateway(data_dir=str(tmp_path))
    client.upsert_audience(TARGET)
    member = {**MEMBER, "phone": mobile(3), "customer_id": 3}
    client.send_batch(TARGET, [member], [{"phone": mobile(9), "customer_id": 9}], "killed:s:2")
    client.send_batch(TARGET, [MEMBER], [], "killed:s:1")
    client.send_batch(TARGET, [member], [{"phone": mobile(9), "customer_id": 9}], "killed:s:2")  # replayed
    client.finish(TARGET, AS_OF, pa.table({"phone": [mobile(1), mobile(3)], "customer_id": [1, 3]}))
    changes = tmp_path / "exports" / SEGMENT / f"{AS_OF.isoformat()}.changes.csv"
    assert changes.read_text() == (
        f"action,phone,customer_id\nadd,{mobile(1)},1\nadd,{mobile(3)},3\nremove,{mobile(9)},9\n"
    )
    assert list((tmp_path / "exports" / SEGMENT / ".pending").iterdir()) == []


def test_list_members_pages_through_the_audience_despite_faults(emulator, monkeypatch):
    monkeypatch.setattr("pipeline.audience.gateways.MEMBERS_PAGE", 3)
    waits = []
    client = gateway(emulator, waits)
    assert client.list_members(TARGET) == []  # an audience never created holds no one
    client.upsert_audience(TARGET)
    members = [{**MEMBER, "phone": mobile(n), "customer_id": n} for n in range(1, 8)]
    client.send_batch(TARGET, members, [], "r:s:1")
    emulator.set_faults(Faults(script=["ok", "429", "500", "ok", "drop", "ok"]))
    held = client.list_members(TARGET)
    assert [(m.phone, m.customer_id) for m in held] == [(mobile(n), n) for n in range(1, 8)]
    assert len(waits) == 3  # each fault waited once, and the page was asked again


def test_list_members_refuses_a_reply_it_cannot_read_and_a_cursor_that_never_ends(emulator, monkeypatch):
    client = gateway(emulator, [])
    client.upsert_audience(TARGET)
    monkeypatch.setattr(emulator, "_page", lambda segment, query: (200, {"items": []}))
    with pytest.raises(GatewayError, match=r"GET /audiences/all_customers/members: unexpected reply with \['items'\]"):
        client.list_members(TARGET)
    monkeypatch.setattr("pipeline.audience.gateways.MAX_MEMBER_PAGES", 4)
    monkeypatch.setattr(emulator, "_page", lambda segment, query: (200, {"members": [], "next_cursor": "again"}))
    with pytest.raises(GatewayError, match="still more after 4 pages"):
        client.list_members(TARGET)


def test_emulator_refuses_a_bad_page_request(emulator):
    with httpx.Client(base_url=emulator.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        assert http.get(f"/audiences/{SEGMENT}/members", params={"limit": "lots"}).status_code == 400
        assert http.get(f"/audiences/{SEGMENT}/members", params={"limit": 5000}).status_code == 400
        assert http.get(f"/audiences/{SEGMENT}/members").status_code == 200
        assert httpx.get(f"{emulator.url}/audiences/{SEGMENT}/members").status_code == 401


def test_file_gateway_lists_the_latest_audience_file(tmp_path):
    client = FileGateway(data_dir=str(tmp_path))
    assert client.list_members(TARGET) == []
    for day, n in (("2026-10-30", 3), ("2026-10-31", 2)):
        client.finish(
            TARGET,
            dt.date.fromisoformat(day),
            pa.table({"phone": [mobile(i) for i in range(1, n + 1)], "customer_id": list(range(1, n + 1))}),
        )
    assert [(m.phone, m.customer_id) for m in client.list_members(TARGET)] == [(mobile(1), 1), (mobile(2), 2)]
