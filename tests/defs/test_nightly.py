"""The nightly job through the real Dagster machinery: the job, the schedule, the CLI, the swap."""

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipeline.definitions import NIGHTLY, build_definitions
from pipeline.settings import PROJECT_DIR, Settings
from tests.fixtures.nightly import run_nightly_job
from tests.fixtures.stores import Store, customer, order

AS_OF = dt.date(2026, 10, 31)


def small_store(n_customers: int = 3) -> Store:
    return Store(
        customers=[customer(n) for n in range(1, n_customers + 1)],
        orders=[order(100 + n, n, total=f"{n}.50") for n in range(1, n_customers + 1)],
    )


def run_nightly(
    data_dir: Path, store_dir: Path, as_of: dt.date | None = AS_OF, segments_dir: Path | None = None
) -> dg.ExecuteInProcessResult:
    settings = Settings(
        source=f"jsonl:{store_dir}", data_dir=data_dir, segments_dir=segments_dir or data_dir / "no-segments"
    )
    return run_nightly_job(settings, **({"as_of": as_of} if as_of else {}))


def customers_in(path: Path) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.sql("select customer_id, amount_spent, as_of from marts.customers order by 1").fetchall()


def test_nightly_builds_and_publishes_as_of_the_run_config(tmp_path: Path) -> None:
    store = small_store().write(tmp_path / "store")
    result = run_nightly(tmp_path / "data", store)
    assert result.success
    rows = customers_in(tmp_path / "data" / "warehouse.duckdb")
    assert [(r[0], str(r[1]), r[2]) for r in rows] == [(1, "1.5000", AS_OF), (2, "2.5000", AS_OF), (3, "3.5000", AS_OF)]
    published = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey("warehouse")]
    assert published[0].event_specific_data.materialization.metadata["customers"].value == 3
    # the run held the build warehouse open across its steps, and let go of it when it ended
    with duckdb.connect(str(tmp_path / "data" / "build" / "warehouse.duckdb"), read_only=True) as build:
        assert build.execute("select count(*) from marts.customers").fetchall() == [(3,)]


def test_without_as_of_the_run_is_evaluated_today_in_the_shop_time_zone(tmp_path: Path) -> None:
    store = small_store().write(tmp_path / "store")
    assert run_nightly(tmp_path / "data", store, as_of=None).success
    from zoneinfo import ZoneInfo

    today = dt.datetime.now(ZoneInfo("Europe/Rome")).date()
    assert {r[2] for r in customers_in(tmp_path / "data" / "warehouse.duckdb")} == {today}


def not_json(file: str):
    return lambda d: (d / file).write_text("{not json\n")


def atlantis(d: Path) -> None:
    (d / "shop.jsonl").write_text('{"ianaTimezone": "Europe/Atlantis"}\n')


@pytest.mark.parametrize(
    ("broken", "messages"),
    [
        ([not_json("orders.jsonl")], ["orders.jsonl:1: not valid JSON"]),
        ([atlantis], ["ianaTimezone 'Europe/Atlantis' is not an IANA time zone"]),
        # every broken file named at once, after the others were extracted
        ([not_json("orders.jsonl"), atlantis], ["orders.jsonl:1: not valid JSON", "is not an IANA time zone"]),
        # customers.jsonl erases what the redactions say: without them it is not extracted at all
        (
            [not_json("redactions.jsonl")],
            ["redactions.jsonl:1: not valid JSON", "customers.jsonl: not extracted, as the redactions"],
        ),
    ],
)
def test_broken_input_fails_and_the_previous_warehouse_survives(tmp_path: Path, broken, messages) -> None:
    store = small_store().write(tmp_path / "store")
    assert run_nightly(tmp_path / "data", store).success
    live = tmp_path / "data" / "warehouse.duckdb"
    before = live.read_bytes()

    small_store(5).write(store)
    for break_store in broken:
        break_store(store)
    result = run_nightly(tmp_path / "data", store)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_key == "extract"
    assert all(message in failure.event_specific_data.user_failure_data.description for message in messages)
    extracted = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert "products" in extracted  # the readable files were extracted all the same
    assert ("customers" in extracted) == ("redactions.jsonl:1: not valid JSON" not in messages)
    assert live.read_bytes() == before
    assert len(customers_in(live)) == 3
    assert any((tmp_path / "data" / "raw" / "customers").glob("*.parquet"))
    with duckdb.connect(str(live), read_only=True) as con:  # not the batch the failed run extracted
        assert con.sql("select count(*) from raw.customers").fetchall() == [(3,)]


def test_a_reader_holding_the_warehouse_keeps_its_snapshot(tmp_path: Path) -> None:
    store = small_store(3).write(tmp_path / "store")
    assert run_nightly(tmp_path / "data", store).success
    live = tmp_path / "data" / "warehouse.duckdb"
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import duckdb, sys\n"
                "con = duckdb.connect(sys.argv[1], read_only=True)\n"
                "count = lambda: con.sql('select count(*) from marts.customers').fetchall()[0][0]\n"
                "print(count(), flush=True)\n"
                "sys.stdin.readline()\n"
                "print(count(), flush=True)\n"
            ),
            str(live),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().strip() == "3"
        small_store(7).write(store)
        assert run_nightly(tmp_path / "data", store).success  # the reader does not block the run
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == "3"  # and still sees the snapshot it opened
    finally:
        reader.kill()
        reader.wait(timeout=10)
    assert len(customers_in(live)) == 7  # a new reader sees the new warehouse


def test_schedule_runs_at_two_in_the_shop_time_zone_as_of_that_day(tmp_path: Path) -> None:
    store = small_store().write(tmp_path / "store")
    assert run_nightly(tmp_path / "data", store).success  # the shop's time zone is known from now on
    defs = build_definitions(
        Settings(source=f"jsonl:{store}", data_dir=tmp_path / "data", segments_dir=tmp_path / "none")
    )
    schedule = defs.resolve_schedule_def("nightly_at_2am")
    assert schedule.cron_schedule == "0 2 * * *" and schedule.execution_timezone == "Europe/Rome"
    when = dt.datetime(2026, 11, 2, 2, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=when, repository_def=defs.get_repository_def()
        )
        request = schedule.evaluate_tick(context).run_requests[0]
    assert request.partition_key == "2026-11-02"
    assert request.job_name in (None, NIGHTLY)


def test_definitions_validate_with_the_dagster_cli(tmp_path: Path) -> None:
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "SMSSEG_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [Path(sys.executable).parent / "dagster", "definitions", "validate"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "validation successful" in (done.stdout + done.stderr).lower()


def test_cli_run_prints_a_summary_and_fails_naming_the_asset(tmp_path: Path) -> None:
    store = small_store().write(tmp_path / "store")
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster"), "COLUMNS": "80"}
    smsseg = [
        Path(sys.executable).parent / "smsseg",
        "run",
        "--source",
        f"jsonl:{store}",
        "--data-dir",
        str(tmp_path / "data"),
        "--as-of",
        "2026-10-31",
    ]
    done = subprocess.run(smsseg, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "customers 3, counted orders 3" in done.stdout and "succeeded" in done.stdout
    assert "evaluated as of 2026-10-31 (live" in done.stdout
    # a terminal of 80 columns reads the summary whole: no line wider, no name cut short
    assert max(len(line) for line in done.stdout.splitlines() if "│" in line) <= 80
    assert "│ abandoned_checkout_1d " in done.stdout and "│ winback_not_recent_clickers " in done.stdout
    # not a terminal (a pipe here, cron's log in life): a line per step rather than a bar nobody sees
    steps = [line for line in done.stdout.splitlines() if re.match(r"\[ ?\d+/\d+\] ", line)]
    assert steps[-1].startswith(f"[{len(steps)}/{len(steps)}] warehouse done ")
    assert any(re.fullmatch(r"\[ ?\d+/\d+\] marts/customers done \d+\.\ds", line) for line in steps)

    (store / "customers.jsonl").write_text(json.dumps({"id": "oops"}) + "\n")
    done = subprocess.run(smsseg, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert "failed: extract: " in done.stdout and "customers.jsonl:1: id is 'oops'" in done.stdout
    # the run shows up in the shared instance, as in the UI
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster")) as instance:
        assert len(instance.get_runs()) == 2


def test_cli_rejects_a_bad_setting_naming_it(tmp_path: Path) -> None:
    smsseg = [Path(sys.executable).parent / "smsseg", "run", "--as-of", "31/10/2026", "--data-dir", str(tmp_path)]
    done = subprocess.run(smsseg, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "as-of '31/10/2026' (--as-of or SMSSEG_AS_OF)" in done.stdout
    done = subprocess.run(
        [*smsseg[:2], "--source", "ftp://x", "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and "source 'ftp://x' (--source or SMSSEG_SOURCE)" in done.stdout
    done = subprocess.run(
        smsseg[:2], env={**os.environ, "SMSSEG_MEMORY_LIMIT": "lots"}, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and "SMSSEG_MEMORY_LIMIT 'lots'" in done.stdout and "e.g. 1GB" in done.stdout


def test_a_run_out_of_its_memory_bound_names_the_setting_and_keeps_the_warehouse(tmp_path: Path) -> None:
    store = small_store().write(tmp_path / "store")
    assert run_nightly(tmp_path / "data", store).success
    before = customers_in(tmp_path / "data" / "warehouse.duckdb")
    settings = Settings(
        source=f"jsonl:{store}", data_dir=tmp_path / "data", segments_dir=tmp_path / "no-segments", memory_limit="1MB"
    )
    result = run_nightly_job(settings, as_of=AS_OF + dt.timedelta(days=1))
    assert not result.success
    failures = [e.event_specific_data.error.message for e in result.all_events if e.is_step_failure]
    assert failures and all("ran out of memory within SMSSEG_MEMORY_LIMIT=1MB" in f for f in failures)
    assert customers_in(tmp_path / "data" / "warehouse.duckdb") == before


def test_a_redaction_erases_pii_from_raw_and_the_warehouse(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from tests.fixtures.stores import redaction

    store = small_store(3)
    assert run_nightly(tmp_path / "data", store.write(tmp_path / "store")).success
    store.redactions.append(redaction(2))
    assert run_nightly(tmp_path / "data", store.write(tmp_path / "store")).success
    raw = [
        row
        for f in (tmp_path / "data" / "raw" / "customers").glob("*.parquet")
        for row in pq.read_table(f).to_pylist()
        if row["id"] == "gid://shopify/Customer/2"
    ]
    assert raw and all(r["email"] is None and r["phone"] is None and r["first_name"] is None for r in raw)
    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as con:
        assert con.sql(
            "select email, phone, sms_subscription_status, amount_spent from marts.customers where customer_id = 2"
        ).fetchall()[0][:3] == (None, None, "REDACTED")


def test_an_analyst_who_wrote_to_the_warehouse_does_not_stop_the_next_night(tmp_path: Path) -> None:
    store = small_store(3).write(tmp_path / "store")
    assert run_nightly(tmp_path / "data", store).success
    live = tmp_path / "data" / "warehouse.duckdb"
    writer = subprocess.Popen(  # read-write, against the advice of docs/analysts.md, and writing
        [
            sys.executable,
            "-c",
            "import duckdb, sys\n"
            "con = duckdb.connect(sys.argv[1]); con.execute('create table scratch as select 1 as x')\n"
            "print('wrote', flush=True); sys.stdin.readline()",
            str(live),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "wrote"
        small_store(5).write(store)
        assert run_nightly(tmp_path / "data", store).success
        assert len(customers_in(live)) == 5  # a new reader opens the new night
    finally:
        writer.kill()
        writer.wait(timeout=10)


def test_a_bad_setting_fails_the_code_location_naming_it_not_the_import(tmp_path: Path) -> None:
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "SMSSEG_SOURCE": "ftp://x"}
    imported = subprocess.run(
        [sys.executable, "-c", "import pipeline.fleet.location"], env=env, capture_output=True, text=True, timeout=120
    )
    assert imported.returncode == 0, imported.stderr
    done = subprocess.run(
        [Path(sys.executable).parent / "dagster", "definitions", "validate"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode != 0 and "source 'ftp://x' (--source or SMSSEG_SOURCE)" in done.stdout + done.stderr
