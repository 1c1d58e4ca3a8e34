"""The grammar: every form parses to the tree it means; precedence, nesting, values and dates."""

import datetime as dt
import re
from decimal import Decimal

import pytest

from pipeline.segments import tree as t
from pipeline.segments.errors import Source
from pipeline.segments.parser import MAX_QUERY_LENGTH, parse, tokenize


def tree(query: str) -> t.Node:
    node, errors = parse(Source.of_query(query))
    assert errors == [], [str(e) for e in errors]
    return node


def shape(node: t.Node) -> object:
    """A compact picture of a tree: ('and', ...), ('or', ...) and condition text."""
    if isinstance(node, t.And | t.Or):
        return (type(node).__name__.lower(), *(shape(i) for i in node.items))
    return type(node).__name__


def test_and_binds_tighter_than_or() -> None:
    node = tree("amount_spent > 1 OR amount_spent < 0 AND number_of_orders = 2 OR last_order_date IS NULL")
    assert shape(node) == ("or", "Comparison", ("and", "Comparison", "Comparison"), "IsNull")


def test_parentheses_group_and_redundant_ones_vanish() -> None:
    node = tree("(amount_spent > 1 OR amount_spent < 0) AND ((number_of_orders = 2))")
    assert shape(node) == ("and", ("or", "Comparison", "Comparison"), "Comparison")
    assert shape(tree("(a = 1 AND (b = 2 AND c = 3))")) == ("and", "Comparison", "Comparison", "Comparison")


@pytest.mark.parametrize("keyword", ["and", "AND", "And", "aNd"])
def test_keywords_are_case_insensitive(keyword: str) -> None:
    node = tree(f"a = 1 {keyword} b is Not null {keyword} c NOT contains 'x' {keyword} d between 1 AnD 2")
    assert shape(node) == ("and", "Comparison", "IsNull", "Contains", "Between")
    assert node.items[1].negated and node.items[2].negated


def test_every_comparison_operator() -> None:
    ops = ["=", "!=", ">", ">=", "<", "<="]
    node = tree(" AND ".join(f"amount_spent {op} 1" for op in ops))
    assert [c.op for c in node.items] == ops
    assert tree("amount_spent>=1").op == ">="


def test_functions_and_every_param_form() -> None:
    node = tree(
        "products_purchased NOT MATCHES (id IN (42, 'gid://shopify/Product/43'), tag NOT IN ('a'), "
        "date BETWEEN 2026-01-01 AND today, count >= 2)"
    )
    assert isinstance(node, t.Matches) and node.negated and node.function.text == "products_purchased"
    p_in, p_not_in, p_between, p_cmp = node.params
    assert [v.value for v in p_in.values] == [Decimal(42), "gid://shopify/Product/43"] and not p_in.negated
    assert p_not_in.negated
    assert p_between.low.value == dt.date(2026, 1, 1) and p_between.high.text == "today"
    assert (p_cmp.op, p_cmp.value.value) == (">=", Decimal(2))


def test_values() -> None:
    node = tree(
        r"a = 59.90 AND b = -5 AND c = 'it\'s a \\ path' AND d = 2026-02-28 AND e = -90d AND f = +2w "
        "AND g = yesterday AND h = TODAY AND i = 'città ☀' AND j = ''"
    )
    values = [c.value for c in node.items]
    assert values[0].value == Decimal("59.90") and values[0].text == "59.90"
    assert values[1].value == Decimal(-5)
    assert values[2].value == "it's a \\ path"
    assert values[3].value == dt.date(2026, 2, 28)
    assert (values[4].amount, values[4].unit) == (-90, "d") and (values[5].amount, values[5].unit) == (2, "w")
    assert (values[6].amount, values[7].amount) == (-1, 0)
    assert values[8].value == "città ☀" and values[9].value == ""


@pytest.mark.parametrize(
    ("as_of", "text", "expected"),
    [
        ("2026-05-31", "-3m", "2026-02-28"),
        ("2024-05-31", "-3m", "2024-02-29"),
        ("2026-03-31", "-1m", "2026-02-28"),
        ("2026-01-31", "+1m", "2026-02-28"),
        ("2024-02-29", "-1y", "2023-02-28"),
        ("2026-01-15", "-13m", "2024-12-15"),
        ("2026-10-15", "-90d", "2026-07-17"),
        ("2026-10-15", "-2w", "2026-10-01"),
        ("2026-10-15", "yesterday", "2026-10-14"),
        ("2026-10-15", "today", "2026-10-15"),
    ],
)
def test_relative_dates_are_calendar_steps_clamped_to_the_month(as_of: str, text: str, expected: str) -> None:
    value = tree(f"last_order_date < {text}").value
    assert value.resolve(dt.date.fromisoformat(as_of)) == dt.date.fromisoformat(expected)


def test_a_thousand_or_clauses_are_one_flat_node() -> None:
    node = tree(" OR ".join(f"amount_spent = {i}" for i in range(1000)))
    assert isinstance(node, t.Or) and len(node.items) == 1000


def test_deep_nesting_within_the_limit_parses() -> None:
    query = "a = 0"
    for i in range(1, 50):
        query = f"({query} {'AND' if i % 2 else 'OR'} a = {i})"
    depth, node = 0, tree(query)
    while isinstance(node, t.And | t.Or):
        depth, node = depth + 1, node.items[0]
    assert depth == 49


def test_tokens_and_nodes_keep_their_position() -> None:
    source = Source.of_query("amount_spent > 1\n  AND customer_tags CONTAINS 'vip'")
    node, _ = parse(source)
    contains = node.items[1]
    assert source.locate(contains.attribute.span.start) == (2, 7)
    assert source.locate(contains.value.span.start) == (2, 30)
    tokens, _ = tokenize(source)
    assert [(x.text, x.line, x.column) for x in tokens[3:5]] == [("and", 2, 3), ("customer_tags", 2, 7)]


def test_a_query_past_the_length_limit_is_one_error_at_the_limit() -> None:
    condition = "amount_spent > 1 OR "
    query = condition * (MAX_QUERY_LENGTH // len(condition) + 1) + "amount_spent > 2"
    node, errors = parse(Source.of_query(query))
    assert node is None
    assert [(e.line, e.column, e.message) for e in errors] == [
        (1, MAX_QUERY_LENGTH + 1, f"the query is {len(query):,} characters long; at most {MAX_QUERY_LENGTH:,}")
    ]
    fits = condition * ((MAX_QUERY_LENGTH - 16) // len(condition)) + "amount_spent > 2"
    assert len(fits) <= MAX_QUERY_LENGTH and parse(Source.of_query(fits))[1] == []


def without_spans(node: t.Node) -> str:
    """A tree's text with every position left out, to compare trees written differently."""
    return re.sub(r"span=Span\(start=\d+, end=\d+\)", "", repr(node))


@pytest.mark.parametrize(
    ("older", "modern"),
    [
        ("products_purchased(id: 42) = true", "products_purchased MATCHES (id = 42)"),
        (
            "products_purchased(id: (42, 43), tag: 'sale') = false",
            "products_purchased NOT MATCHES (id IN (42, 43), tag = 'sale')",
        ),
        ("products_purchased(quantity: 5) != true", "products_purchased NOT MATCHES (quantity = 5)"),
        ("orders_placed(date: -30d) != false", "orders_placed MATCHES (date >= -30d)"),
        ("orders_placed(date: 30_days_ago, count: 2) = TRUE", "orders_placed MATCHES (date >= 30_days_ago, count = 2)"),
        ("orders_placed(date: 2026-10-01) = true", "orders_placed MATCHES (date = 2026-10-01)"),
        ("orders_placed(date: today) = true", "orders_placed MATCHES (date = today)"),
        ("shopify_email.opened() = true", "shopify_email.opened MATCHES ()"),
        ("products_purchased MATCHES (id = (42, 43))", "products_purchased MATCHES (id IN (42, 43))"),
    ],
)
def test_deprecated_function_form_is_the_matches_form(older: str, modern: str) -> None:
    assert without_spans(tree(older)) == without_spans(tree(modern))


@pytest.mark.parametrize(
    ("text", "amount", "unit"),
    [
        ("7_days_ago", -7, "d"),
        ("30_days_ago", -30, "d"),
        ("90_days_ago", -90, "d"),
        ("12_months_ago", -12, "m"),
        ("2_weeks_ago", -2, "w"),
        ("1_year_ago", -1, "y"),
        ("1_DAY_AGO", -1, "d"),
    ],
)
def test_named_dates_are_offsets_into_the_past(text: str, amount: int, unit: str) -> None:
    value = tree(f"last_order_date >= {text}").value
    assert (value.amount, value.unit, value.text) == (amount, unit, text)


def test_datetimes_keep_their_offset() -> None:
    node = tree(
        "a >= 2026-10-01T10:00:00 AND b < 2026-10-01T23:30:00Z AND c = 2026-10-01T10:00+02:00 "
        "AND d BETWEEN 2026-01-01T00:00:00.5-05:00 AND 2026-02-01"
    )
    values = [c.value if isinstance(c, t.Comparison) else c.low for c in node.items]
    assert values[0].value == dt.datetime(2026, 10, 1, 10) and values[0].value.tzinfo is None
    assert values[1].value == dt.datetime(2026, 10, 1, 23, 30, tzinfo=dt.UTC)
    assert values[2].value.utcoffset() == dt.timedelta(hours=2) and values[2].text == "2026-10-01T10:00+02:00"
    assert values[3].value.utcoffset() == dt.timedelta(hours=-5) and isinstance(node.items[3].high, t.Date)


def test_matches_with_no_parameters_and_in_on_attributes() -> None:
    node = tree(
        "products_purchased NOT MATCHES () AND sms_subscription_status NOT IN ('SUBSCRIBED', 'PENDING') "
        "AND number_of_orders IN (1) AND customer_tags IS NULL"
    )
    matches, not_in, in_, is_null = node.items
    assert matches.params == () and matches.negated
    assert isinstance(not_in, t.In) and not_in.negated and [v.value for v in not_in.values] == ["SUBSCRIBED", "PENDING"]
    assert isinstance(in_, t.In) and not in_.negated
    assert isinstance(is_null, t.IsNull) and is_null.attribute.text == "customer_tags"


def test_dotted_filter_names_are_one_name() -> None:
    node = tree("shopify_email.opened MATCHES (activity_id = 5240029206) OR metafields.custom.vip = true")
    assert [c.function.text if isinstance(c, t.Matches) else c.attribute.text for c in node.items] == [
        "shopify_email.opened",
        "metafields.custom.vip",
    ]
    assert node.items[1].value == t.Boolean(True, t.Span(83, 87))


def test_called_with_a_value_is_kept_for_the_checker() -> None:
    node = tree("anniversary(date: 'metafields.facts.birth_date') BETWEEN today AND +30d")
    assert isinstance(node, t.CalledWithValue) and node.function.text == "anniversary"
    assert isinstance(tree("orders_placed(count: 2) > 1"), t.CalledWithValue)


@pytest.mark.parametrize(
    "wrapped",
    [
        "FROM customers WHERE {}",
        "from customers show customer_name, note, subscription_status, location, orders, amount_spent where {}",
        "FROM customers\nSHOW customer_name\nWHERE {}\nORDER BY updated_at",
        "FROM customers WHERE {} ORDER BY amount_spent DESC",
    ],
)
def test_the_editors_full_text_is_its_where_clause(wrapped: str) -> None:
    query = "amount_spent > 100 AND (customer_tags CONTAINS 'vip' OR number_of_orders >= 2)"
    assert without_spans(tree(wrapped.format(query))) == without_spans(tree(query))


def test_words_of_the_editor_stay_free_outside_it() -> None:
    node = tree("order > 1 AND limit = 2 AND show = 'x' AND where IS NULL")
    assert [c.attribute.text for c in node.items] == ["order", "limit", "show", "where"]
