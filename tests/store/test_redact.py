"""GDPR scrub of raw customer batches: only redacted customers' PII goes, only files holding them change."""

import datetime as dt
import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from pipeline.store.ingest import StoreError, ingest_file, ingest_store
from pipeline.store.redact import EMPTIED, NULLED, erase_redacted
from pipeline.warehouse.build import build_all
from tests.fixtures.stores import (
    Store,
    address,
    customer,
    mailing_address,
    metafield,
    redaction,
    sms_event,
    store_credit,
)


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
        rows = con.execute(
            "select customer_id, first_name, is_redacted, sms_subscription_status from marts.customers order by 1"
        ).fetchall()
    assert rows == [(1, "Ada", False, "SUBSCRIBED"), (2, None, True, "REDACTED")]


def test_no_redactions_no_change(tmp_path: Path):
    Store(customers=[customer(1)]).write(tmp_path / "store")
    ingest_store(tmp_path / "store", tmp_path / "raw")
    assert scrub_redacted(tmp_path / "raw") == 0
    assert scrub_redacted(tmp_path / "nothing-here") == 0


def test_store_files_under_data_lose_the_redacted_customer_and_their_events(tmp_path: Path):
    data = tmp_path / "data"
    person = customer(
        2, first="Zelmira", phone="347 987 6543", country="IT", coordinates=(45.4642, 9.19), companies=(7,)
    )
    children = [
        metafield(1, 2, "facts", "birth_date", "date", "1985-07-31"),
        store_credit(1, 2, "12.00"),
        metafield(2, 1, "facts", "birth_date", "date", "1990-01-02"),
        # an address line without __typename (its id says MailingAddress), in a town of its own
        {k: v for k, v in mailing_address(1, 2, "IT", "BG", "Zogno", (45.7936, 9.6656)).items() if k != "__typename"},
        mailing_address(2, 1, "IT", "MI", "Milano"),
    ]
    store = Store(
        customers=[customer(1), person, *children],
        redactions=[redaction(2)],
        sms_events=[
            sms_event("+393479876543", "clicked", "2026-10-02T10:00:00Z"),
            sms_event("+39 347 987 6543", "opted_out", "2026-10-03T10:00:00Z"),
            sms_event("+393471234567", "clicked", "2026-10-02T10:00:00Z"),
        ],
    )
    download = store.write(data / "downloads" / "20261101T000000Z")
    inbox = Store(sms_events=store.sms_events, redactions=store.redactions).write(data / "inbox")
    ingest_store(download, data / "raw")
    untouched = (download / "orders.jsonl").read_bytes()

    erased = erase_redacted(data)

    assert erased == {
        "customers_scrubbed": 1,
        "sms_events_dropped": 2,
        "source_lines_scrubbed": 7,
        "customer_children_dropped": 2,
    }
    for folder in (download, inbox):
        events = [json.loads(line)["phone"] for line in (folder / "sms_events.jsonl").read_text().splitlines()]
        assert events == ["+393471234567"]  # the other customer's event stays
    lines = [json.loads(line) for line in (download / "customers.jsonl").read_text().splitlines()]
    assert lines[0] == customer(1)
    assert lines[1]["id"] == "gid://shopify/Customer/2" and lines[1]["firstName"] is None
    assert lines[1]["defaultPhoneNumber"]["phoneNumber"] is None and lines[1]["addresses"] == []
    assert lines[1]["defaultAddress"]["latitude"] is None and lines[1]["companyContactProfiles"] == []
    # the redacted customer's metafield and address are gone; store credit is money, kept as orders are
    assert lines[2:] == [children[1], children[2], children[4]]
    for name, kept in (
        ("customer_metafields", ["gid://shopify/Customer/1"]),
        ("store_credit_accounts", ["gid://shopify/Customer/2"]),
        ("customer_addresses", ["gid://shopify/Customer/1"]),
    ):
        parents = [
            r["_parent_id"]
            for p in sorted((data / "raw" / name).glob("*.parquet"))
            for r in pq.read_table(p).to_pylist()
        ]
        assert parents == kept
    assert (download / "orders.jsonl").read_bytes() == untouched
    # what is kept to recognise the number later is not the number
    everything = b"".join(p.read_bytes() for p in data.rglob("*") if p.is_file() and "raw" in p.parts)
    assert b"9876543" not in everything and b"Zelmira" not in everything and b"1985-07-31" not in everything
    assert b"Zogno" not in everything and b"Zogno" not in (download / "customers.jsonl").read_bytes()
    assert erase_redacted(data) == {
        "customers_scrubbed": 0,
        "sms_events_dropped": 0,
        "source_lines_scrubbed": 0,
        "customer_children_dropped": 0,
    }


def test_a_broken_deletion_line_names_the_file_line_and_field(tmp_path: Path):
    (tmp_path / "deletions.jsonl").write_text(
        '{"customer": {"id": "gid://shopify/Customer/7"}, '
        '"deletedAt": "2026-11-02T10:00:00Z"}\n'
        '{"customer": {"id": "7"}, "deletedAt": "2026-11-02T10:00:00Z"}\n'
    )
    with pytest.raises(StoreError, match=r"deletions.jsonl:2: customer.id is '7', which is not a Shopify id"):
        ingest_file(tmp_path, "deletions.jsonl", tmp_path / "raw")


def test_a_number_another_customer_still_has_keeps_its_events(tmp_path: Path):
    data = tmp_path / "data"
    # 1 and 2 share a number (2 writes it nationally); 3 has one of its own. 2 and 3 ask to be forgotten.
    Store(
        customers=[
            customer(1, phone="+393471234567"),
            customer(2, phone="347 123 4567"),
            customer(3, phone="+393479876543"),
        ],
        sms_events=[
            sms_event("+393471234567", "clicked", "2026-06-01T10:00:00Z"),
            sms_event("+393479876543", "clicked", "2026-06-01T10:00:00Z"),
        ],
        redactions=[redaction(2), redaction(3)],
    ).write(tmp_path / "store")
    ingest_store(tmp_path / "store", data / "raw")

    erased = erase_redacted(data)

    assert erased["customers_scrubbed"] == 2 and erased["sms_events_dropped"] == 1
    events = duckdb.sql("select phone from read_parquet(?)", params=[str(data / "raw/sms_events/*.parquet")])
    assert events.fetchall() == [("+393471234567",)], "customer 1 still has the number: its clicks are its own"
