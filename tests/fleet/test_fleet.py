"""Many shops on a real Dask cluster: each shop ends as it would alone, a broken one fails alone, a killed
worker's shop is run again elsewhere and converges."""

import datetime as dt
import signal
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipeline.cli import main
from pipeline.fleet.definitions import SHOP_NIGHT, build_fleet_definitions, local_hour
from pipeline.fleet.night import instance_home
from pipeline.fleet.shops import load_shops
from pipeline.settings import Settings
from pipeline.store.demo import generate_store
from tests.fleet.conftest import Cluster

DAY = dt.date(2026, 11, 30)
SMSSEG = Path(sys.executable).parent / "smsseg"


def write_shops(tmp_path: Path, shops: dict[str, tuple[int, int]], broken: tuple[str, ...] = ()) -> Path:
    """Demo stores of (customers, seed) each, ending on DAY, and a shops file naming them; `broken` shops get a
    customers.jsonl line that is not JSON."""
    for name, (customers, seed) in shops.items():
        generate_store(tmp_path / "stores" / name, customers=customers, seed=seed, end_day=DAY)
        if name in broken:
            with (tmp_path / "stores" / name / "customers.jsonl").open("a") as f:
                f.write('{"id": "gid://shopify/Customer/1", broken\n')
    shops_file = tmp_path / "shops.yaml"
    shops_file.write_text(
        "shops:\n" + "".join(f"  - name: {name}\n    source: jsonl:stores/{name}\n" for name in shops)
    )
    return shops_file


def memberships(data_dir: Path) -> dict[str, set[int]]:
    """Every segment's members in a shop's live warehouse."""
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        views = con.execute("select view_name from duckdb_views() where schema_name = 'segments'").fetchall()
        return {v: {r[0] for r in con.table(f"segments.{v}").select("customer_id").fetchall()} for (v,) in views}


def exported(data_dir: Path) -> dict[str, str]:
    """What the file gateway holds for the shop: each export file's text, by its path under exports/."""
    root = data_dir / "exports"
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*.csv"))}


def run_alone(tmp_path: Path, name: str) -> Path:
    data_dir = tmp_path / "alone" / name
    assert (
        main(
            [
                "run",
                "--source",
                f"jsonl:{tmp_path / 'stores' / name}",
                "--data-dir",
                str(data_dir),
                "--as-of",
                DAY.isoformat(),
            ]
        )
        == 0
    )
    return data_dir


@pytest.fixture
def fleet_env(tmp_path: Path, cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SMSSEG_DASK_SCHEDULER", cluster.address)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "data" / "dagster"))
    for variable in ("SMSSEG_SOURCE", "SMSSEG_SHOPS", "SMSSEG_GATEWAY", "SMSSEG_AS_OF"):
        monkeypatch.delenv(variable, raising=False)
    return tmp_path / "data"


def test_three_shops_one_broken_the_healthy_ones_as_alone(tmp_path, fleet_env, capfd, monkeypatch) -> None:
    shops_file = write_shops(tmp_path, {"rome": (40, 1), "paris": (30, 2), "oslo": (20, 3)}, broken=("oslo",))

    status = main(["run", "--shops", str(shops_file), "--data-dir", str(fleet_env), "--as-of", DAY.isoformat()])

    out = capfd.readouterr().out
    assert status == 1
    assert "2 of 3 shops succeeded; failed: oslo" in out
    assert "shop oslo failed:" in out and "customers.jsonl:" in out and "not valid JSON" in out
    # nothing of a shop's lies outside its folder; the fleet's own instance is the only other thing written
    assert sorted(p.name for p in fleet_env.iterdir()) == ["dagster", "shops"]
    assert sorted(p.name for p in (fleet_env / "shops").iterdir()) == ["oslo", "paris", "rome"]

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "alone-dagster"))
    for name in ("rome", "paris"):
        alone = run_alone(tmp_path, name)
        in_fleet = fleet_env / "shops" / name
        assert memberships(in_fleet) == memberships(alone), name
        assert any(memberships(alone).values()), "a comparison of empty segments would show nothing"
        assert exported(in_fleet) == exported(alone) and exported(alone), name
    assert not (fleet_env / "shops" / "oslo" / "warehouse.duckdb").exists()  # its night never published

    with dg.DagsterInstance.from_config(str(fleet_env / "dagster")) as instance:
        materialized = instance.get_materialized_partitions(SHOP_NIGHT)
    assert materialized == {f"{DAY}|paris", f"{DAY}|rome"}


def test_a_killed_workers_shop_runs_again_on_another_and_converges(tmp_path, fleet_env, cluster) -> None:
    shops_file = write_shops(tmp_path, {"rome": (600, 1)})
    shop_dir = fleet_env / "shops" / "rome"
    status: list[int] = []
    fleet = threading.Thread(
        target=lambda: status.append(
            main(["run", "--shops", str(shops_file), "--data-dir", str(fleet_env), "--as-of", DAY.isoformat()])
        )
    )
    fleet.start()
    with cluster.client() as client:
        deadline = time.monotonic() + 180
        while not (shop_dir / "build").exists():  # the night is well under way: its warehouse build has begun
            assert time.monotonic() < deadline and fleet.is_alive(), "the shop's night never reached its warehouse"
            time.sleep(0.05)
        busy = [address for address, tasks in client.processing().items() if tasks]
        assert len(busy) == 1, busy
        cluster.workers[client.scheduler_info()["workers"][busy[0]]["name"]].send_signal(signal.SIGKILL)
    fleet.join(timeout=300)
    assert not fleet.is_alive() and status == [0]

    with dg.DagsterInstance.from_config(str(shop_dir / "dagster")) as instance:
        runs = {run.status: run for run in instance.get_runs()}
        assert sorted(s.value for s in runs) == ["FAILURE", "SUCCESS"]
        failure = instance.all_logs(runs[dg.DagsterRunStatus.FAILURE].run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        assert "died in" in failure[0].dagster_event.message  # the second attempt found the dead one and marked it
    alone = run_alone(tmp_path, "rome")
    assert memberships(shop_dir) == memberships(alone) and exported(shop_dir) == exported(alone)


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
