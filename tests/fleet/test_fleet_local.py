"""Many shops without a cluster: shop_night's partitions and one shop's rerun, the schedule, the code
location. (A local cluster's cap on the shops at once is tested with the many-shops bench,
tests/test_bench_shops.py.)"""

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from pipeline.fleet.definitions import SHOP_NIGHT, build_fleet_definitions, local_hour
from pipeline.fleet.night import instance_home
from pipeline.fleet.shops import load_shops
from pipeline.settings import PROJECT_DIR, Settings
from tests.fleet.conftest import DAY, write_shops


def test_shop_night_is_partitioned_by_the_file_s_shops_and_runs_one_shop_s_day(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "data" / "dagster"))
    shops_file = write_shops(tmp_path, {"rome": (10, 1), "paris": (10, 2)})
    fleet = Settings(data_dir=tmp_path / "data", first_day=DAY - dt.timedelta(days=1))
    (shop_night,) = build_fleet_definitions(shops_file, fleet).assets
    dimensions = {d.name: d.partitions_def for d in shop_night.partitions_def.partitions_defs}
    assert dimensions["shop"].get_partition_keys() == ["rome", "paris"]
    assert dimensions["day"].get_partition_keys()[:2] == [str(DAY - dt.timedelta(days=1)), str(DAY)]
    shops_file.write_text(shops_file.read_text() + "  - name: oslo\n    source: demo\n")
    (grown,) = build_fleet_definitions(shops_file, fleet).assets  # adding a shop adds its partitions
    assert grown.partitions_def.partitions_defs[1].partitions_def.get_partition_keys() == ["rome", "paris", "oslo"]

    # a rerun of one shop's day, as the UI launches it: that shop's night alone
    with dg.DagsterInstance.from_config(str(instance_home(tmp_path / "data"))) as instance:
        assert dg.materialize([shop_night], partition_key=f"{DAY}|paris", instance=instance).success
        assert instance.get_materialized_partitions(SHOP_NIGHT) == {f"{DAY}|paris"}
    assert (tmp_path / "data" / "shops" / "paris" / "warehouse.duckdb").exists()
    assert not (tmp_path / "data" / "shops" / "rome").exists()


def test_the_hourly_schedule_runs_only_the_shops_at_their_2am(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "data" / "dagster"))
    shops_file = write_shops(tmp_path, {"rome": (10, 1)})
    fleet = Settings(data_dir=tmp_path / "data")
    defs = build_fleet_definitions(shops_file, fleet)
    schedule = defs.resolve_schedule_def("shops_nightly_at_2am_each")
    (request,) = schedule.evaluate_tick(dg.build_schedule_context()).run_requests
    assert request.run_config["ops"]["shop_rome"]["config"] == {"due_hour": 2}
    other_hour = (local_hour(load_shops(shops_file)[0], fleet) + 12) % 24
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("shops_nightly").execute_in_process(
            run_config={"ops": {"shop_rome": {"config": {"due_hour": other_hour}}}}, instance=instance
        )
    assert result.success and not result.get_asset_materialization_events()
    assert not (tmp_path / "data" / "shops" / "rome").exists()  # not its hour: its night did not start


def test_the_code_location_serves_the_shops_to_dagster_s_own_cli(tmp_path) -> None:
    """What `smsseg ui --shops` serves (the code location in pyproject's [tool.dagster]), loaded by Dagster's
    own loader in a process of its own: one shop's day materialised from Dagster's command line."""
    shops_file = write_shops(tmp_path, {"rome": (10, 1), "paris": (10, 2)})
    home = instance_home(tmp_path / "data")  # as `smsseg ui` writes it
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SMSSEG_")},
        "SMSSEG_SHOPS": str(shops_file),
        "SMSSEG_DATA_DIR": str(tmp_path / "data"),
        "SMSSEG_FIRST_DAY": DAY.isoformat(),
        "DAGSTER_HOME": str(home),
    }
    done = subprocess.run(
        [Path(sys.executable).parent / "dagster", "asset", "materialize", "-m", "pipeline.fleet.location"]
        + ["--select", "shop_night", "--partition", f"{DAY}|rome"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_materialized_partitions(SHOP_NIGHT) == {f"{DAY}|rome"}
    assert (tmp_path / "data" / "shops" / "rome" / "warehouse.duckdb").exists()
    assert not (tmp_path / "data" / "shops" / "paris").exists()
