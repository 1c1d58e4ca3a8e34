"""The key data tests pass on a built warehouse, find a repeated row, and (staging) a row without its key."""

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from pipeline.defs.data_tests import DataTest, load_data_tests
from pipeline.store.ingest import ingest_store
from pipeline.warehouse.build import build_all, publish
from tests.fixtures.stores import (
    Store,
    checkout,
    collection,
    customer,
    email_event,
    line,
    metafield,
    order,
    product,
    redaction,
    sms_event,
    store_credit,
    storefront_event,
)

AS_OF = dt.date(2026, 10, 31)
TESTS = load_data_tests()
STAGING_TESTS = [t for t in TESTS if t.table.startswith("staging.")]
# a key test on each staging table (stg_orders also has its total's): unique, and not null
KEY_TESTS = [t for t in STAGING_TESTS if t.name in ("unique_key", "one_row")]
UNIQUE_TESTS = [*KEY_TESTS, *(t for t in TESTS if t.name == "unique_customer_id")]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse with rows in every staging table."""
    tmp_path = tmp_path_factory.mktemp("warehouse")
    store = Store(
        customers=[
            customer(1, phone="+393470000001"),
            metafield(1, 1, "facts", "birth_date", "date", "1990-02-01"),
            store_credit(1, 1, "10.00"),
            customer(2, phone="+393470000002"),
            customer(3),
        ],
        orders=[order(10, 1), line(100, 10, 5), line(101, 10, 6), order(11, 2), line(102, 11, 5)],
        products=[product(5), collection(50, 5, "summer"), collection(51, 5, "sale"), product(6)],
        abandoned_checkouts=[checkout(20, 1, created="2026-10-20T10:00:00Z")],
        sms_events=[
            sms_event("+393470000001", "sent", "2026-10-02T10:00:00Z"),
            sms_event("+393470000001", "clicked", "2026-10-02T11:00:00Z"),
        ],
        redactions=[redaction(3)],
        email_events=[email_event(1, "opened", "2026-10-02T10:00:00Z", 5240029206)],
        storefront_events=[storefront_event(1, "product_viewed", "2026-10-02T10:00:00Z", product=5)],
    )
    directory = store.write(tmp_path / "store")
    (directory / "deletions.jsonl").write_text(
        '{"customer":{"id":"gid://shopify/Customer/2"},"deletedAt":"2026-10-03T10:00:00Z"}\n'
    )
    data_dir = tmp_path / "data"
    ingest_store(directory, data_dir / "raw")
    build_all(data_dir, AS_OF)
    return publish(data_dir)


def violations(warehouse: Path, test: DataTest, added: str | None = None) -> list[tuple]:
    """The rows `test` finds in a copy of its table, with an `added` row: a "repeated" one, or a "null" one."""
    with duckdb.connect() as con:
        con.execute("attach ? as built (read_only)", [str(warehouse)])
        con.execute("create schema staging; create schema marts")
        rows = con.table(f"built.{test.table}")
        extra = {"repeated": rows.limit(1), "null": con.values([None] * len(rows.columns))}
        (rows.union(extra[added]) if added else rows).create(test.table)
        return con.execute(test.sql).fetchall()


def test_every_staging_table_has_a_key_test(warehouse: Path) -> None:
    """Tables: a view's test would compute it a second time each night. stg_order_lines, the one view, has
    a unique line_id by construction (latest_versions over lines joined to stg_orders' unique order_id, which
    tests/warehouse/test_staging.py checks)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = {
            f"staging.{name}": con.table(f"staging.{name}").aggregate("count(*)").fetchall()[0][0]
            for (name,) in con.execute(
                "select table_name from information_schema.tables "
                "where table_schema = 'staging' and table_type = 'BASE TABLE'"
            ).fetchall()
        }
    assert set(rows) == {t.table for t in KEY_TESTS}
    assert all(rows.values()), f"the fixture should put rows in every staging table: {rows}"


@pytest.mark.parametrize("test", STAGING_TESTS + UNIQUE_TESTS[len(KEY_TESTS) :], ids=lambda t: f"{t.table}:{t.name}")
def test_a_built_warehouse_passes(warehouse: Path, test: DataTest) -> None:
    assert test.blocking
    assert violations(warehouse, test) == []


@pytest.mark.parametrize("test", UNIQUE_TESTS, ids=lambda t: f"{t.table}:{t.name}")
def test_a_repeated_row_is_found(warehouse: Path, test: DataTest) -> None:
    assert violations(warehouse, test, "repeated")


@pytest.mark.parametrize("test", KEY_TESTS, ids=lambda t: f"{t.table}:{t.name}")
def test_a_row_without_its_key_is_found(warehouse: Path, test: DataTest) -> None:
    assert violations(warehouse, test, "null")
