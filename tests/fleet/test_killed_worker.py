"""A worker killed mid-night: Dask runs its shop again on another worker, and the shop converges."""

import signal
import threading
import time

from pipeline.cli import main
from pipeline.defs.runs import LOCK_FILE
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
    assert (shop_dir / LOCK_FILE).read_text() == ""  # the dead worker's lock went with it; the second attempt's ended
    alone = run_alone(tmp_path, "rome")
    assert memberships(shop_dir) == memberships(alone) and exported(shop_dir) == exported(alone)
