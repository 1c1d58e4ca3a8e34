"""Segment membership over time: one row per stay of a customer in a segment.

Full daily snapshots would cost segments x customers rows a night; stays cost a row per change.
A customer is a member on day D when a stay has `entered_on <= D and (left_on is null or left_on > D)`.

Every day a segment was evaluated is recorded (state.segment_days), live or backfilled, and the
history answers that rule truly for each of them. Between two recorded days, the earlier day's
answer carries on. Recording a day sets who is a member on it and leaves every other recorded day's
answer as it was, so one mechanism serves the live night (the latest day: its stays stay open), a
rerun of a day (it replaces what the first run recorded) and a backfill of an earlier day.
"""

import datetime as dt

import duckdb

from pipeline.segments.compiler import MEMBERS_TABLE
from pipeline.warehouse.build import transaction
from pipeline.warehouse.state import migrate

# state.segment_membership(segment, customer_id, entered_on, left_on): a member while left_on is null
# state.segment_days(segment, day): every day recorded per segment
# (both created by pipeline/warehouse/state.py)


def record_membership(con: duckdb.DuckDBPyConnection, segment: str, day: dt.date) -> dict[str, int]:
    """Sets who is in segments.<segment> on `day` to its members now; returns how many entered and left.

    `con` is the build warehouse with state.duckdb attached as `state`, just after
    create_segment_view filled the temp table segment_members with the segment's customer ids.
    "Entered" and "left" compare with the day before, by the same rule, as an analyst would.
    """
    migrate(con)
    params = {"segment": segment, "day": day, "members": MEMBERS_TABLE}
    with transaction(con):
        # this day's answer carries until the next recorded day; on the latest day, until further notice
        following = con.execute(
            "select min(day) from state.segment_days where segment = $segment and day > $day",
            {"segment": segment, "day": day},
        ).fetchall()[0][0]
        params["until"] = following
        # a stay holding the day, of a customer who is not a member now: [day, until) is cut out of it
        con.execute(
            """
            insert into state.segment_membership
            select segment, customer_id, $until, left_on from state.segment_membership
            where segment = $segment and entered_on <= $day and (left_on is null or left_on > $day)
              and customer_id not in (select customer_id from query_table($members))
              and $until is not null and (left_on is null or left_on > $until)
            """,
            params,
        )
        con.execute(
            """
            update state.segment_membership set left_on = $day
            where segment = $segment and entered_on <= $day and (left_on is null or left_on > $day)
              and customer_id not in (select customer_id from query_table($members))
            """,
            {k: params[k] for k in ("segment", "day", "members")},
        )
        # only the update above empties a stay, by ending on `day` one that began on it
        con.execute(
            "delete from state.segment_membership where segment = $segment and entered_on = $day and left_on = $day",
            {"segment": segment, "day": day},
        )
        # a member no stay holds on the day: a stay of [day, until)
        con.execute(
            """
            insert into state.segment_membership
            select $segment, customer_id, $day, $until from query_table($members)
            where customer_id not in (
                select customer_id from state.segment_membership
                where segment = $segment and entered_on <= $day and (left_on is null or left_on > $day))
            """,
            params,
        )
        for boundary in (day, following):  # stays that now meet end to end become one
            if boundary is not None:
                _join_stays(con, segment, boundary)
        con.execute("insert or ignore into state.segment_days values (?, ?)", [segment, day])
    return _moves(con, segment, day)


def _join_stays(con: duckdb.DuckDBPyConnection, segment: str, day: dt.date) -> None:
    """A stay ending on `day` and the same customer's stay starting on it become one."""
    params = {"segment": segment, "day": day}
    con.execute(
        """
        update state.segment_membership as first set left_on = second.left_on
        from state.segment_membership as second
        where first.segment = $segment and second.segment = $segment and first.customer_id = second.customer_id
          and first.left_on = $day and second.entered_on = $day
        """,
        params,
    )
    con.execute(
        """
        delete from state.segment_membership as second
        where segment = $segment and entered_on = $day and exists (
            select 1 from state.segment_membership as first
            where first.segment = $segment and first.customer_id = second.customer_id
              and first.entered_on < $day and (first.left_on is null or first.left_on > $day))
        """,
        params,
    )


def _moves(con: duckdb.DuckDBPyConnection, segment: str, day: dt.date) -> dict[str, int]:
    """Who is in the segment on `day` and was not the day before (entered), and the other way (left).

    Counted off the stays that begin and end on `day`, in one pass over the segment's rows: a
    customer's stays never overlap and never meet end to end (record_membership joins those), so a
    member on `day` was not one the day before exactly when their stay begins on `day`, and the other
    way round when a stay ends on it.
    """
    entered, left = con.execute(
        """
        select count(*) filter (where entered_on = $day), count(*) filter (where left_on = $day)
        from state.segment_membership
        where segment = $segment and (entered_on = $day or left_on = $day)
        """,
        {"segment": segment, "day": day},
    ).fetchall()[0]
    return {"entered": entered, "left": left}


def members_on(con: duckdb.DuckDBPyConnection, segment: str, day: dt.date) -> int:
    """How many customers the history says were in the segment on `day`."""
    return con.execute(
        """
        select count(*) from state.segment_membership
        where segment = ? and entered_on <= ? and (left_on is null or left_on > ?)
        """,
        [segment, day, day],
    ).fetchall()[0][0]


def previous_size(con: duckdb.DuckDBPyConnection, segment: str, day: dt.date) -> int | None:
    """Members on the day before `day`, by the history; None when no day before `day` was recorded.

    Reruns of a day and backfills compare with the same day before, so their swing is the same.
    """
    migrate(con)
    earlier = con.execute(
        "select count(*) from state.segment_days where segment = ? and day < ?", [segment, day]
    ).fetchall()[0][0]
    if not earlier:
        return None
    return members_on(con, segment, day - dt.timedelta(days=1))


def copy_history(con: duckdb.DuckDBPyConnection) -> int:
    """Copies the history into the warehouse being built as audience.segment_membership; returns its rows."""
    migrate(con)
    con.execute("create schema if not exists audience")
    con.execute("create or replace table audience.segment_membership as select * from state.segment_membership")
    return con.execute("select count(*) from audience.segment_membership").fetchall()[0][0]
