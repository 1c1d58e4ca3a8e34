"""Export assets in the nightly job: file and HTTP gateways, unchanged reruns, the dry run."""

import csv
from pathlib import Path

import dagster as dg
import duckdb

from pipeline.audience.emulator import Faults, GatewayEmulator
from pipeline.audience.gateways import HttpGateway
from pipeline.settings import DEFAULT_BATCH_SIZE, Settings
from tests.defs.test_nightly import AS_OF
from tests.fixtures.nightly import run_nightly_job
from tests.fixtures.stores import Store, customer, order

TOKEN = "gw-token-7d1e0c9b"


def shop(unsubscribed: tuple[int, ...] = ()) -> Store:
    """Ten subscribed customers with orders; customer 9 shares customer 8's number; 10 has a bad phone."""
    phones = {n: f"+39347{n:07d}" for n in range(1, 11)}
    phones[9], phones[10] = phones[8], "12345"
    return Store(
        customers=[
            customer(n, phone=phones[n], sms_state="UNSUBSCRIBED" if n in unsubscribed else "SUBSCRIBED")
            for n in range(1, 11)
        ],
        orders=[order(100 + n, n, total="20.00") for n in range(1, 11)],
    )


def segment_defs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "buyers.yaml").write_text(
        "name: buyers\ndescription: ordered at least once\n"
        "query: number_of_orders >= 1\n"
        "sms:\n  export: true\n  fields: [amount_spent]\n"
    )
    return folder


def run(
    tmp_path: Path, store: Store, *, dry_run: bool = False, batch_size: int = DEFAULT_BATCH_SIZE, **resources
) -> dg.ExecuteInProcessResult:
    store_dir = store.write(tmp_path / "store")
    settings = Settings(
        source=f"jsonl:{store_dir}",
        data_dir=tmp_path / "data",
        segments_dir=segment_defs(tmp_path / "defs"),
        batch_size=batch_size,
    )
    return run_nightly_job(settings, resources=resources, as_of=AS_OF, dry_run=dry_run)


def export_figures(result: dg.ExecuteInProcessResult) -> dict:
    event = next(
        e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(["exports", "buyers"])
    )
    return {k: v.value for k, v in event.event_specific_data.materialization.metadata.items()}


def test_file_gateway_writes_the_eligible_audience_and_reruns_send_nothing(tmp_path: Path) -> None:
    first = run(tmp_path, shop())
    assert first.success
    figures = export_figures(first)
    assert (figures["members"], figures["eligible"], figures["added"]) == (10, 8, 8)
    assert (figures["excluded_duplicate"], figures["excluded_bad_phone"]) == (1, 1)
    with open(tmp_path / "data" / "exports" / "buyers" / f"{AS_OF}.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["customer_id"] for r in rows] == [str(n) for n in range(1, 9)]
    assert rows[0]["phone"] == "+393470000001" and rows[0]["amount_spent"] == "20.0000"
    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as con:
        assert con.sql("select count(*) from audience.sync_state").fetchall() == [(8,)]
        assert con.sql("select count(*) from audience.changes where action = 'add'").fetchall() == [(8,)]

    again = export_figures(run(tmp_path, shop()))
    assert (again["added"], again["removed"], again["unchanged"]) == (0, 0, 8)


def test_dry_run_reports_the_diff_the_real_run_then_sends_and_changes_nothing(tmp_path: Path) -> None:
    assert run(tmp_path, shop()).success
    live = (tmp_path / "data" / "warehouse.duckdb").read_bytes()
    exports = sorted((p.name, p.read_bytes()) for p in (tmp_path / "data" / "exports").rglob("*") if p.is_file())

    dry = run(tmp_path, shop(unsubscribed=(2, 3)), dry_run=True)
    assert dry.success
    preview = export_figures(dry)
    assert (preview["added"], preview["removed"], preview["dry_run"]) == (0, 2, True)
    assert sorted(r["customer_id"] for r in preview["sample_removes"]) == [2, 3]
    assert "+39347" not in str(preview)  # customer ids, never numbers, in the event log
    assert (tmp_path / "data" / "warehouse.duckdb").read_bytes() == live
    assert (
        sorted((p.name, p.read_bytes()) for p in (tmp_path / "data" / "exports").rglob("*") if p.is_file()) == exports
    )

    real = export_figures(run(tmp_path, shop(unsubscribed=(2, 3))))
    assert (real["added"], real["removed"]) == (preview["added"], preview["removed"])


def test_http_gateway_converges_through_faults(tmp_path: Path) -> None:
    with GatewayEmulator(TOKEN, faults=Faults(script=["ok", "429", "500", "drop", "ok"])) as emulator:
        gateway = HttpGateway(url=emulator.url, token=TOKEN, backoff_seconds=0.01, max_backoff_seconds=0.05)
        assert run(tmp_path, shop(), gateway=gateway).success
        assert sorted(emulator.members("buyers")) == [f"+39347{n:07d}" for n in range(1, 9)]
        assert run(tmp_path, shop(unsubscribed=(1,)), gateway=gateway).success
        assert sorted(emulator.members("buyers")) == [f"+39347{n:07d}" for n in range(2, 9)]
        assert max(emulator.adds_of("buyers").values()) == 1


def test_a_request_carries_at_most_the_batch_size_setting(tmp_path: Path) -> None:
    with GatewayEmulator(TOKEN, max_batch=5) as emulator:
        gateway = HttpGateway(url=emulator.url, token=TOKEN, backoff_seconds=0.01)
        refused = run(tmp_path, shop(), gateway=gateway)  # 8 adds: one batch under the default of 500
        assert not refused.success and emulator.members("buyers") == {}
        message = next(e for e in refused.all_events if e.is_step_failure).event_specific_data.error.message
        assert "refused it with 413: 8 numbers in one request; at most 5" in message
        assert "lower SMSSEG_BATCH_SIZE" in message
        posts = emulator.received["POST"]
        assert export_figures(run(tmp_path, shop(), gateway=gateway, batch_size=3))["batches"] == 3
        assert emulator.received["POST"] - posts == 3  # 3 + 3 + 2
        assert sorted(emulator.members("buyers")) == [f"+39347{n:07d}" for n in range(1, 9)]


def test_a_redacted_customer_leaves_every_audience_and_the_ledger_forgets_the_number(tmp_path: Path) -> None:
    from tests.fixtures.stores import redaction

    with GatewayEmulator(TOKEN) as emulator:
        gateway = HttpGateway(url=emulator.url, token=TOKEN, backoff_seconds=0.01)
        assert run(tmp_path, shop(), gateway=gateway).success
        assert "+393470000003" in emulator.members("buyers")
        redacted = shop()
        redacted.redactions.append(redaction(3))
        assert export_figures(run(tmp_path, redacted, gateway=gateway))["removed"] == 1
        assert "+393470000003" not in emulator.members("buyers")
    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as con:
        ledger = con.sql(
            "select action, phone from audience.changes where customer_id = 3 order by changed_at"
        ).fetchall()
        assert ledger == [("add", None), ("remove", None)]
        assert con.sql("select count(*) from audience.members where customer_id = 3").fetchall() == [(0,)]
    with duckdb.connect(str(tmp_path / "data" / "state.duckdb"), read_only=True) as state:
        assert state.sql("select count(*) from phone_cache where phone = '+393470000003'").fetchall() == [(0,)]
