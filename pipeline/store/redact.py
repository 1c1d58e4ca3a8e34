"""GDPR customers/redact: erase a redacted customer's personal data from everything extraction keeps.

The marts already hide it, but raw batches are append-only history that would keep it forever, and
the store files under data/ (inbox webhooks, Shopify downloads, the demo store) are read again.
So each of them is rewritten without it:
- raw customers/*.parquet: the customer's row keeps its id, dates and states, the PII is nulled
  (lists emptied);
- raw sms_events/*.parquet: an event on a redacted customer's number loses its row. The number is
  the event's only key (a required column), so a blanked row would belong to no one and count for
  nothing; dropping it is what blanking would mean;
- raw customer_metafields and customer_addresses: a redacted customer's rows are dropped (a metafield
  may hold a birth date, an address says where they live); store credit accounts are money and stay,
  as orders do;
- store JSONL files under data/: the same, line by line (customer lines blanked, their metafield and
  address lines and event lines dropped).
A batch is rewritten under a temporary name and then renamed, so a crash leaves either the old file
or the new one. DuckDB streams the rewrite within its memory bound: a batch of five million customers
is never held in memory at once.

Once a customer's row is scrubbed, their number is gone from raw; an event arriving later on it
must still be dropped. So the SHA-256 of the digits of its E.164 form is kept in
raw/erased_numbers.parquet: never the number itself. A hash of a ten-digit number can be reversed
by trying them all, so it is a pseudonym, not anonymous data: it is the least that keeps the
number from coming back, and it never leaves data/.
"""

import hashlib
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from sqlglot import exp

from pipeline.phones import to_e164
from pipeline.settings import DEFAULT_MEMORY_LIMIT
from pipeline.sqlbuild import call, column, identifier, to_sql
from pipeline.store.ingest import bounded_connection
from pipeline.store.schema import resource

# The personal data of a customer row (pipeline/store/schema.py); ids, dates and states stay.
NULLED = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "default_country",
    "default_province",
    "default_city",
    "default_zip",
    "default_latitude",
    "default_longitude",
)
EMPTIED = ("addresses", "tags", "company_contacts")
# A customer's metafields may hold anything about them (a birth date), and their addresses say where they
# live: a redacted customer's are dropped. Their store credit accounts are money, which an anonymous row
# keeps, like its orders.
ERASED_CHILDREN = (resource("customer_metafields"), resource("customer_addresses"))
ERASED_NUMBERS = "erased_numbers.parquet"  # in the raw folder: sha256 of the digits of erased numbers
# Store files under data/ that hold customers or events: the inbox, Shopify downloads, the demo store
SOURCE_FOLDERS = ("inbox", "downloads", "source")


def number_digest(phone: str) -> str | None:
    """The SHA-256 of a number's digits: '+39 347 123 4567' and '+393471234567' are the same number."""
    digits = re.sub(r"[^0-9]", "", phone or "")
    return hashlib.sha256(digits.encode()).hexdigest() if digits else None


def erase_redacted(data_dir: Path, memory_limit: str = DEFAULT_MEMORY_LIMIT) -> dict[str, int]:
    """Erases redacted customers from raw Parquet and the store files under `data_dir`; returns counts.

    The numbers are learnt from raw customers before their rows are scrubbed, and the store files
    go before raw, so a run killed half way still knows, next time, what it has to erase.
    """
    data_dir = Path(data_dir)
    raw = data_dir / "raw"
    requests = sorted((raw / "redactions").glob("*.parquet"))
    if not requests:
        return {
            "customers_scrubbed": 0,
            "sms_events_dropped": 0,
            "source_lines_scrubbed": 0,
            "customer_children_dropped": 0,
        }
    with bounded_connection(raw / ".scrub.spill", memory_limit) as con:
        con.execute(
            "create temp table redacted as select distinct customer_id as id from read_parquet(?) "
            "where customer_id is not null",
            [[str(f) for f in requests]],
        )
        numbers = _remember_numbers(con, raw)
        redacted = {row[0] for row in con.execute("select id from redacted").fetchall()}
        source_lines = _scrub_sources(data_dir, raw, redacted, numbers)
        con.register("erased_numbers", pa.table({"digest": sorted(numbers)}))
        # an event whose number's digits hash to an erased number (DuckDB's sha256 of the same digits)
        con.execute(
            "create temp macro erased_number(phone) as "
            "sha256(regexp_replace(phone, '[^0-9]', '', 'g')) in (select digest from erased_numbers)"
        )
        events = sum(_drop_events(con, path) for path in sorted((raw / "sms_events").glob("*.parquet")))
        customers = sum(_scrub_batch(con, path) for path in sorted((raw / "customers").glob("*.parquet")))
        children = sum(
            _drop_children(con, path)
            for child in ERASED_CHILDREN
            for path in sorted((raw / child.name).glob("*.parquet"))
        )
    return {
        "customers_scrubbed": customers,
        "sms_events_dropped": events,
        "source_lines_scrubbed": source_lines,
        "customer_children_dropped": children,
    }


def _remember_numbers(con: duckdb.DuckDBPyConnection, raw: Path) -> set[str]:
    """The digests of every number erased so far, with those of redacted customers still in raw added."""
    kept = raw / ERASED_NUMBERS
    known = set(pq.read_table(kept).column("digest").to_pylist()) if kept.exists() else set()
    batches = sorted((raw / "customers").glob("*.parquet"))
    if not batches:
        return known
    files = [str(f) for f in batches]
    pairs = con.execute(
        "select distinct phone, default_country from read_parquet(?, union_by_name = true) "
        "where phone is not null and id in (select id from redacted)",
        [files],
    ).fetchall()
    found = _digests(pairs)
    # A number another customer also has is theirs too: its events stay, for them. Only customers whose
    # number ends like an erased one are parsed, so this costs nothing at a million customers.
    tails = sorted({digits[-7:] for phone, _ in pairs if (digits := re.sub(r"[^0-9]", "", phone))})
    sharing = con.execute(
        "select distinct phone, default_country from read_parquet(?, union_by_name = true) "
        "where phone is not null and id not in (select id from redacted) "
        "and right(regexp_replace(phone, '[^0-9]', '', 'g'), 7) in (select unnest(?))",
        [files, tails],
    ).fetchall()
    in_use = _digests(sharing)
    if (known | found) - in_use != known:
        known = (known | found) - in_use
        tmp = kept.with_name(f".{kept.name}.tmp")
        pq.write_table(pa.table({"digest": sorted(known)}), tmp)
        _replace(tmp, kept)
    return known


def _digests(pairs: list[tuple[str, str | None]]) -> set[str]:
    """The digests of (number as written, default address country) pairs.

    Events carry E.164, so the E.164 form is the number; the digits as written only stand in for one
    that does not parse, as the national digits of one number can be the full digits of another.
    """
    found = {number_digest(to_e164(phone, (region or "").strip().upper() or None) or phone) for phone, region in pairs}
    found.discard(None)
    return found


def _scrub_batch(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Rewrites one batch without the PII of the customers in temp table `redacted`; returns rows scrubbed."""
    columns = [row[0] for row in con.execute("describe select * from read_parquet(?)", [str(path)]).fetchall()]
    nulled = [c for c in NULLED if c in columns]
    emptied = [c for c in EMPTIED if c in columns]
    has_pii = exp.or_(
        *(column(c).is_(exp.null()).not_() for c in nulled), *(call("len", column(c)) > 0 for c in emptied)
    )
    redacted = exp.condition("id in (select id from redacted)")
    rows = con.execute(
        to_sql(exp.select("count(*)").from_("read_parquet(?)").where(redacted, exp.paren(has_pii))), [str(path)]
    ).fetchall()[0][0]
    if rows:
        hits = exp.select("*", exp.alias_(exp.func("coalesce", redacted, exp.false()), "hit")).from_("read_parquet(?)")
        blanks = {c: exp.null() for c in nulled} | {c: exp.Array() for c in emptied}
        replaced = [
            exp.alias_(exp.case().when(column("hit"), blank).else_(column(c)), identifier(c))
            for c, blank in blanks.items()
        ]
        _write_atomically(
            con, exp.select(exp.Star(except_=[column("hit")], replace=replaced)).from_(hits.subquery()), path
        )
    return rows


def _drop_children(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Rewrites one batch of a customer's child lines without those of redacted customers; returns rows dropped."""
    rows = con.execute(
        "select count(*) from read_parquet(?) where _parent_id in (select id from redacted)", [str(path)]
    ).fetchall()[0][0]
    if rows:
        kept = (
            exp.select("*")
            .from_("read_parquet(?)")
            .where("not coalesce(_parent_id in (select id from redacted), false)")
        )
        _write_atomically(con, kept, path)
    return rows


def _drop_events(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Rewrites one sms_events batch without the events on an erased number; returns events dropped."""
    rows = con.execute("select count(*) from read_parquet(?) where erased_number(phone)", [str(path)]).fetchall()[0][0]
    if rows:
        kept = exp.select("*").from_("read_parquet(?)").where("not coalesce(erased_number(phone), false)")
        _write_atomically(con, kept, path)
    return rows


def _scrub_sources(data_dir: Path, raw: Path, redacted: set[str], numbers: set[str]) -> int:
    """Scrubs the store files under data/ that may hold someone to erase; returns lines changed.

    A marker in raw/ records what the last complete pass erased: while that is unchanged, only
    files written since it are read again, so a night without a new redaction does not reread a
    shop's downloads. Orders and checkouts name customers by id only, and are left as they are.
    """
    marker = raw / ".sources_erased"
    erased = hashlib.sha256(json.dumps([sorted(redacted), sorted(numbers)]).encode()).hexdigest()
    since = marker.stat().st_mtime if marker.exists() and marker.read_text() == erased else None
    files = [
        path
        for folder in SOURCE_FOLDERS
        for path in sorted((data_dir / folder).rglob("*.jsonl"))
        if path.name in ("customers.jsonl", "sms_events.jsonl")
    ]
    changed = sum(
        _scrub_source(path, redacted, numbers) for path in files if since is None or path.stat().st_mtime >= since
    )
    marker.write_text(erased)
    return changed


def _scrub_source(path: Path, redacted: set[str], numbers: set[str]) -> int:
    """Rewrites a store JSONL file without redacted customers' PII and erased numbers' events; returns lines changed.

    Customer lines are blanked as raw rows are; event lines on an erased number are dropped. Only
    lines naming a redacted customer's id are parsed in a customers file, and the file is written
    only when a line changes: a big download holding no one to erase costs one read.
    """
    events = path.name == "sms_events.jsonl"
    wanted = re.compile("|".join(re.escape(json.dumps(gid)) for gid in sorted(redacted)).encode()) if redacted else None
    with open(path, "rb") as source:
        changed = sum(_scrubbed_line(line, events, wanted, redacted, numbers) != line for line in source)
    if not changed:
        return 0
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(path, "rb") as source, open(tmp, "wb") as out:
            out.writelines(_scrubbed_line(line, events, wanted, redacted, numbers) for line in source)
        _replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return changed


def _scrubbed_line(
    line: bytes, events: bool, wanted: re.Pattern | None, redacted: set[str], numbers: set[str]
) -> bytes:
    if events:
        try:
            phone = json.loads(line).get("phone")
        except (ValueError, AttributeError):
            return line  # not an event line: the ingest reports it
        return b"" if isinstance(phone, str) and number_digest(phone) in numbers else line
    if wanted is None or not wanted.search(line):
        return line
    record = json.loads(line)
    if record.get("__parentId") in redacted:
        # a child line is told by __typename, or without one by its id's type, as the ingest tells it
        kind = record.get("__typename") or str(record.get("id")).removeprefix("gid://shopify/").split("/")[0]
        return b"" if kind in {c.typename for c in ERASED_CHILDREN} else line
    if record.get("id") not in redacted:
        return line
    for field in resource("customers").columns:
        if field.name in NULLED or field.name in EMPTIED:
            _blank(record, field.path, [] if field.name in EMPTIED else None)
    return (json.dumps(record) + "\n").encode()


def _blank(record: dict, path: Iterable[str], blank: list | None) -> None:
    *parents, leaf = path
    for key in parents:
        record = record.get(key) if isinstance(record, dict) else None
    if isinstance(record, dict) and leaf in record:
        record[leaf] = blank


def _write_atomically(con: duckdb.DuckDBPyConnection, query: exp.Select, path: Path) -> None:
    """Writes `query` (reading `path` as its one parameter) over `path`: a temporary file, then a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    copy = exp.Copy(
        this=query.subquery(),
        kind=False,
        files=[exp.Placeholder()],
        params=[exp.CopyParameter(this=exp.var("format"), expression=exp.var("parquet"))],
    )
    try:
        con.execute(to_sql(copy), [str(path), str(tmp)])
        _replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _replace(tmp: Path, path: Path) -> None:
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
