"""Segment membership over time: one row per stay of a customer in a segment.

Full daily snapshots would cost segments x customers rows a night; stays cost a row per change.
History moves forward only: a run for a day before the latest one recorded (a backfill) leaves it
as it is, and a second run for the same day first undoes what the first recorded on that day.
"""

import datetime as dt

import duckdb

from pipeline.segments.compiler import MEMBERS_TABLE
from pipeline.warehouse.build import transaction
from pipeline.warehouse.state import migrate

# state.segment_membership(segment, customer_id, entered_on, left_on): a member while left_on is null
# state.segment_history_days(segment, first_as_of, as_of): the first and latest day recorded per segment
# (both created by pipeline/warehouse/state.py)


def record_membership(con: duckdb.DuckDBPyConnection, segment: str, as_of: dt.date) -> dict[str, int] | None:
    """Records who entered and left segments.<segment> on `as_of`; None when `as_of` is a backfill.

    `con` is the build warehouse with state.duckdb attached as `state`, just after
    create_segment_view filled the temp table segment_members with the segment's customer ids.
    """
    migrate(con)
    latest = con.execute("select as_of from state.segment_history_days where segment = ?", [segment]).fetchall()
    if latest and as_of < latest[0][0]:
        return None
    with transaction(con):
        if latest and as_of == latest[0][0]:
            con.execute("delete from state.segment_membership where segment = ? and entered_on = ?", [segment, as_of])
            con.execute("update state.segment_membership set left_on = null where segment = ? and left_on = ?",
                        [segment, as_of])
        left = con.execute(f"""
            update state.segment_membership set left_on = ?
            where segment = ? and left_on is null and customer_id not in (select customer_id from {MEMBERS_TABLE})
            """, [as_of, segment]).fetchall()[0][0]  # noqa: S608 (a constant)
        entered = con.execute(f"""
            insert into state.segment_membership
            select ?, customer_id, ?, null from {MEMBERS_TABLE}
            where customer_id not in (
                select customer_id from state.segment_membership where segment = ? and left_on is null
            )
            """, [segment, as_of, segment]).fetchall()[0][0]  # noqa: S608 (a constant)
        con.execute("insert into state.segment_history_days values (?, ?, ?) "
                    "on conflict (segment) do update set as_of = excluded.as_of", [segment, as_of, as_of])
    return {"entered": entered, "left": left}


def previous_size(con: duckdb.DuckDBPyConnection, segment: str, as_of: dt.date) -> int | None:
    """Members on the day before `as_of`, by the history; None when nothing was recorded before `as_of`.

    Reruns of a day and backfills compare with the same day before, so their swing is the same.
    """
    migrate(con)
    first = con.execute("select first_as_of from state.segment_history_days where segment = ?", [segment]).fetchall()
    if not first or first[0][0] >= as_of:
        return None
    day = as_of - dt.timedelta(days=1)
    return con.execute("""
        select count(*) from state.segment_membership
        where segment = ? and entered_on <= ? and (left_on is null or left_on > ?)
        """, [segment, day, day]).fetchall()[0][0]


def copy_history(con: duckdb.DuckDBPyConnection) -> int:
    """Copies the history into the warehouse being built as audience.segment_membership; returns its rows."""
    migrate(con)
    con.execute("create schema if not exists audience")
    con.execute("create or replace table audience.segment_membership as select * from state.segment_membership")
    return con.execute("select count(*) from audience.segment_membership").fetchall()[0][0]
