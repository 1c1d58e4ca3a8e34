"""Asset checks: each fails on a store made to violate it, and a blocking one keeps data from the gateway."""

import dataclasses
import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipeline.cli import print_summary
from pipeline.definitions import NIGHTLY, build_definitions
from pipeline.settings import Settings
from tests.defs.test_export_assets import segment_defs
from tests.fixtures.nightly import run_nightly_job
from tests.fixtures.stores import Store, customer, line, order, redaction, sms_event

AS_OF = dt.date(2026, 10, 31)
STAGING_KEYED = (
    "stg_abandoned_checkouts",
    "stg_customer_addresses",
    "stg_customer_metafields",
    "stg_customers",
    "stg_deletions",
    "stg_orders",
    "stg_phone_numbers",
    "stg_product_collections",
    "stg_products",
    "stg_redactions",
    "stg_shopify_email_events",
    "stg_sms_events",
    "stg_store_credit_accounts",
    "stg_storefront_events",
)


def run(
    tmp_path: Path,
    store: Store,
    *,
    acknowledge: tuple[str, ...] = (),
    threshold: float = 0.5,
    as_of: dt.date = AS_OF,
    dry_run: bool = False,
):
    settings = Settings(
        source=f"jsonl:{store.write(tmp_path / 'store')}",
        data_dir=tmp_path / "data",
        segments_dir=segment_defs(tmp_path / "defs"),
        swing_threshold=threshold,
    )
    return run_nightly_job(settings, as_of=as_of, acknowledge_swings=list(acknowledge), dry_run=dry_run)


def checks(result: dg.ExecuteInProcessResult) -> dict[str, tuple[bool, int | str]]:
    out = {}
    for c in result.get_asset_check_evaluations():
        detail = c.metadata.get("violations") or c.metadata.get("swing")
        out[f"{c.asset_key.to_user_string()}:{c.check_name}"] = (c.passed, detail.value)
    return out


def started(result: dg.ExecuteInProcessResult) -> set[str]:
    return {e.step_key for e in result.all_events if e.is_step_start}


def materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def test_a_clean_store_passes_every_check(tmp_path: Path) -> None:
    result = run(tmp_path, Store(customers=[customer(1)], orders=[order(10, 1), line(1, 10, 5)]))
    assert result.success
    keys = {f"staging/{table}:unique_key": (True, 0) for table in STAGING_KEYED}
    assert checks(result) == {
        "raw/orders:order_known": (True, 0),
        "marts/orders:customer_known": (True, 0),
        "staging/stg_orders:non_negative_total": (True, 0),
        "marts/customers:unique_customer_id": (True, 0),
        "staging/stg_shop:one_row": (True, 0),
        "staging/stg_customer_addresses:one_default": (True, 0),
        **keys,
        "segments/buyers:size_swing": (True, "none"),
    }
    # The raw tables' data tests run together after extraction; every other table's in the models' step,
    # right after the table: no step of their own.
    checked_in = {
        e.step_key
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION and e.step_key != "segments__buyers_size_swing"
    }
    assert checked_in == {"raw__data_tests", "models"}


@contextmanager
def after_a_night(tmp_path: Path) -> Iterator[tuple[dg.DagsterInstance, dg.JobDefinition]]:
    """A clean store's night on an instance in memory, and the nightly job, to run part of it again."""
    store = Store(customers=[customer(1)], orders=[order(10, 1), line(1, 10, 5)])
    with dg.DagsterInstance.ephemeral() as instance:
        settings = Settings(
            source=f"jsonl:{store.write(tmp_path / 'store')}",
            data_dir=tmp_path / "data",
            segments_dir=segment_defs(tmp_path / "defs"),
        )
        assert run_nightly_job(settings, as_of=AS_OF, instance=instance).success
        yield instance, build_definitions(dataclasses.replace(settings, as_of=AS_OF)).resolve_job_def(NIGHTLY)


def test_a_run_of_one_table_runs_only_that_tables_data_tests(tmp_path: Path) -> None:
    """The UI's Materialize of one model runs its own checks, not the rest of its layer's."""
    with after_a_night(tmp_path) as (instance, job):
        rerun = job.execute_in_process(
            partition_key=AS_OF.isoformat(),
            instance=instance,
            asset_selection=[dg.AssetKey(["staging", "stg_orders"])],
        )
    assert rerun.success
    assert checks(rerun) == {
        "staging/stg_orders:non_negative_total": (True, 0),
        "staging/stg_orders:unique_key": (True, 0),
    }


def test_the_uis_execute_checks_runs_a_tables_data_test_on_the_table_the_build_holds(tmp_path: Path) -> None:
    """A check selected without its table (the UI's "Execute checks") runs on the table as it is, and reports."""
    with after_a_night(tmp_path) as (instance, job):
        with duckdb.connect(str(tmp_path / "data" / "build" / "warehouse.duckdb")) as con:
            con.execute("update staging.stg_orders set order_total = -1")  # as a hand edit would
        check = dg.AssetCheckKey(dg.AssetKey(["staging", "stg_orders"]), "non_negative_total")
        rerun = job.get_subset(asset_selection=set(), asset_check_selection={check}).execute_in_process(
            partition_key=AS_OF.isoformat(), instance=instance, raise_on_error=False
        )
    assert checks(rerun) == {"staging/stg_orders:non_negative_total": (False, 1)}
    assert not materialized(rerun)  # the table was not made again


def test_warnings_report_orphans_and_let_the_run_go_on(tmp_path: Path) -> None:
    store = Store(customers=[customer(1)], orders=[order(10, 1), order(11, 77), line(1, 10, 5), line(2, 999, 5)])
    result = run(tmp_path, store)
    assert result.success
    found = checks(result)
    assert found["raw/orders:order_known"] == (False, 1) and found["marts/orders:customer_known"] == (False, 1)
    assert "exports__buyers" in started(result)


def test_a_negative_total_blocks_everything_downstream(tmp_path: Path) -> None:
    store = Store(
        customers=[customer(1), customer(2)], orders=[order(10, 1, total="-5.00", test=True), order(11, 2)]
    )  # even a test order
    result = run(tmp_path, store)
    assert not result.success
    assert checks(result)["staging/stg_orders:non_negative_total"] == (False, 1)
    assert not {"marts/orders", "exports/buyers", "warehouse"} & materialized(result)
    assert "marts/products" in materialized(result)  # not downstream of stg_orders: built all the same
    assert not (tmp_path / "data" / "exports").exists() and not (tmp_path / "data" / "warehouse.duckdb").exists()


def test_duplicate_customers_block_the_export(tmp_path: Path) -> None:
    """A fan-out in marts.customers (here from a corrupted phone cache) must never reach the gateway: the
    staging key test stops it before the mart is built (the mart's own test is in tests/warehouse)."""
    import duckdb

    store = Store(customers=[customer(1), customer(2, phone="+393470000002")], orders=[order(10, 1), order(11, 2)])
    assert run(tmp_path, store).success
    with duckdb.connect(str(tmp_path / "data" / "state.duckdb")) as state:
        state.execute("insert into phone_cache select * from phone_cache where phone = '+393470000002'")
    result = run(tmp_path, store)
    assert checks(result)["staging/stg_phone_numbers:unique_key"] == (False, 1)
    assert not {"marts/customers", "segments/buyers", "exports/buyers", "warehouse"} & materialized(result)


def test_a_size_swing_holds_the_export_until_acknowledged(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    small = Store(
        customers=[customer(n, phone=f"+39347{n:07d}") for n in range(1, 11)],
        orders=[order(100 + n, n) for n in range(1, 3)],
    )
    result = run(tmp_path, small)
    assert result.success  # first run: nothing to compare with
    grown = Store(customers=small.customers, orders=[order(100 + n, n) for n in range(1, 11)])

    next_day = AS_OF + dt.timedelta(days=1)
    held = run(tmp_path, grown, as_of=next_day)
    swing = checks(held)["segments/buyers:size_swing"]
    assert swing[0] is False and "went from 2 to 10 members" in swing[1]
    export = next(
        e for e in held.get_asset_materialization_events() if e.asset_key == dg.AssetKey(["exports", "buyers"])
    ).event_specific_data.materialization
    assert export.metadata["held"].value is True
    assert sorted(p.name for p in (tmp_path / "data" / "exports" / "buyers").glob("*.csv")) == [
        f"{AS_OF}.changes.csv",
        f"{AS_OF}.csv",
    ]  # the first night's only: nothing was sent

    preview = run(tmp_path, grown, as_of=next_day, dry_run=True)  # what acknowledging would send
    export = next(
        e for e in preview.get_asset_materialization_events() if e.asset_key == dg.AssetKey(["exports", "buyers"])
    ).event_specific_data.materialization
    assert (export.metadata["held"].value, export.metadata["added"].value, export.metadata["dry_run"].value) == (
        True,
        8,
        True,
    )
    print_summary(preview)
    shown = capsys.readouterr().out
    assert "dry run buyers: would add 8, update 0, remove 0" in shown and "held by a size swing: --ack-swing" in shown

    acknowledged = run(tmp_path, grown, acknowledge=("buyers",), as_of=next_day)
    assert checks(acknowledged)["segments/buyers:size_swing"][0] is True
    export = next(
        e for e in acknowledged.get_asset_materialization_events() if e.asset_key == dg.AssetKey(["exports", "buyers"])
    ).event_specific_data.materialization
    assert export.metadata["added"].value == 8


def test_a_held_export_still_removes_who_may_not_be_texted(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """An opt-out, an unsubscribe or a redaction never waits for someone to acknowledge a swing."""
    defs = tmp_path / "defs"
    defs.mkdir()
    (defs / "vips.yaml").write_text("name: vips\nquery: customer_tags CONTAINS 'vip'\nsms:\n  export: true\n")
    phones = {n: f"+39347{n:07d}" for n in range(1, 11)}
    first = Store(customers=[customer(n, phone=phones[n], tags=["vip"]) for n in range(1, 11)])
    later = "2026-10-31T12:00:00Z"
    shrunk = Store(
        customers=[
            customer(
                n,
                phone=phones[n],
                tags=["vip"] if n < 5 else [],
                updated=later,
                sms_state="UNSUBSCRIBED" if n in (1, 5) else "SUBSCRIBED",
            )
            for n in range(1, 11)
        ],  # 5..10 leave the segment
        sms_events=[sms_event("347 000 0002", "opted_out", "2026-10-31T09:00:00Z")],
        redactions=[redaction(10)],
    )
    logs: list[str] = []
    for store, as_of in ((first, AS_OF), (shrunk, AS_OF + dt.timedelta(days=1))):
        settings = Settings(
            source=f"jsonl:{store.write(tmp_path / 'store')}", data_dir=tmp_path / "data", segments_dir=defs
        )
        held = run_nightly_job(settings, as_of=as_of, log_lines=logs)
    swing = checks(held)["segments/vips:size_swing"][1]
    assert "went from 10 to 4 members (-60% of its size" in swing
    export = next(
        e for e in held.get_asset_materialization_events() if e.asset_key == dg.AssetKey(["exports", "vips"])
    ).event_specific_data.materialization
    figures = {k: v.value for k, v in export.metadata.items()}
    # 1 and 5 unsubscribed, 2 opted out (written nationally), 10 was redacted; 6..9 only left: held
    assert (figures["held"], figures["removed_despite_hold"], figures["added"]) == (True, 4, 0)
    with duckdb.connect(str(tmp_path / "data" / "state.duckdb"), read_only=True) as con:
        assert con.sql("select customer_id from audience_sync_state order by 1").fetchall() == [
            (n,) for n in (3, 4, 6, 7, 8, 9)
        ]
    audience = (tmp_path / "data" / "exports" / "vips" / f"{as_of}.csv").read_text()
    assert [line.split(",")[1] for line in audience.splitlines()[1:]] == ["3", "4", "6", "7", "8", "9"]
    assert not any("+39347" in line or "347 000" in line for line in logs)
    print_summary(held)
    assert "vips is held by a size swing: sent only 4 removals" in capsys.readouterr().out


def test_raising_the_threshold_releases_the_export(tmp_path: Path) -> None:
    small = Store(customers=[customer(n, phone=f"+39347{n:07d}") for n in range(1, 11)], orders=[order(101, 1)])
    assert run(tmp_path, small).success
    grown = Store(customers=small.customers, orders=[order(100 + n, n) for n in range(1, 3)])
    result = run(tmp_path, grown, threshold=1.5, as_of=AS_OF + dt.timedelta(days=1))
    assert checks(result)["segments/buyers:size_swing"][0] is True
