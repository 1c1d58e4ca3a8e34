"""An empty segment names its cause when there is one to name, and only then."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pytest
from sqlglot import exp

from pipeline.cli import main
from pipeline.segments import SegmentDefinition, create_segment_view, empty_reason
from pipeline.segments.compiler import parse_checked, render, select_members
from tests.conftest import build_warehouse
from tests.fixtures.stores import Store, checkout, collection, customer, line, order, product, sms_event

AS_OF = dt.date(2026, 10, 15)


def small_store() -> Store:
    """Orders up to 1 October, clicks up to 20 September, one open checkout on 1 October."""
    store = Store(timezone="Europe/Rome")
    store.products = [product(42, tags=["Organic"]), collection(7, 42, "summer"), product(43)]
    store.customers = [
        customer(1, tags=["VIP"], country="IT"),
        customer(2, tags=["wholesale"], country="FR", phone="+393471234568"),
        customer(3, phone=None),
    ]
    store.orders = [
        order(10, 1, processed="2026-09-01T10:00:00Z", total="80.00"),
        line(1, 10, 42),
        order(11, 2, processed="2026-10-01T10:00:00Z", total="20.00"),
        line(2, 11, 43),
    ]
    store.abandoned_checkouts = [checkout(1, 2, created="2026-10-01T10:00:00Z")]
    store.sms_events = [sms_event("+393471234567", "clicked", "2026-09-20T10:00:00Z", "autumn")]
    return store


def definition(name: str, query: str) -> SegmentDefinition:
    return SegmentDefinition(
        name=name, description="", query=query, path=Path(f"{name}.yaml"), tree=parse_checked(query)
    )


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("empty")
    path = build_warehouse(small_store(), root / "data", AS_OF)
    with duckdb.connect(str(path)) as con:  # a segment the others require, with no member
        create_segment_view(con, definition("nobody", "customer_tags CONTAINS 'zzz'"), AS_OF)
        create_segment_view(con, definition("everyone", "number_of_orders >= 0"), AS_OF)
    return path


@pytest.fixture(scope="module")
def con(warehouse: Path):
    with duckdb.connect(str(warehouse), read_only=True) as con:
        yield con


def reason(con: duckdb.DuckDBPyConnection, query: str) -> str | None:
    members = select_members(parse_checked(query), AS_OF).subquery("members")
    assert con.execute(render(exp.select(exp.Count(this=exp.Star())).from_(members))).fetchall()[0][0] == 0, (
        f"{query} is not empty: the test would explain nothing"
    )
    known = {"nobody": definition("nobody", "customer_tags CONTAINS 'zzz'")}
    return empty_reason(con, definition("x", query), AS_OF, known)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            "orders_placed MATCHES (date >= -7d)",
            "no order on or after 2026-10-08, the start of this segment's window; the latest order is 2026-10-01",
        ),
        (
            "last_order_date > 2026-10-01",
            "no order on or after 2026-10-02, the start of this segment's window; the latest order is 2026-10-01",
        ),
        (
            "products_purchased MATCHES (collection = 'summer', date BETWEEN 2026-10-05 AND 2026-10-10)",
            "no order on or after 2026-10-05, the start of this segment's window; the latest order is 2026-10-01",
        ),
        (
            "sms_events MATCHES (type = 'clicked', date >= -14d)",
            "no SMS event on or after 2026-10-01, the start of this segment's window; the latest SMS event is "
            "2026-09-20",
        ),
        (
            "abandoned_checkout_date >= -1d",
            "no abandoned checkout on or after 2026-10-14, the start of this segment's window; "
            "the latest abandoned checkout is 2026-10-01",
        ),
        (
            "customer_added_date = today",
            "no customer added on or after 2026-10-15, the start of this segment's window; "
            "the latest customer added is 2025-01-10",
        ),
        (  # a date-time written without an offset is the shop's own: its day as written
            "customer_added_date >= 2026-10-01T10:00:00",
            "no customer added on or after 2026-10-01, the start of this segment's window; "
            "the latest customer added is 2025-01-10",
        ),
        (
            "shopify_email.opened MATCHES (date >= -7d)",  # no email event at all in this store
            "there is no shopify_email.opened event as of 2026-10-15, and this segment's window starts on 2026-10-08",
        ),
    ],
)
def test_a_window_after_the_latest_data_is_named(con: duckdb.DuckDBPyConnection, query: str, expected: str) -> None:
    assert reason(con, query) == expected


def test_an_instant_with_an_offset_names_no_window(con: duckdb.DuckDBPyConnection) -> None:
    """Its day is the shop's zone's to say, which the explanation does not read: no reason, no crash."""
    assert reason(con, "customer_added_date >= 2026-10-01T10:00:00+02:00") is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("customer_tags CONTAINS 'vipp'", "no customer has the tag 'vipp'; did you mean 'VIP'?"),
        ("customer_countries CONTAINS 'ITA'", "no customer has the country 'ITA'; did you mean 'IT'?"),
        ("customer_tags CONTAINS 'newsletter'", "no customer has the tag 'newsletter'"),
        (
            "customer_email_domain = 'exampel.com'",
            "no customer has the email domain 'exampel.com'; did you mean 'example.com'?",
        ),
        (
            "products_purchased MATCHES (collection = 'sumer')",
            "no customer bought a product in the collection 'sumer'; did you mean 'summer'?",
        ),
        (
            "products_purchased MATCHES (tag IN ('organik', 'vegan'))",
            "no customer bought a product tagged 'organik' or 'vegan'",
        ),
        ("products_purchased MATCHES (id = 'gid://shopify/Product/999')", "no customer bought the product 999"),
        (
            "sms_events MATCHES (campaign = 'autum')",
            "no customer's number has an SMS event of the campaign 'autum'; did you mean 'autumn'?",
        ),
        ("sms_events MATCHES (type = 'converted')", "no customer's number has an SMS event of type 'converted'"),
    ],
)
def test_a_value_no_row_has_is_named_with_the_closest_one(
    con: duckdb.DuckDBPyConnection, query: str, expected: str
) -> None:
    assert reason(con, query) == expected


def test_an_empty_required_segment_is_named_with_its_own_reason(con: duckdb.DuckDBPyConnection) -> None:
    assert (
        reason(con, "segments CONTAINS 'nobody' AND amount_spent > 0")
        == "the segment nobody it requires is empty: no customer has the tag 'zzz'"
    )
    assert (
        empty_reason(con, definition("x", "segments CONTAINS 'nobody'"), AS_OF)
        == "the segment nobody it requires is empty"
    )


def test_every_branch_of_an_or_must_have_a_reason(con: duckdb.DuckDBPyConnection) -> None:
    assert reason(con, "customer_tags CONTAINS 'a' OR last_order_date >= 2026-10-10") == (
        "no customer has the tag 'a' and no order on or after 2026-10-10, the start of this segment's window; "
        "the latest order is 2026-10-01"
    )
    assert reason(con, "customer_tags CONTAINS 'a' OR amount_spent = 12345") is None


@pytest.mark.parametrize(
    "query",
    [
        "amount_spent = 12345",  # a value no one has, but not a missing kind of data
        "orders_placed MATCHES (date >= 2026-09-01, amount > 500)",  # orders in the window, none that big
        "last_order_date >= 2026-09-15 AND customer_tags CONTAINS 'VIP'",  # each alone matches someone
        "customer_tags CONTAINS 'wholesale' AND sms_events MATCHES (type = 'clicked')",
        "orders_placed MATCHES (date >= -30d, count >= 2)",
        "segments CONTAINS 'everyone' AND amount_spent > 1000",
    ],
)
def test_an_empty_segment_with_data_in_its_window_gets_no_explanation(
    con: duckdb.DuckDBPyConnection, query: str
) -> None:
    assert reason(con, query) is None


def test_preview_says_why_it_is_empty(warehouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    shutil.copyfile(warehouse, tmp_path / "warehouse.duckdb")
    assert main(["segments", "preview", "--query", "customer_tags CONTAINS 'vipp'", "--data-dir", str(tmp_path)]) == 0
    assert (
        capsys.readouterr().out.splitlines()[0]
        == f"0 customer(s) match as of {AS_OF}: no customer has the tag 'vipp'; did you mean 'VIP'?"
    )
    assert main(["segments", "preview", "--query", "amount_spent = 12345", "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"0 customer(s) match as of {AS_OF}"
