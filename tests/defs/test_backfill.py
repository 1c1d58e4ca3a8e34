"""The evaluation date is a Dagster partition: a backfill and a UI-style rerun of an earlier day never
touch the live audience.

A live night, then a backfill of an earlier day, then reruns of one segment for each day (as the UI's
Materialize does): the gateway hears from the live night only, the analysts' warehouse stays the live
day's, and the membership history for both days equals the members worked out independently (the
Polars oracle and the segment evaluator) for each day.
"""

import datetime as dt
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipeline.audience.emulator import GatewayEmulator
from pipeline.audience.gateways import HttpGateway
from pipeline.definitions import NIGHTLY, build_definitions
from pipeline.defs.resources import MODE_TAG
from pipeline.defs.segments import segment_key
from pipeline.segments.errors import Source
from pipeline.segments.parser import parse
from pipeline.settings import Settings
from tests.fixtures.nightly import run_nightly_job
from tests.fixtures.stores import Store, customer, order
from tests.oracle import Oracle
from tests.segments.evaluator import Evaluator

BACKFILLED, LIVE = dt.date(2026, 10, 20), dt.date(2026, 10, 28)
TOKEN = "gw-backfill"
SEGMENTS = {  # each one's members differ between the two days
    "repeat": ("number_of_orders >= 2", True),
    "recent": ("last_order_date > -7d", True),
}


def shop() -> Store:
    """Customer n orders on 1 October and again on 10 + 3n October: by the 20th, 1-3 have ordered twice."""
    customers = [customer(n, phone=f"+39347{n:07d}") for n in range(1, 7)]
    orders = [
        o
        for n in range(1, 7)
        for o in (
            order(100 + n, n, processed="2026-10-01T10:00:00Z"),
            order(200 + n, n, processed=f"2026-10-{10 + 3 * n}T10:00:00Z"),
        )
    ]
    return Store(customers=customers, orders=orders)


def expected(store_dir: Path, query: str, day: dt.date) -> set[int]:
    tree, errors = parse(Source.of_query(query))
    assert not errors
    return Evaluator(Oracle(store_dir, day), day).members(tree)


def history(data_dir: Path, segment: str, day: dt.date) -> set[int]:
    with duckdb.connect(str(data_dir / "state.duckdb"), read_only=True) as con:
        rows = con.execute(
            "select customer_id from segment_membership where segment = ? and entered_on <= ? "
            "and (left_on is null or left_on > ?)",
            [segment, day, day],
        ).fetchall()
    return {r[0] for r in rows}


def live_warehouse(data_dir: Path) -> tuple[dt.date, int]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return con.execute("select max(as_of), count(*) from marts.customers").fetchall()[0]


def sizes(result: dg.ExecuteInProcessResult) -> dict[str, int]:
    return {
        e.asset_key.path[-1]: e.event_specific_data.materialization.metadata["size"].value
        for e in result.get_asset_materialization_events()
        if e.asset_key.path[0] == "segments"
    }


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    segments_dir = tmp_path / "defs"
    segments_dir.mkdir()
    for name, (query, export) in SEGMENTS.items():
        export_line = f"sms:\n  export: {str(export).lower()}\n"
        (segments_dir / f"{name}.yaml").write_text(f"name: {name}\nquery: {query}\n{export_line}")
    return Settings(
        source=f"jsonl:{shop().write(tmp_path / 'store')}", data_dir=tmp_path / "data", segments_dir=segments_dir
    )


def test_a_backfill_and_reruns_of_an_earlier_day_leave_the_live_audience_alone(settings: Settings) -> None:
    store_dir = Path(settings.source.removeprefix("jsonl:"))
    want = {
        (name, day): expected(store_dir, query, day)
        for name, (query, _) in SEGMENTS.items()
        for day in (BACKFILLED, LIVE)
    }
    assert (
        want[("repeat", BACKFILLED)] != want[("repeat", LIVE)]
        and want[("recent", BACKFILLED)] != want[("recent", LIVE)]
    )
    with dg.DagsterInstance.ephemeral() as instance, GatewayEmulator(TOKEN) as emulator:
        gateway = HttpGateway(url=emulator.url, token=TOKEN)
        live = run_nightly_job(settings, as_of=LIVE, instance=instance, resources={"gateway": gateway})
        assert live.success and instance.get_run_by_id(live.run_id).tags[MODE_TAG] == "live"
        phones = {name: sorted(f"+39347{n:07d}" for n in want[(name, LIVE)]) for name in SEGMENTS}
        assert {name: sorted(emulator.members(name)) for name in SEGMENTS} == phones
        heard = emulator.snapshot()["received"]
        with duckdb.connect(str(settings.data_dir / "state.duckdb"), read_only=True) as con:
            ledger = con.execute("select * from audience_sync_state order by all").fetchall()
        assert live_warehouse(settings.data_dir) == (LIVE, 6)

        backfill = run_nightly_job(settings, as_of=BACKFILLED, instance=instance, resources={"gateway": gateway})
        assert backfill.success and instance.get_run_by_id(backfill.run_id).tags[MODE_TAG] == "backfill"
        assert sizes(backfill) == {name: len(want[(name, BACKFILLED)]) for name in SEGMENTS}
        # nothing synced, nothing published: the exports and the warehouse have no materialization that day
        assert not [
            e
            for e in backfill.get_asset_materialization_events()
            if e.asset_key.path[0] in ("exports", "retired_exports", "warehouse")
        ]

        # the UI's Materialize of one segment, for each day, with the build left as of the other day
        job = build_definitions(settings, gateway=gateway).resolve_job_def(NIGHTLY)
        for day in (LIVE, BACKFILLED):
            rerun = job.execute_in_process(
                partition_key=day.isoformat(), instance=instance, asset_selection=[segment_key("recent")]
            )
            assert sizes(rerun) == {"recent": len(want[("recent", day)])}

        assert emulator.snapshot()["received"] == heard  # the gateway heard from the live night only
        with duckdb.connect(str(settings.data_dir / "state.duckdb"), read_only=True) as con:
            assert con.execute("select * from audience_sync_state order by all").fetchall() == ledger
        assert live_warehouse(settings.data_dir) == (LIVE, 6)
        for (name, day), members in want.items():
            assert history(settings.data_dir, name, day) == members, (name, day)
        for name in SEGMENTS:  # Dagster keeps each segment's materializations by day
            assert instance.get_materialized_partitions(segment_key(name)) == {str(BACKFILLED), str(LIVE)}


def test_a_later_day_is_live_again_and_its_swing_compares_with_the_day_before(settings: Settings) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        for day in (LIVE, BACKFILLED, LIVE + dt.timedelta(days=1)):
            result = run_nightly_job(settings, as_of=day, instance=instance)
            assert result.success
        assert instance.get_run_by_id(result.run_id).tags[MODE_TAG] == "live"
        event = next(e for e in result.get_asset_materialization_events() if e.asset_key == segment_key("repeat"))
        metadata = event.event_specific_data.materialization.metadata
        assert metadata["previous_size"].value == 6  # the 28th's, not the backfilled 20th's
        assert live_warehouse(settings.data_dir)[0] == LIVE + dt.timedelta(days=1)


def test_a_day_that_has_not_begun_is_refused(settings: Settings, tmp_path: Path) -> None:
    import subprocess
    import sys

    smsseg = Path(sys.executable).parent / "smsseg"
    done = subprocess.run(
        [smsseg, "run", "--as-of", "2999-01-01", "--data-dir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "--as-of 2999-01-01: that day has not begun" in done.stdout


def test_cli_backfill_runs_each_day_and_changes_no_destination(settings: Settings, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster"), "COLUMNS": "100"}
    common = [
        "--source",
        settings.source,
        "--data-dir",
        str(settings.data_dir),
        "--segments-dir",
        str(settings.segments_dir),
    ]
    smsseg = str(Path(sys.executable).parent / "smsseg")
    live = subprocess.run(
        [smsseg, "run", "--as-of", str(LIVE), *common], env=env, capture_output=True, text=True, timeout=300
    )
    assert live.returncode == 0, live.stdout + live.stderr
    exports = sorted(p.name for p in (settings.data_dir / "exports").rglob("*.csv"))
    done = subprocess.run(
        [smsseg, "backfill", "--from", "2026-10-19", "--to", "2026-10-20", *common],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for day in ("2026-10-19", "2026-10-20"):
        assert f"evaluated as of {day} (backfill: {LIVE} has run already" in done.stdout
    assert "backfill 2026-10-19..2026-10-20: 2 of 2 days succeeded" in done.stdout
    assert "not run" not in done.stdout  # skipping the publish is what a backfill does, not a failure
    assert sorted(p.name for p in (settings.data_dir / "exports").rglob("*.csv")) == exports  # nothing exported
    assert live_warehouse(settings.data_dir)[0] == LIVE
    assert history(settings.data_dir, "repeat", dt.date(2026, 10, 19)) == {1, 2, 3}
    wrong = subprocess.run(
        [smsseg, "backfill", "--from", "2026-10-20", "--to", "2026-10-19", *common],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert wrong.returncode == 2 and "--from 2026-10-20 is after --to 2026-10-19" in wrong.stdout
