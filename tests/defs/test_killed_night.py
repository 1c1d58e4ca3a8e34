"""`smsseg run` killed at a chosen step (SIGKILL, SIGTERM), then rerun plainly: it finishes and converges.

Each run is the real command in a subprocess, syncing over HTTP to the gateway emulator. To land a
SIGKILL inside a step, the child wraps one function of that step so that, after it has done its
work, it says so on stderr and waits to be killed: the step has started and written, Dagster has
not recorded its end, and (for the warehouse steps) it holds the duckdb pool slot. The export is
killed between batches by watching the emulator, as in tests/audience/test_kill.py. While the run
paused in staging is alive, a second run is refused at once rather than wait for its slot.
"""

import datetime as dt
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from pipeline.audience.emulator import Faults, GatewayEmulator
from pipeline.defs.runs import PID_TAG, held_pools
from pipeline.settings import PROJECT_DIR
from tests.fixtures.processes import stop_process_group
from tests.fixtures.stores import Store, customer, order
from tests.oracle import Oracle

AS_OF = dt.date(2026, 10, 31)
TOKEN = "gw-token-5c2e8a41"
SEGMENT = "buyers"
CUSTOMERS = 300
BATCH = 5  # numbers a gateway request carries: ~200 eligible make two groups of batches and more
PAUSED = "smsseg-test: paused in the step"
RUN_TIMEOUT = 60  # seconds any one run may take; a run waiting for a dead run's pool slot never ends

# The real CLI, with one function wrapped to pause after it ran when its arguments match.
CHILD = f"""
import importlib, sys, threading
from pipeline.cli import main
module, name, match = sys.argv[1:4]
target = importlib.import_module(module)
original = getattr(target, name)
def paused(*args, **kwargs):
    result = original(*args, **kwargs)
    if match in repr(args):
        print({PAUSED!r}, file=sys.stderr, flush=True)
        threading.Event().wait()  # until the test kills this process
    return result
setattr(target, name, paused)
sys.exit(main(sys.argv[4:]))
"""

KILL_POINTS = {  # asset -> (its step, the module and function making it, what its arguments hold)
    "raw__customers": ("extract", "pipeline.defs.extract", "ingest_file", "customers.jsonl"),
    "staging__stg_customers": ("models", "pipeline.defs.warehouse", "run_model", "name='stg_customers'"),
    "marts__customers": ("models", "pipeline.defs.warehouse", "run_model", "schema='marts', name='customers'"),
    "segments__buyers": ("segments", "pipeline.defs.segments", "record_membership", f"'{SEGMENT}'"),
    "warehouse": ("warehouse", "pipeline.defs.warehouse", "copy_history", ""),  # the publish, before the swap
}


def shop() -> Store:
    """Buyers and not, subscribed and not, valid numbers, a bad one, shared ones."""

    def phone(n: int) -> str:
        if n % 11 == 0:
            return "12345"
        return f"+39347{(n - 1 if n % 13 == 0 else n):07d}"  # every 13th shares the number before it

    return Store(
        customers=[
            customer(n, phone=phone(n), sms_state="UNSUBSCRIBED" if n % 7 == 0 else "SUBSCRIBED")
            for n in range(1, CUSTOMERS + 1)
        ],
        orders=[order(1000 + n, n, total="20.00") for n in range(1, CUSTOMERS + 1) if n % 5 != 0],
    )


def eligible_phones(store_dir: Path) -> set[str]:
    """The oracle's answer: buyers who consent, with a valid number (one recipient per number)."""
    customers = Oracle(store_dir, AS_OF).customers
    return set(
        customers.filter(
            (pl.col("number_of_orders") >= 1)
            & (pl.col("sms_subscription_status") == "SUBSCRIBED")
            & pl.col("phone_e164").is_not_null()
        )["phone_e164"]
    )


class Night:
    """A data directory, its store and segment definitions, and the `smsseg run` command line for it."""

    def __init__(self, tmp_path: Path, gateway: GatewayEmulator) -> None:
        self.store = shop().write(tmp_path / "store")
        segments = tmp_path / "segments"
        segments.mkdir()
        (segments / f"{SEGMENT}.yaml").write_text(
            f"name: {SEGMENT}\nquery: number_of_orders >= 1\nsms:\n  export: true\n"
        )
        self.home = tmp_path / "dagster"
        self.args = [
            "run",
            "--source",
            f"jsonl:{self.store}",
            "--data-dir",
            str(tmp_path / "data"),
            "--segments-dir",
            str(segments),
            "--as-of",
            AS_OF.isoformat(),
            "--gateway",
            "http",
        ]
        self.env = {
            **os.environ,
            "DAGSTER_HOME": str(self.home),
            "SMS_GATEWAY_URL": gateway.url,
            "SMS_GATEWAY_TOKEN": TOKEN,
            "SMSSEG_BATCH_SIZE": str(BATCH),
        }
        self.data = tmp_path / "data"

    def start(self, *pause_at: str) -> subprocess.Popen:
        command = ["-c", CHILD, *pause_at, *self.args] if pause_at else ["-m", "pipeline.cli", *self.args]
        return subprocess.Popen(
            [sys.executable, *command],
            env=self.env,
            cwd=PROJECT_DIR,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )

    def run(self) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "pipeline.cli", *self.args],
            env=self.env,
            cwd=PROJECT_DIR,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(str(self.home))


@pytest.fixture
def gateway() -> Iterator[GatewayEmulator]:
    with GatewayEmulator(TOKEN) as emulator:
        yield emulator


def wait_for_pause(child: subprocess.Popen) -> None:
    """Reads the child's stderr until it says it paused (bounded); its log lines are kept for the message."""
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=lambda: [*map(lines.put, child.stderr), lines.put(None)], daemon=True).start()
    seen, deadline = [], time.monotonic() + RUN_TIMEOUT
    while (line := lines.get(timeout=max(0.0, deadline - time.monotonic()))) is not None:
        if line.strip() == PAUSED:
            return
        seen.append(line)
    raise AssertionError(f"the run ended before the kill point: {child.wait()}\n{''.join(seen[-20:])}")


def wait_for_posts(child: subprocess.Popen, gateway: GatewayEmulator, posts: int) -> None:
    deadline = time.monotonic() + RUN_TIMEOUT
    while gateway.received["POST"] < posts and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert child.poll() is None and gateway.received["POST"] >= posts, "the export ended before the kill"


def the_run_of(night: Night, child: subprocess.Popen) -> dg.DagsterRun:
    with night.instance() as instance:
        [run] = [r for r in instance.get_runs() if r.tags.get(PID_TAG) == str(child.pid)]
    return run


def assert_converged(night: Night, gateway: GatewayEmulator) -> None:
    eligible = eligible_phones(night.store)
    assert len(eligible) > 100
    assert set(gateway.members(SEGMENT)) == eligible
    assert set(gateway.adds_of(SEGMENT).values()) == {1}, "a number was added twice"
    with duckdb.connect(str(night.data / "warehouse.duckdb"), read_only=True) as con:
        assert con.sql("select count(*) from marts.customers").fetchall() == [(CUSTOMERS,)]
    with night.instance() as instance:
        assert held_pools(instance) == {}, "a pool slot is still held"


def assert_refused_beside(night: Night, child: subprocess.Popen) -> None:
    going = the_run_of(night, child)
    started = time.monotonic()
    second = night.run()
    took = time.monotonic() - started
    assert second.returncode == 1 and took < 30, second.stdout + second.stderr
    assert (
        f"not started: run {going.run_id} is STARTED, holding the duckdb pool slot, in `smsseg run` pid {child.pid} on "
    ) in second.stdout
    assert f"Wait for it to end, or stop it (`kill {child.pid}`" in second.stdout


@pytest.mark.parametrize("step", [*KILL_POINTS, "exports__buyers"])
def test_a_run_killed_in_a_step_is_recovered_and_the_rerun_converges(tmp_path: Path, gateway, step: str) -> None:
    night = Night(tmp_path, gateway)
    if step == "exports__buyers":  # slow replies, so that the kill lands between batches
        gateway.set_faults(Faults(slow_seconds=0.02))
        child = night.start()
    else:
        child = night.start(*KILL_POINTS[step][1:])
    try:
        if step == "exports__buyers":
            wait_for_posts(child, gateway, posts=25)  # into the second group of 20 batches
        else:
            wait_for_pause(child)
        if step == "staging__stg_customers":  # alive and holding the slot: a second run does not wait for it
            assert_refused_beside(night, child)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        stop_process_group(child)
    killed = the_run_of(night, child)
    assert killed.status == dg.DagsterRunStatus.STARTED
    sent, eligible = len(gateway.members(SEGMENT)), len(eligible_phones(night.store))
    if step == "exports__buyers":
        assert 0 < sent < eligible, "killed mid-export"
    else:  # the publish comes after the exports
        assert sent == (eligible if step == "warehouse" else 0)
    assert not (night.data / "warehouse.duckdb").exists(), "killed before the first publish"
    gateway.set_faults(Faults())

    rerun = night.run()

    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    recovered = next(line for line in rerun.stdout.splitlines() if line.startswith("recovered run"))
    assert f"recovered run {killed.run_id}: its process (pid {child.pid} on " in recovered
    assert f"died in {KILL_POINTS[step][0] if step in KILL_POINTS else step}; marked failed, " in recovered
    holds_a_slot = step != "raw__customers"  # extraction is outside the duckdb pool
    assert recovered.endswith("its duckdb pool slot freed" if holds_a_slot else "it held no pool slot")
    assert the_run_of(night, child).status == dg.DagsterRunStatus.FAILURE
    assert_converged(night, gateway)


def test_sigterm_stops_a_run_cleanly_and_the_next_one_converges(tmp_path: Path, gateway) -> None:
    night = Night(tmp_path, gateway)
    gateway.set_faults(Faults(slow_seconds=0.02))
    child = night.start()
    try:
        wait_for_posts(child, gateway, posts=25)
        child.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        out, err = child.communicate(timeout=10)
        took = time.monotonic() - stopped
    finally:
        stop_process_group(child)
    assert child.returncode != 0 and took < 10, (child.returncode, took, out, err)
    assert "interrupted" in out, out
    run = the_run_of(night, child)
    assert run.status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)
    with night.instance() as instance:
        assert held_pools(instance) == {}, "the stopped run still holds its pool slot"
    with duckdb.connect(str(night.data / "state.duckdb")) as state:  # whole, and writable
        assert state.execute("select count(*) from audience_sync_state").fetchall()[0][0] > 0
    gateway.set_faults(Faults())

    rerun = night.run()

    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "recovered run" not in rerun.stdout, "a run stopped by SIGTERM ends itself"
    assert_converged(night, gateway)
