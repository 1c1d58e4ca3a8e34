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

from pipeline.audience.phones import to_e164
from pipeline.segments.catalogue import MEMBER_COLUMNS

ELIGIBLE_TABLE = "audience_eligible"
SUPPRESSED_TABLE = "audience_suppressed"
# The order decides the one reason a member is counted under when several apply.
# Counted under the first that applies. A redaction comes first: it also sets the consent to
# REDACTED, and "redacted" is the reason an operator looks for.
REASONS = ("redacted", "no_consent", "bad_phone", "suppressed", "duplicate")
SEGMENT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
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
    """The name, if it is safe as a view name, a file directory and a URL path segment."""
    if not SEGMENT_NAME.fullmatch(segment):
        raise AudienceError(f"segment name {segment!r}: use letters, digits, _ and - only "
                            "(it names a directory under data/exports and a gateway URL)")
    return segment


def eligible_audience(con: duckdb.DuckDBPyConnection, segment: str, *, fields: tuple[str, ...] = (),
                      suppressions_csv: Path | None = None) -> Eligibility:
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
    segment_view = exp.table_(exp.to_identifier(segment, quoted=True), db="segments").sql(dialect="duckdb")
    extra = "".join(f", cast(customers.{quote_identifier(f)} as varchar) as {quote_identifier(f)}" for f in fields)
    hashed = ", ".join(["cast(customer_id as varchar)", "first_name", "last_name", "country",
                        *(quote_identifier(f) for f in fields)])
    # One classification pass: each member gets the first reason that applies, so the counts add
    # up to the segment size. The duplicate check ranks only members that passed every other one,
    # so a shared number goes to the lowest eligible customer_id.
    con.execute(f"""
        create or replace temp table audience_classified as
        with members as (
            select distinct customer_id from {segment_view}
        ),

        candidates as (
            select
                customers.customer_id,
                customers.first_name,
                customers.last_name,
                customers.phone_e164 as phone,
                customers.sms_subscription_status,
                customers.is_redacted,
                profiles.default_country as phone_region,  -- where a number without + was read
                -- the default address's country; else another address's; else the number's
                coalesce(profiles.default_country, customers.customer_countries[1], c2.region, c3.region, c4.region)
                    as country
                {extra}
            from members
            inner join marts.customers as customers on members.customer_id = customers.customer_id
            left join staging.stg_customers as profiles on members.customer_id = profiles.customer_id
            left join audience_calling_codes as c2 on c2.prefix = left(customers.phone_e164, 2)
            left join audience_calling_codes as c3 on c3.prefix = left(customers.phone_e164, 3)
            left join audience_calling_codes as c4 on c4.prefix = left(customers.phone_e164, 4)
        ),

        reasoned as (
            select
                *,
                case
                    when is_redacted then 'redacted'
                    when sms_subscription_status is distinct from 'SUBSCRIBED' then 'no_consent'
                    when phone is null then 'bad_phone'
                    when exists (
                        select 1 from {SUPPRESSED_TABLE} as s
                        where s.phone = candidates.phone and (s.region is null or s.region = candidates.phone_region)
                    ) then 'suppressed'
                end as reason
            from candidates
        )

        select
            * exclude (reason),
            case
                when reason is not null then reason
                when row_number() over (partition by phone, reason is null order by customer_id) > 1
                    then 'duplicate'
            end as reason
        from reasoned""")  # noqa: S608 - identifiers are quoted; values are never formatted in
    con.execute(f"""
        create or replace temp table {ELIGIBLE_TABLE} as
        select
            phone, customer_id, first_name, last_name, country
            {"".join(", " + quote_identifier(f) for f in fields)},
            md5(to_json([{hashed}])) as fields_hash
        from audience_classified
        where reason is null
        order by phone""")  # noqa: S608
    counts = dict(con.execute("select coalesce(reason, 'eligible'), count(*) from audience_classified "
                              "group by all").fetchall())
    con.execute("drop table audience_classified")
    eligible = counts.pop("eligible", 0)
    return Eligibility(segment=segment, members=eligible + sum(counts.values()), eligible=eligible,
                       excluded={reason: counts.get(reason, 0) for reason in REASONS}, fields=fields)


def load_suppressions(con: duckdb.DuckDBPyConnection, suppressions_csv: Path | None) -> int:
    """Temp table `audience_suppressed(phone, region, reason, source, since)`: opted_out events and the CSV.

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
    written = sorted({row[0] for row in con.execute("select phone from audience_opted_out").fetchall()}
                     | {row[0] for row in listed})
    regions = [row[0] for row in con.execute("select distinct default_country from staging.stg_customers "
                                             "where default_country is not null order by 1").fetchall()]
    readings = suppressed_readings(written, regions)
    con.register("audience_listed", pa.table({
        "phone": pa.array([row[0] for row in listed], pa.string()),
        "reason": pa.array([row[1] for row in listed], pa.string()),
    }))
    con.register("audience_readings", pa.table({
        "written": pa.array([r[0] for r in readings], pa.string()),
        "phone": pa.array([r[1] for r in readings], pa.string()),
        "region": pa.array([r[2] for r in readings], pa.string()),
    }))
    try:
        con.execute(f"""
            create or replace temp table {SUPPRESSED_TABLE} as
            select r.phone, r.region, 'opted_out' as reason, 'sms_events' as source, min(o.since) as since
            from audience_opted_out as o
            inner join audience_readings as r on o.phone = r.written
            group by r.phone, r.region
            union all
            select r.phone, r.region, any_value(l.reason), 'suppressions.csv', cast(null as timestamptz)
            from audience_listed as l
            inner join audience_readings as r on l.phone = r.written
            group by r.phone, r.region""")  # noqa: S608 - constant names
    finally:
        con.unregister("audience_listed")
        con.unregister("audience_readings")
        con.execute("drop table audience_opted_out")
    return con.execute(f"select count(distinct phone) from {SUPPRESSED_TABLE}").fetchall()[0][0]  # noqa: S608


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
            readings.extend((phone, e164, region) for region in regions
                            if (e164 := to_e164(phone, region)) is not None)
    return readings


def read_alone(phone: str) -> str | None:
    """The number in E.164 when it is written internationally (+39..., 0039...), else None."""
    international = _INTERNATIONAL.match(phone)
    if not international:
        return None
    return to_e164("+" + phone[international.end():], None)


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
                raise AudienceError(f"{path}:{line}: {len(record)} values, expected {len(header)} "
                                    f"({','.join(header)})")
            phone = read_alone(record[0].strip())
            if phone is None:
                raise AudienceError(f"{path}:{line}: {record[0].strip()!r} is not a valid phone number; "
                                    "write it in international format, e.g. +393471234567")
            reason = record[1].strip() if len(record) > 1 and record[1].strip() else "listed"
            rows.append((phone, reason))
    return rows


def _check_fields(con: duckdb.DuckDBPyConnection, fields: tuple[str, ...]) -> None:
    known = {row[0] for row in con.execute(
        "select column_name from information_schema.columns "
        "where table_schema = 'marts' and table_name = 'customers'").fetchall()}
    for field in fields:
        if field in (*MEMBER_COLUMNS, "phone_e164", "fields_hash"):
            raise AudienceError(f"sms.fields: {field!r} is already sent with every member; remove it")
        if field not in known:
            raise AudienceError(f"sms.fields: unknown field {field!r}; use a marts.customers column, "
                                f"one of: {', '.join(sorted(known))}")
    if len(set(fields)) != len(fields):
        raise AudienceError(f"sms.fields: {list(fields)} lists a field twice")


def _load_calling_codes(con: duckdb.DuckDBPyConnection) -> None:
    """Temp table `audience_calling_codes(prefix '+39', region 'IT')` for a customer with no address.

    A calling code shared by several countries (+1, +7, +44...) maps to its main country: good
    enough for a country column, and it keeps the lookup in SQL instead of a Python parse a row.
    """
    codes = [(f"+{code}", regions[0]) for code, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items()
             if regions and regions[0] != "001"]
    con.register("audience_codes", pa.table({"prefix": [c[0] for c in codes], "region": [c[1] for c in codes]}))
    try:
        con.execute("create or replace temp table audience_calling_codes as select * from audience_codes")
    finally:
        con.unregister("audience_codes")


def quote_identifier(name: str) -> str:
    """A column or view name as a quoted DuckDB identifier: definitions name columns, never write SQL."""
    return exp.to_identifier(name, quoted=True).sql(dialect="duckdb")
