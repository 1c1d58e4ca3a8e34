"""GDPR customers/redact: erase a redacted customer's personal data from the raw Parquet batches too.

The marts already hide it, but raw batches are append-only history that would keep it forever.
Each batch holding such a customer is rewritten with those columns nulled (lists emptied),
under a temporary name and then renamed, so a crash leaves either the old file or the new one.
DuckDB streams the rewrite within its memory bound: a batch of five million customers is never
held in memory at once.
"""

import os
from pathlib import Path

import duckdb

from pipeline.settings import DEFAULT_MEMORY_LIMIT
from pipeline.store.ingest import bounded_connection

# The personal data of a customer row (pipeline/store/schema.py); ids, dates and states stay.
NULLED = ("first_name", "last_name", "email", "phone", "default_country", "default_province", "default_city",
          "default_zip")
EMPTIED = ("addresses", "tags")


def scrub_redacted(raw_dir: Path, memory_limit: str = DEFAULT_MEMORY_LIMIT) -> int:
    """Rewrites raw customers/*.parquet without the PII of customers in redactions/*.parquet; returns rows scrubbed.

    Only files with a redacted customer whose data is still there are rewritten, so a second
    call changes nothing and returns 0.
    """
    raw_dir = Path(raw_dir)
    requests = sorted((raw_dir / "redactions").glob("*.parquet"))
    batches = sorted((raw_dir / "customers").glob("*.parquet"))
    if not requests or not batches:
        return 0
    with bounded_connection(raw_dir / ".scrub.spill", memory_limit) as con:
        con.execute("create temp table redacted as select distinct customer_id as id from read_parquet(?) "
                    "where customer_id is not null", [[str(f) for f in requests]])
        return sum(_scrub_batch(con, path) for path in batches)


def _scrub_batch(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Rewrites one batch without the PII of the customers in temp table `redacted`; returns rows scrubbed."""
    columns = [row[0] for row in con.execute("describe select * from read_parquet(?)", [str(path)]).fetchall()]
    nulled = [c for c in NULLED if c in columns]
    emptied = [c for c in EMPTIED if c in columns]
    has_pii = " or ".join([f"{c} is not null" for c in nulled] + [f"len({c}) > 0" for c in emptied])
    rows = con.execute(
        f"select count(*) from read_parquet(?) where id in (select id from redacted) and ({has_pii})",  # noqa: S608 (names from this module)
        [str(path)]).fetchall()[0][0]
    if rows:
        blanks = [f"case when hit then null else {c} end as {c}" for c in nulled]
        blanks += [f"case when hit then [] else {c} end as {c}" for c in emptied]
        hits = "select *, coalesce(id in (select id from redacted), false) as hit from read_parquet(?)"
        _write_atomically(con, f"select * exclude (hit) replace ({', '.join(blanks)}) from ({hits})", path)  # noqa: S608
    return rows


def _write_atomically(con: duckdb.DuckDBPyConnection, query: str, path: Path) -> None:
    """Writes `query` (reading `path` as its one parameter) over `path`: a temporary file, then a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        con.execute(f"copy ({query}) to ? (format parquet)", [str(path), str(tmp)])
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
