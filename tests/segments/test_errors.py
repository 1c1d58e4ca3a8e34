"""Every kind of mistake gets one error with file, line:column, the line, a caret and a hint."""

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from pipeline.audience.gateways import AudienceTarget
from pipeline.segments import SegmentErrors, compile_query, load_definitions

AS_OF = dt.date(2026, 10, 15)


def errors(query: str) -> list[str]:
    with pytest.raises(SegmentErrors) as caught:
        compile_query(query, AS_OF)
    return [str(e) for e in caught.value.errors]


def only(query: str) -> str:
    found = errors(query)
    assert len(found) == 1, found
    return found[0]


def test_unknown_attribute_full_display() -> None:
    assert only("amount_spend > 100") == textwrap.dedent("""\
        <query>:1:1: unknown attribute 'amount_spend'
         1 | amount_spend > 100
           | ^^^^^^^^^^^^
          hint: did you mean amount_spent?""")


def test_wrong_value_type_says_what_is_expected() -> None:
    assert only("number_of_orders > 1 AND last_order_date < 100") == textwrap.dedent("""\
        <query>:1:44: last_order_date cannot be compared with the number 100
         1 | number_of_orders > 1 AND last_order_date < 100
           |                                            ^^^
          hint: last_order_date expects a date such as 2026-01-31 or -30d""")


@pytest.mark.parametrize(
    ("query", "message", "hint"),
    [
        (
            "sms_subscription_status = 'subscribed'",
            "1:27: the string 'subscribed' is not a value of sms_subscription_status",
            "did you mean 'SUBSCRIBED'? sms_subscription_status is one of SUBSCRIBED, NOT_SUBSCRIBED, PENDING, "
            "UNSUBSCRIBED, REDACTED",
        ),
        (
            "rfm_group = 'VIP'",
            "1:13: the string 'VIP' is not a value of rfm_group",
            "rfm_group is one of CHAMPIONS, LOYAL",
        ),
        (
            "amount_spent > 'a lot'",
            "1:16: amount_spent cannot be compared with the string 'a lot'",
            "amount_spent expects a number such as 100 or 59.90",
        ),
        ("number_of_orders > 2.5", "1:20: number_of_orders is a whole number", "a whole number such as 3"),
        (
            "customer_language = 3",
            "1:21: customer_language cannot be compared with the number 3",
            "customer_language expects a string in single quotes",
        ),
        (
            "customer_tags = 'vip'",
            "1:1: = does not apply to customer_tags, a list",
            "customer_tags is a list: use customer_tags CONTAINS 'vip', NOT CONTAINS or IS [NOT] NULL (empty)",
        ),
        (
            "amount_spent CONTAINS 5",
            "1:1: CONTAINS needs a list attribute; amount_spent is a number",
            "compare amount_spent with =, !=, >, >=, <, <= or BETWEEN",
        ),
        (
            "sms_subscription_status > 'SUBSCRIBED'",
            "1:1: > does not apply to sms_subscription_status, an enum",
            "compare sms_subscription_status with =, != or IN (...)",
        ),
        (
            "customer_language BETWEEN 'a' AND 'b'",
            "1:1: BETWEEN needs a number or a date; customer_language is a string",
            "compare customer_language with =, != or IN (...)",
        ),
        (
            "orders_placed > 3",
            "1:1: orders_placed is a function, not an attribute",
            "write orders_placed MATCHES (param = value, ...)",
        ),
        (
            "amount_spent MATCHES (count = 1)",
            "1:1: amount_spent is an attribute, not a function",
            "functions are products_purchased, orders_placed, sms_events",
        ),
        ("order_placed MATCHES (count = 1)", "1:1: unknown function 'order_placed'", "did you mean orders_placed?"),
        ("orders_placed MATCHES (cont = 1)", "1:24: unknown parameter 'cont' of orders_placed", "did you mean count?"),
        (
            "products_purchased MATCHES (id > 4)",
            "1:29: > does not apply to products_purchased id",
            "write id = 42, id != 42, id IN (42, 'gid://shopify/Product/43') or id NOT IN (...)",
        ),
        (
            "products_purchased MATCHES (id = 'shirt')",
            "1:34: the string 'shirt' is not a product id",
            "id expects a product id such as 42 or 'gid://shopify/Product/42'",
        ),
        (
            "orders_placed MATCHES (date IN (2026-01-01))",
            "1:24: IN does not apply to orders_placed date",
            "compare date with =, !=, >, >=, <, <= or BETWEEN",
        ),
        ("orders_placed MATCHES (count IN (1, 2))", "1:24: IN does not apply to orders_placed count", "compare count"),
        (
            "sms_events MATCHES (type = 'click')",
            "1:28: the string 'click' is not a value of type",
            "did you mean 'clicked'? type is one of sent, delivered, clicked, converted, opted_out",
        ),
        (
            "products_purchased MATCHES (collection_id > 5)",
            "1:29: > does not apply to products_purchased collection_id",
            "compare collection_id with =, !=, IN (...) or NOT IN (...)",
        ),
        (
            "products_purchased MATCHES (collection_id BETWEEN 1 AND 5)",
            "1:29: BETWEEN does not apply to products_purchased collection_id",
            "compare collection_id with =, !=",
        ),
        (
            "sms_events MATCHES (campaign > 'a')",
            "1:21: > does not apply to sms_events campaign",
            "compare campaign with",
        ),
        (
            "segments CONTAINS 'Not A Name'",
            "1:19: the string 'Not A Name' is not a segment name",
            "segment names are lowercase letters",
        ),
        ("Amount_Spent > 1", "1:1: unknown attribute 'Amount_Spent'", "names are lowercase: amount_spent"),
        ("last_order_date > -999999d", "1:19: relative date -999999d is too far away", "at most 366000 days"),
        ("segments IS NULL", "1:1: IS NULL does not apply to segments", "use segments NOT CONTAINS 'name'"),
        ("amount_spent IN (1, 2)", "1:1: IN does not apply to amount_spent, a number", "compare amount_spent with"),
        (
            "last_order_date NOT IN (2026-01-01)",
            "1:1: NOT IN does not apply to last_order_date, a date",
            "compare last_order_date with",
        ),
        ("customer_tags IN ('vip')", "1:1: IN does not apply to customer_tags, a list", "customer_tags CONTAINS 'vip'"),
        ("number_of_orders IN (1, 2.5)", "1:25: number_of_orders is a whole number", "a whole number such as 3"),
        (
            "rfm_group IN ('LOYAL', 'loyal')",
            "1:24: the string 'loyal' is not a value of rfm_group",
            "did you mean 'LOYAL'?",
        ),
        (
            "last_order_date = true",
            "1:19: last_order_date cannot be compared with the value true",
            "last_order_date expects a date such as 2026-01-31 or -30d",
        ),
        (
            "amount_spent > 2026-10-01T10:00:00",
            "1:16: amount_spent cannot be compared with the date 2026-10-01T10:00:00",
            "amount_spent expects a number",
        ),
        (
            "orders_placed(count: 2) > 1",
            "1:1: orders_placed(...) is compared with a value; it is true or false for a customer",
            "write orders_placed MATCHES (param = value, ...), or orders_placed(...) = true",
        ),
        ("orders_placed(cont: 2) = true", "1:15: unknown parameter 'cont' of orders_placed", "did you mean count?"),
        ("marts.customers.amount_spent > 1", "1:1: unknown attribute 'marts.customers.amount_spent'", "did you mean"),
        # Shopify Email and storefront events
        (
            "shopify_email.open MATCHES ()",
            "1:1: unknown function 'shopify_email.open'",
            "did you mean shopify_email.opened?",
        ),
        (
            "shopify_email.opened MATCHES (activty_id = 1)",
            "1:31: unknown parameter 'activty_id' of shopify_email.opened",
            "did you mean activity_id?",
        ),
        (
            "shopify_email.clicked MATCHES (activity_id > 5240029206)",
            "1:32: > does not apply to shopify_email.clicked activity_id",
            "compare activity_id with =, !=, IN (...) or NOT IN (...) to an id, a whole number such as 5240029206",
        ),
        (
            "shopify_email.bounced MATCHES (activity_id = 'newsletter')",
            "1:46: the string 'newsletter' is not an id",
            "activity_id expects an id, a whole number such as 5240029206",
        ),
        (
            "shopify_email.opened MATCHES (activity_id IN (5240029206, 1.5))",
            "1:59: the number 1.5 is not an id",
            "activity_id expects an id",
        ),
        (
            "shopify_email.opened MATCHES (activity_id = 0)",
            "1:45: the number 0 is not an id",
            "activity_id expects an id",
        ),
        (
            "shopify_email.delivered MATCHES (date IN (2026-01-01))",
            "1:34: IN does not apply to shopify_email.delivered date",
            "compare date with =, !=, >, >=, <, <= or BETWEEN",
        ),
        (
            "shopify_email.opened MATCHES (count = 'many')",
            "1:39: count cannot be compared with the string 'many'",
            "count expects a whole number",
        ),
        (
            "storefront_event.product_viewed MATCHES (product_id = 'shirt')",
            "1:55: the string 'shirt' is not a product id",
            "product_id expects a product id such as 42",
        ),
        (
            "storefront_event.product_viewed MATCHES (product_id > 4)",
            "1:42: > does not apply to storefront_event.product_viewed product_id",
            "write id = 42",
        ),
        (
            "storefront_event.collection_viewed MATCHES (collection_id BETWEEN 1 AND 5)",
            "1:45: BETWEEN does not apply to storefront_event.collection_viewed collection_id",
            "compare collection_id with =, !=",
        ),
        (
            "storefront_event.collection_viewed MATCHES (handle = 'summer')",
            "1:45: unknown parameter 'handle' of storefront_event.collection_viewed",
            "known names: collection_id, id",
        ),
        ("storefront_event.viewed MATCHES ()", "1:1: unknown function 'storefront_event.viewed'", "did you mean"),
        # the Admin API's filters
        (
            "predicted_spend_tier = 'high'",
            "1:24: the string 'high' is not a value of predicted_spend_tier",
            "did you mean 'HIGH'?",
        ),
        (
            "product_subscription_status = 'ACTIVE'",
            "1:31: the string 'ACTIVE' is not a value of product_subscription_status",
            "product_subscription_status is one of SUBSCRIBED, PAUSED",
        ),
        ("companies CONTAINS 'acme'", "1:20: companies cannot contain the string 'acme'", "companies CONTAINS 42"),
        ("companies NOT CONTAINS 4.5", "1:24: companies cannot contain the number 4.5", "companies holds ids"),
        ("companies = 42", "1:1: = does not apply to companies, a list", "companies CONTAINS"),
        (
            "sms_consent_date > 'yesterday'",
            "1:20: sms_consent_date cannot be compared with the string 'yesterday'",
            "a date such as 2026-01-31",
        ),
        (
            "customer_within_distance MATCHES (coordinates = (45.39, -75.74))",
            "1:1: customer_within_distance needs one of distance_km, distance_mi",
            "customer_within_distance MATCHES (coordinates = (45.4215, -75.6972), distance_km = 25)",
        ),
        (
            "customer_within_distance MATCHES (distance_km = 25)",
            "1:1: customer_within_distance needs coordinates",
            "coordinates = (45.4215",
        ),
        (
            "customer_within_distance MATCHES (coordinates = (1, 2), distance_km = 3, distance_mi = 2)",
            "1:74: customer_within_distance takes one of distance_km, distance_mi, not several",
            "distance_km = 25",
        ),
        (
            "customer_within_distance MATCHES (coordinates = (-91, 10), distance_km = 5)",
            "1:50: customer_within_distance coordinates: the number -91 is not a latitude",
            "from -90 to 90",
        ),
        (
            "customer_within_distance MATCHES (coordinates = (10, 180.5), distance_km = 5)",
            "1:54: customer_within_distance coordinates: the number 180.5 is not a longitude",
            "from -180 to 180",
        ),
        (
            "customer_within_distance MATCHES (coordinates = (10, 'x'), distance_km = 5)",
            "1:54: customer_within_distance coordinates: the string 'x' is not a longitude",
            "latitude, then longitude",
        ),
        (
            "customer_within_distance MATCHES (coordinates = 10, distance_km = 5)",
            "1:35: customer_within_distance coordinates is a point",
            "write coordinates = (45.4215, -75.6972)",
        ),
        (
            "customer_within_distance MATCHES (coordinates = (1, 2, 3), distance_km = 5)",
            "1:35: customer_within_distance coordinates is a point",
            "latitude, then longitude",
        ),
        (
            "customer_within_distance MATCHES (coordinates = (1, 2), distance_km > 5)",
            "1:57: > does not apply to customer_within_distance distance_km",
            "compare distance_km",
        ),
        (
            "customer_within_distance MATCHES (coordinates = (1, 2), distance_mi = -5)",
            "1:71: customer_within_distance distance_mi is a distance: it cannot be negative",
            None,
        ),
        ("metafields.custom = 1", "1:1: 'metafields.custom' does not name a metafield", "metafields.<namespace>.<key>"),
        (
            "metafields.custom.vip > true",
            "1:1: > does not apply to the value true",
            "compare metafields.custom.vip with =",
        ),
        ("metafields.custom.tier BETWEEN 'a' AND 'b'", "1:1: BETWEEN needs numbers or dates", "IS [NOT] NULL"),
        (
            "metafields.custom.n BETWEEN 1 AND 2026-01-01",
            "1:35: metafields.custom.n cannot be compared with the date 2026-01-01",
            "compared with a number",
        ),
        ("metafields.custom.tier IN ('a', 'b')", "1:1: IN does not apply to a metafield", "CONTAINS for a list"),
        (
            "metafields.custom.vip CONTAINS true",
            "1:1: a metafield list holds numbers or strings, not the value true",
            "CONTAINS for a list",
        ),
        (
            "anniversary(date: 'metafields.facts.birth_date') > today",
            "1:1: > does not apply to anniversary(...)",
            "BETWEEN today AND +30d",
        ),
        (
            "anniversary(date: 'birthday') = today",
            "1:19: the string 'birthday' is not a date anniversary can take",
            "one of customer_added_date, or a date metafield",
        ),
        (
            "anniversary(day: 'customer_added_date') = today",
            "1:13: anniversary needs date: '<the date>', and only that",
            "anniversary(date: 'metafields.facts.birth_date')",
        ),
        (
            "anniversary(date: 'customer_added_date') = 5",
            "1:44: anniversary cannot be compared with the number 5",
            "a date such as 2026-01-31",
        ),
        (
            "anniversary(date: 'customer_added_date') = 2026-10-01T23:00:00Z",
            "1:44: anniversary compares days: a date-time with an offset is not one",
            "write the day",
        ),
        (
            "anniversary MATCHES (date = 'customer_added_date')",
            "1:1: anniversary(...) is compared with a date, not matched",
            "BETWEEN today AND +30d",
        ),
        (
            "store_credit_accounts MATCHES (balance > 'x')",
            "1:42: balance cannot be compared with the string 'x'",
            "a number such as 100",
        ),
        (
            "store_credit_accounts MATCHES (next_expiry_date <= +7d)",
            "1:32: unknown parameter 'next_expiry_date' of store_credit_accounts",
            "known names: balance, currency",
        ),
        (
            "customer_within_distance MATCHES (coordinates = (1, 2), distance_km = '5')",
            "1:71: distance_km cannot be compared with the string '5'",
            "a number such as 100",
        ),
    ],
)
def test_type_errors(query: str, message: str, hint: str | None) -> None:
    text = only(query)
    assert text.startswith(f"<query>:{message}\n"), text
    if hint is None:
        assert "hint:" not in text, text
    else:
        assert hint in text.split("\n  hint: ")[1], text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "created_by_app_id = 580111",
            "1:1: created_by_app_id is a Shopify filter smsseg cannot evaluate yet: it needs "
            "the app that created each customer",
        ),
    ],
)
def test_shopify_filters_we_lack_the_data_for_say_what_they_need(query: str, message: str) -> None:
    text = only(query)
    assert text.startswith(f"<query>:{message}"), text
    assert text.endswith(
        "hint: the README's segment language section lists these filters; remove the condition or "
        "build the segment in Shopify"
    ), text


@pytest.mark.parametrize(
    ("query", "message", "hint"),
    [
        ("", "1:1: empty query", "write a condition such as amount_spent > 100"),
        ("amount_spent >", "1:15: expected a value after amount_spent >, found the end of the query", "a value is"),
        (
            "amount_spent > 100 AND",
            "1:23: expected an attribute or function name, found the end of the query",
            "a condition starts with",
        ),
        (
            "sms_subscription_status = SUBSCRIBED",
            "1:27: expected a value after sms_subscription_status =, found 'SUBSCRIBED'",
            "strings are written in single quotes: 'SUBSCRIBED'",
        ),
        ("amount_spent = NULL", "1:16: expected a value after amount_spent =, found 'null'", "IS NULL or IS NOT NULL"),
        ("amount_spent 100", "1:14: expected an operator after amount_spent, found '100'", "operators are =, !="),
        ("amount_spent <> 100", "1:15: expected a value after amount_spent <, found '>'", "a value is"),
        ("(amount_spent > 1", "1:1: '(' is never closed", "add the matching ')'"),
        ("amount_spent > 1)", "1:17: ')' without a matching '('", "join conditions with AND or OR"),
        (
            "amount_spent > 1 amount_spent < 5",
            "1:18: expected AND, OR or the end of the query, found 'amount_spent'",
            "join conditions with AND or OR",
        ),
        ("customer_tags CONTAINS 'vip", "1:24: string not closed", "end the string with a single quote"),
        (r"customer_tags CONTAINS 'a\nb'", "1:26: unknown escape \\n", "\\' is a quote and \\\\ a backslash"),
        ('customer_tags CONTAINS "vip"', "1:24: strings are written in single quotes", "write 'like this'"),
        ("last_order_date > 2026-02-30", "1:19: 2026-02-30 is not a date", "dates are YYYY-MM-DD"),
        ("last_order_date > 2026/10/01", "1:19: 2026/10/01 is not a date", "dates are YYYY-MM-DD: write 2026-10-01"),
        ("last_order_date > 2026-10-1", "1:19: 2026-10-1 is not a date", "dates are YYYY-MM-DD: write 2026-10-01"),
        ("last_order_date = 01.10.2026", "1:19: 01.10.2026 is not a date", "dates are YYYY-MM-DD, such as 2026-01-31"),
        ("last_order_date < 2026/13/01", "1:19: 2026/13/01 is not a date", "dates are YYYY-MM-DD, such as 2026-01-31"),
        ("last_order_date > -30days", "1:19: '-30days' is not a number, date or relative date", "-30d, -2w"),
        ("amount_spent > 1; drop table x", "1:17: unexpected character ';'", "a query is conditions"),
        ("amount_spent > 1234567890123456789012", "1:16: number too long", "at most 18 digits"),
        (
            "amount_spent BETWEEN 1 OR 2",
            "1:24: expected AND in amount_spent BETWEEN ... AND ..., found 'or'",
            "BETWEEN takes two values",
        ),
        (
            "customer_tags NOT = 'x'",
            "1:19: expected CONTAINS, MATCHES or IN after NOT, found '='",
            "NOT is only written",
        ),
        ("amount_spent IS 5", "1:17: expected NULL after IS, found '5'", "IS NULL or IS NOT NULL"),
        (
            "orders_placed MATCHES count = 1",
            "1:23: expected '(' after orders_placed MATCHES, found 'count'",
            "orders_placed MATCHES (param = value, ...)",
        ),
        (
            "orders_placed MATCHES (count = 1 date > -1d)",
            "1:34: expected ',' or ')' in the parameters of orders_placed, found 'date'",
            "separate parameters with commas",
        ),
        ("products_purchased MATCHES (id IN 42)", "1:35: expected '(' after IN, found '42'", "write IN ('a', 'b')"),
        ("(" * 60 + "amount_spent > 1" + ")" * 60, "1:51: parentheses nested too deep", "at most 50 levels"),
        (
            "orders_placed MATCHES (date = 2026/10/01)",
            "1:31: 2026/10/01 is not a date",
            "dates are YYYY-MM-DD: write 2026-10-01",
        ),
        (
            "orders_placed(date: 2026-10-1) = true",
            "1:21: 2026-10-1 is not a date",
            "dates are YYYY-MM-DD: write 2026-10-01",
        ),
        (
            "last_order_date > 2026-10-01T25:00:00",
            "1:19: 2026-10-01T25:00:00 is not a date and time",
            "written 2026-10-01T10:00:00, optionally with an offset: Z or +02:00",
        ),
        (
            "last_order_date > 2026-10-01T10",
            "1:19: 2026-10-01T10 is not a date and time",
            "written 2026-10-01T10:00:00",
        ),
        ("last_order_date > 2026-10-01T10:00:00+2", "1:19: 2026-10-01T10:00:00+2 is not a date and time", "+02:00"),
        ("last_order_date > 7_dayz_ago", "1:19: '7_dayz_ago' is not a number, date or relative date", "-30d"),
        (
            "products_purchased(id 42) = true",
            "1:23: expected ':' after id, found '42'",
            "in products_purchased(...) a parameter is written name: value",
        ),
        (
            "products_purchased(id: 42 tag: 'x') = true",
            "1:27: expected ',' or ')' in the parameters of products_purchased, found 'tag'",
            "separate parameters with commas",
        ),
        (
            "products_purchased(id: 42)",
            "1:27: expected = true or = false after products_purchased(...), found the end of the query",
            "write products_purchased MATCHES (param = value, ...)",
        ),
        ("customer_tags NOT IN 'x'", "1:22: expected '(' after IN, found \"'x'\"", "write IN ('a', 'b')"),
        (
            "FROM orders WHERE amount_spent > 1",
            "1:6: expected customers after FROM, found 'orders'",
            "FROM customers WHERE <query>",
        ),
        (
            "FROM customers amount_spent > 1",
            "1:16: expected WHERE, found 'amount_spent'",
            "write FROM customers WHERE <query>, or the query alone",
        ),
        (
            "FROM customers SHOW WHERE amount_spent > 1",
            "1:21: expected a column name after SHOW, found 'WHERE'",
            "SHOW lists columns separated by commas",
        ),
        ("FROM customers WHERE", "1:16: WHERE without a query", "write a condition"),
        (
            "FROM customers WHERE amount_spent > 1 LIMIT 10",
            "1:39: LIMIT does not apply to a segment",
            "a segment holds every customer who matches: remove LIMIT",
        ),
        (
            "FROM customers WHERE amount_spent > 1 ORDER BY",
            "1:47: expected a column name after ORDER BY, found the end of the query",
            "write ORDER BY updated_at",
        ),
        (
            "FROM customers WHERE amount_spent > 1 ORDER BY x y",
            "1:50: expected the end of the query, found 'y'",
            "only ORDER BY <column> may follow",
        ),
        (
            "FROM customers WHERE amount_spent > 1 GROUP BY x",
            "1:39: expected AND, OR or the end of the query, found 'GROUP'",
            "join conditions with AND or OR",
        ),
    ],
)
def test_syntax_errors(query: str, message: str, hint: str) -> None:
    text = only(query)
    assert text.startswith(f"<query>:{message}\n"), text
    assert hint in text.split("\n  hint: ")[1], text


def test_every_problem_in_a_query_is_reported_once() -> None:
    found = errors(
        "amount_spend > 1 AND last_order_date > 5 OR customer_tags CONTAINS AND rfm_group = 'X' "
        "AND sms_events MATCHES (typ = 'sent', campaign = 3)"
    )
    assert [e.split(": ")[0] for e in found] == [
        "<query>:1:1",
        "<query>:1:40",
        "<query>:1:68",
        "<query>:1:84",
        "<query>:1:112",
        "<query>:1:137",
    ]


def test_caret_spans_the_text_on_later_lines() -> None:
    text = only("amount_spent > 1\n  AND customer_tags CONTAINS 'vip'\n  AND rfm_group = 'vip'")
    assert text.splitlines()[:3] == [
        "<query>:3:19: the string 'vip' is not a value of rfm_group",
        " 3 |   AND rfm_group = 'vip'",
        "   |                   ^^^^^",
    ]


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def test_query_errors_point_into_the_yaml_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        "winback.yaml",
        """\
        name: winback
        description: folded block scalar
        query: >
          number_of_orders >= 2
            AND last_order_date < 100
        """,
    )
    write(
        tmp_path,
        "quoted.yaml",
        """\
        name: quoted
        query: "amount_spent > 1 and  amount_spnt > 2"
        """,
    )
    write(
        tmp_path,
        "literal.yaml",
        """\
        name: literal
        query: |-
            customer_tags CONTAINS 'x'
            OR rfm_group = 'nope'
        """,
    )
    result = load_definitions(tmp_path)
    shown = [str(e) for e in result.errors]
    assert shown[0] == textwrap.dedent(f"""\
        {tmp_path}/literal.yaml:4:20: the string 'nope' is not a value of rfm_group
         4 |     OR rfm_group = 'nope'
           |                    ^^^^^^
          hint: rfm_group is one of CHAMPIONS, LOYAL, ACTIVE, NEW, PROMISING, NEEDS_ATTENTION, AT_RISK, ALMOST_LOST, \
PREVIOUSLY_LOYAL, DORMANT, PROSPECTS""")
    assert shown[1].startswith(
        f"{tmp_path}/quoted.yaml:2:31: unknown attribute 'amount_spnt'\n"
        ' 2 | query: "amount_spent > 1 and  amount_spnt > 2"\n'
        "   |                               ^^^^^^^^^^^\n"
    )
    assert shown[2].startswith(
        f"{tmp_path}/winback.yaml:5:27: last_order_date cannot be compared with the number "
        "100\n 5 |     AND last_order_date < 100\n   |                           ^^^\n"
    )
    assert result.definitions == {} and set(result.names) == {"winback", "quoted", "literal"}
    assert [e.line for e in result.errors_for("winback")] == [5]


def test_file_level_errors(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yaml",
        """\
        name: typo_keys
        descripton: misspelt
        query: amount_spent > 1
        sms:
          exprt: true
          fields: [abandoned_checkout_url, amount_spnt, abandoned_checkout_url, first_name]
        """,
    )
    write(tmp_path, "b.yaml", "name: Bad-Name\nquery: amount_spent > 1\n")
    write(tmp_path, "c.yaml", "name: broken\nquery: [amount_spent\n")
    write(tmp_path, "d.yaml", "name: no_query\n")
    write(tmp_path, "e.yaml", "name: export_text\nquery: amount_spent > 1\nsms: {export: 'yes'}\nquery: x = 1\n")
    write(tmp_path, "f.yaml", "- just\n- a list\n")
    write(tmp_path, "g.yaml", "name: 12\nquery: 2026-01-01\n")
    shown = [str(e) for e in load_definitions(tmp_path).errors]
    firsts = [s.splitlines()[0].replace(f"{tmp_path}/", "") for s in shown]
    assert firsts == [
        "a.yaml:2:1: unknown key 'descripton' in the definition",
        "a.yaml:5:3: unknown key 'exprt' in the sms",
        "a.yaml:6:36: unknown sms.fields column 'amount_spnt'",
        "a.yaml:6:49: abandoned_checkout_url is listed twice in sms.fields",
        "a.yaml:6:73: first_name is already sent with every member",
        "b.yaml:1:7: 'Bad-Name' is not a valid segment name",
        "c.yaml:3:1: YAML syntax error: expected ',' or ']', but got '<stream end>'",
        "d.yaml:1:1: missing `query`",
        "e.yaml:3:15: sms.export is true or false, not 'yes'",
        "e.yaml:4:1: 'query' is given twice",
        "f.yaml:1:1: a definition is a mapping with name, description, query and sms",
        "g.yaml:1:7: name must be a non-empty string, not '12'",
        "g.yaml:2:8: query must be a non-empty string, not '2026-01-01'",
    ]
    assert "hint: did you mean description? the keys are name, description, query, sms" in shown[0]
    assert "hint: did you mean export?" in shown[1]
    assert "hint: did you mean amount_spent?" in shown[2]
    assert "hint: remove it: every member carries phone, customer_id, first_name" in shown[4]
    assert "hint: while parsing a flow sequence (line 2)" in shown[6]


def test_segment_references_unknown_names_and_cycles(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "name: a\nquery: segments CONTAINS 'b' AND amount_spent > 1\n")
    write(tmp_path, "b.yaml", "name: b\nquery: segments NOT CONTAINS 'c'\n")
    write(tmp_path, "c.yaml", "name: c\nquery: segments CONTAINS 'a'\n")
    write(tmp_path, "d.yaml", "name: d\nquery: segments CONTAINS 'a'\n")
    write(tmp_path, "e.yaml", "name: e\nquery: segments CONTAINS 'vipp' OR segments CONTAINS 'e'\n")
    write(tmp_path, "f.yaml", "name: f\nquery: amount_spent > 1\n")
    write(tmp_path, "g.yaml", "name: g\nquery: segments CONTAINS 'f'\n")
    result = load_definitions(tmp_path)
    shown = [str(e).replace(f"{tmp_path}/", "") for e in result.errors]
    assert [s.splitlines()[0] for s in shown] == [
        "a.yaml:2:26: segments form a cycle: a -> b -> c -> a",
        "e.yaml:2:26: unknown segment 'vipp'",
    ]
    assert "hint: a segment cannot contain itself" in shown[0]
    assert [str(e).splitlines()[0] for e in result.errors_for("c")] == [str(result.errors[0]).splitlines()[0]]
    # e's self-reference is not reported as a cycle while e has another error: one problem at a time.
    assert list(result.definitions) == ["f", "g", "d"]
    assert result.definitions["g"].uses == ("f",) and result.definitions["d"].uses == ("a",)


def test_self_reference_is_a_cycle(tmp_path: Path) -> None:
    write(tmp_path, "me.yaml", "name: me\nquery: segments CONTAINS 'me'\n")
    assert str(load_definitions(tmp_path).errors[0]).splitlines()[0].endswith("segments form a cycle: me -> me")


def test_duplicate_names_fail_both_files(tmp_path: Path) -> None:
    write(tmp_path, "one.yaml", "name: vip\nquery: amount_spent > 1\n")
    write(tmp_path, "two.yaml", "name: vip\nquery: amount_spent > 2\n")
    result = load_definitions(tmp_path)
    assert [str(e).splitlines()[0].replace(f"{tmp_path}/", "") for e in result.errors] == [
        "one.yaml:1:7: segment name 'vip' is also used by two.yaml",
        "two.yaml:1:7: segment name 'vip' is also used by one.yaml",
    ]
    assert result.definitions == {} and len(result.errors_for("vip")) == 2


def test_missing_directory(tmp_path: Path) -> None:
    result = load_definitions(tmp_path / "nope")
    assert result.errors[0].message == "segment definitions directory not found"


def test_destination_targets_default_and_bad_values(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "name: plain\nquery: amount_spent > 1\nsms: {export: true}\n")
    write(
        tmp_path, "b.yaml", "name: named\nquery: amount_spent > 1\nsms: {list: ' Winback VIPs ', tag: 'vip:winback'}\n"
    )
    write(tmp_path, "c.yaml", f"name: bad\nquery: amount_spent > 1\nsms:\n  list: {'x' * 256}\n  tag: 'a,b'\n")
    write(tmp_path, "d.yaml", "name: empty\nquery: amount_spent > 1\nsms:\n  list: 12\n  tag: ''\n")
    result = load_definitions(tmp_path)
    plain, named = result.definitions["plain"], result.definitions["named"]
    assert (plain.list_name, plain.tag) == ("", ""), "left to the destination's defaults"
    assert (named.list_name, named.tag) == ("Winback VIPs", "vip:winback")
    defaults = AudienceTarget(plain.name, name=plain.list_name, tag=plain.tag)
    assert (defaults.list_name, defaults.tag_name) == ("plain", "smsseg:plain")
    firsts = [str(e).splitlines()[0].replace(f"{tmp_path}/", "") for e in result.errors]
    assert firsts == [
        "c.yaml:4:9: sms.list is 256 characters long; at most 255",
        "c.yaml:5:8: sms.tag 'a,b' holds a comma",
        "d.yaml:4:9: sms.list must be a non-empty string, not '12'",
        "d.yaml:5:8: sms.tag must be a non-empty string, not ''",
    ]
    assert set(result.definitions) == {"plain", "named"}
