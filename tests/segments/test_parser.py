"""The grammar: every form parses to the tree it means; precedence, nesting, values and dates."""

import datetime as dt
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
    node = tree("products_purchased NOT MATCHES (id IN (42, 'gid://shopify/Product/43'), tag NOT IN ('a'), "
                "date BETWEEN 2026-01-01 AND today, count >= 2)")
    assert isinstance(node, t.Matches) and node.negated and node.function.text == "products_purchased"
    p_in, p_not_in, p_between, p_cmp = node.params
    assert [v.value for v in p_in.values] == [Decimal(42), "gid://shopify/Product/43"] and not p_in.negated
    assert p_not_in.negated
    assert p_between.low.value == dt.date(2026, 1, 1) and p_between.high.text == "today"
    assert (p_cmp.op, p_cmp.value.value) == (">=", Decimal(2))


def test_values() -> None:
    node = tree(r"a = 59.90 AND b = -5 AND c = 'it\'s a \\ path' AND d = 2026-02-28 AND e = -90d AND f = +2w "
                "AND g = yesterday AND h = TODAY AND i = 'città ☀' AND j = ''")
    values = [c.value for c in node.items]
    assert values[0].value == Decimal("59.90") and values[0].text == "59.90"
    assert values[1].value == Decimal(-5)
    assert values[2].value == "it's a \\ path"
    assert values[3].value == dt.date(2026, 2, 28)
    assert (values[4].amount, values[4].unit) == (-90, "d") and (values[5].amount, values[5].unit) == (2, "w")
    assert (values[6].amount, values[7].amount) == (-1, 0)
    assert values[8].value == "città ☀" and values[9].value == ""


@pytest.mark.parametrize(("as_of", "text", "expected"), [
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
])
def test_relative_dates_are_calendar_steps_clamped_to_the_month(as_of: str, text: str, expected: str) -> None:
    value = tree(f"last_order_date < {text}").value
    assert value.resolve(dt.date.fromisoformat(as_of)) == dt.date.fromisoformat(expected)


def test_a_thousand_or_clauses_are_one_flat_node() -> None:
    node = tree(" OR ".join(f"amount_spent = {i}" for i in range(1000)))
    assert isinstance(node, t.Or) and len(node.items) == 1000


def test_deep_nesting_within_the_limit_parses_without_recursion() -> None:
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
        (1, MAX_QUERY_LENGTH + 1, f"the query is {len(query):,} characters long; at most {MAX_QUERY_LENGTH:,}")]
    fits = condition * ((MAX_QUERY_LENGTH - 16) // len(condition)) + "amount_spent > 2"
    assert len(fits) <= MAX_QUERY_LENGTH and parse(Source.of_query(fits))[1] == []
