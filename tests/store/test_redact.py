"""GDPR scrub of raw customer batches: only redacted customers' PII goes, only files holding them change."""

import datetime as dt
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from pipeline.store.ingest import ingest_file, ingest_store
from pipeline.store.redact import EMPTIED, NULLED, erase_redacted
from pipeline.warehouse.build import build_all
from tests.fixtures.stores import Store, address, customer, redaction


def scrub_redacted(raw: Path) -> int:
    """Raw customer rows scrubbed by the erasure of the data folder holding `raw`."""
    return erase_redacted(raw.parent)["customers_scrubbed"]


def customer_rows(raw: Path) -> dict[tuple[str, str], dict]:
    """(batch file, customer GID) -> the raw row."""
    rows = {}
    for path in sorted((raw / "customers").glob("*.parquet")):
        for row in pq.read_table(path).to_pylist():
            rows[(path.name, row["id"])] = row
    return rows


def column_types(path: Path) -> list[tuple[str, str]]:
    """Names and types, not nullability: a writer marks a column without nulls as required."""
    return [(field.name, str(field.type)) for field in pq.read_schema(path)]


def test_scrub_nulls_only_redacted_customers_pii_in_only_their_files(tmp_path: Path):
    raw, store_dir = tmp_path / "raw", tmp_path / "store"
    tagged = {"tags": ["vip"], "addresses": [address("IT", "MI", "Milano"), address("FR", None, "Paris")]}
    Store(customers=[customer(1, **tagged), customer(2, **tagged)], redactions=[redaction(2)]).write(store_dir)
    ingest_store(store_dir, raw)
    # a later batch with only customer 3: it must not be rewritten
    Store(customers=[customer(3, updated="2026-01-01T00:00:00Z")]).write(tmp_path / "later")
    ingest_file(tmp_path / "later", "customers.jsonl", raw)
    files = {p.name: p.read_bytes() for p in (raw / "customers").glob("*.parquet")}
    schemas = {p.name: column_types(p) for p in (raw / "customers").glob("*.parquet")}
    before = customer_rows(raw)

    assert scrub_redacted(raw) == 1

    after = customer_rows(raw)
    assert list(after) == list(before)  # the same rows in the same order
    assert {p.name: column_types(p) for p in (raw / "customers").glob("*.parquet")} == schemas
    for key, row in after.items():
        if key[1] == "gid://shopify/Customer/2":
            assert all(row[c] is None for c in NULLED)
            assert all(row[c] == [] for c in EMPTIED)
            kept = {c: v for c, v in before[key].items() if c not in (*NULLED, *EMPTIED)}
            assert {c: row[c] for c in kept} == kept
            assert row["sms_marketing_state"] == "SUBSCRIBED"
        else:
            assert row == before[key]
    holding = {name for name, gid in before if gid == "gid://shopify/Customer/2"}
    changed = {p.name for p in (raw / "customers").glob("*.parquet") if p.read_bytes() != files[p.name]}
    assert len(files) == 2 and changed == holding
    assert not list((raw / "customers").glob(".*"))  # no temporary file left behind

    assert scrub_redacted(raw) == 0  # already clean: nothing rewritten
    assert {p.name for p in (raw / "customers").glob("*.parquet") if p.read_bytes() != files[p.name]} == changed


def test_a_scrubbed_raw_still_builds_the_warehouse(tmp_path: Path):
    data = tmp_path / "data"
    Store(customers=[customer(1), customer(2)], redactions=[redaction(2)]).write(tmp_path / "store")
    ingest_store(tmp_path / "store", data / "raw")
    assert scrub_redacted(data / "raw") == 1
    build_all(data, dt.date(2026, 10, 31))
    with duckdb.connect(str(data / "build" / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("select customer_id, first_name, is_redacted, sms_subscription_status "
                           "from marts.customers order by 1").fetchall()
    assert rows == [(1, "Ada", False, "SUBSCRIBED"), (2, None, True, "REDACTED")]


def test_no_redactions_no_change(tmp_path: Path):
    Store(customers=[customer(1)]).write(tmp_path / "store")
    ingest_store(tmp_path / "store", tmp_path / "raw")
    assert scrub_redacted(tmp_path / "raw") == 0
    assert scrub_redacted(tmp_path / "nothing-here") == 0
