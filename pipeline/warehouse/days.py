"""Which days were evaluated, and whether a run of a day is live or a backfill.

A run of a day no earlier than every day already run is *live*: it syncs the destinations and
publishes the analysts' warehouse. A run of an earlier day is a *backfill*: it records that day's
segment membership and changes nothing else, so a backfill never moves the live audience back in
time. Every day a run evaluated is kept in state.evaluation_days (pipeline/warehouse/state.py).
"""

import datetime as dt
from dataclasses import dataclass

import duckdb

from pipeline.warehouse.state import migrate


@dataclass(frozen=True)
class Evaluation:
    day: dt.date
    live: bool
    latest: dt.date | None  # the latest day run before this one was claimed (None: the first run)

    @property
    def mode(self) -> str:
        return "live" if self.live else "backfill"

    def describe(self) -> str:
        """One line for a person: the day, and what a run of it may change."""
        if self.live:
            return f"evaluated as of {self.day} (live: the destinations and data/warehouse.duckdb are updated)"
        return (
            f"evaluated as of {self.day} (backfill: {self.latest} has run already, so only the membership "
            "history of this day was written; the destinations, the ledger and data/warehouse.duckdb "
            "are untouched)"
        )


def evaluation(con: duckdb.DuckDBPyConnection, day: dt.date) -> Evaluation:
    """Whether a run of `day` is live, by the days run so far (state.duckdb attached as `state`)."""
    migrate(con)
    latest = con.execute("select max(day) from state.evaluation_days").fetchall()[0][0]
    return Evaluation(day, latest is None or day >= latest, latest)


def claim(con: duckdb.DuckDBPyConnection, day: dt.date, run_id: str) -> Evaluation:
    """Decides whether the run of `day` is live, and records the day as run."""
    decided = evaluation(con, day)
    con.execute(
        "insert into state.evaluation_days values (?, ?, ?, now()) on conflict (day) do update set "
        "live = excluded.live, run_id = excluded.run_id, recorded_at = excluded.recorded_at",
        [day, decided.live, run_id],
    )
    return decided
