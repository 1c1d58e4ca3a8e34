"""A real Dask cluster for the many-shops tests: a scheduler and two workers, each its own process on 127.0.0.1."""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from distributed import Client

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
