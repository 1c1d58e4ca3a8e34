"""DuckDB views against the independent evaluator, on one varied store: hand-picked edges, every
definition in segment_defs/, and hundreds of random queries over the whole grammar."""

import shutil
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.segments import compile_query, create_segment_view, load_definitions, render
from pipeline.segments.compiler import parse_checked
from pipeline.settings import PROJECT_DIR
from tests.segments.conftest import Built
from tests.segments.evaluator import Evaluator


@pytest.fixture(scope="module")
def evaluator(varied: Built) -> Evaluator:
    return Evaluator(varied.oracle(), varied.as_of)


@pytest.fixture(scope="module")
def con(varied: Built):
    con = varied.connect()
    yield con
    con.close()


def members(con: duckdb.DuckDBPyConnection, query: str, as_of) -> set[int]:
    return {row[0] for row in con.execute(render(compile_query(query, as_of))).fetchall()}


def assert_same(con, evaluator: Evaluator, query: str) -> set[int]:
    ours = members(con, query, evaluator.as_of)
    expected = evaluator.members(parse_checked(query))
    assert ours == expected, f"{query}: only in DuckDB {ours - expected}, only in the evaluator {expected - ours}"
    return ours


EDGES = [
    # Exact money, NULL and !=.
    ("amount_spent = 59.90", {30}),
    "amount_spent = 50", "amount_spent > 100", "amount_spent BETWEEN 50 AND 100.01", "amount_spent != 0",
    "average_order_value > 55 OR average_order_value IS NULL", "average_order_value != 10",
    "number_of_orders = 0", "number_of_orders >= 2 AND last_order_date < -3m", "first_order_date IS NOT NULL",
    # Time zone: 23:30 UTC on 14 October is the 15th in Rome.
    "orders_placed MATCHES (date = 2026-10-15)", "orders_placed MATCHES (date = 2026-10-14)",
    "last_order_date = today", "last_order_date >= yesterday", "orders_placed MATCHES (date >= -7d)",
    # Case-insensitive strings and lists; empty lists.
    "customer_email_domain = 'EXAMPLE.com'", "customer_language = 'EN-us'", "customer_language != 'it'",
    "customer_tags CONTAINS 'vip'", "customer_tags CONTAINS 'WHOLESALE'", "customer_tags NOT CONTAINS 'vip'",
    "customer_countries CONTAINS 'it'", "customer_countries NOT CONTAINS 'IT'", "customer_regions CONTAINS 'it-mi'",
    "customer_cities CONTAINS 'IT-MI-Milano'", "customer_cities CONTAINS 'US-NY-NewYorkCity'",
    "customer_cities CONTAINS 'FR-Paris'",
    "sms_subscription_status = 'SUBSCRIBED'", "email_subscription_status = 'NOT_SUBSCRIBED'",
    "sms_subscription_status = 'REDACTED'", "customer_account_status != 'ENABLED'", "rfm_group = 'PROSPECTS'",
    "abandoned_checkout_date >= -1d", "abandoned_checkout_date IS NULL", "customer_added_date < 2025-06-01",
    # Functions: count = 0 and count < N include customers without rows; NOT MATCHES is the complement.
    "products_purchased MATCHES (count = 0)", "products_purchased MATCHES (count < 2)",
    "products_purchased NOT MATCHES (id = 42)", "products_purchased MATCHES (id = 'gid://shopify/Product/42')",
    "products_purchased MATCHES (id IN (43, 44), quantity >= 3)", "products_purchased MATCHES (quantity = 4)",
    "products_purchased MATCHES (tag = 'SALE')", "products_purchased MATCHES (tag != 'sale', count >= 1)",
    "products_purchased MATCHES (tag NOT IN ('sale', 'winter'))", "products_purchased MATCHES (collection = 'summer')",
    "products_purchased MATCHES (collection_id IN (8), date BETWEEN 2026-01-01 AND today)",
    "orders_placed MATCHES (amount > 100)", "orders_placed MATCHES (count = 0)", "orders_placed MATCHES (count < 2)",
    "orders_placed MATCHES (sum_amount = 0)", "orders_placed MATCHES (sum_amount >= 1000, date >= -1y)",
    "orders_placed NOT MATCHES (date >= -30d)",
    "sms_events MATCHES (type = 'clicked', date >= -30d)", "sms_events NOT MATCHES (type = 'clicked')",
    "sms_events MATCHES (campaign = 'SPRING', count >= 2)", "sms_events MATCHES (count = 0)",
    "sms_events MATCHES (campaign NOT IN ('autumn'))", "sms_events MATCHES (type IN ('sent', 'converted'))",
    "sms_subscription_status = 'SUBSCRIBED' AND (customer_countries CONTAINS 'IT' OR amount_spent > 999.99)",
]


@pytest.mark.parametrize("case", EDGES, ids=lambda c: c if isinstance(c, str) else c[0])
def test_edges_match_the_evaluator(con, evaluator: Evaluator, case) -> None:
    query, expected = (case, None) if isinstance(case, str) else case
    found = assert_same(con, evaluator, query)
    if expected is not None:
        assert found == expected


def test_not_matches_is_the_exact_complement(con, evaluator: Evaluator) -> None:
    everyone = members(con, "number_of_orders >= 0", evaluator.as_of)
    for params in ("id = 42", "count >= 2", "date >= -30d, quantity > 2"):
        yes = members(con, f"products_purchased MATCHES ({params})", evaluator.as_of)
        no = members(con, f"products_purchased NOT MATCHES ({params})", evaluator.as_of)
        assert yes | no == everyone and not yes & no


def test_every_shipped_definition_matches_the_evaluator(varied: Built, evaluator: Evaluator, tmp_path: Path) -> None:
    result = load_definitions(PROJECT_DIR / "segment_defs")
    assert result.errors == [] and len(result.definitions) >= 12
    copy = tmp_path / "warehouse.duckdb"
    shutil.copyfile(varied.warehouse, copy)
    con = duckdb.connect(str(copy))
    try:
        for name, defn in result.definitions.items():
            count = create_segment_view(con, defn, varied.as_of)
            ours = {r[0] for r in con.execute(f"select customer_id from segments.{name}").fetchall()}  # noqa: S608
            evaluator.segments[name] = evaluator.members(parse_checked(defn.query))
            assert ours == evaluator.segments[name], name
            assert count == len(ours)
        columns = [r[0] for r in con.execute("describe segments.abandoned_checkout_1d").fetchall()]
        assert columns[-1] == "abandoned_checkout_url"
    finally:
        con.close()
        evaluator.segments.clear()


# Random queries: attribute and function conditions with values near the store's data.
NUMBERS = ["0", "10", "50", "59.90", "100", "100.01", "999.99", "1000", "25.5", "-1"]
COUNTS = ["0", "1", "2", "3", "4"]
DATES = ["2025-12-31", "2026-01-15", "2026-07-15", "2026-10-01", "2026-10-14", "2026-10-15", "-7d", "-30d", "-3m",
         "-1y", "today", "yesterday", "+1w", "-2w"]
STRINGS = {"customer_email_domain": ["'example.com'", "'SHOP.IT'", "'other.org'"],
           "customer_language": ["'it'", "'EN-us'", "'fr'", "'de'"]}
LISTS = {"customer_tags": ["'vip'", "'VIP'", "'wholesale'", "'summer fan'", "'none'"],
         "customer_countries": ["'IT'", "'us'", "'FR'", "'DE'"],
         "customer_regions": ["'IT-MI'", "'it-rm'", "'US-NY'"],
         "customer_cities": ["'IT-MI-Milano'", "'it-rm-roma'", "'US-NY-NewYorkCity'", "'FR-Paris'"]}
ENUMS = {"sms_subscription_status": ["SUBSCRIBED", "UNSUBSCRIBED", "PENDING", "NOT_SUBSCRIBED", "REDACTED"],
         "email_subscription_status": ["SUBSCRIBED", "UNSUBSCRIBED", "NOT_SUBSCRIBED"],
         "customer_account_status": ["ENABLED", "DISABLED", "INVITED"],
         "rfm_group": ["PROSPECTS", "LOYAL", "CHAMPIONS", "AT_RISK", "DORMANT"]}
ORDERED = {"amount_spent": NUMBERS, "average_order_value": NUMBERS, "number_of_orders": COUNTS,
           "first_order_date": DATES, "last_order_date": DATES, "customer_added_date": DATES,
           "abandoned_checkout_date": DATES}
CMP = st.sampled_from(["=", "!=", ">", ">=", "<", "<="])


@st.composite
def ordered_condition(draw) -> str:
    name = draw(st.sampled_from(sorted(ORDERED)))
    values = ORDERED[name]
    form = draw(st.sampled_from(["cmp", "cmp", "between", "null"]))
    if form == "between":
        return f"{name} BETWEEN {draw(st.sampled_from(values))} AND {draw(st.sampled_from(values))}"
    if form == "null":
        return f"{name} IS {draw(st.sampled_from(['', 'NOT ']))}NULL"
    return f"{name} {draw(CMP)} {draw(st.sampled_from(values))}"


@st.composite
def other_condition(draw) -> str:
    kind = draw(st.sampled_from(["string", "list", "enum"]))
    if kind == "string":
        name = draw(st.sampled_from(sorted(STRINGS)))
        return f"{name} {draw(st.sampled_from(['=', '!=']))} {draw(st.sampled_from(STRINGS[name]))}"
    if kind == "list":
        name = draw(st.sampled_from(sorted(LISTS)))
        return f"{name} {draw(st.sampled_from(['CONTAINS', 'NOT CONTAINS']))} {draw(st.sampled_from(LISTS[name]))}"
    name = draw(st.sampled_from(sorted(ENUMS)))
    return f"{name} {draw(st.sampled_from(['=', '!=']))} '{draw(st.sampled_from(ENUMS[name]))}'"


def ranged(name: str, values: list[str]):
    return st.one_of(
        st.builds(lambda op, v: f"{name} {op} {v}", CMP, st.sampled_from(values)),
        st.builds(lambda a, b: f"{name} BETWEEN {a} AND {b}", st.sampled_from(values), st.sampled_from(values)))


def listed(name: str, values: list[str], ops: list[str]):
    choices = st.lists(st.sampled_from(values), min_size=1, max_size=3)
    return st.one_of(
        st.builds(lambda op, v: f"{name} {op} {v}", st.sampled_from(ops), st.sampled_from(values)),
        st.builds(lambda neg, vs: f"{name} {neg}IN ({', '.join(vs)})", st.sampled_from(["", "NOT "]), choices))


PARAMS = {
    "products_purchased": [
        st.one_of(st.builds(lambda v: f"id = {v}", st.sampled_from(["42", "43", "'gid://shopify/Product/44'", "99"])),
                  st.builds(lambda vs: f"id IN ({', '.join(vs)})",
                            st.lists(st.sampled_from(["42", "43", "'gid://shopify/Product/44'"]), min_size=1))),
        listed("tag", ["'summer'", "'SALE'", "'winter'", "'none'"], ["=", "!="]),
        listed("collection", ["'summer'", "'WINTER'", "'autumn'"], ["=", "!="]),
        listed("collection_id", ["7", "8", "9"], ["=", "!="]),
        ranged("date", DATES), ranged("quantity", COUNTS + ["6"]), ranged("count", COUNTS)],
    "orders_placed": [ranged("date", DATES), ranged("amount", NUMBERS), ranged("count", COUNTS),
                      ranged("sum_amount", NUMBERS)],
    "sms_events": [listed("type", ["'sent'", "'delivered'", "'clicked'", "'converted'", "'opted_out'"], ["=", "!="]),
                   listed("campaign", ["'spring'", "'Autumn'", "'SPRING'", "'winter'"], ["=", "!="]),
                   ranged("date", DATES), ranged("count", COUNTS)],
}


@st.composite
def function_condition(draw) -> str:
    name = draw(st.sampled_from(sorted(PARAMS)))
    params = draw(st.lists(st.one_of(*PARAMS[name]), min_size=1, max_size=3))
    return f"{name} {draw(st.sampled_from(['', 'NOT ']))}MATCHES ({', '.join(params)})"


CONDITION = st.one_of(ordered_condition(), other_condition(), function_condition())
QUERY = st.recursive(
    CONDITION,
    lambda inner: st.builds(lambda items, joiner, paren: (
        f"({f' {joiner} '.join(items)})" if paren else f" {joiner} ".join(items)),
        st.lists(inner, min_size=2, max_size=4), st.sampled_from(["AND", "OR", "and", "Or"]), st.booleans()),
    max_leaves=8)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=QUERY)
def test_random_queries_match_the_evaluator(con, evaluator: Evaluator, query: str) -> None:
    assert_same(con, evaluator, query)
