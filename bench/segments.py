"""The benchmark's segment definitions: between them the whole language, each with the baseline's own predicate."""

from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass(frozen=True)
class BenchSegment:
    """A segment definition for the benchmark and the baseline's own predicate for it.

    `baseline` is hand-written SQL over the baseline's tables (customers as c, orders, order_lines,
    sms_events, email_events, storefront_events, and seg_<name> for earlier segments), with $as_of the
    evaluation date.
    """

    name: str
    query: str
    baseline: str
    export: bool = False
    fields: tuple[str, ...] = ()


def _lowered(column: str) -> str:
    return f"list_transform({column}, lambda x: lower(x))"


def _within_km(latitude: float, longitude: float, km: float) -> str:
    """The baseline's own great-circle test: the spherical law of cosines on any of c.points, the customer's
    geocoded addresses."""
    return (
        f"len(list_filter(c.points, lambda p: 6371.0088 * acos(least(1, sin(radians(p.lat)) * sin(radians({latitude}))"
        f" + cos(radians(p.lat)) * cos(radians({latitude})) * cos(radians(p.lng - {longitude})))) "
        f"<= {km})) > 0"
    )


# A birthday (Feb 29 on Feb 28 in other years) this year or next, within 30 days of the evaluation date.
BIRTHDAYS_NEXT_MONTH = (
    "exists (select 1 from (select try_cast(m.value as date) as b from metafields m "
    "where m.customer_id = c.customer_id and m.namespace = 'facts' and m.key = 'birth_date' and m.type = 'date') "
    "where make_date(year($as_of), month(b), least(day(b), day(last_day(make_date(year($as_of), month(b), 1))))) "
    "between $as_of and $as_of + 30 "
    "or make_date(year($as_of) + 1, month(b), least(day(b), day(last_day(make_date(year($as_of) + 1, month(b), 1))))) "
    "between $as_of and $as_of + 30)"
)
LOYAL_BY_METAFIELD = (
    "exists (select 1 from metafields m where m.customer_id = c.customer_id and m.namespace = 'custom' "
    "and m.key = 'vip' and m.type = 'boolean' and try_cast(m.value as boolean)) "
    "or exists (select 1 from metafields m where m.customer_id = c.customer_id and m.namespace = 'custom' "
    "and m.key = 'loyalty_points' and m.type in ('number_integer', 'number_decimal') "
    "and try_cast(m.value as decimal(38, 9)) >= 4000)"
)


# Between them they use every attribute, every function and parameter, and every operator of the language.
SEGMENTS: tuple[BenchSegment, ...] = (
    BenchSegment(
        "vip_big_spenders",
        "amount_spent > 500 AND customer_tags CONTAINS 'VIP'",
        f"c.amount_spent > 500 and list_contains({_lowered('c.customer_tags')}, 'vip')",
        export=True,
        fields=("amount_spent",),
    ),
    BenchSegment("frequent_buyers", "number_of_orders >= 5", "c.number_of_orders >= 5", export=True),
    BenchSegment(
        "mid_baskets", "average_order_value BETWEEN 40 AND 120.50", "c.average_order_value between 40 and 120.50"
    ),
    BenchSegment(
        "first_ordered_this_year", "first_order_date >= 2026-01-01", "c.first_order_date >= date '2026-01-01'"
    ),
    BenchSegment(
        "lapsed_buyers",
        "number_of_orders >= 2 AND last_order_date < -90d",
        "c.number_of_orders >= 2 and c.last_order_date < $as_of - 90",
        export=True,
        fields=("amount_spent", "last_order_date"),
    ),
    BenchSegment(
        "joined_last_month",
        "customer_added_date >= -1m",
        "c.customer_added_date >= cast($as_of - interval 1 month as date)",
    ),
    BenchSegment(
        "abandoned_this_week",
        "abandoned_checkout_date >= -7d AND sms_subscription_status = 'SUBSCRIBED'",
        "c.abandoned_checkout_date >= $as_of - 7 and c.sms_subscription_status = 'SUBSCRIBED'",
        export=True,
        fields=("abandoned_checkout_url",),
    ),
    BenchSegment(
        "email_only_enabled",
        "email_subscription_status = 'SUBSCRIBED' AND sms_subscription_status != 'SUBSCRIBED' "
        "AND customer_account_status = 'ENABLED'",
        "c.email_subscription_status = 'SUBSCRIBED' and c.sms_subscription_status <> 'SUBSCRIBED' "
        "and c.customer_account_status = 'ENABLED'",
    ),
    BenchSegment("gmail_users", "customer_email_domain = 'Gmail.com'", "lower(c.customer_email_domain) = 'gmail.com'"),
    BenchSegment(
        "italians",
        "customer_language = 'IT' OR customer_countries CONTAINS 'it'",
        f"lower(c.customer_language) = 'it' or list_contains({_lowered('c.customer_countries')}, 'it')",
    ),
    BenchSegment(
        "milan_or_new_york",
        "customer_cities CONTAINS 'IT-MI-Milano' OR customer_regions CONTAINS 'US-NY'",
        f"list_contains({_lowered('c.customer_cities')}, 'it-mi-milano') "
        f"or list_contains({_lowered('c.customer_regions')}, 'us-ny')",
    ),
    BenchSegment(
        "best_customers",
        "rfm_group = 'CHAMPIONS' OR rfm_group = 'LOYAL'",
        "c.rfm_group in ('CHAMPIONS', 'LOYAL')",
        export=True,
    ),
    BenchSegment(
        "prospects_not_b2b",
        "last_order_date IS NULL AND customer_tags NOT CONTAINS 'b2b' AND customer_language IS NOT NULL",
        f"c.last_order_date is null and not list_contains({_lowered('c.customer_tags')}, 'b2b') "
        "and c.customer_language is not null",
    ),
    BenchSegment(
        "summer_last_year",
        "products_purchased MATCHES (collection = 'Summer', date >= -1y)",
        "exists (select 1 from order_lines l where l.customer_id = c.customer_id "
        "and list_contains(l.collection_handles, 'summer') "
        "and l.order_date >= cast($as_of - interval 1 year as date))",
    ),
    BenchSegment(
        "bought_top_products",
        "products_purchased MATCHES (id IN (8300000000001, 8300000000002, "
        "'gid://shopify/Product/8300000000003'), quantity >= 2)",
        "exists (select 1 from order_lines l where l.customer_id = c.customer_id "
        "and l.product_id in (8300000000001, 8300000000002, 8300000000003) "
        "having coalesce(sum(l.quantity), 0) >= 2)",
    ),
    BenchSegment(
        "sale_collectors",
        "products_purchased MATCHES (tag = 'SALE', collection_id IN (450000000000, 450000000001), count >= 2)",
        "exists (select 1 from order_lines l where l.customer_id = c.customer_id "
        "and list_contains(l.product_tags, 'sale') and (list_contains(l.collection_ids, 450000000000) "
        "or list_contains(l.collection_ids, 450000000001)) having count(distinct l.order_id) >= 2)",
    ),
    BenchSegment(
        "recent_repeat_no_gifts",
        "orders_placed MATCHES (date >= -3m, amount > 50, count >= 2) "
        "AND products_purchased NOT MATCHES (tag IN ('gift', 'limited'), date BETWEEN -1y AND today)",
        "exists (select 1 from orders o where o.customer_id = c.customer_id "
        "and o.order_date >= cast($as_of - interval 3 month as date) and o.amount > 50 "
        "having count(distinct o.order_id) >= 2) "
        "and not exists (select 1 from order_lines l where l.customer_id = c.customer_id "
        "and (list_contains(l.product_tags, 'gift') or list_contains(l.product_tags, 'limited')) "
        "and l.order_date between cast($as_of - interval 1 year as date) and $as_of)",
    ),
    BenchSegment(
        "big_quarter",
        "orders_placed MATCHES (date BETWEEN -90d AND today, sum_amount >= 300)",
        "exists (select 1 from orders o where o.customer_id = c.customer_id "
        "and o.order_date between $as_of - 90 and $as_of having coalesce(sum(o.amount), 0) >= 300)",
        export=True,
    ),
    BenchSegment(
        "clicked_no_conversion",
        "sms_events MATCHES (type = 'clicked', date >= -60d, count >= 1) "
        "AND sms_events NOT MATCHES (type = 'converted', campaign = 'Back-In-Stock')",
        "exists (select 1 from sms_events e where e.phone_e164 = c.phone_e164 "
        "and e.event_type = 'clicked' and e.event_date >= $as_of - 60 having count(*) >= 1) "
        "and not exists (select 1 from sms_events e where e.phone_e164 = c.phone_e164 "
        "and e.event_type = 'converted' and lower(e.campaign) = 'back-in-stock')",
    ),
    BenchSegment(
        "predicted_high_subscribers",
        "predicted_spend_tier = 'HIGH' AND product_subscription_status IN ('SUBSCRIBED', 'PAUSED')",
        "c.predicted_spend_tier = 'HIGH' and c.product_subscription_status in ('SUBSCRIBED', 'PAUSED')",
    ),
    BenchSegment(
        "reachable_buyers",
        "can_receive_sms = true AND number_of_orders >= 1",
        # consenting (a redacted customer is REDACTED), a valid number, never opted out, the lowest id a number
        "c.customer_id in (select min(r.customer_id) from customers r where r.sms_subscription_status = 'SUBSCRIBED' "
        "and r.phone_e164 is not null and r.phone_e164 not in (select phone from opted_out) group by r.phone_e164) "
        "and c.number_of_orders >= 1",
        export=True,
    ),
    BenchSegment(
        "b2b_contacts",
        "companies IS NOT NULL AND companies NOT CONTAINS 1",
        "len(c.companies) > 0 and not list_contains(c.companies, 1)",
    ),
    BenchSegment(
        "near_milan_new_consent",
        "customer_within_distance MATCHES (coordinates = (45.4642, 9.19), distance_km = 30) "
        "AND sms_consent_date >= -90d",
        f"{_within_km(45.4642, 9.19, 30)} and c.sms_consent_date >= $as_of - 90",
        export=True,
    ),
    BenchSegment(
        "far_from_new_york",
        "customer_within_distance NOT MATCHES (coordinates = (40.7128, -74.006), distance_mi = 50)",
        f"not coalesce({_within_km(40.7128, -74.006, 50 * 1.609344)}, false)",
    ),
    BenchSegment(
        "birthdays_next_month",
        "anniversary(date: 'metafields.facts.birth_date') BETWEEN today AND +30d",
        BIRTHDAYS_NEXT_MONTH,
        export=True,
    ),
    BenchSegment(
        "loyal_by_metafield",
        "metafields.custom.vip = true OR metafields.custom.loyalty_points >= 4000",
        LOYAL_BY_METAFIELD,
    ),
    BenchSegment(
        "store_credit_left",
        "store_credit_accounts MATCHES (balance > 0, currency = 'eur')",
        "exists (select 1 from store_credit s where s.customer_id = c.customer_id and s.balance > 0 "
        "and s.currency = 'EUR')",
    ),
    BenchSegment(
        "winback_quiet",
        "segments CONTAINS 'lapsed_buyers' AND segments NOT CONTAINS 'clicked_no_conversion'",
        "c.customer_id in (select customer_id from seg_lapsed_buyers) "
        "and c.customer_id not in (select customer_id from seg_clicked_no_conversion)",
        export=True,
    ),
    # Shopify Email and storefront events: every function and parameter.
    BenchSegment(
        "email_engaged",
        "shopify_email.opened MATCHES (activity_id IN (5240029206, 3250045832), date >= -1y, count >= 1) "
        "AND shopify_email.clicked MATCHES (activity_id != 1932881090)",
        "exists (select 1 from email_events e where e.customer_id = c.customer_id "
        "and e.event_type = 'opened' and e.activity_id in (5240029206, 3250045832) "
        "and e.event_date >= cast($as_of - interval 1 year as date) having count(*) >= 1) "
        "and exists (select 1 from email_events e where e.customer_id = c.customer_id "
        "and e.event_type = 'clicked' and e.activity_id <> 1932881090)",
    ),
    BenchSegment(
        "email_reachable",
        "shopify_email.delivered MATCHES (date BETWEEN -90d AND today) "
        "AND shopify_email.bounced NOT MATCHES () "
        "AND shopify_email.marked_as_spam NOT MATCHES (activity_id NOT IN (5240029206)) "
        "AND shopify_email.unsubscribed MATCHES (count = 0)",
        "exists (select 1 from email_events e where e.customer_id = c.customer_id "
        "and e.event_type = 'delivered' and e.event_date between $as_of - 90 and $as_of) "
        "and not exists (select 1 from email_events e where e.customer_id = c.customer_id "
        "and e.event_type = 'bounced') "
        "and not exists (select 1 from email_events e where e.customer_id = c.customer_id "
        "and e.event_type = 'marked_as_spam' and e.activity_id not in (5240029206)) "
        "and not exists (select 1 from email_events e where e.customer_id = c.customer_id "
        "and e.event_type = 'unsubscribed')",
    ),
    BenchSegment(
        "browsed_top_products",
        "storefront_event.product_viewed MATCHES (product_id IN (8300000000001, "
        "'gid://shopify/Product/8300000000002'), date >= -30d) "
        "OR storefront_event.product_viewed MATCHES (id = 8300000000003, count >= 2) "
        "OR storefront_event.collection_viewed MATCHES (collection_id = 450000000001, date >= -7d) "
        "OR storefront_event.collection_viewed MATCHES (id != 450000000002, count >= 3)",
        "exists (select 1 from storefront_events v where v.customer_id = c.customer_id "
        "and v.event_type = 'product_viewed' and v.product_id in (8300000000001, 8300000000002) "
        "and v.event_date >= $as_of - 30) "
        "or exists (select 1 from storefront_events v where v.customer_id = c.customer_id "
        "and v.event_type = 'product_viewed' and v.product_id = 8300000000003 having count(*) >= 2) "
        "or exists (select 1 from storefront_events v where v.customer_id = c.customer_id "
        "and v.event_type = 'collection_viewed' and v.collection_id = 450000000001 "
        "and v.event_date >= $as_of - 7) "
        "or exists (select 1 from storefront_events v where v.customer_id = c.customer_id "
        "and v.event_type = 'collection_viewed' and v.collection_id <> 450000000002 having count(*) >= 3)",
    ),
)


def bench_segments(count: int) -> list[BenchSegment]:
    """`count` segments: the list above, then copies of it under new names.

    A definition only uses segments before it in the list, so any prefix is complete.
    """
    if count < 1:
        raise ValueError(f"--segments {count}: the benchmark needs at least 1 segment")
    chosen = []
    for i in range(count):
        base = SEGMENTS[i % len(SEGMENTS)]
        round_ = i // len(SEGMENTS)
        if round_ == 0:
            chosen.append(base)
            continue
        suffix = f"_{round_ + 1}"
        query, baseline = base.query, base.baseline
        for used in ("lapsed_buyers", "clicked_no_conversion"):  # copies use their own round's segments
            query = query.replace(f"'{used}'", f"'{used}{suffix}'")
            baseline = baseline.replace(f"seg_{used}", f"seg_{used}{suffix}")
        chosen.append(BenchSegment(base.name + suffix, query, baseline, base.export, base.fields))
    return chosen


def write_segment_defs(directory: Path, segments: list[BenchSegment]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for s in segments:
        definition = {"name": s.name, "description": f"benchmark segment {s.name}", "query": s.query}
        if s.export:
            definition["sms"] = {"export": True, **({"fields": list(s.fields)} if s.fields else {})}
        (directory / f"{s.name}.yaml").write_text(yaml.safe_dump(definition, sort_keys=False))
