"""The demo store honours the store-directory contract and carries the traps the ingest must handle."""

import datetime
import json
import re
import zoneinfo
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import phonenumbers
import pytest

from pipeline.store.demo import DEMO_CUSTOMERS, GIFT_CARD_CENTS, STOREFRONT_DAYS, demo_store, generate_store

AS_OF = datetime.date(2026, 11, 1)  # the evaluation date the checks below read the store as of
END_DAY = AS_OF + datetime.timedelta(days=5)  # the store's last day: a run as of AS_OF filters what follows
ROME = zoneinfo.ZoneInfo("Europe/Rome")
# Every moment a store records, by file: nothing may come after the store's end day.
MOMENTS = {
    "customers": ("createdAt", "updatedAt"),
    "orders": ("createdAt", "processedAt", "updatedAt", "cancelledAt"),
    "products": ("updatedAt",),
    "abandoned_checkouts": ("createdAt", "updatedAt", "completedAt"),
    "sms_events": ("occurredAt",),
    "redactions": ("requestedAt",),
    "shopify_email_events": ("occurredAt",),
    "storefront_events": ("occurredAt",),
}
FILES = (
    "shop",
    "customers",
    "orders",
    "products",
    "abandoned_checkouts",
    "sms_events",
    "redactions",
    "shopify_email_events",
    "storefront_events",
)
CUSTOMER_KEYS = {
    "id",
    "firstName",
    "lastName",
    "createdAt",
    "updatedAt",
    "state",
    "locale",
    "tags",
    "defaultEmailAddress",
    "defaultPhoneNumber",
    "defaultAddress",
    "statistics",
    "productSubscriberStatus",
    "companyContactProfiles",
}
PHONE_KEYS = {"phoneNumber", "marketingState", "marketingOptInLevel", "marketingUpdatedAt"}
PRODUCT_SUBSCRIBER_STATES = ("ACTIVE", "CANCELLED", "EXPIRED", "FAILED", "NEVER_SUBSCRIBED", "PAUSED")
ADDRESS_KEYS = {"countryCodeV2", "provinceCode", "city", "zip", "latitude", "longitude"}
ORDER_KEYS = {
    "id",
    "name",
    "customer",
    "createdAt",
    "processedAt",
    "updatedAt",
    "cancelledAt",
    "test",
    "displayFinancialStatus",
    "currencyCode",
    "totalPriceSet",
    "currentTotalPriceSet",
}
LINE_ITEM_KEYS = {"id", "product", "variant", "sku", "title", "quantity", "originalTotalSet", "__parentId"}
PRODUCT_KEYS = {"id", "title", "handle", "productType", "vendor", "tags", "updatedAt"}
COLLECTION_KEYS = {"id", "handle", "title", "__parentId"}
CHECKOUT_KEYS = {"id", "createdAt", "updatedAt", "completedAt", "abandonedCheckoutUrl", "customer", "totalPriceSet"}
MONEY = re.compile(r"^\d+\.\d{2}$")


def gid(kind: str) -> re.Pattern[str]:
    return re.compile(rf"^gid://shopify/{kind}/\d+$")


def timestamp(value: str) -> datetime.datetime:
    parsed = datetime.datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    return parsed


def read(store: Path, name: str) -> list[dict]:
    with open(store / f"{name}.jsonl", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    store = tmp_path_factory.mktemp("store")
    return store, generate_store(store, 3000, seed=7, end_day=END_DAY)


@pytest.fixture(scope="module")
def store(generated: tuple[Path, dict[str, int]]) -> dict[str, list[dict]]:
    """Each file's lines; customers.jsonl's metafields and store credit accounts apart, as `customer_children`."""
    files = {name: read(generated[0], name) for name in FILES}
    files["customers"], files["customer_children"] = split(files["customers"])
    return files


def split(lines: list[dict]) -> tuple[list[dict], list[dict]]:
    return [x for x in lines if "__parentId" not in x], [x for x in lines if "__parentId" in x]


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        generate_store(tmp_path / name, 500, seed, end_day=END_DAY)
    for file in (f"{name}.jsonl" for name in FILES):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes(), file
    for file in ("customers.jsonl", "orders.jsonl"):
        assert (tmp_path / "a" / file).read_bytes() != (tmp_path / "c" / file).read_bytes(), file


def test_every_line_is_a_json_object(generated: tuple[Path, dict[str, int]]) -> None:
    for name in FILES:
        text = (generated[0] / f"{name}.jsonl").read_text(encoding="utf-8")
        assert text.endswith("\n")
        for number, line in enumerate(text.splitlines(), start=1):
            assert isinstance(json.loads(line), dict), f"{name}.jsonl line {number}"


def test_shop_is_one_line_in_rome_and_euro(store: dict[str, list[dict]]) -> None:
    assert store["shop"] == [{"name": "Demo Store", "ianaTimezone": "Europe/Rome", "currencyCode": "EUR"}]


def test_customers_have_the_spec_fields(store: dict[str, list[dict]]) -> None:
    for customer in store["customers"]:
        assert set(customer) == CUSTOMER_KEYS
        assert gid("Customer").match(customer["id"])
        assert timestamp(customer["createdAt"]) <= timestamp(customer["updatedAt"])
        assert all(isinstance(tag, str) for tag in customer["tags"])
        assert customer["defaultAddress"] is None or set(customer["defaultAddress"]) == ADDRESS_KEYS
        assert set(customer["statistics"]) == {"predictedSpendTier"}
        assert customer["statistics"]["predictedSpendTier"] in ("LOW", "MEDIUM", "HIGH", None)
        assert customer["productSubscriberStatus"] in PRODUCT_SUBSCRIBER_STATES
        companies = [c["company"]["id"] for c in customer["companyContactProfiles"]]
        assert all(gid("Company").match(c) for c in companies) and len(set(companies)) == len(companies)
        if customer["defaultEmailAddress"] is not None:
            assert set(customer["defaultEmailAddress"]) == {"emailAddress", "marketingState"}
        if customer["defaultPhoneNumber"] is not None:
            assert set(customer["defaultPhoneNumber"]) == PHONE_KEYS


def test_addresses_are_lines_of_known_customers_the_default_first(store: dict[str, list[dict]]) -> None:
    addresses: dict[str, list[dict]] = {}
    for line in store["customer_children"]:
        if line["__typename"] == "MailingAddress":
            assert re.fullmatch(r"gid://shopify/MailingAddress/[0-9]+\?model_name=CustomerAddress", line["id"])
            address = {k: v for k, v in line.items() if k not in ("__parentId", "__typename", "id")}
            assert set(address) == ADDRESS_KEYS
            addresses.setdefault(line["__parentId"], []).append(address)
    for customer in store["customers"]:
        mine = addresses.get(customer["id"], [])
        assert len(mine) <= 3
        for address in mine:
            point = address["latitude"], address["longitude"]
            assert point == (None, None) or (-90 <= point[0] <= 90 and -180 <= point[1] <= 180)
        # the default address is the first of addressesV2, geocoded the same
        assert customer["defaultAddress"] == (mine[0] if mine else None)
    everyone = [a for mine in addresses.values() for a in mine]
    assert any(len(mine) > 1 and len({a["countryCodeV2"] for a in mine}) > 1 for mine in addresses.values())
    assert any(a["latitude"] is None for a in everyone) and any(a["latitude"] is not None for a in everyone)
    assert any(mine[1]["latitude"] is not None for mine in addresses.values() if len(mine) > 1)


def test_metafields_and_store_credit_are_lines_of_known_customers(store: dict[str, list[dict]]) -> None:
    customers = {c["id"] for c in store["customers"]}
    metafields = [c for c in store["customer_children"] if c["__typename"] == "Metafield"]
    accounts = [c for c in store["customer_children"] if c["__typename"] == "StoreCreditAccount"]
    assert {c["__typename"] for c in store["customer_children"]} == {
        "Metafield",
        "StoreCreditAccount",
        "MailingAddress",
    }
    assert all(c["__parentId"] in customers for c in store["customer_children"])
    for m in metafields:
        assert set(m) == {"__typename", "id", "namespace", "key", "type", "value", "__parentId"}
        assert gid("Metafield").match(m["id"])
    births = [m["value"] for m in metafields if m["key"] == "birth_date"]
    assert all(datetime.date.fromisoformat(b) for b in births)
    assert any(b.endswith("-02-29") for b in births), "some birthdays on Feb 29"
    assert {m["value"] for m in metafields if m["type"] == "boolean"} == {"true", "false"}
    assert {(m["namespace"], m["key"], m["type"]) for m in metafields} == {
        ("facts", "birth_date", "date"),
        ("custom", "loyalty_points", "number_integer"),
        ("custom", "vip", "boolean"),
    }
    for a in accounts:
        assert gid("StoreCreditAccount").match(a["id"]) and MONEY.match(a["balance"]["amount"])
    assert {a["balance"]["currencyCode"] for a in accounts} == {"EUR", "USD"}
    assert any(a["balance"]["amount"] == "0.00" for a in accounts), "some accounts spent"


def test_orders_and_line_items_have_the_spec_fields(store: dict[str, list[dict]]) -> None:
    orders, line_items = split(store["orders"])
    for order in orders:
        assert set(order) == ORDER_KEYS
        assert gid("Order").match(order["id"]) and order["name"].startswith("#")
        assert order["customer"] is None or gid("Customer").match(order["customer"]["id"])
        assert MONEY.match(order["totalPriceSet"]["shopMoney"]["amount"])
        assert order["totalPriceSet"]["shopMoney"]["currencyCode"] == "EUR"
        if order["currentTotalPriceSet"] is not None:
            assert MONEY.match(order["currentTotalPriceSet"]["shopMoney"]["amount"])
        assert timestamp(order["processedAt"]) <= timestamp(order["updatedAt"])
        if order["cancelledAt"] is not None:
            assert timestamp(order["cancelledAt"]) <= timestamp(order["updatedAt"])
    for line in line_items:
        assert set(line) == LINE_ITEM_KEYS
        assert gid("LineItem").match(line["id"]) and gid("Order").match(line["__parentId"])
        assert gid("Product").match(line["product"]["id"])
        assert gid("ProductVariant").match(line["variant"]["id"])
        assert MONEY.match(line["originalTotalSet"]["shopMoney"]["amount"]) and line["quantity"] >= 1


def test_products_collections_checkouts_events_and_redactions_have_the_spec_fields(
    store: dict[str, list[dict]],
) -> None:
    products, collections = split(store["products"])
    assert all(set(p) == PRODUCT_KEYS and gid("Product").match(p["id"]) for p in products)
    assert all(set(c) == COLLECTION_KEYS and gid("Collection").match(c["id"]) for c in collections)
    for checkout in store["abandoned_checkouts"]:
        assert set(checkout) == CHECKOUT_KEYS and gid("AbandonedCheckout").match(checkout["id"])
        assert re.match(r"^https://demo-store\.myshopify\.com/checkouts/\w+/recover$", checkout["abandonedCheckoutUrl"])
        assert MONEY.match(checkout["totalPriceSet"]["shopMoney"]["amount"])
    for event in store["sms_events"]:
        assert set(event) == {"phone", "type", "campaign", "occurredAt"}
        timestamp(event["occurredAt"])
    for redaction in store["redactions"]:
        assert set(redaction) == {"customer", "requestedAt"}
        assert gid("Customer").match(redaction["customer"]["id"])
    for event in store["shopify_email_events"]:
        assert set(event) == {"customer", "type", "marketingActivity", "occurredAt"}
        assert gid("Customer").match(event["customer"]["id"])
        assert gid("MarketingActivity").match(event["marketingActivity"]["id"])
        timestamp(event["occurredAt"])
    for event in store["storefront_events"]:
        assert set(event) == {"customer", "type", "product", "collection", "occurredAt"}
        viewed = event["product"] if event["type"] == "product_viewed" else event["collection"]
        assert gid("Product" if event["type"] == "product_viewed" else "Collection").match(viewed["id"])
        timestamp(event["occurredAt"])


def test_counts_are_the_distinct_entities_written(
    generated: tuple[Path, dict[str, int]], store: dict[str, list[dict]]
) -> None:
    orders, line_items = split(store["orders"])
    products, collections = split(store["products"])
    distinct = {
        "customers": len({c["id"] for c in store["customers"]}),
        "orders": len({o["id"] for o in orders}),
        "line_items": len({li["id"] for li in line_items}),
        "products": len({p["id"] for p in products}),
        "collections": len({c["id"] for c in collections}),
        "abandoned_checkouts": len(store["abandoned_checkouts"]),
        "sms_events": len(store["sms_events"]),
        "redactions": len(store["redactions"]),
        "shopify_email_events": len(store["shopify_email_events"]),
        "storefront_events": len(store["storefront_events"]),
        "customer_metafields": len({c["id"] for c in store["customer_children"] if c["__typename"] == "Metafield"}),
        "store_credit_accounts": len(
            {c["id"] for c in store["customer_children"] if c["__typename"] == "StoreCreditAccount"}
        ),
        "customer_addresses": len({c["id"] for c in store["customer_children"] if c["__typename"] == "MailingAddress"}),
    }
    assert generated[1] == distinct
    assert distinct["customers"] == 3000
    assert 3 < distinct["orders"] / 3000 < 5 and 2 < distinct["line_items"] / distinct["orders"] < 3
    assert 150 <= distinct["products"] <= 400


@pytest.mark.parametrize(("file", "parent_kind"), [("orders", "Order"), ("products", "Product")])
def test_children_point_at_parents_and_some_come_first(
    store: dict[str, list[dict]], file: str, parent_kind: str
) -> None:
    seen: set[str] = set()
    before_parent = 0
    parents = {line["id"] for line in split(store[file])[0]}
    for line in store[file]:
        if "__parentId" in line:
            assert line["__parentId"] in parents
            before_parent += line["__parentId"] not in seen
        else:
            seen.add(line["id"])
    assert before_parent > 0


def test_ids_revised_later_appear_twice_with_different_content(store: dict[str, list[dict]]) -> None:
    for lines in (store["customers"], split(store["orders"])[0]):
        by_id: dict[str, list[dict]] = {}
        for line in lines:
            by_id.setdefault(line["id"], []).append(line)
        revised = [versions for versions in by_id.values() if len(versions) > 1]
        assert revised and all(len(versions) == 2 for versions in revised)
        for older, newer in (sorted(v, key=lambda x: timestamp(x["updatedAt"])) for v in revised):
            assert timestamp(older["updatedAt"]) < timestamp(newer["updatedAt"])
            assert {**older, "updatedAt": None} != {**newer, "updatedAt": None}
        # The older copy is not always the earlier line: "last line wins" would be wrong.
        assert any(timestamp(v[0]["updatedAt"]) > timestamp(v[1]["updatedAt"]) for v in revised)


def test_phones_are_mostly_valid_in_every_format(store: dict[str, list[dict]]) -> None:
    valid, invalid, formats, e164 = 0, 0, Counter(), Counter()
    for customer in store["customers"]:
        phone = customer["defaultPhoneNumber"] and customer["defaultPhoneNumber"]["phoneNumber"]
        if not phone:
            continue
        region = customer["defaultAddress"]["countryCodeV2"] if customer["defaultAddress"] else None
        formats["international" if phone.startswith("+") else "national"] += 1
        try:
            number = phonenumbers.parse(phone, region)
        except phonenumbers.NumberParseException:
            invalid += 1
            continue
        if phonenumbers.is_valid_number(number):
            valid += 1
            e164[phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), customer["id"]] += 1
        else:
            invalid += 1
    assert valid / (valid + invalid) > 0.85 and invalid > 0
    assert formats["national"] > 0.3 * valid and formats["international"] > 0.3 * valid
    phones = Counter(phone for phone, _ in e164)
    assert any(count > 1 for count in phones.values()), "some customers share a phone number"
    assert sum(c["defaultPhoneNumber"] is None for c in store["customers"]) > 0


def test_every_consent_and_account_state_occurs(store: dict[str, list[dict]]) -> None:
    customers = store["customers"]
    sms = Counter(c["defaultPhoneNumber"]["marketingState"] for c in customers if c["defaultPhoneNumber"])
    email = Counter(c["defaultEmailAddress"]["marketingState"] for c in customers if c["defaultEmailAddress"])
    assert set(sms) == {"SUBSCRIBED", "NOT_SUBSCRIBED", "PENDING", "UNSUBSCRIBED", "REDACTED"}
    assert sms.most_common(1)[0][0] == "SUBSCRIBED"
    assert {"SUBSCRIBED", "NOT_SUBSCRIBED", "UNSUBSCRIBED", "REDACTED"} <= set(email)
    assert {c["state"] for c in customers} == {"ENABLED", "DISABLED", "INVITED", "DECLINED"}
    assert any(c["defaultEmailAddress"] is None for c in customers)
    countries = {c["defaultAddress"]["countryCodeV2"] for c in customers if c["defaultAddress"]}
    assert {"IT", "US", "GB", "DE", "FR", "ES", "CA", "AU"} <= countries
    tags = {t for c in customers for t in c["tags"]}
    assert {"VIP", "vip"} <= tags


def test_orders_cover_the_awkward_cases(store: dict[str, list[dict]]) -> None:
    orders = split(store["orders"])[0]
    end = datetime.datetime.combine(AS_OF + datetime.timedelta(days=1), datetime.time(), tzinfo=datetime.UTC)

    def share(predicate: Callable[[dict], bool]) -> float:
        return sum(map(predicate, orders)) / len(orders)

    assert 0.005 < share(lambda o: o["test"]) < 0.05
    assert 0.01 < share(lambda o: o["cancelledAt"] is not None) < 0.08
    assert share(lambda o: o["customer"] is None) > 0.01
    assert share(lambda o: o["currentTotalPriceSet"] is None) > 0
    assert (
        share(
            lambda o: (
                o["currentTotalPriceSet"] is not None
                and o["currentTotalPriceSet"]["shopMoney"] != o["totalPriceSet"]["shopMoney"]
            )
        )
        > 0
    )
    assert share(lambda o: timestamp(o["processedAt"]).hour >= 22) > 0
    assert 0 < share(lambda o: timestamp(o["processedAt"]) >= end) < 0.05
    assert min(timestamp(o["processedAt"]) for o in orders) > end - datetime.timedelta(days=3 * 366)
    per_customer = Counter(o["customer"]["id"] for o in orders if o["customer"])
    assert max(per_customer.values()) >= 20 and len(per_customer) < 3000


def test_checkouts_and_events_look_like_a_live_shop(store: dict[str, list[dict]]) -> None:
    checkouts = store["abandoned_checkouts"]
    assert 0.07 < len(checkouts) / 3000 < 0.2
    assert any(c["completedAt"] for c in checkouts) and any(c["completedAt"] is None for c in checkouts)
    events = store["sms_events"]
    assert {e["type"] for e in events} == {"sent", "delivered", "clicked", "converted", "opted_out"}
    for event in events:
        number = phonenumbers.parse(event["phone"])
        assert phonenumbers.is_valid_number(number)
        assert phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == event["phone"]
    assert store["redactions"]
    emails = Counter(e["type"] for e in store["shopify_email_events"])
    assert emails.keys() == {"bounced", "clicked", "delivered", "marked_as_spam", "opened", "unsubscribed"}
    assert emails["delivered"] > emails["opened"] > emails["clicked"] > emails["unsubscribed"]
    joined = {c["id"]: timestamp(c["createdAt"]) for c in store["customers"]}
    assert all(timestamp(e["occurredAt"]) > joined[e["customer"]["id"]] for e in store["shopify_email_events"])
    views = Counter(e["type"] for e in store["storefront_events"])
    assert views["product_viewed"] > views["collection_viewed"] > 0
    collections = split(store["products"])[1]
    assert {"summer", "winter-sale", "bestsellers"} <= {c["handle"] for c in collections}


def last_moment(store: Path) -> datetime.datetime:
    return max(
        timestamp(line[key])
        for name, keys in MOMENTS.items()
        for line in read(store, name)
        for key in keys
        if line.get(key)
    )


def test_nothing_happens_after_the_end_day(generated: tuple[Path, dict[str, int]]) -> None:
    end = datetime.datetime.combine(END_DAY + datetime.timedelta(days=1), datetime.time(), tzinfo=ROME)
    assert end - datetime.timedelta(hours=1) < last_moment(generated[0]) < end  # not even an update, a
    # cancellation or a completed checkout; yet the shop was busy up to the end


def test_the_end_day_moves_the_whole_history(tmp_path: Path) -> None:
    end_day = datetime.date(2024, 3, 15)
    generate_store(tmp_path, 300, end_day=end_day)
    end = datetime.datetime.combine(end_day + datetime.timedelta(days=1), datetime.time(), tzinfo=ROME)
    assert last_moment(tmp_path) < end
    processed = [timestamp(o["processedAt"]) for o in split(read(tmp_path, "orders"))[0]]
    assert max(processed) > end - datetime.timedelta(days=2)  # the shop was trading up to its last day
    assert min(processed) > end - datetime.timedelta(days=3 * 366)


def test_by_default_the_history_ends_today_in_the_shops_time_zone(tmp_path: Path) -> None:
    generate_store(tmp_path, 300)
    today = datetime.datetime.now(ROME).date()
    assert today - datetime.timedelta(days=2) <= last_moment(tmp_path).astimezone(ROME).date() <= today


def test_a_day_later_the_store_holds_the_same_sms_events_and_the_new_days_send(tmp_path: Path) -> None:
    """Events have no id: the built-in demo, regenerated each day, must not add a shifted copy of them."""

    def events(day: datetime.date) -> set[tuple]:
        generate_store(tmp_path / str(day), 300, seed=2, end_day=day)
        # the sends of the year before the end day: the oldest drops out as a new day comes in
        return {tuple(e.values()) for e in read(tmp_path / str(day), "sms_events") if e["occurredAt"] > "2026-01"}

    before, after = events(datetime.date(2026, 10, 31)), events(datetime.date(2026, 11, 1))
    assert before < after
    assert {(campaign, occurred[:10]) for _, _, campaign, occurred in after - before} == {("newsletter", "2026-11-01")}


def test_gift_cards_sell_alone_at_a_round_price(store: dict[str, list[dict]]) -> None:
    orders, line_items = split(store["orders"])
    lines_of = Counter(line["__parentId"] for line in line_items)
    gift_cards = {line["__parentId"] for line in line_items if line["sku"].startswith("GFT-")}
    totals = {o["id"]: o["totalPriceSet"]["shopMoney"]["amount"] for o in orders}
    assert len(gift_cards) > 0.02 * len(totals)
    assert all(lines_of[order] == 1 and totals[order] == f"{GIFT_CARD_CENTS // 100}.00" for order in gift_cards)


def test_the_built_in_demo_is_generated_once_a_day_and_earlier_days_are_removed(tmp_path: Path) -> None:
    old_release = tmp_path / "source" / f"demo-{DEMO_CUSTOMERS}-0"  # before the folder was named by its day
    old_release.mkdir(parents=True)
    first = demo_store(tmp_path, datetime.date(2026, 11, 6))
    assert first.name == f"demo-{DEMO_CUSTOMERS}-0-2026-11-06" and not old_release.exists()
    written = (first / "orders.jsonl").stat().st_mtime_ns
    assert demo_store(tmp_path, datetime.date(2026, 11, 6)) == first
    assert (first / "orders.jsonl").stat().st_mtime_ns == written  # the same day reuses it
    second = demo_store(tmp_path, datetime.date(2026, 11, 7))
    assert sorted(p.name for p in (tmp_path / "source").iterdir()) == [second.name]
    assert last_moment(second).astimezone(ROME).date() == datetime.date(2026, 11, 7)


def test_an_empty_store_still_has_a_catalogue(tmp_path: Path) -> None:
    counts = generate_store(tmp_path, 0)
    assert counts["customers"] == counts["orders"] == 0 and counts["products"] > 0
    assert (tmp_path / "customers.jsonl").read_bytes() == b""


def test_built_in_demo_size() -> None:
    assert DEMO_CUSTOMERS == 2000


def test_a_day_later_the_store_repeats_the_email_and_storefront_events_it_had(tmp_path: Path) -> None:
    """Like the SMS events: each campaign and each day of views draws from its own generator."""

    def events(day: datetime.date) -> dict[str, set[str]]:
        generate_store(tmp_path / str(day), 300, seed=2, end_day=day)
        return {
            name: {json.dumps(e, sort_keys=True) for e in read(tmp_path / str(day), name)}
            for name in ("shopify_email_events", "storefront_events")
        }

    before, after = events(datetime.date(2026, 11, 20)), events(datetime.date(2026, 11, 21))
    # The views of the day that left the 90-day window aside, the earlier store's events are still there,
    # but for the few of a customer who signs up a day later in the later store (sign-ups move with the
    # end day, as all of the demo's customers do): no shifted copy of every view.
    window = (datetime.date(2026, 11, 21) - datetime.timedelta(days=STOREFRONT_DAYS - 1)).isoformat()
    kept = {e for e in before["storefront_events"] if json.loads(e)["occurredAt"] >= window}
    assert len(kept & after["storefront_events"]) >= 0.97 * len(kept)
    assert len(after["storefront_events"] - before["storefront_events"]) < 0.05 * len(after["storefront_events"])
    emails = before["shopify_email_events"]
    assert len(emails & after["shopify_email_events"]) >= 0.97 * len(emails)


@pytest.mark.parametrize("customers", [0, 1, 2, 5, 20])
def test_a_tiny_shop_is_written_whatever_it_lacks(tmp_path: Path, customers: int) -> None:
    """A shop of a few customers may have texted no one, or have no checkout: every file is still written,
    each line a JSON object (20 customers of seed 3 texted no one, and the empty events frame had no type)."""
    for seed in range(4):
        out = tmp_path / f"{seed}"
        counts = generate_store(out, customers=customers, seed=seed, end_day=END_DAY)
        assert counts["customers"] == customers
        for path in out.glob("*.jsonl"):
            assert all(isinstance(json.loads(line), dict) for line in path.read_text().splitlines()), path
