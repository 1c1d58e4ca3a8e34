"""Who of a segment may get texts: consent, a valid number, no suppression or redaction, one recipient a number.

The rules themselves are pipeline/warehouse/reach.py's, which `can_receive_sms` applies to every customer.
Everything runs as SQL over the build warehouse, so it stays fast at a million customers. The
result is the temp table `audience_eligible` on the caller's connection, one row per number.
"""

from dataclasses import dataclass
from pathlib import Path

import duckdb
from sqlglot import exp

from pipeline.segments.catalogue import MEMBER_COLUMNS, SEGMENT_NAME
from pipeline.sqlbuild import call, column, identifier, table, temp, to_sql
from pipeline.warehouse.reach import REASONS, AudienceError, classify


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
    counts = classify(con, exp.select("customer_id").from_(table(segment, "segments")), suppressions_csv)
    con.execute(to_sql(temp("audience_eligible", _eligible_members(fields))))
    con.execute("drop table audience_classified")
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
