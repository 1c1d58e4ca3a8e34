"""Shopify Email and storefront events, the inbox files the Admin API cannot fill: every bad line is named by
file, line and field; good lines reach the marts once, on the shop's local day, up to the evaluation date."""

import datetime as dt
import json
from pathlib import Path

import duckdb
import pytest

from pipeline.store.ingest import StoreError, ingest_file, ingest_store
from pipeline.store.schema import INBOX_FILES
from pipeline.warehouse.build import build_all, publish
from tests.fixtures.stores import Store, customer, email_event, storefront_event

AS_OF = dt.date(2026, 10, 15)


def events_store() -> Store:
    return Store(
        customers=[customer(1), customer(2)],
        email_events=[
            email_event(1, "opened", "2026-10-01T10:00:00Z", 5240029206),
            email_event(2, " Marked_As_Spam", "2026-10-14T22:30:00Z"),
            email_event(1, "clicked", "2026-10-15T22:00:00Z", 5240029206),
        ],
        storefront_events=[
            storefront_event(1, "product_viewed", "2026-10-01T10:00:00Z", product=42),
            storefront_event(2, "COLLECTION_VIEWED", "2026-10-14T21:59:59Z", collection=7),
        ],
    )


def replace_line(path: Path, number: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n")


OPENED = email_event(1, "opened", "2026-10-01T10:00:00Z", 5240029206)
VIEWED = storefront_event(1, "product_viewed", "2026-10-01T10:00:00Z", product=42)


@pytest.mark.parametrize(
    ("file", "line_no", "line", "message"),
    [
        (
            "shopify_email_events.jsonl",
            1,
            {**OPENED, "type": "open"},
            "shopify_email_events.jsonl:1: type is 'open', which is not one of bounced, clicked, delivered, "
            "marked_as_spam, "
            "opened, unsubscribed: did you mean opened?",
        ),
        (
            "shopify_email_events.jsonl",
            2,
            {**OPENED, "type": None},
            "shopify_email_events.jsonl:2: ShopifyEmailEvent without type. Every ShopifyEmailEvent line needs one.",
        ),
        (
            "shopify_email_events.jsonl",
            1,
            {**OPENED, "customer": None},
            "shopify_email_events.jsonl:1: ShopifyEmailEvent without customer.id",
        ),
        (
            "shopify_email_events.jsonl",
            3,
            {**OPENED, "customer": "gid://shopify/Customer/1"},
            "shopify_email_events.jsonl:3: customer is a string, where an object is expected",
        ),
        (
            "shopify_email_events.jsonl",
            1,
            {**OPENED, "marketingActivity": {"id": "5240029206"}},
            "shopify_email_events.jsonl:1: marketingActivity.id is '5240029206', which is not a Shopify id such as "
            "gid://shopify/Customer/123",
        ),
        (
            "shopify_email_events.jsonl",
            2,
            {**OPENED, "occurredAt": "2026-10-01T10:00:00"},
            "shopify_email_events.jsonl:2: occurredAt is '2026-10-01T10:00:00', which is not an ISO-8601 timestamp "
            "with "
            "offset",
        ),
        (
            "shopify_email_events.jsonl",
            1,
            {**OPENED, "occurredAt": None},
            "shopify_email_events.jsonl:1: ShopifyEmailEvent without occurredAt",
        ),
        (
            "storefront_events.jsonl",
            2,
            {**VIEWED, "type": "page_viewed"},
            "storefront_events.jsonl:2: type is 'page_viewed', which is not one of product_viewed, collection_viewed: "
            "did you mean product_viewed?",
        ),
        (
            "storefront_events.jsonl",
            1,
            {**VIEWED, "product": {"id": "gid://shopify/Product/9223372036854775808"}},
            "storefront_events.jsonl:1: product.id is 'gid://shopify/Product/9223372036854775808', which is not a "
            "Shopify "
            "id whose number is from 1 to 9223372036854775807",
        ),
        (
            "storefront_events.jsonl",
            2,
            {**VIEWED, "collection": [{"id": "gid://shopify/Collection/7"}]},
            "storefront_events.jsonl:2: collection is a list, where an object is expected",
        ),
        (
            "storefront_events.jsonl",
            1,
            {**VIEWED, "customer": {"id": None}},
            "storefront_events.jsonl:1: StorefrontEvent without customer.id",
        ),
    ],
)
def test_a_bad_event_line_names_file_line_and_field_and_publishes_nothing(
    tmp_path: Path, file: str, line_no: int, line: dict, message: str
) -> None:
    store, raw = events_store().write(tmp_path / "store"), tmp_path / "raw"
    replace_line(store / file, line_no, json.dumps(line))
    with pytest.raises(StoreError) as error:
        ingest_file(store, file, raw)
    assert f"{store / file}:{line_no}: " in str(error.value)
    assert message in str(error.value)
    assert not any(p.is_file() for p in raw.rglob("*"))


def test_the_event_files_are_inbox_files_and_may_be_absent(tmp_path: Path) -> None:
    assert {"shopify_email_events.jsonl", "storefront_events.jsonl"} <= set(INBOX_FILES)
    store = events_store().write(tmp_path / "store")
    for file in ("shopify_email_events.jsonl", "storefront_events.jsonl"):
        (store / file).unlink()
        assert sum(ingest_file(store, file, tmp_path / "raw").rows.values()) == 0


def test_events_reach_the_marts_once_on_the_local_day_up_to_the_evaluation_date(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = events_store()
    # A later inbox file repeats every event and adds one: the repeats are the same events.
    later = events_store()
    later.email_events.append(email_event(2, "unsubscribed", "2026-10-15T09:00:00Z", 1932881090))
    for n, store in enumerate((first, later)):
        ingest_store(store.write(tmp_path / f"batch{n}"), data_dir / "raw")
    build_all(data_dir, AS_OF)
    with duckdb.connect(str(publish(data_dir)), read_only=True) as con:
        emails = con.execute(
            "select customer_id, event_type, activity_id, event_date from marts.shopify_email_events order by all"
        ).fetchall()
        views = con.execute(
            "select customer_id, event_type, product_id, collection_id, event_date "
            "from marts.storefront_events order by all"
        ).fetchall()
    # 22:30 UTC on the 14th is the 15th in Rome; 22:00 UTC on the 15th is the 16th, after the evaluation date.
    assert emails == [
        (1, "opened", 5240029206, dt.date(2026, 10, 1)),
        (2, "marked_as_spam", None, dt.date(2026, 10, 15)),
        (2, "unsubscribed", 1932881090, dt.date(2026, 10, 15)),
    ]
    assert views == [
        (1, "product_viewed", 42, None, dt.date(2026, 10, 1)),
        (2, "collection_viewed", None, 7, dt.date(2026, 10, 14)),
    ]
