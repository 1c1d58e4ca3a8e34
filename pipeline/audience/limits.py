"""Rate limits shared by every process using one destination account: a log of request slots in a file per account.

Klaviyo counts an account's requests together, whichever shop or process sends them, so before each
request a process takes a slot from a log they all share: a SQLite file per account in the limits
directory (SMSSEG_LIMITS_DIR). A slot is the time the request may go: the earliest one, not before
the latest slot already taken, at which no window of the operation (burst, steady) would hold more
requests than its limit. One `BEGIN IMMEDIATE` transaction reads the log and writes the slot, so no
two processes take the same one, and slots go out in order, so a process waiting its turn is never
overtaken.

The windows slide: whenever the destination's own fixed window starts, it never sees more than its
limit. Each is SLACK_SECONDS longer than documented, because a request reaches the destination some
time after its slot, and not always the same time after it.

The log keeps wall-clock times, so processes on machines sharing the directory compare their slots;
the journal is a rollback journal, not WAL, because WAL needs memory shared by the processes of one
host.
"""

import sqlite3
import time
from collections.abc import Callable, Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from pipeline.audience.gateways import GatewayError

SLACK_SECONDS = 0.5  # a request's lag from its slot to the destination's clock varies by less than this
LOCK_SECONDS = 30.0  # the longest a process waits for another's transaction on the log (each takes milliseconds)


@dataclass(frozen=True)
class Limit:
    """At most `requests` in any `seconds`."""

    requests: int
    seconds: float


class SharedLimits:
    """The slots of one account's requests, in the SQLite file `path`, for every process that uses the account."""

    def __init__(
        self, path: Path, limits: Mapping[str, tuple[Limit, ...]], clock: Callable[[], float] = time.time
    ) -> None:
        self.path = path
        self.limits = limits
        self.clock = clock

    def take(self, operation: str, longest_wait: float) -> float:
        """Takes `operation`'s next slot and returns the seconds until it.

        A slot further away than `longest_wait` is not taken: GatewayError (retryable) says so instead.
        """
        try:
            with closing(sqlite3.connect(self.path, timeout=LOCK_SECONDS, isolation_level=None)) as con:
                # a rollback journal kept between transactions, synced only at the critical moments: fewer
                # file operations a slot, and what a power cut could cost is a minute's log
                con.execute("pragma journal_mode = persist")
                con.execute("pragma synchronous = normal")
                con.execute("begin immediate")
                try:
                    wait = self._take(con, operation, longest_wait)
                except BaseException:
                    con.execute("rollback")
                    raise
                con.execute("commit")
                return wait
        except sqlite3.OperationalError as exc:
            # locked past LOCK_SECONDS, or the file or directory became unusable: the next run tries again
            raise GatewayError(
                f"the rate limits file {self.path} (SMSSEG_LIMITS_DIR): {exc}; check the directory is "
                "writable and on a filesystem with working file locks",
                retryable=True,
            ) from None
        except sqlite3.DatabaseError as exc:
            raise GatewayError(
                f"the rate limits file {self.path} (SMSSEG_LIMITS_DIR): {exc}; delete it (it only holds "
                "the last minute's requests) and run again",
                retryable=False,
            ) from None

    def _take(self, con: sqlite3.Connection, operation: str, longest_wait: float) -> float:
        con.execute("create table if not exists slots (operation text not null, at real not null)")
        con.execute("create index if not exists slots_by_time on slots (operation, at)")
        now = self.clock()
        latest = con.execute("select max(at) from slots where operation = ?", [operation]).fetchone()[0]
        slot = now if latest is None else max(now, latest)
        for limit in self.limits[operation]:
            # the new slot may not share a window with the limit's worth of slots before it
            row = con.execute(
                "select at from slots where operation = ? order by at desc limit 1 offset ?",
                [operation, limit.requests - 1],
            ).fetchone()
            if row is not None:
                slot = max(slot, row[0] + limit.seconds + SLACK_SECONDS)
        if slot - now > longest_wait:
            raise GatewayError(
                f"{operation}: the account's next free slot is {slot - now:.0f} s away ({self.describe(operation)}, "
                f"shared by every process using the key), past the {longest_wait:.0f} s one request may wait; "
                "the next run sends it. Run fewer shops on this account at once (or, if this clock was set "
                f"back, delete {self.path})",
                retryable=True,
            )
        con.execute("insert into slots (operation, at) values (?, ?)", [operation, slot])
        # a slot older than the longest window can no longer share one with a slot yet to be taken
        forgotten = now - max(limit.seconds for limit in self.limits[operation]) - SLACK_SECONDS
        con.execute("delete from slots where operation = ? and at < ?", [operation, forgotten])
        return slot - now

    def describe(self, operation: str) -> str:
        """The operation's limits in words: '10 a second, 150 a minute'."""
        return ", ".join(f"{limit.requests} a {_period(limit.seconds)}" for limit in self.limits[operation])


def _period(seconds: float) -> str:
    return {1: "second", 60: "minute"}.get(seconds, f"{seconds:g} s")
