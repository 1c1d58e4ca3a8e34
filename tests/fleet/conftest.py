"""For the many-shops tests: a real Dask cluster (a scheduler and two workers, each its own process on
127.0.0.1), generated shops, and what a shop's night leaves to compare."""

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest
from distributed import Client

from pipeline.cli import main
from pipeline.store.demo import generate_store

DASK = Path(sys.executable).parent / "dask"
START_TIMEOUT_S = 90


@dataclass
class Cluster:
    address: str
    scheduler_file: Path
    processes: list[subprocess.Popen]
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)  # by the name the scheduler knows

    def client(self) -> Client:
        return Client(self.address, timeout=30)

    def add_worker(self, name: str) -> subprocess.Popen:
        """A worker process that runs one task at a time, as a shop's night wants (it is one DuckDB's work)."""
        worker = subprocess.Popen(
            [DASK, "worker", "--scheduler-file", self.scheduler_file, "--name", name, "--nthreads", "1"]
            + ["--nworkers", "1", "--no-nanny", "--host", "127.0.0.1", "--no-dashboard"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(worker)
        self.workers[name] = worker
        return worker


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """`dask scheduler` and two `dask worker`s, started as an operator would on a machine of the cluster."""
    scheduler_file = tmp_path / "scheduler.json"
    scheduler = subprocess.Popen(
        [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", scheduler_file],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while not scheduler_file.exists() and time.monotonic() < deadline and scheduler.poll() is None:
        time.sleep(0.1)
    assert scheduler_file.exists(), "the Dask scheduler did not start"
    cluster = Cluster(json.loads(scheduler_file.read_text())["address"], scheduler_file, [scheduler])
    try:
        for name in ("worker-a", "worker-b"):
            cluster.add_worker(name)
        with cluster.client() as client:
            client.wait_for_workers(2, timeout=START_TIMEOUT_S)
        yield cluster
    finally:
        for process in reversed(cluster.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in cluster.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


DAY = dt.date(2026, 11, 30)


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
