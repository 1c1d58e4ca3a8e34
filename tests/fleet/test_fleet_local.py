"""Many shops without a cluster to start: the local cluster's cap, shop_night's partitions, the schedule."""

import datetime as dt

import dagster as dg

from pipeline.cli import main
from pipeline.fleet.definitions import SHOP_NIGHT, build_fleet_definitions, local_hour
from pipeline.fleet.night import instance_home
from pipeline.fleet.shops import load_shops
from pipeline.settings import Settings
from tests.fleet.conftest import DAY, write_shops


def test_a_local_cluster_of_one_worker_runs_one_shop_at_a_time(tmp_path, monkeypatch) -> None:
    """SMSSEG_WORKERS caps the shops running at once: with one, no two shops' nights overlap."""
    monkeypatch.delenv("SMSSEG_DASK_SCHEDULER", raising=False)
    monkeypatch.setenv("SMSSEG_WORKERS", "1")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "data" / "dagster"))
    shops_file = write_shops(tmp_path, {"rome": (10, 1), "paris": (10, 2)})

    assert main(["run", "--shops", str(shops_file), "--data-dir", str(tmp_path / "data"), "--as-of", str(DAY)]) == 0

    nights = []
    for name in ("rome", "paris"):
        with dg.DagsterInstance.from_config(str(tmp_path / "data" / "shops" / name / "dagster")) as instance:
            (record,) = instance.get_run_records()
            nights.append((record.start_time, record.end_time))
    (first, first_end), (second, second_end) = sorted(nights)
    assert first_end <= second, f"two shops ran at once on one worker: {nights}"


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
