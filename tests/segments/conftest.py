"""One varied hand-made store, built into a warehouse once for the whole segments test run."""

# Annotations stay text: evaluated, the fixtures' DuckDB types were still referenced when DuckDB's
# module was torn down at exit after a hypothesis test, and nanobind printed ~40 "leaked" lines.
from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from tests.conftest import build_warehouse
from tests.fixtures.stores import (
    Store,
    address,
    checkout,
    collection,
    customer,
    email_event,
    line,
    mailing_address,
    metafield,
    order,
    product,
    redaction,
    sms_event,
    store_credit,
    storefront_event,
)
from tests.oracle import Oracle

AS_OF = dt.date(2026, 10, 15)
ACTIVITIES = [5240029206, 1932881090, 3250045832]
# Around the evaluation day in Rome (UTC+2 in October): 22:30 UTC on the 14th is the 15th, 21:59:59 UTC on the
# 15th is still the 15th, 22:00 UTC on the 15th is the 16th (after the evaluation date).
EVENT_MOMENTS = [
    "2026-10-14T22:30:00Z",
    "2026-10-15T21:59:59Z",
    "2026-10-15T22:00:00Z",
    "2026-10-14T21:59:59Z",
    "2026-10-08T10:00:00Z",
    "2026-09-15T10:00:00Z",
    "2025-10-15T10:00:00Z",
]
PHONES = ["+393471234567", "+393471234568", "+393471234569", "3471234570", "+12125550123", None]
TAGS = [[], ["VIP"], ["vip", "Wholesale"], ["Summer Fan"], ["wholesale"]]
PLACES = [
    ("IT", "MI", "Milano"),
    ("IT", "RM", "Roma"),
    ("US", "NY", "New York City"),
    ("FR", None, "Paris"),
    (None, None, None),
]
AMOUNTS = ["59.90", "50.00", "100.00", "100.01", "999.99", "1000.00", "10.00", "0.00", "25.50"]
# The Admin API's fields, drawn from their own generator so the rest of the store stays as it was:
# lower case and unknown values, no companies, the antimeridian (179.95 and -179.95 are 10 km apart),
# consent changed at 23:30 UTC (the next day in Rome).
SPEND_TIERS = ["HIGH", "MEDIUM", "LOW", None, "high", "ULTRA"]
SUBSCRIBERS = ["ACTIVE", "NEVER_SUBSCRIBED", "PAUSED", "CANCELLED", "active"]
COMPANIES = [(), (), (3,), (3, 9), (9,)]
POINTS = [(45.4642, 9.19), (45.50, 9.30), (45.4215, -75.6972), (-16.5, 179.95), (-16.5, -179.95), (-17.0, 178.0), None]
CONSENT_TIMES = ["2026-10-14T23:30:00Z", "2026-10-14T10:00:00Z", "2026-09-01T10:00:00Z", "2025-02-28T23:30:00Z"]
# Metafields (a birthday on Feb 29, at the year's turn, today; every type the filters read, one that does
# not read as its type) and store credit accounts (spent, in another currency written in lower case).
BIRTHS = ["1990-10-15", "1992-02-29", "1985-11-10", "1970-12-31", "2000-01-01", "1988-10-14", "1979-03-01"]
CUSTOM = [
    ("vip", "boolean", "true"),
    ("vip", "boolean", "false"),
    ("points", "number_integer", "120"),
    ("points", "number_decimal", "12.5"),
    ("points", "number_integer", "lots"),
    ("tier", "single_line_text_field", "Gold"),
    ("tier", "single_line_text_field", "silver"),
    ("badges", "list.single_line_text_field", '["Gold", "Early Bird"]'),
    ("lucky", "list.number_integer", "[3, 7]"),
    ("last_visit", "date_time", "2026-10-14T23:30:00Z"),
]
CREDITS = [("0.00", "EUR"), ("25.50", "EUR"), ("100.00", "USD"), ("7.25", "usd")]
DAYS = [
    "2025-12-31",
    "2026-01-15",
    "2026-06-30",
    "2026-07-15",
    "2026-09-30",
    "2026-10-01",
    "2026-10-08",
    "2026-10-14",
    "2026-10-15",
    "2026-10-16",
]


@dataclass(frozen=True)
class Built:
    store_dir: Path
    warehouse: Path
    as_of: dt.date

    def oracle(self) -> Oracle:
        return Oracle(self.store_dir, self.as_of, self.warehouse.parent / "suppressions.csv")

    def connect(self) -> duckdb.DuckDBPyConnection:
        return duckdb.connect(str(self.warehouse), read_only=True)


def varied_store() -> Store:
    """~30 customers covering the edges: no orders, no phone, shared phones, redaction, cancelled,
    test and future orders, orders at 23:30 UTC (the next day in Rome), lists in mixed case."""
    rng = random.Random(20261015)
    admin = random.Random(23)
    store = Store(timezone="Europe/Rome")
    store.products = [
        product(42, tags=["Summer", "Sale"]),
        collection(7, 42, "Summer"),
        product(43, tags=["winter"]),
        collection(8, 43, "Winter"),
        collection(7, 43, "Summer"),
        product(44, tags=[]),
    ]
    order_n = line_n = 0
    for n in range(1, 31):
        country, province, city = rng.choice(PLACES)
        extra = [address("IT", "MI", "Milano")] if n % 7 == 0 else []
        default = [] if country is None else [address(country, province, city)]
        store.customers.append(
            customer(
                n,
                created=f"2025-{rng.randint(1, 12):02d}-10T10:00:00Z" if n != 29 else "2026-10-20T10:00:00Z",
                email=rng.choice([f"c{n}@Example.COM", f"c{n}@shop.it", None]),
                email_state=rng.choice(["SUBSCRIBED", "UNSUBSCRIBED", "PENDING"]),
                phone=PHONES[n % len(PHONES)],
                sms_state=rng.choice(["SUBSCRIBED", "UNSUBSCRIBED", "PENDING"]),
                state=rng.choice(["ENABLED", "ENABLED", "DISABLED", "INVITED"]),
                locale=rng.choice(["it", "en-US", "fr"]),
                tags=rng.choice(TAGS),
                country=country,
                province=province,
                city=city,
                addresses=default + extra,
                spend_tier=admin.choice(SPEND_TIERS),
                subscriber=admin.choice(SUBSCRIBERS),
                companies=admin.choice(COMPANIES),
                coordinates=admin.choice(POINTS),
                sms_updated=admin.choice(CONSENT_TIMES),
            )
        )
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3, 5])):
            order_n += 1
            day = rng.choice(DAYS)
            store.orders.append(
                order(
                    order_n,
                    n,
                    processed=f"{day}T{rng.choice(['10:00:00', '23:30:00'])}Z",
                    total=rng.choice(AMOUNTS),
                    cancelled="2026-10-10T10:00:00Z" if rng.random() < 0.1 else None,
                    test=rng.random() < 0.05,
                )
            )
            for _ in range(rng.choice([1, 1, 2])):
                line_n += 1
                store.orders.append(line(line_n, order_n, rng.choice([42, 43, 44, None]), quantity=rng.randint(1, 3)))
        if rng.random() < 0.3:
            store.abandoned_checkouts.append(
                checkout(
                    n,
                    n,
                    created=f"{rng.choice(DAYS)}T22:30:00Z",
                    completed="2026-10-15T12:00:00Z" if rng.random() < 0.3 else None,
                )
            )
    # Customer 30 spent exactly 59.90 and 50 across orders; 23:30 UTC on 14 Oct is the 15th in Rome.
    store.orders += [order(900, 30, processed="2026-10-14T23:30:00Z", total="59.90"), line(900, 900, 42, quantity=4)]
    for phone in ("+393471234567", "+393471234568", "+12125550123"):
        for type_, campaign, when in (
            ("clicked", "Spring", "2026-10-01T10:00:00Z"),
            ("sent", "spring", "2026-09-01T10:00:00Z"),
            ("delivered", "Autumn", "2026-10-14T23:30:00Z"),
            ("clicked", "Autumn", "2026-10-16T10:00:00Z"),
        ):
            if rng.random() < 0.7:
                store.sms_events.append(sms_event(phone, type_, when, campaign))
    store.sms_events.append(sms_event("+393471234569", "converted", "2026-10-10T10:00:00Z", "Spring"))
    # Opt-outs after the evaluation date, which still suppress: one written with 00 and spaces, one written
    # nationally: an Italian mobile for customer 31 in Italy, who wrote it nationally too, and not for customer
    # 32 in France, who wrote the same number with +39 (32 keeps it: 31 is not texted at all).
    store.customers += [
        customer(31, phone="347 123 4570", country="IT", email="c31@shop.it", sms_updated=CONSENT_TIMES[2]),
        customer(32, phone="+39 347 123 4570", country="FR", province=None, city="Paris", email=None),
    ]
    store.sms_events.append(sms_event("0039 347 123 4568", "opted_out", "2026-10-20T10:00:00Z", "Autumn"))
    store.sms_events.append(sms_event("347 123 4570", "opted_out", "2026-10-21T10:00:00Z", "Autumn"))
    store.redactions.append(redaction(5))
    # addressesV2 lines beside the inline addresses of the others: an address away from the default one, near
    # Ottawa; one not geocoded; one across the antimeridian; one in a country of its own; a redacted
    # customer's (5), which counts nowhere
    store.customers += [
        mailing_address(1, 3, "CA", "ON", "Ottawa", (45.4215, -75.6972)),
        mailing_address(2, 8, "IT", "MI", "Milano"),
        mailing_address(3, 12, "FJ", None, "Taveuni", (-16.5, -179.95)),
        mailing_address(4, 17, "DE", "BE", "Berlin", (52.52, 13.405)),
        mailing_address(5, 5, "IT", "MI", "Milano", (45.4642, 9.19)),
    ]
    add_customer_events(store, rng)
    field_n = 0
    for n in range(1, 31):
        lines = []
        if admin.random() < 0.6:
            field_n += 1
            lines.append(metafield(field_n, n, "facts", "birth_date", "date", admin.choice(BIRTHS)))
        for key, type_, value in admin.sample(CUSTOM, admin.randint(0, 3)):
            field_n += 1
            lines.append(metafield(field_n, n, "custom", key, type_, value))
        if admin.random() < 0.3:
            lines.append(store_credit(n, n, *admin.choice(CREDITS)))
        store.customers += lines
    return store


def add_customer_events(store: Store, rng: random.Random) -> None:
    """Shopify Email and storefront events: random ones over most customers, and the traps by hand."""
    for n in range(1, 31):
        for _ in range(rng.choice([0, 0, 1, 2, 3, 4])):
            store.email_events.append(
                email_event(
                    n,
                    rng.choice(["opened", "clicked", "delivered", "bounced", "marked_as_spam", "unsubscribed"]),
                    rng.choice(EVENT_MOMENTS),
                    rng.choice([*ACTIVITIES, None]),
                )
            )
        for _ in range(rng.choice([0, 0, 1, 2, 3])):
            if rng.random() < 0.6:
                store.storefront_events.append(
                    storefront_event(
                        n, "product_viewed", rng.choice(EVENT_MOMENTS), product=rng.choice([42, 43, 44, 45, None])
                    )
                )
            else:
                store.storefront_events.append(
                    storefront_event(
                        n, "collection_viewed", rng.choice(EVENT_MOMENTS), collection=rng.choice([7, 8, None])
                    )
                )
    # The traps, on an activity and products of their own: customer 30 opened activity 7777777777 at 00:30 on
    # the 15th in Rome, the same open again written with Rome's offset (one event), again at 10:00 (a tie on the
    # day: two events today), at 23:59:59 on the 14th (yesterday) and at 00:00 on the 16th (after the evaluation
    # date); a click typed 'Clicked'. Customer 999 is unknown, 29 created after the evaluation date.
    trap = 7777777777
    store.email_events += [
        email_event(30, "opened", "2026-10-14T22:30:00Z", trap),
        email_event(30, "opened", "2026-10-15T00:30:00+02:00", trap),
        email_event(30, "opened", "2026-10-15T08:00:00Z", trap),
        email_event(30, "opened", "2026-10-14T21:59:59Z", trap),
        email_event(30, "opened", "2026-10-15T22:00:00Z", trap),
        email_event(30, "Clicked", "2026-10-15T08:01:00Z", trap),
        email_event(999, "opened", "2026-10-01T10:00:00Z", trap),
        email_event(29, "opened", "2026-10-01T10:00:00Z", trap),
    ]
    store.storefront_events += [
        storefront_event(30, "product_viewed", "2026-10-15T21:59:59Z", product=46),
        storefront_event(30, "product_viewed", "2026-10-15T22:00:00Z", product=47),
        storefront_event(999, "product_viewed", "2026-10-01T10:00:00Z", product=46),
        storefront_event(29, "collection_viewed", "2026-10-01T10:00:00Z", collection=9),
    ]


@pytest.fixture(scope="session")
def varied(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("varied")
    store_dir = varied_store().write(root / "store")
    (root / "data").mkdir()
    (root / "data" / "suppressions.csv").write_text("phone,reason\n+39 347 123 4569,complaint\n")
    return Built(store_dir, build_warehouse(store_dir, root / "data", AS_OF), AS_OF)
