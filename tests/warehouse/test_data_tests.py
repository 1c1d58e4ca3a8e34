"""The staging data tests: each passes on a built warehouse and finds a repeated row and a row without its key."""

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from pipeline.defs.checks import DataTest, load_data_tests
from pipeline.store.ingest import ingest_store
from pipeline.warehouse.build import build_all, publish
from tests.fixtures.stores import Store, checkout, collection, customer, line, order, product, redaction, sms_event

AS_OF = dt.date(2026, 10, 31)
STAGING_TESTS = [t for t in load_data_tests() if t.table.startswith("staging.")]
# a key test on each staging table (stg_orders also has its total's)
KEYED = {t.table for t in STAGING_TESTS if t.name in ("unique_key", "one_row")}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse with rows in every staging table."""
    tmp_path = tmp_path_factory.mktemp("warehouse")
    store = Store(
        customers=[customer(1, phone="+393470000001"), customer(2, phone="+393470000002"), customer(3)],
        orders=[order(10, 1), line(100, 10, 5), line(101, 10, 6), order(11, 2), line(102, 11, 5)],
        products=[product(5), collection(50, 5, "summer"), collection(51, 5, "sale"), product(6)],
        abandoned_checkouts=[checkout(20, 1, created="2026-10-20T10:00:00Z")],
        sms_events=[sms_event("+393470000001", "sent", "2026-10-02T10:00:00Z"),
                    sms_event("+393470000001", "clicked", "2026-10-02T11:00:00Z")],
        redactions=[redaction(3)])
    directory = store.write(tmp_path / "store")
    (directory / "deletions.jsonl").write_text(
        '{"customer":{"id":"gid://shopify/Customer/2"},"deletedAt":"2026-10-03T10:00:00Z"}\n')
    data_dir = tmp_path / "data"
    ingest_store(directory, data_dir / "raw")
    build_all(data_dir, AS_OF)
    return publish(data_dir)


def violations(warehouse: Path, test: DataTest, change: str | None = None) -> list[tuple]:
    """The rows `test` finds in a copy of its table, after `change` (SQL over `copy`)."""
    with duckdb.connect() as con:
        con.execute("attach ? as built (read_only)", [str(warehouse)])
        con.execute("create schema staging")
        schema, table = test.table.split(".")
        con.execute(f"create table {test.table} as from built.{schema}.{table}")  # noqa: S608 - names from sql/tests
        if change:
            con.execute(change.replace("copy", test.table))
        return con.execute(test.sql).fetchall()


def test_every_staging_table_has_a_key_test(warehouse: Path) -> None:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = {f"staging.{row[0]}" for row in con.execute(
            "select table_name from information_schema.tables where table_schema = 'staging'").fetchall()}
        empty = [t for t in sorted(tables) if not con.execute(f"select count(*) from {t}").fetchall()[0][0]]  # noqa: S608
    assert tables == KEYED
    assert not empty, "the fixture should put rows in every staging table"


@pytest.mark.parametrize("test", STAGING_TESTS, ids=lambda t: f"{t.table}:{t.name}")
def test_a_built_warehouse_passes(warehouse: Path, test: DataTest) -> None:
    assert test.blocking
    assert violations(warehouse, test) == []


@pytest.mark.parametrize("test", [t for t in STAGING_TESTS if t.table in KEYED and t.name != "non_negative_total"],
                         ids=lambda t: f"{t.table}:{t.name}")
def test_a_repeated_row_or_a_row_without_its_key_is_found(warehouse: Path, test: DataTest) -> None:
    assert violations(warehouse, test, "insert into copy from copy limit 1")
    assert violations(warehouse, test, "insert into copy default values")
