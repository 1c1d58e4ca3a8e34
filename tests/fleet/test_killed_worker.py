"""A worker killed mid-night: Dask runs its shop again on another worker, and the shop converges."""

import signal
import threading
import time

import dagster as dg

from pipeline.cli import main
from tests.fleet.conftest import DAY, exported, memberships, run_alone, write_shops


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
