"""Staging deduplication across extraction batches: which version of a record wins, and which line items
come with an order. Each store below is one batch, ingested in the order given."""

import datetime as dt
from decimal import Decimal
from pathlib import Path

import duckdb

from pipeline.store.ingest import ingest_store
from pipeline.warehouse.build import build_all, publish
from tests.fixtures.stores import Store, customer, line, order

AS_OF = dt.date(2026, 10, 31)


def build(tmp_path: Path, *batches: Store) -> Path:
    data_dir = tmp_path / "data"
    for n, store in enumerate(batches):
        ingest_store(store.write(tmp_path / f"batch{n}"), data_dir / "raw")
    build_all(data_dir, AS_OF)
    return publish(data_dir)


def query(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def without_updated_at(record: dict) -> dict:
    return record | {"updatedAt": None}


def test_a_line_listed_twice_in_one_batch_keeps_the_later_line(tmp_path: Path) -> None:
    path = build(
        tmp_path,
        Store(
            customers=[customer(1)],
            orders=[
                order(100, 1),
                order(101, 1),
                line(5001, 100, 42, quantity=1),
                line(5001, 100, 42, quantity=3),  # the same line twice
                line(5002, 100, 42, quantity=1),
                line(5002, 101, 43, quantity=2),  # one id under two orders
                line(5003, 101, 43, quantity=4),
            ],
        ),
    )
    assert query(path, "select line_id, order_id, quantity from staging.stg_order_lines order by line_id") == [
        (5001, 100, 3),
        (5002, 101, 2),
        (5003, 101, 4),
    ]


def test_lines_come_from_the_batch_of_the_winning_order_version(tmp_path: Path) -> None:
    first = Store(
        customers=[customer(1)],
        orders=[
            order(100, 1, updated="2026-10-01T10:00:00Z"),
            line(5001, 100, 42, quantity=1),
            line(5002, 100, 43),
            order(101, 1, updated="2026-10-05T10:00:00Z"),
            line(5003, 101, 42, quantity=1),
        ],
    )
    second = Store(
        customers=[customer(1)],
        orders=[
            order(100, 1, updated="2026-10-02T10:00:00Z"),
            line(5001, 100, 42, quantity=5),  # 5002 removed
            order(101, 1, updated="2026-10-03T10:00:00Z"),
            line(5003, 101, 42, quantity=9),  # older than the first
        ],
    )
    path = build(tmp_path, first, second)
    assert query(path, "select line_id, order_id, quantity from staging.stg_order_lines order by line_id") == [
        (5001, 100, 5),
        (5003, 101, 1),
    ]


def test_order_versions_tie_break_on_batch_then_line_and_a_missing_updated_at_loses(tmp_path: Path) -> None:
    at = "2026-10-02T10:00:00Z"
    first = Store(
        customers=[customer(1)],
        orders=[
            order(200, 1, updated=at, total="1.00"),
            line(6000, 200, 42),
            order(201, 1, updated=at, total="1.00"),
            order(201, 1, updated=at, total="2.00"),
            order(202, 1, updated=at, total="6.00"),
            line(6001, 202, 42),
        ],
    )
    second = Store(
        customers=[customer(1)],
        orders=[
            order(200, 1, updated=at, total="3.00"),
            line(6002, 200, 43),  # same updatedAt: the later batch wins
            without_updated_at(order(202, 1, total="7.00")),
            line(6003, 202, 43),  # no updatedAt: never wins
        ],
    )
    path = build(tmp_path, first, second)
    assert query(path, "select order_id, order_total from staging.stg_orders order by order_id") == [
        (200, Decimal("3.00")),
        (201, Decimal("2.00")),
        (202, Decimal("6.00")),
    ]
    assert query(path, "select line_id, order_id from staging.stg_order_lines order by line_id") == [
        (6001, 202),
        (6002, 200),
    ]


def test_customer_versions_tie_break_on_batch_then_line(tmp_path: Path) -> None:
    at = "2026-03-01T00:00:00Z"
    first = Store(
        customers=[
            customer(1, updated=at, tags=["a"]),
            customer(2, updated=at, tags=["a"]),
            customer(2, updated=at, tags=["b"]),
            customer(3, updated=at, tags=["a"]),
        ]
    )
    second = Store(customers=[customer(1, updated=at, tags=["c"]), without_updated_at(customer(3, tags=["d"]))])
    path = build(tmp_path, first, second)
    assert query(path, "select customer_id, tags from staging.stg_customers order by customer_id") == [
        (1, ["c"]),
        (2, ["b"]),
        (3, ["a"]),
    ]
