"""The lifecycle of the runs `smsseg run` launches: whose process runs them, and what a dead one leaves behind.

A run killed outright (SIGKILL, the OOM killer, a power cut) never reports its end: the instance
still shows it STARTED and the duckdb pool still counts its slot taken, so every later run would
wait for that slot forever. Before a run starts, `recover_dead_runs` finds such runs by the process
identity they were tagged with, marks them failed and frees their slots; `refuse_if_running` then
stops a run from starting beside one that is really still going.

A shop of many keeps no run records (pipeline/fleet/night.py): there `folder_lock` alone keeps two
nights out of one shop's folder, and `smsseg run` takes it too, so neither starts beside the other.
"""

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

PID_TAG = "smsseg/pid"
HOST_TAG = "smsseg/host"
PROCESS_STARTED_TAG = "smsseg/process_started"
IN_PROGRESS = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


class RunInProgressError(Exception):
    """Another run of the instance is going: starting beside it would wait on its pool slot."""


def process_started(pid: int) -> str | None:
    """When process `pid` started, as this machine's kernel tells it; None when there is no such process.

    A pid can be reused by a later process: the start time (ticks since boot, with the boot's id)
    tells the run's own process from a stranger that got its number.
    """
    if not Path("/proc/self/stat").exists():  # not Linux: whether the pid lives is all there is to know
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:  # someone else's process
            pass
        return ""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # from field 3 on: the name before ')' may hold spaces
    if fields[0] in ("Z", "X"):  # a zombie ran nothing any more: dead, only not yet reaped by its parent
        return None
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    return f"{boot}:{fields[19]}"  # field 22, starttime


def process_tags() -> dict[str, str]:
    """Tags naming this process, for the run it is about to launch."""
    return {
        PID_TAG: str(os.getpid()),
        HOST_TAG: socket.gethostname(),
        PROCESS_STARTED_TAG: process_started(os.getpid()),
    }


@dataclass(frozen=True)
class RunProcess:
    """The process a run was launched by, from its tags."""

    pid: int
    host: str
    started: str

    @classmethod
    def of(cls, run: dg.DagsterRun) -> "RunProcess | None":
        """None for a run without the tags (launched by the UI or the schedule; Dagster monitors those)."""
        if PID_TAG not in run.tags or HOST_TAG not in run.tags:
            return None
        return cls(int(run.tags[PID_TAG]), run.tags[HOST_TAG], run.tags.get(PROCESS_STARTED_TAG, ""))

    def is_gone(self) -> bool:
        """True only when this machine can tell: the run was launched here and its process is no more."""
        if self.host != socket.gethostname():
            return False
        return process_started(self.pid) != self.started

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}"


def step_it_died_in(instance: dg.DagsterInstance, run_id: str) -> str:
    """The steps that started but never ended, or 'no step' when it died between steps."""
    events = [
        record.event_log_entry.dagster_event
        for record in instance.get_records_for_run(
            run_id,
            of_type={
                dg.DagsterEventType.STEP_START,
                dg.DagsterEventType.STEP_SUCCESS,
                dg.DagsterEventType.STEP_FAILURE,
            },
        ).records
    ]
    started = [e.step_key for e in events if e.event_type == dg.DagsterEventType.STEP_START]
    ended = {e.step_key for e in events if e.event_type != dg.DagsterEventType.STEP_START}
    unfinished = [step for step in started if step not in ended]
    return ", ".join(unfinished) or "no step"


def recover_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Marks failed each run whose launching process is gone and frees every slot a finished run still holds.

    Returns one line for each run recovered: which run, the step it died in, the slots freed.
    """
    lines = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=IN_PROGRESS)):
        process = RunProcess.of(run)
        if process is None or not process.is_gone():
            continue
        step = step_it_died_in(instance, run.run_id)
        instance.report_run_failed(
            run,
            f"The process that ran it ({process.describe()}) died in {step}: marked failed by the next `smsseg run`.",
        )
        pools = free_slots(instance, run.run_id)
        lines.append(
            f"recovered run {run.run_id}: its process ({process.describe()}) died in {step}; marked failed, "
            + (f"its {', '.join(pools)} pool slot freed" if pools else "it held no pool slot")
        )
    # a run that ended (or was deleted) and left a claim behind, e.g. one marked failed in the UI
    in_progress = {run.run_id for run in instance.get_runs(filters=dg.RunsFilter(statuses=IN_PROGRESS))}
    for run_id in instance.event_log_storage.get_concurrency_run_ids() - in_progress:
        pools = free_slots(instance, run_id)
        if pools:
            lines.append(f"run {run_id} had ended holding the {', '.join(pools)} pool slot: freed")
    return lines


def free_slots(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """Frees the run's claimed slots and its steps' places in the queue; returns the pools it held."""
    pools = sorted(held_pools(instance).get(run_id, ()))
    instance.event_log_storage.free_concurrency_slots_for_run(run_id)
    return pools


def held_pools(instance: dg.DagsterInstance) -> dict[str, set[str]]:
    """run id -> the pools it holds a slot of."""
    storage, held = instance.event_log_storage, {}
    for pool in storage.get_concurrency_keys():
        for slot in storage.get_concurrency_info(pool).claimed_slots:
            held.setdefault(slot.run_id, set()).add(pool)
    return held


def refuse_if_running(instance: dg.DagsterInstance) -> None:
    """Raises RunInProgressError, naming the run and what to do, when a run of the instance is still going."""
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=IN_PROGRESS)):
        process = RunProcess.of(run)
        pools = held_pools(instance).get(run.run_id)
        holding = f", holding the {', '.join(sorted(pools))} pool slot" if pools else ""
        if process is None:
            raise RunInProgressError(
                f"run {run.run_id} (launched from the Dagster UI or its schedule) is {run.status.value}{holding}. "
                "Wait for it to end, or terminate it in the UI (`smsseg ui`, Runs); then run again."
            )
        raise RunInProgressError(
            f"run {run.run_id} is {run.status.value}{holding}, in `smsseg run` {process.describe()}. "
            f"Wait for it to end, or stop it (`kill {process.pid}` on {process.host}); then run again."
        )


LOCK_FILE = "night.lock"


@contextmanager
def folder_lock(data_dir: Path) -> Iterator[None]:
    """Holds data_dir/night.lock while a night runs there; raises RunInProgressError, naming the holder, when
    another process holds it. The kernel frees the lock when its process dies, however it dies: a killed
    night leaves nothing to recover here, and the next night starts at once."""
    with (data_dir / LOCK_FILE).open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "a process that has not said which"
            raise RunInProgressError(
                f"{data_dir}: another night is running in this folder ({holder}; a shop's night of `smsseg run "
                "--shops`, or `smsseg run`). Wait for it to end, or stop it; then run again."
            ) from None
        handle.truncate(0)
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)
