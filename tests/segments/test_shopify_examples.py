"""Queries as Shopify's documentation writes them: the ones we serve give the evaluator's members, and the
README's list of refused ones is refused, each saying what it needs."""

import re

import pytest

from pipeline.segments import SegmentErrors, compile_query, render
from pipeline.segments.compiler import parse_checked
from pipeline.settings import PROJECT_DIR
from tests.segments.conftest import AS_OF, Built
from tests.segments.evaluator import Evaluator

# From the segment query language reference, the help center's filter reference, the 2026-10 changelog
# (the deprecated forms and named dates) and the editor's default text.
ACCEPTED = [
    "abandoned_checkout_date >= 7_days_ago",
    "abandoned_checkout_date > -8m",
    "abandoned_checkout_date = today",
    "abandoned_checkout_date = yesterday",
    "abandoned_checkout_date >= 30_days_ago",
    "abandoned_checkout_date >= 90_days_ago",
    "abandoned_checkout_date >= 12_months_ago",
    "abandoned_checkout_date IS NOT NULL",
    "amount_spent BETWEEN 1 AND 999.99",
    "customer_cities CONTAINS 'US-NY-NewYorkCity'",
    "customer_cities IS NULL",
    "customer_tags IS NULL",
    "email_subscription_status = 'SUBSCRIBED'",
    "last_order_date = 2020-05-30",
    "last_order_date != 2020-05-30",
    "last_order_date > -7d",
    "last_order_date >= -2w",
    "last_order_date = -1m",
    "last_order_date < -1y",
    "last_order_date BETWEEN -365d AND -90d AND number_of_orders > 1",
    "number_of_orders > 0",
    "products_purchased MATCHES (quantity = 5)",
    "products_purchased MATCHES (quantity != 5)",
    "products_purchased MATCHES (quantity > 5)",
    "products_purchased(quantity: 5) = true",
    "products_purchased NOT MATCHES ()",
    "rfm_group = 'AT_RISK' AND email_subscription_status = 'SUBSCRIBED'",
    "customer_added_date >= 2026-10-01T10:00:00",
    "predicted_spend_tier = 'HIGH'",
    "product_subscription_status = 'SUBSCRIBED'",
    "companies IS NOT NULL",
    "companies IS NULL",
    "customer_within_distance MATCHES (coordinates = (45.39, -75.74), distance_km = 25)",
    "anniversary(date: 'metafields.facts.birth_date') BETWEEN today AND +30d",
    "anniversary(date: 'metafields.facts.birth_date') BETWEEN today AND +7d",
    "anniversary(date: 'metafields.facts.birth_date') = today",
    "store_credit_accounts MATCHES (balance > 0)",
    "metafields.custom.vip = true",
    "FROM customers\nSHOW customer_name, note, subscription_status, location, orders, amount_spent\n"
    "WHERE amount_spent > 100\nORDER BY updated_at",
    # Shopify Email and storefront events: the reference's examples, ShopifyQL's, the changelog's and the
    # README's once-refused ones.
    "shopify_email.opened MATCHES ()",
    "shopify_email.opened MATCHES (activity_id = 5240029206)",
    "shopify_email.opened NOT MATCHES (activity_id = 5240029206)",
    "shopify_email.delivered MATCHES (activity_id = 5240029206)",
    "shopify_email.opened MATCHES (activity_id IN (5240029206, 1932881090, 3250045832))",
    "shopify_email.unsubscribed MATCHES (activity_id IN (5240029206))",
    "shopify_email.delivered MATCHES (activity_id = 5240029206, date = 2022-01-01)",
    "shopify_email.marked_as_spam MATCHES (activity_id = 5240029206, date > -3m)",
    "shopify_email.bounced NOT MATCHES (activity_id = 5240029206, date BETWEEN -12m AND today)",
    "shopify_email.opened MATCHES (activity_id = 5240029206, date > 2025-01-01)",
    "FROM customers\nSHOW customer_email, email_subscription_status\n"
    "WHERE shopify_email.opened MATCHES (activity_id = 5240029206, date > 2025-01-01)",
    "shopify_email.opened() = true",
    "shopify_email.clicked() = true",
    "shopify_email.bounced MATCHES (date >= -30d)",
    "storefront_event.product_viewed MATCHES (product_id = 42, date >= -7d)",
    "storefront_event.collection_viewed MATCHES ()",
]


@pytest.fixture(scope="module")
def evaluator(varied: Built) -> Evaluator:
    return Evaluator(varied.oracle(), varied.as_of)


@pytest.mark.parametrize("query", ACCEPTED)
def test_documented_examples_give_the_evaluators_members(varied: Built, evaluator: Evaluator, query: str) -> None:
    con = varied.connect()
    try:
        found = {row[0] for row in con.execute(render(compile_query(query, varied.as_of))).fetchall()}
    finally:
        con.close()
    assert found == evaluator.members(parse_checked(query))


def refused_in_readme() -> list[str]:
    readme = (PROJECT_DIR / "README.md").read_text()
    table = readme.split("<!-- refused Shopify examples", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"^\| `(.+?)` \|", table, re.M)


def test_the_readme_lists_the_refused_examples() -> None:
    # the table is read (its rows shrink as filters are served; created_by_app_id has no data yet)
    assert "created_by_app_id = 580111" in refused_in_readme()


@pytest.mark.parametrize("query", refused_in_readme())
def test_refused_examples_say_what_they_need(query: str) -> None:
    filter_name = re.match(r"[\w.]+", query).group()
    with pytest.raises(SegmentErrors) as caught:
        compile_query(query, AS_OF)
    assert [e.message.split(":")[0] for e in caught.value.errors] == [
        f"{filter_name} is a Shopify filter smsseg cannot evaluate yet"
    ]
