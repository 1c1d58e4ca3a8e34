"""The membership history against a plain model: each recorded day's answer is what was recorded for it.

Days are recorded in any order (live nights, reruns of a day, backfills of earlier days); after each
step, the history's rule (entered_on <= D < left_on) must give, for every day, the members recorded on
the latest recorded day at or before D (none before the first), computed here from a dict of sets.
"""

import datetime as dt

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.segments.compiler import MEMBERS_TABLE
from pipeline.segments.history import members_on, previous_size, record_membership

SEGMENT = "s"
START = dt.date(2026, 11, 1)
DAYS = 8
CUSTOMERS = 5


@pytest.fixture
def con():
    with duckdb.connect() as con:
        con.execute("attach ':memory:' as state")
        yield con


def record(con: duckdb.DuckDBPyConnection, day: dt.date, members: set[int], segment: str = SEGMENT) -> dict:
    con.execute(
        f"create or replace temp table {MEMBERS_TABLE} as select unnest(?::bigint[]) as customer_id", [sorted(members)]
    )
    return record_membership(con, segment, day)


def expected_on(recorded: dict[dt.date, set[int]], day: dt.date) -> set[int]:
    earlier = [d for d in recorded if d <= day]
    return recorded[max(earlier)] if earlier else set()


def members(con: duckdb.DuckDBPyConnection, day: dt.date, segment: str = SEGMENT) -> set[int]:
    rows = con.execute(
        "select customer_id from state.segment_membership "
        "where segment = ? and entered_on <= ? and (left_on is null or left_on > ?)",
        [segment, day, day],
    ).fetchall()
    return {r[0] for r in rows}


steps = st.lists(st.tuples(st.integers(0, DAYS - 1), st.frozensets(st.integers(1, CUSTOMERS))), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(steps)
def test_every_recorded_day_answers_what_was_recorded_for_it(steps) -> None:
    with duckdb.connect() as con:
        con.execute("attach ':memory:' as state")
        recorded: dict[dt.date, set[int]] = {}
        for offset, day_members in steps:
            day = START + dt.timedelta(days=offset)
            moves = record(con, day, set(day_members))
            recorded[day] = set(day_members)
            before = expected_on(recorded, day - dt.timedelta(days=1))
            assert moves == {"entered": len(recorded[day] - before), "left": len(before - recorded[day])}
            for other in (START + dt.timedelta(days=n) for n in range(-1, DAYS + 2)):
                assert members(con, other) == expected_on(recorded, other), (other, recorded)
        # no stay is empty, and none meets another of the same customer end to end (one row per stay)
        assert (
            con.execute("select count(*) from state.segment_membership where entered_on >= left_on").fetchall()[0][0]
            == 0
        )
        assert (
            con.execute("""
            select count(*) from state.segment_membership a join state.segment_membership b
            on a.segment = b.segment and a.customer_id = b.customer_id and a.left_on = b.entered_on
            """).fetchall()[0][0]
            == 0
        )


def test_a_backfill_rewrites_its_day_and_leaves_the_others(con) -> None:
    first, backfilled, live = (START + dt.timedelta(days=n) for n in (0, 3, 6))
    record(con, first, {1, 2})
    record(con, live, {2, 3})
    assert members(con, backfilled) == {1, 2}  # carried from the first day, before the backfill
    record(con, backfilled, {3})
    assert [members(con, d) for d in (first, backfilled, live)] == [{1, 2}, {3}, {2, 3}]
    assert members(con, backfilled + dt.timedelta(days=1)) == {3}  # the backfilled answer carries to the next day run
    assert members(con, live + dt.timedelta(days=30)) == {2, 3}  # the latest day's stays stay open


def test_previous_size_is_the_day_before_by_the_history(con) -> None:
    assert previous_size(con, SEGMENT, START) is None  # nothing recorded before
    record(con, START, {1, 2, 3})
    assert previous_size(con, SEGMENT, START) is None  # a rerun of the first day compares with nothing
    assert previous_size(con, SEGMENT, START + dt.timedelta(days=1)) == 3
    record(con, START + dt.timedelta(days=2), {1})
    assert previous_size(con, SEGMENT, START + dt.timedelta(days=3)) == 1
    assert members_on(con, SEGMENT, START + dt.timedelta(days=1)) == 3


def test_segments_are_kept_apart(con) -> None:
    record(con, START, {1}, segment="a")
    record(con, START, {2}, segment="b")
    record(con, START + dt.timedelta(days=1), set(), segment="a")
    assert members(con, START, "a") == {1}
    assert members(con, START + dt.timedelta(days=1), "a") == set()
    assert members(con, START + dt.timedelta(days=1), "b") == {2}
