"""GDPR customers/redact: erase a redacted customer's personal data from the raw Parquet batches too.

The marts already hide it, but raw batches are append-only history that would keep it forever.
Each batch holding such a customer is rewritten with those columns nulled (lists emptied),
under a temporary name and then renamed, so a crash leaves either the old file or the new one.
"""

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

# The personal data of a customer row (pipeline/store/schema.py); ids, dates and states stay.
NULLED = ("first_name", "last_name", "email", "phone", "default_country", "default_province", "default_city",
          "default_zip")
EMPTIED = ("addresses", "tags")


def scrub_redacted(raw_dir: Path) -> int:
    """Rewrites raw customers/*.parquet without the PII of customers in redactions/*.parquet; returns rows scrubbed.

    Only files with a redacted customer whose data is still there are rewritten, so a second
    call changes nothing and returns 0.
    """
    raw_dir = Path(raw_dir)
    redacted = redacted_ids(raw_dir)
    if not len(redacted):
        return 0
    scrubbed = 0
    for path in sorted((raw_dir / "customers").glob("*.parquet")):
        table = pq.read_table(path)
        hit = pc.fill_null(pc.is_in(table["id"], value_set=redacted), False)
        dirty = pc.and_(hit, _has_pii(table))
        rows = pc.sum(dirty).as_py() or 0
        if not rows:
            continue
        for name in (*NULLED, *EMPTIED):
            if name not in table.column_names:
                continue
            column = table[name]
            blank = pa.scalar([] if name in EMPTIED else None, type=column.type)
            table = table.set_column(table.column_names.index(name), name, pc.if_else(hit, blank, column))
        _write_atomically(table, path)
        scrubbed += rows
    return scrubbed


def redacted_ids(raw_dir: Path) -> pa.Array:
    """The customer GIDs of every customers/redact request ingested so far."""
    files = sorted((Path(raw_dir) / "redactions").glob("*.parquet"))
    ids = [pq.read_table(f, columns=["customer_id"])["customer_id"] for f in files]
    return pc.unique(pa.chunked_array(ids, type=pa.string())).drop_null() if ids else pa.array([], pa.string())


def _has_pii(table: pa.Table) -> pa.ChunkedArray | pa.Array:
    present = pa.array([False] * table.num_rows)
    for name in NULLED:
        if name in table.column_names:
            present = pc.or_(present, pc.is_valid(table[name]))
    for name in EMPTIED:
        if name in table.column_names:
            present = pc.or_(present, pc.fill_null(pc.greater(pc.list_value_length(table[name]), 0), False))
    return present


def _write_atomically(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        pq.write_table(table, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
