"""Who of a segment may get texts: consent, a valid number, no suppression or redaction, one recipient a number.

Everything runs as SQL over the build warehouse, so it stays fast at a million customers. The
result is the temp table `audience_eligible` on the caller's connection, one row per number.
"""

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import phonenumbers
import pyarrow as pa
from sqlglot import exp

from pipeline.phones import to_e164
from pipeline.segments.catalogue import MEMBER_COLUMNS, SEGMENT_NAME
from pipeline.sqlbuild import call, column, identifier, table, temp, to_sql
from pipeline.warehouse.models import SQL_DIR

CLASSIFIED = SQL_DIR / "audience" / "classified.sql"  # makes temp table audience_classified
# The reasons a member is not texted, in the order CLASSIFIED tries them (it says why that order)
REASONS = ("redacted", "no_consent", "bad_phone", "suppressed", "duplicate")
_INTERNATIONAL = re.compile(r"\s*(?:\+|00)\s*")  # a number written with its country code


class AudienceError(ValueError):
    """A definition or input the export cannot use; the message says what to fix and where."""


@dataclass(frozen=True)
class Eligibility:
    """The outcome for one segment; the members themselves are in the temp table `audience_eligible`."""

    segment: str
    members: int  # segment members, before any exclusion
    eligible: int
    excluded: dict[str, int]  # reason -> members, every reason present (0 when none)
    fields: tuple[str, ...]  # the definition's extra fields, in order, after the base columns


def check_segment_name(segment: str) -> str:
    """The name, if it is a segment's (which makes it safe as a view name, a directory and a URL path segment)."""
    if not SEGMENT_NAME.fullmatch(segment):
        raise AudienceError(
            f"segment name {segment!r}: a segment's name is lowercase letters, digits and _, "
            "starting with a letter (it names a view, a directory under data/exports and a "
            "gateway URL)"
        )
    return segment


def eligible_audience(
    con: duckdb.DuckDBPyConnection, segment: str, *, fields: tuple[str, ...] = (), suppressions_csv: Path | None = None
) -> Eligibility:
    """Builds temp table `audience_eligible` for `segments.<segment>` and counts the excluded by reason.

    Columns: phone (E.164), customer_id, first_name, last_name, country, each extra field as text,
    fields_hash (changes when anything the gateway holds for the member changes).
    `fields` are marts.customers columns; an unknown one is an AudienceError.
    """
    check_segment_name(segment)
    fields = tuple(fields)
    _check_fields(con, fields)
    load_suppressions(con, suppressions_csv)
    _load_calling_codes(con)
    members = exp.select("customer_id").from_(table(segment, "segments"))
    con.execute(to_sql(temp("audience_segment_members", members, kind="VIEW")))
    con.execute(CLASSIFIED.read_text())
    con.execute(to_sql(temp("audience_eligible", _eligible_members(fields))))
    counts = dict(
        con.execute("select coalesce(reason, 'eligible'), count(*) from audience_classified group by all").fetchall()
    )
    con.execute("drop table audience_classified")
    con.execute("drop view audience_segment_members")
    eligible = counts.pop("eligible", 0)
    return Eligibility(
        segment=segment,
        members=eligible + sum(counts.values()),
        eligible=eligible,
        excluded={reason: counts.get(reason, 0) for reason in REASONS},
        fields=fields,
    )


def _eligible_members(fields: tuple[str, ...]) -> exp.Select:
    """The eligible of audience_classified, by phone, with the extra `fields` of marts.customers as text and
    fields_hash: the MD5 of the JSON list of every value the gateway holds for the member."""
    extra = [exp.cast(column(f, "customers"), "varchar") for f in fields]
    hashed = [
        exp.cast(column("customer_id", "e"), "varchar"),
        *(column(c, "e") for c in ("first_name", "last_name", "country")),
        *extra,
    ]
    query = exp.select(
        *(column(c, "e") for c in ("phone", "customer_id", "first_name", "last_name", "country")),
        *(exp.alias_(value, identifier(f)) for value, f in zip(extra, fields, strict=True)),
        exp.alias_(call("md5", call("to_json", exp.Array(expressions=hashed))), identifier("fields_hash")),
    ).from_(exp.alias_(table("audience_classified"), "e", table=True))
    if fields:
        query = query.join(
            exp.alias_(table("customers", "marts"), "customers", table=True),
            join_type="inner",
            on=column("customer_id", "customers").eq(column("customer_id", "e")),
        )
    return query.where(column("reason", "e").is_(exp.null())).order_by(column("phone", "e"))


def load_suppressions(con: duckdb.DuckDBPyConnection, suppressions_csv: Path | None) -> int:
    """Temp table `audience_suppressed(phone, region, reason, source, since)`: opted_out events and the CSV,
    and temp macro `audience_suppressed_number(number, customer_region)`: whether it suppresses a number.

    `phone` is E.164. An opt-out is written however the gateway or the merchant wrote it, and one
    that slips through by its spelling texts someone who said stop: every distinct number written
    is read the way a customer's own number is (`suppressed_readings`), and `region` says which
    customers a national reading suppresses (null: every customer with that number). Every
    opt-out counts, also one after the evaluation date: a backfill must not text a number that has
    since asked to stop (segments see only events up to that date; this is not a segment).
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


def _check_fields(con: duckdb.DuckDBPyConnection, fields: tuple[str, ...]) -> None:
    known = {
        row[0]
        for row in con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = 'marts' and table_name = 'customers'"
        ).fetchall()
    }
    for field in fields:
        if field in (*MEMBER_COLUMNS, "phone_e164", "fields_hash"):
            raise AudienceError(f"sms.fields: {field!r} is already sent with every member; remove it")
        if field not in known:
            raise AudienceError(
                f"sms.fields: unknown field {field!r}; use a marts.customers column, one of: {', '.join(sorted(known))}"
            )
    if len(set(fields)) != len(fields):
        raise AudienceError(f"sms.fields: {list(fields)} lists a field twice")


def _load_calling_codes(con: duckdb.DuckDBPyConnection) -> None:
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
