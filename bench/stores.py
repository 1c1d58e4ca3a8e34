"""The benchmark's two store directories: night 1 a generated demo store, night 2 what changed the day after."""

import datetime as dt
import json
import os
from pathlib import Path

import numpy as np

from pipeline.store.demo import (
    CUSTOMER_ID_BASE,
    LINE_ITEM_ID_BASE,
    ORDER_ID_BASE,
    ORDER_NUMBER_START,
    PRODUCT_ID_BASE,
    VARIANT_ID_BASE,
    generate_store,
)

NIGHT_ONE = dt.date(2026, 11, 1)  # fixed, not today, so every measurement runs over the same store
NIGHT_TWO = NIGHT_ONE + dt.timedelta(days=1)
CHANGED_SHARE = 0.01
# Files night 2 carries over unchanged: hard links, so the ingest recognises them by digest and skips them.
UNCHANGED_FILES = (
    "shop.jsonl",
    "products.jsonl",
    "abandoned_checkouts.jsonl",
    "sms_events.jsonl",
    "redactions.jsonl",
    "shopify_email_events.jsonl",
    "storefront_events.jsonl",
)


def write_night_two(
    night_one: Path, night_two: Path, customers: int, orders: int, line_items: int, seed: int = 0
) -> dict[str, int]:
    """A store directory of what changed the day after night 1, as an incremental extraction holds it.

    1% of customers come again with a later updatedAt: a third with a new phone number, a third with
    their SMS consent flipped, a third with a new tag. orders.jsonl holds a day of new orders with
    their line items. The other files are night 1's, hard-linked, so the ingest skips them by digest.
    """
    night_two.mkdir(parents=True, exist_ok=True)
    for file in UNCHANGED_FILES:
        target = night_two / file
        target.unlink(missing_ok=True)
        os.link(night_one / file, target)
    rng = np.random.default_rng([seed, 8])
    changed = _changed_customers(night_one / "customers.jsonl", night_two / "customers.jsonl", rng)
    new_orders, new_lines = _new_orders(night_two / "orders.jsonl", customers, orders, line_items, rng)
    return {"changed_customers": changed, "new_orders": new_orders, "new_line_items": new_lines}


def _changed_customers(source: Path, target: Path, rng: np.random.Generator) -> int:
    modulus = round(1 / CHANGED_SHARE)
    prefix = '{"id":"gid://shopify/Customer/'
    day = dt.datetime.combine(NIGHT_TWO, dt.time(9), tzinfo=dt.UTC)
    seen: set[str] = set()
    patched = []
    with open(source, encoding="utf-8") as lines:
        for line in lines:
            # The demo writes the id first: choosing by it spares parsing the other 99% of lines.
            number = line[len(prefix) : line.find('"', len(prefix))] if line.startswith(prefix) else ""
            if not number.isdigit() or int(number) % modulus or number in seen:
                continue
            seen.add(number)
            customer = json.loads(line)
            customer["updatedAt"] = (day + dt.timedelta(seconds=int(rng.integers(0, 8 * 3600)))).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            )
            phone = customer.get("defaultPhoneNumber")
            kind = len(patched) % 3
            if kind == 0 or phone is None:
                national = f"3{rng.integers(20, 50)}{rng.integers(0, 10_000_000):07d}"
                customer["defaultPhoneNumber"] = {
                    **(phone or {}),
                    "phoneNumber": f"+39{national}",
                    "marketingState": "SUBSCRIBED",
                }
            elif kind == 1:
                flipped = "UNSUBSCRIBED" if phone.get("marketingState") == "SUBSCRIBED" else "SUBSCRIBED"
                customer["defaultPhoneNumber"] = {
                    **phone,
                    "marketingState": flipped,
                    "marketingUpdatedAt": customer["updatedAt"],
                }
            else:
                customer["tags"] = [*customer.get("tags", []), "VIP"]
            patched.append(json.dumps(customer, ensure_ascii=False, separators=(",", ":")) + "\n")
    # A changed customer comes with its metafields and store credit accounts, as a bulk query's nested
    # connections bring them: the demo writes them after its customers, each naming its parent last.
    parents = {f'"__parentId":"gid://shopify/Customer/{number}"}}\n' for number in seen}
    with open(source, encoding="utf-8") as lines:
        patched += [
            line for line in lines if line.startswith('{"__typename"') and line[line.rfind(",") + 1 :] in parents
        ]
    target.write_text("".join(patched), encoding="utf-8")
    return len(seen)


def _new_orders(
    target: Path, customers: int, orders: int, line_items: int, rng: np.random.Generator
) -> tuple[int, int]:
    """A day of orders: night 1's daily average over the last year (the store grows), at least one."""
    count = max(1, orders // 365)
    day = dt.datetime.combine(NIGHT_TWO, dt.time(7), tzinfo=dt.UTC)
    lines_written = 0
    with open(target, "w", encoding="utf-8") as f:
        for k in range(count):
            number = orders + k
            order_gid = f"gid://shopify/Order/{ORDER_ID_BASE + number}"
            at = (day + dt.timedelta(seconds=int(rng.integers(0, 14 * 3600)))).strftime("%Y-%m-%dT%H:%M:%SZ")
            total_cents = 0
            lines = []
            for _ in range(1 + int(rng.poisson(1.5))):
                product = int(rng.integers(0, 200))
                quantity = int(rng.geometric(0.7))
                cents = (int(rng.integers(15, 150)) * 100 + 90) * quantity
                total_cents += cents
                lines.append(
                    {
                        "id": f"gid://shopify/LineItem/{LINE_ITEM_ID_BASE + line_items + lines_written}",
                        "product": {"id": f"gid://shopify/Product/{PRODUCT_ID_BASE + product}"},
                        "variant": {"id": f"gid://shopify/ProductVariant/{VARIANT_ID_BASE + product * 10}"},
                        "sku": f"BENCH-{product:04d}",
                        "title": f"Product {product}",
                        "quantity": quantity,
                        "originalTotalSet": {"shopMoney": {"amount": f"{cents // 100}.{cents % 100:02d}"}},
                        "__parentId": order_gid,
                    }
                )
                lines_written += 1
            money = {"shopMoney": {"amount": f"{total_cents // 100}.{total_cents % 100:02d}", "currencyCode": "EUR"}}
            order = {
                "id": order_gid,
                "name": f"#{ORDER_NUMBER_START + number}",
                "customer": {"id": f"gid://shopify/Customer/{CUSTOMER_ID_BASE + int(rng.integers(0, customers))}"},
                "createdAt": at,
                "processedAt": at,
                "updatedAt": at,
                "cancelledAt": None,
                "test": False,
                "displayFinancialStatus": "PAID",
                "currencyCode": "EUR",
                "totalPriceSet": money,
                "currentTotalPriceSet": money,
            }
            for record in (order, *lines):
                f.write(json.dumps(record, separators=(",", ":")) + "\n")
    return count, lines_written


def prepare_stores(work: Path, customers: int, seed: int) -> dict[str, int]:
    """Night 1's and night 2's store directories; runs in a child process so its memory is not ours."""
    counts = generate_store(work / "night1", customers=customers, seed=seed, end_day=NIGHT_ONE)
    changes = write_night_two(work / "night1", work / "night2", customers, counts["orders"], counts["line_items"], seed)
    return {**counts, **changes}
