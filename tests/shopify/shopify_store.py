"""Hand-made store directories for the Shopify tests: a few JSON lines per file, as in the spec."""

import json
from collections import Counter
from pathlib import Path

TOKEN = "shpat_test_0123456789abcdef"

SHOP = {"name": "Tiny Tees", "ianaTimezone": "Europe/Berlin", "currencyCode": "EUR"}


BERLIN = {"countryCodeV2": "DE", "provinceCode": "BE", "city": "Berlin", "zip": "10115"}


def customer(number: int, updated_at: str = "2026-10-01T10:00:00Z", **changes: object) -> dict:
    address = BERLIN
    return {
        "id": f"gid://shopify/Customer/{number}",
        "firstName": f"Ada{number}",
        "lastName": "Lovelace",
        "createdAt": "2026-09-01T08:00:00Z",
        "updatedAt": updated_at,
        "state": "ENABLED",
        "locale": "de",
        "tags": ["vip"],
        "defaultEmailAddress": {"emailAddress": f"ada{number}@example.com", "marketingState": "SUBSCRIBED"},
        "defaultPhoneNumber": {
            "phoneNumber": f"+4915100000{number:03d}",
            "marketingState": "SUBSCRIBED",
            "marketingOptInLevel": "SINGLE_OPT_IN",
            "marketingUpdatedAt": "2026-09-02T08:00:00Z",
        },
        # every address, the default too, is an addressesV2 line of its own (see write_store)
        "defaultAddress": {**address, "latitude": 52.52, "longitude": 13.405},
        "statistics": {"predictedSpendTier": "HIGH"},
        "productSubscriberStatus": "NEVER_SUBSCRIBED",
        "companyContactProfiles": [{"company": {"id": f"gid://shopify/Company/{number}"}}],
        **changes,
    }


def mailing_address(number: int, customer_number: int, address: dict) -> dict:
    """One of a customer's addressesV2 lines; Shopify's ids of customer addresses carry a query string."""
    return {
        "__typename": "MailingAddress",
        "id": f"gid://shopify/MailingAddress/{number}?model_name=CustomerAddress",
        "latitude": None,
        "longitude": None,
        **address,
        "__parentId": f"gid://shopify/Customer/{customer_number}",
    }


def order(number: int, customer_number: int, updated_at: str = "2026-10-01T21:31:00Z") -> dict:
    money = {"shopMoney": {"amount": "59.90", "currencyCode": "EUR"}}
    return {
        "id": f"gid://shopify/Order/{number}",
        "name": f"#{number}",
        "customer": {"id": f"gid://shopify/Customer/{customer_number}"},
        "processedAt": "2026-10-01T21:30:00Z",
        "createdAt": "2026-10-01T21:30:00Z",
        "updatedAt": updated_at,
        "cancelledAt": None,
        "test": False,
        "displayFinancialStatus": "PAID",
        "currencyCode": "EUR",
        "totalPriceSet": money,
        "currentTotalPriceSet": money,
    }


def line_item(number: int, order_number: int) -> dict:
    return {
        "id": f"gid://shopify/LineItem/{number}",
        "product": {"id": "gid://shopify/Product/42"},
        "variant": {"id": "gid://shopify/ProductVariant/420"},
        "sku": "TEE-M",
        "title": "Tee",
        "quantity": 2,
        "originalTotalSet": {"shopMoney": {"amount": "59.90", "currencyCode": "EUR"}},
        "__parentId": f"gid://shopify/Order/{order_number}",
    }


def product(number: int) -> dict:
    return {
        "id": f"gid://shopify/Product/{number}",
        "title": "Tee",
        "handle": f"tee-{number}",
        "productType": "Shirts",
        "vendor": "Tiny",
        "tags": ["cotton"],
        "updatedAt": "2026-09-15T12:00:00Z",
    }


def collection(number: int, product_number: int) -> dict:
    return {
        "id": f"gid://shopify/Collection/{number}",
        "handle": f"summer-{number}",
        "title": "Summer",
        "__parentId": f"gid://shopify/Product/{product_number}",
    }


def checkout(number: int, customer_number: int) -> dict:
    return {
        "id": f"gid://shopify/AbandonedCheckout/{number}",
        "createdAt": "2026-10-02T09:00:00Z",
        "updatedAt": "2026-10-02T09:05:00Z",
        "completedAt": None,
        "abandonedCheckoutUrl": f"https://tiny-tees.myshopify.com/checkouts/{number}/recover",
        "customer": {"id": f"gid://shopify/Customer/{customer_number}"},
        "totalPriceSet": {"shopMoney": {"amount": "19.90", "currencyCode": "EUR"}},
    }


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def write_store(store_dir: Path) -> Path:
    """A tiny shop: children placed before and after their parents, as the contract allows."""
    store_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(store_dir / "shop.jsonl", [SHOP])
    # a customer's metafields, store credit accounts and addresses are child lines, one before its customer
    write_jsonl(
        store_dir / "customers.jsonl",
        [
            customer(1),
            {
                "__typename": "Metafield",
                "id": "gid://shopify/Metafield/11",
                "namespace": "facts",
                "key": "birth_date",
                "type": "date",
                "value": "1992-02-29",
                "__parentId": "gid://shopify/Customer/2",
            },
            customer(2),
            {
                "__typename": "StoreCreditAccount",
                "id": "gid://shopify/StoreCreditAccount/21",
                "balance": {"amount": "12.50", "currencyCode": "EUR"},
                "__parentId": "gid://shopify/Customer/2",
            },
            customer(3),
            # customer 3's addresses: the default one, and one abroad that Shopify could not geocode
            mailing_address(31, 3, {**BERLIN, "latitude": 52.52, "longitude": 13.405}),
            mailing_address(32, 3, {"countryCodeV2": "AT", "provinceCode": None, "city": "Wien", "zip": "1010"}),
        ],
    )
    write_jsonl(
        store_dir / "orders.jsonl",
        [line_item(5002, 1001), order(1001, 1), line_item(5001, 1001), order(1002, 2), line_item(5003, 1002)],
    )
    write_jsonl(store_dir / "products.jsonl", [product(42), collection(7, 42), collection(8, 42), product(43)])
    write_jsonl(store_dir / "abandoned_checkouts.jsonl", [checkout(9, 3)])
    return store_dir


def lines_of(path: Path) -> Counter:
    """A file's JSON lines as a multiset, so order and key order do not matter."""
    return Counter(json.dumps(json.loads(line), sort_keys=True) for line in path.read_text().splitlines())
