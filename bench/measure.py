"""Measuring a phase: wall time, CPU time and peak memory of this process and its children."""

import bisect
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class Sampler:
    """Peak resident memory of this process and its children, sampled from /proc every 20 ms, and the
    process's CPU time at each sample, so a step's CPU can be read off its start and end times.

    The kernel's own high-water mark of this process (VmHWM) is reset at `start` and read at `stop`,
    so a spike shorter than the sampling interval still counts for the process itself.
    """

    def __init__(self) -> None:
        self.peak_bytes = 0
        self.cpu_samples: list[tuple[float, float]] = []  # (time.time(), CPU seconds so far)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        _reset_high_water_mark()
        self.peak_bytes = 0
        self.cpu_samples = [(time.time(), _cpu_seconds())]
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def stop(self) -> float:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.cpu_samples.append((time.time(), _cpu_seconds()))
        self.peak_bytes = max(self.peak_bytes, _status_kb(os.getpid(), "VmHWM") * 1024)
        return round(self.peak_bytes / 2**20, 1)

    def cpu_between(self, start: float, end: float) -> float:
        """CPU seconds spent between two time.time() instants, to within a sampling interval."""
        times = [t for t, _ in self.cpu_samples]

        def at(instant: float) -> float:
            return self.cpu_samples[max(bisect.bisect_right(times, instant) - 1, 0)][1]

        return at(end) - at(start)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            total = sum(_status_kb(pid, "VmRSS") for pid in _process_tree(os.getpid())) * 1024
            self.peak_bytes = max(self.peak_bytes, total)
            self.cpu_samples.append((time.time(), _cpu_seconds()))


def _reset_high_water_mark() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # not Linux, or not allowed: sampling alone bounds the peak


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass  # the process ended between listing and reading
    return 0


def _process_tree(pid: int) -> list[int]:
    """`pid` and its descendants; any of them may end while it looks, and is then left out of what follows."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        try:
            tasks = list(Path(f"/proc/{current}/task").glob("*/children"))
        except OSError:
            continue  # the process ended meanwhile: it has no children to list
        for task in tasks:
            try:
                todo += [int(child) for child in task.read_text().split()]
            except OSError:
                pass  # the task ended meanwhile
    return tree


def _cpu_seconds() -> float:
    """User and system CPU time of this process (every DuckDB thread) and its ended children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@contextmanager
def measured(phase: dict) -> Iterator[Sampler]:
    """Fills `phase` with wall time (s), CPU time (s) and peak memory (MB) of the block.

    CPU time is the steadier figure on a shared machine: other people's work lengthens the wall
    time of a step but not the CPU it spends.
    """
    sampler = Sampler()
    sampler.start()
    started, cpu = time.perf_counter(), _cpu_seconds()
    try:
        yield sampler
    finally:
        phase["seconds"] = round(time.perf_counter() - started, 2)
        phase["cpu_s"] = round(_cpu_seconds() - cpu, 2)
        phase["peak_rss_mb"] = sampler.stop()


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages: the machine is shared, so every figure carries it."""
    return [round(x, 2) for x in os.getloadavg()]
