"""marts.customers against the independent oracle, on hand-made stores full of traps."""

import datetime as dt
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pytest

from tests.fixtures.stores import (
    Store,
    address,
    checkout,
    collection,
    customer,
    line,
    mailing_address,
    metafield,
    order,
    product,
    redaction,
    sms_event,
    store_credit,
)
from tests.oracle import Oracle

AS_OF = dt.date(2026, 10, 31)


def trap_store() -> Store:
    """Every rule the spec says a reader must honour, each in one or two records."""
    return Store(
        timezone="Europe/Rome",
        customers=[
            # a metafield line before its customer, without __typename (its id says Metafield)
            {
                k: v
                for k, v in metafield(
                    5, 1, "custom", "badges", "list.single_line_text_field", '["Gold", "Early, Bird"]'
                ).items()
                if k != "__typename"
            },
            customer(1, tags=["VIP", "newsletter"]),
            {k: v for k, v in store_credit(3, 1, "5.00").items() if k != "__typename"},
            # listed twice: the later updatedAt wins (new tag, unsubscribed)
            customer(2, phone="347 123 4568", tags=["old"], updated="2026-01-01T00:00:00Z"),
            customer(
                3,
                phone="+1 (212) 555-0142",
                country="US",
                province="NY",
                city="New York City",
                addresses=[
                    address("US", "NY", "New York City"),
                    address("CA", "ON", "Toronto"),
                    address("GB", None, "London"),
                ],
            ),
            customer(4, phone="12345", sms_state="PENDING", email="no-at-sign"),
            customer(5, phone=None, email=None, country=None),
            customer(6, created="2026-11-05T10:00:00Z"),  # created after the evaluation date
            customer(7, sms_state="WEIRD", email_state="INVALID"),
            customer(8, phone="+393471234567"),  # shares customer 1's number
            customer(9),  # redacted
            customer(2, phone="347 123 4568", tags=["new"], sms_state="UNSUBSCRIBED", updated="2026-03-01T00:00:00Z"),
            # the Admin API's fields: lower case, a repeated company, the antimeridian, consent changed at
            # 23:15 UTC on Oct 30 (Oct 31 in Rome)
            customer(
                10,
                spend_tier="high",
                subscriber="ACTIVE",
                companies=(5, 3, 5),
                coordinates=(-16.5, 179.9),
                sms_updated="2026-10-30T23:15:00Z",
            ),
            # no tier, coordinates off the globe, a contact of something that is not a company
            {
                **customer(11, spend_tier=None, subscriber="PAUSED", coordinates=(95.0, 10.0)),
                "companyContactProfiles": [{"company": {"id": "gid://shopify/Customer/4"}}],
            },
            # values the reference does not list; no phone, so no consent date
            customer(12, spend_tier="ULTRA", subscriber="SOMEDAY", phone=None, coordinates=(0.0, -180.0)),
            customer(13, companies=(8,), coordinates=(45.46, 9.19)),  # redacted
            metafield(1, 10, "facts", "birth_date", "date", "1992-02-29"),
            metafield(2, 10, "custom", "vip", "boolean", "true"),
            metafield(3, 10, "custom", "points", "number_integer", "120"),
            metafield(4, 10, "custom", "points", "number_integer", "150"),  # the same one again: the last wins
            metafield(6, 13, "facts", "birth_date", "date", "1980-05-05"),  # a redacted customer's
            metafield(7, 2, "custom", "last_visit", "date_time", "2026-10-30T23:15:00Z"),  # Oct 31 in Rome
            metafield(8, 2, "custom", "points", "number_integer", "lots"),  # does not read as its type
            store_credit(1, 10, "25.50"),
            store_credit(2, 10, "0.00", "usd"),
            # addressesV2 lines: the default among them (one address), another country without coordinates
            # (its code untrimmed, lower case), a third geocoded; a redacted customer's; an address line
            # before its customer, without __typename, of a customer without a default address; one off the globe
            customer(14, addresses=[], coordinates=(45.4642, 9.19)),
            {**mailing_address(1, 14, "IT", "MI", "Milano", (45.4642, 9.19)), "zip": "20100"},
            mailing_address(2, 14, " fr ", None, "Paris"),
            mailing_address(3, 14, "US", "NY", "New York City", (40.7128, -74.006)),
            mailing_address(4, 13, "IT", "MI", "Milano", (45.46, 9.19)),
            {
                k: v
                for k, v in mailing_address(5, 15, "DE", None, "Berlin", (52.52, 13.405)).items()
                if k != "__typename"
            },
            customer(15, country=None, addresses=[]),
            mailing_address(6, 15, "DE", None, "Berlin", (95.0, 13.4)),
        ],
        orders=[
            line(5001, 100, 42, quantity=2, amount="59.90"),  # the child comes before its parent
            order(100, 1, total="59.90", processed="2026-10-01T21:30:00Z"),
            # 23:30 UTC on Oct 31 is Nov 1 in Rome: after the evaluation date
            order(101, 1, total="10.00", processed="2026-10-31T23:30:00Z"),
            # 23:15 UTC on Oct 30 is 00:15 on Oct 31 in Rome (UTC+1 since the DST change of Oct 25)
            order(102, 2, total="0.10", processed="2026-10-30T23:15:00Z"),
            # 22:30 UTC on Mar 28 is Mar 28 23:30 in Rome, before the spring DST change
            order(103, 2, total="0.20", processed="2026-03-28T22:30:00Z"),
            order(104, 3, total="100.00", test=True),
            order(105, 3, total="100.00", cancelled="2026-10-02T10:00:00Z"),
            order(106, 3, total="33.33", cancelled="2026-11-03T10:00:00Z"),  # cancelled after: still counted
            order(107, 3, total="80.00", current="70.005"),  # refunded: the current total counts
            order(108, 3, total="80.00", current=None),  # no current total: falls back to the total
            order(109, None, total="5.00"),  # a guest order
            order(110, 7, total="20.00", updated="2026-10-01T10:00:00Z"),
            order(110, 7, total="20.00", updated="2026-10-05T10:00:00Z", cancelled="2026-10-05T10:00:00Z"),
            line(5002, 110, 43),
            order(111, 9, total="12.00"),
            order(112, 99, total="7.00"),  # a customer we never heard of
        ],
        products=[product(42, tags=["Cotton"]), collection(1, 42, "summer"), collection(2, 43, "winter"), product(43)],
        abandoned_checkouts=[
            checkout(1, 1, created="2026-10-20T10:00:00Z"),
            checkout(2, 1, created="2026-10-25T10:00:00Z", completed="2026-10-26T10:00:00Z"),
            checkout(3, 2, created="2026-10-29T10:00:00Z", completed="2026-11-02T10:00:00Z"),
            checkout(4, 3, created="2026-11-01T10:00:00Z"),
        ],
        sms_events=[sms_event("+393471234567", "clicked", "2026-10-15T10:00:00Z")],
        redactions=[redaction(9), redaction(13)],
    )


def marts_customers(path: Path) -> pl.DataFrame:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.sql("select * from marts.customers order by customer_id").pl()


def assert_same_customers(ours: pl.DataFrame, oracle: pl.DataFrame) -> None:
    assert ours.columns[: len(oracle.columns)] == oracle.columns or set(oracle.columns) <= set(ours.columns)
    ours = ours.select(oracle.columns)
    for column in oracle.columns:
        mine, theirs = ours[column].to_list(), oracle[column].to_list()
        assert mine == theirs, f"marts.customers.{column} differs from the oracle"


def test_trap_store_matches_the_oracle(tmp_path: Path, warehouse) -> None:
    store_dir = trap_store().write(tmp_path / "store")
    ours = marts_customers(warehouse(store_dir, AS_OF))
    assert_same_customers(ours, Oracle(store_dir, AS_OF).customers)


def test_trap_store_rules_hold(tmp_path: Path, warehouse) -> None:
    """The oracle could share a misreading with the models: pin the spec's rules by hand too."""
    store_dir = trap_store().write(tmp_path / "store")
    rows = {r["customer_id"]: r for r in marts_customers(warehouse(store_dir, AS_OF)).to_dicts()}
    assert 6 not in rows and 99 not in rows
    assert rows[1]["amount_spent"] == Decimal("59.90") and rows[1]["number_of_orders"] == 1
    assert rows[1]["first_order_date"] == dt.date(2026, 10, 1)  # 21:30 UTC is 23:30 in Rome
    assert rows[2]["customer_tags"] == ["new"] and rows[2]["sms_subscription_status"] == "UNSUBSCRIBED"
    assert rows[2]["last_order_date"] == dt.date(2026, 10, 31) and rows[2]["amount_spent"] == Decimal("0.30")
    assert rows[2]["phone_e164"] == "+393471234568"
    assert rows[3]["amount_spent"] == Decimal("33.33") + Decimal("70.005") + Decimal("80.00")
    assert rows[3]["customer_countries"] == ["CA", "GB", "US"]
    assert rows[3]["customer_cities"] == ["CA-ON-Toronto", "GB-London", "US-NY-NewYorkCity"]
    assert rows[3]["abandoned_checkout_date"] is None  # created after the evaluation date
    assert rows[1]["abandoned_checkout_date"] == dt.date(2026, 10, 20)
    assert rows[2]["abandoned_checkout_date"] == dt.date(2026, 10, 29)  # completed only after
    assert rows[4]["phone_e164"] is None and rows[4]["customer_email_domain"] is None
    assert rows[5]["sms_subscription_status"] == "NOT_SUBSCRIBED" and rows[5]["customer_countries"] == []
    assert rows[7]["sms_subscription_status"] == "NOT_SUBSCRIBED" and rows[7]["number_of_orders"] == 0
    assert rows[9]["first_name"] is None and rows[9]["sms_subscription_status"] == "REDACTED"
    assert rows[9]["amount_spent"] == Decimal("12.00") and rows[9]["customer_tags"] == []
    assert rows[5]["rfm_group"] == "PROSPECTS"
    assert (rows[10]["predicted_spend_tier"], rows[10]["product_subscription_status"]) == ("HIGH", "SUBSCRIBED")
    assert rows[10]["companies"] == [3, 5] and (rows[10]["latitude"], rows[10]["longitude"]) == (-16.5, 179.9)
    assert rows[10]["sms_consent_date"] == dt.date(2026, 10, 31)
    assert rows[11]["predicted_spend_tier"] is None and rows[11]["product_subscription_status"] == "PAUSED"
    assert rows[11]["companies"] == [] and rows[11]["latitude"] is None
    assert rows[12]["predicted_spend_tier"] is None and rows[12]["product_subscription_status"] is None
    assert rows[12]["sms_consent_date"] is None and rows[12]["longitude"] == -180.0
    assert rows[13]["companies"] == [] and rows[13]["latitude"] is None and rows[13]["sms_consent_date"] is None


def test_addresses_match_the_oracle(tmp_path: Path, warehouse) -> None:
    store_dir = trap_store().write(tmp_path / "store")
    oracle = Oracle(store_dir, AS_OF)
    path = warehouse(store_dir, AS_OF)
    with duckdb.connect(str(path), read_only=True) as con:
        addresses = con.sql("select * from marts.customer_addresses").pl().sort(pl.all(), nulls_last=True)
    assert addresses.rows() == oracle.addresses.sort(pl.all(), nulls_last=True).rows()
    mine = {cid: {r[1:] for r in addresses.rows() if r[0] == cid} for cid in (5, 13, 14, 15)}
    assert mine[14] == {
        (True, "IT", "MI", "Milano", "20100", 45.4642, 9.19),
        (False, "FR", None, "Paris", None, None, None),
        (False, "US", "NY", "New York City", None, 40.7128, -74.006),
    }
    assert mine[15] == {
        (False, "DE", None, "Berlin", None, 52.52, 13.405),
        (False, "DE", None, "Berlin", None, None, None),
    }
    assert mine[5] == set() and mine[13] == set()
    rows = {r["customer_id"]: r for r in marts_customers(path).to_dicts()}
    assert rows[14]["customer_countries"] == ["FR", "IT", "US"] and rows[14]["customer_regions"] == ["IT-MI", "US-NY"]
    assert rows[14]["customer_cities"] == ["FR-Paris", "IT-MI-Milano", "US-NY-NewYorkCity"]
    assert rows[15]["customer_countries"] == ["DE"] and rows[15]["customer_cities"] == ["DE-Berlin"]
    assert rows[13]["customer_countries"] == []


def test_metafields_and_store_credit_match_the_oracle(tmp_path: Path, warehouse) -> None:
    store_dir = trap_store().write(tmp_path / "store")
    oracle = Oracle(store_dir, AS_OF)
    with duckdb.connect(str(warehouse(store_dir, AS_OF)), read_only=True) as con:
        metafields = con.sql(
            "select customer_id, namespace, key, type, value from marts.customer_metafields order by all"
        ).pl()
        credit = con.sql(
            "select customer_id, balance, currency_code as currency from marts.store_credit_accounts order by all"
        ).pl()
        typed = {
            (r[0], r[1]): r[2:]
            for r in con.sql(
                "select customer_id, key, value_number, value_boolean, value_date, value_texts "
                "from marts.customer_metafields"
            ).fetchall()
        }
    assert metafields.rows() == oracle.metafields.sort(pl.all()).rows()
    assert credit.rows() == oracle.store_credit.sort(pl.all()).rows()
    assert credit.rows() == [(1, Decimal("5.00"), "EUR"), (10, Decimal("0.00"), "USD"), (10, Decimal("25.50"), "EUR")]
    assert typed[(10, "points")] == (Decimal("150"), None, None, None)
    assert typed[(10, "vip")] == (None, True, None, None)
    assert typed[(10, "birth_date")] == (None, None, dt.date(1992, 2, 29), None)
    assert typed[(2, "last_visit")] == (None, None, dt.date(2026, 10, 31), None)
    assert typed[(2, "points")] == (None, None, None, None)
    assert typed[(1, "badges")] == (None, None, None, ["gold", "early, bird"])
    assert 13 not in {cid for cid, _ in typed}


def test_order_lines_carry_collections_and_lowercase_tags(tmp_path: Path, warehouse) -> None:
    path = warehouse(trap_store(), AS_OF)
    with duckdb.connect(str(path), read_only=True) as con:
        lines = con.sql(
            "select line_id, customer_id, quantity, product_tags, collection_handles "
            "from marts.order_lines order by line_id"
        ).fetchall()
    # line 5002 belongs to an order cancelled before the evaluation date: not a counted order
    assert lines == [(5001, 1, 2, ["cotton"], ["summer"])]


def test_order_lines_join_each_product_once(tmp_path: Path, warehouse) -> None:
    """marts.order_lines is a view of marts.line_items and marts.products: every line once, with
    its product's lists, and [] for a product with neither tags nor collections or no product."""
    store = Store(
        customers=[customer(1)],
        orders=[order(100, 1), line(5001, 100, 42), line(5002, 100, 43), line(5003, 100, 44), line(5004, 100, None)],
        products=[
            product(42, tags=["Summer", "SALE"]),
            collection(1, 42, "Beach"),
            collection(2, 42, "summer"),
            product(43),
            collection(3, 43, "Winter"),
            product(44),
        ],
    )
    with duckdb.connect(str(warehouse(store, AS_OF)), read_only=True) as con:
        lines = con.sql(
            "select line_id, product_id, product_tags, collection_handles, collection_ids "
            "from marts.order_lines order by line_id"
        ).fetchall()
        products = con.sql("select * from marts.products order by product_id").fetchall()
        kinds = dict(
            con.sql(
                "select table_name, table_type from information_schema.tables where table_schema = 'marts'"
            ).fetchall()
        )
    assert lines == [
        (5001, 42, ["sale", "summer"], ["beach", "summer"], [1, 2]),
        (5002, 43, [], ["winter"], [3]),
        (5003, 44, [], [], []),
        (5004, None, [], [], []),
    ]
    assert products == [
        (42, ["sale", "summer"], ["beach", "summer"], [1, 2]),
        (43, [], ["winter"], [3]),
        (44, [], [], []),
    ]
    assert kinds["order_lines"] == "VIEW" and kinds["line_items"] == kinds["products"] == "BASE TABLE"


@pytest.mark.parametrize("as_of", [dt.date(2025, 6, 30), dt.date(2026, 3, 28), dt.date(2026, 11, 10)])
def test_other_evaluation_dates_match_the_oracle(tmp_path: Path, warehouse, as_of: dt.date) -> None:
    store_dir = trap_store().write(tmp_path / "store")
    assert_same_customers(marts_customers(warehouse(store_dir, as_of)), Oracle(store_dir, as_of).customers)


def test_demo_store_matches_the_oracle(tmp_path: Path, warehouse) -> None:
    from pipeline.store.demo import generate_store

    store_dir = tmp_path / "demo"
    as_of = dt.date(2026, 11, 1)
    generate_store(store_dir, customers=1500, seed=7, end_day=as_of + dt.timedelta(days=5))
    assert_same_customers(marts_customers(warehouse(store_dir, as_of)), Oracle(store_dir, as_of).customers)
