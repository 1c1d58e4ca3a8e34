"""Who may be texted at all: the export's eligibility rules (consent, a valid number, no suppression or
redaction, one recipient a number), applied to any set of customers.

The rules are sql/audience/classified.sql; this module loads what it reads (the suppressed numbers,
the calling codes) and runs it. The export applies them to a segment's members
(pipeline/audience/eligibility.py); `refresh_reachable` applies them to every customer, for the
segment language's `can_receive_sms`.
"""

import csv
import datetime as dt
import re
from pathlib import Path

import duckdb
import phonenumbers
import pyarrow as pa
from sqlglot import exp

from pipeline.phones import to_e164
from pipeline.sqlbuild import column, count_rows, qualified, table, temp, to_sql
from pipeline.warehouse.build import built_as_of, stamp
from pipeline.warehouse.models import SQL_DIR

CLASSIFIED = SQL_DIR / "audience" / "classified.sql"  # makes temp table audience_classified
# The reasons a member is not texted, in the order CLASSIFIED tries them (it says why that order)
REASONS = ("redacted", "no_consent", "bad_phone", "suppressed", "duplicate")
# customer_id of every customer an export of everyone would text (the segment language's can_receive_sms)
REACHABLE = "audience.sms_reachable"
SUPPRESSIONS_CSV = "suppressions.csv"  # in the data directory
_INTERNATIONAL = re.compile(r"\s*(?:\+|00)\s*")  # a number written with its country code


class AudienceError(ValueError):
    """A definition or input the export cannot use; the message says what to fix and where."""


def classify(con: duckdb.DuckDBPyConnection, members: exp.Query, suppressions_csv: Path | None) -> dict[str, int]:
    """Temp table `audience_classified`: one row per customer of `members` (a query of customer_id), with
    the one reason it may not be texted (null: eligible). Returns the customers by reason, 'eligible'
    for the rest; the caller drops the table when done."""
    load_suppressions(con, suppressions_csv)
    load_calling_codes(con)
    con.execute(to_sql(temp("audience_segment_members", members, kind="VIEW")))
    con.execute(CLASSIFIED.read_text())
    con.execute("drop view audience_segment_members")
    return dict(
        con.execute("select coalesce(reason, 'eligible'), count(*) from audience_classified group by all").fetchall()
    )


def refresh_reachable(con: duckdb.DuckDBPyConnection, day: dt.date, data_dir: Path) -> int:
    """Table audience.sms_reachable: the customers of marts.customers an export of every customer would text
    (a shared number goes to the lowest such customer_id), stamped as of `day`; returns how many."""
    classify(con, exp.select(column("customer_id")).from_(table("customers", "marts")), _suppressions(data_dir))
    eligible = (
        exp.select(column("customer_id"))
        .from_(table("audience_classified"))
        .where(exp.Is(this=column("reason"), expression=exp.Null()))
    )
    con.execute("create schema if not exists audience")
    con.execute(to_sql(exp.Create(this=qualified(REACHABLE), kind="TABLE", replace=True, expression=eligible)))
    con.execute("drop table audience_classified")
    stamp(con, REACHABLE, day)
    return con.execute(to_sql(count_rows(qualified(REACHABLE)))).fetchall()[0][0]


def ensure_reachable(con: duckdb.DuckDBPyConnection, day: dt.date) -> None:
    """audience.sms_reachable as of `day`, rebuilt only when the build holds it as of another day (or not at
    all); the build's data directory is the DuckDB variable `data_dir` (open_build sets it)."""
    if built_as_of(con).get(REACHABLE) == day:
        return
    data_dir = con.execute("select getvariable('data_dir')").fetchall()[0][0]
    if data_dir is None:  # a connection open_build did not make: it has no data directory to read
        raise RuntimeError(f"{REACHABLE} is not built as of {day}: open the build with open_build")
    refresh_reachable(con, day, Path(data_dir))


def _suppressions(data_dir: Path) -> Path | None:
    path = Path(data_dir) / SUPPRESSIONS_CSV
    return path if path.exists() else None


def load_suppressions(con: duckdb.DuckDBPyConnection, suppressions_csv: Path | None) -> int:
    """Temp table `audience_suppressed(phone, region, reason, source, since)`: opted_out events and the CSV,
    and temp macro `audience_suppressed_number(number, customer_region)`: whether it suppresses a number.

    `phone` is E.164. An opt-out is written however the gateway or the merchant wrote it, and one
    that slips through by its spelling texts someone who said stop: every distinct number written
    is read the way a customer's own number is (`suppressed_readings`), and `region` says which
    customers a national reading suppresses (null: every customer with that number). Every
    opt-out counts, also one after the evaluation date: a backfill must not text a number that has
    since asked to stop (`sms_events` filters see only events up to that date; `can_receive_sms`, like
    the export, sees them all).
    """
    listed = read_suppressions_csv(suppressions_csv) if suppressions_csv else []
    con.execute("""
        create or replace temp table audience_opted_out as
        select phone, min(occurred_at) as since
        from staging.stg_sms_events
        where event_type = 'opted_out' and phone is not null
        group by phone""")
    written = sorted(
        {row[0] for row in con.execute("select phone from audience_opted_out").fetchall()} | {row[0] for row in listed}
    )
    regions = [
        row[0]
        for row in con.execute(
            "select distinct default_country from staging.stg_customers where default_country is not null order by 1"
        ).fetchall()
    ]
    readings = suppressed_readings(written, regions)
    con.register(
        "audience_listed",
        pa.table(
            {
                "phone": pa.array([row[0] for row in listed], pa.string()),
                "reason": pa.array([row[1] for row in listed], pa.string()),
            }
        ),
    )
    con.register(
        "audience_readings",
        pa.table(
            {
                "written": pa.array([r[0] for r in readings], pa.string()),
                "phone": pa.array([r[1] for r in readings], pa.string()),
                "region": pa.array([r[2] for r in readings], pa.string()),
            }
        ),
    )
    try:
        con.execute("""
            create or replace temp table audience_suppressed as
            select r.phone, r.region, 'opted_out' as reason, 'sms_events' as source, min(o.since) as since
            from audience_opted_out as o
            inner join audience_readings as r on o.phone = r.written
            group by r.phone, r.region
            union all
            select r.phone, r.region, any_value(l.reason), 'suppressions.csv', cast(null as timestamptz)
            from audience_listed as l
            inner join audience_readings as r on l.phone = r.written
            group by r.phone, r.region""")
    finally:
        con.unregister("audience_listed")
        con.unregister("audience_readings")
        con.execute("drop table audience_opted_out")
    # The one test of a number against the list, for the eligibility and for a held export's removals:
    # a national reading suppresses only a customer whose default address is in its region.
    con.execute("""
        create or replace temp macro audience_suppressed_number(number, customer_region) as exists (
            select 1 from audience_suppressed as s
            where s.phone = number and (s.region is null or s.region = customer_region)
        )""")
    return con.execute("select count(distinct phone) from audience_suppressed").fetchall()[0][0]


def suppressed_readings(written: list[str], regions: list[str]) -> list[tuple[str, str, str | None]]:
    """(as written, E.164, region) for each way a suppressed number can be some customer's number.

    A number with + or an international 00 reads alone (region None). One without is read in
    each region a customer's own number may be read in (their default address country, as
    refresh_phone_table does), and suppresses only customers of that region: 347 123 4567 is an
    Italian mobile for a customer in Italy and nobody's number in Germany.
    """
    readings = []
    for phone in written:
        alone = read_alone(phone)
        if alone is not None:
            readings.append((phone, alone, None))
        elif not _INTERNATIONAL.match(phone):
            readings.extend((phone, e164, region) for region in regions if (e164 := to_e164(phone, region)) is not None)
    return readings


def read_alone(phone: str) -> str | None:
    """The number in E.164 when it is written internationally (+39..., 0039...), else None."""
    international = _INTERNATIONAL.match(phone)
    if not international:
        return None
    return to_e164("+" + phone[international.end() :], None)


def read_suppressions_csv(path: Path) -> list[tuple[str, str]]:
    """(E.164 phone, reason) for each line of a suppressions CSV with columns phone[, reason].

    A missing file means no suppressions. A line we cannot read is an error, not a skip: a number
    that asked not to be texted must never slip through because of a typo.
    """
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = [h.strip().lower() for h in next(reader, [])]
        if header not in (["phone"], ["phone", "reason"]):
            raise AudienceError(f"{path}:1: header {','.join(header) or '(empty)'}; expected phone or phone,reason")
        for record in reader:
            line = reader.line_num
            if not any(v.strip() for v in record):
                continue
            if len(record) != len(header):
                raise AudienceError(f"{path}:{line}: {len(record)} values, expected {len(header)} ({','.join(header)})")
            phone = read_alone(record[0].strip())
            if phone is None:
                raise AudienceError(
                    f"{path}:{line}: {record[0].strip()!r} is not a valid phone number; "
                    "write it in international format, e.g. +393471234567"
                )
            reason = record[1].strip() if len(record) > 1 and record[1].strip() else "listed"
            rows.append((phone, reason))
    return rows


def load_calling_codes(con: duckdb.DuckDBPyConnection) -> None:
    """Temp table `audience_calling_codes(prefix '+39', region 'IT')` for a customer with no address.

    A calling code shared by several countries (+1, +7, +44...) maps to its main country: good
    enough for a country column, and it keeps the lookup in SQL instead of a Python parse a row.
    """
    codes = [
        (f"+{code}", regions[0])
        for code, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items()
        if regions and regions[0] != "001"
    ]
    con.register("audience_codes", pa.table({"prefix": [c[0] for c in codes], "region": [c[1] for c in codes]}))
    try:
        con.execute("create or replace temp table audience_calling_codes as select * from audience_codes")
    finally:
        con.unregister("audience_codes")
