"""Segment membership over time: one row per stay of a customer in a segment.

Full daily snapshots would cost segments x customers rows a night; stays cost a row per change.
History moves forward only: a run for a day before the latest one recorded (a backfill) leaves it
as it is, and a second run for the same day first undoes what the first recorded on that day.
"""

import datetime as dt

import duckdb
from sqlglot import exp

HISTORY = "state.segment_membership"  # (segment, customer_id, entered_on, left_on): member while left_on is null
LATEST = "state.segment_history_days"  # (segment, as_of): the latest day recorded per segment


def record_membership(con: duckdb.DuckDBPyConnection, segment: str, as_of: dt.date) -> dict[str, int] | None:
    """Records who entered and left segments.<segment> on `as_of`; None when `as_of` is a backfill.

    `con` is the build warehouse, with the view, and state.duckdb attached as `state`.
    """
    con.execute(f"create table if not exists {HISTORY} "
                "(segment varchar, customer_id bigint, entered_on date, left_on date)")
    con.execute(f"create table if not exists {LATEST} (segment varchar primary key, as_of date)")
    latest = con.execute(f"select as_of from {LATEST} where segment = ?", [segment]).fetchall()  # noqa: S608
    if latest and as_of < latest[0][0]:
        return None
    view = exp.table_(exp.to_identifier(segment, quoted=True), db="segments").sql(dialect="duckdb")
    con.execute("begin")
    if latest and as_of == latest[0][0]:
        con.execute(f"delete from {HISTORY} where segment = ? and entered_on = ?", [segment, as_of])  # noqa: S608
        con.execute(f"update {HISTORY} set left_on = null where segment = ? and left_on = ?",  # noqa: S608
                    [segment, as_of])
    con.execute(f"create or replace temp table current_members as select distinct customer_id from {view}")  # noqa: S608
    left = con.execute(f"""
        update {HISTORY} set left_on = ?
        where segment = ? and left_on is null and customer_id not in (select customer_id from current_members)
        """, [as_of, segment]).fetchall()[0][0]  # noqa: S608
    entered = con.execute(f"""
        insert into {HISTORY}
        select ?, customer_id, ?, null from current_members
        where customer_id not in (select customer_id from {HISTORY} where segment = ? and left_on is null)
        """, [segment, as_of, segment]).fetchall()[0][0]  # noqa: S608
    con.execute(f"insert or replace into {LATEST} values (?, ?)", [segment, as_of])  # noqa: S608
    con.execute("commit")
    return {"entered": entered, "left": left}


def copy_history(con: duckdb.DuckDBPyConnection) -> int:
    """Copies the history into the warehouse being built as audience.segment_membership; returns its rows."""
    con.execute(f"create table if not exists {HISTORY} "
                "(segment varchar, customer_id bigint, entered_on date, left_on date)")
    con.execute("create schema if not exists audience")
    con.execute(f"create or replace table audience.segment_membership as select * from {HISTORY}")  # noqa: S608
    return con.execute("select count(*) from audience.segment_membership").fetchall()[0][0]
