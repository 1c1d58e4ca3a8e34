"""Hostile values are plain values or a clear error; a query never reaches outside its predicate."""

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.segments import SegmentErrors, compile_query, create_segment_view, render
from pipeline.segments.compiler import parse_checked
from pipeline.segments.definitions import SegmentDefinition
from tests.segments.conftest import Built
from tests.segments.evaluator import Evaluator

HOSTILE = [
    "'); drop table marts.customers; --",
    "x' OR 1=1 --",
    "\\",
    "back\\slash' and quote\\",
    "semi;colon -- comment /* block */",
    "ünïcödé ☀ 中文 \u200b",
    '"double" `tick` $1 ? %s {0}',
    "a" * 10_000,
]


@pytest.fixture(scope="module")
def con(varied: Built):
    con = varied.connect()
    yield con
    con.close()


@pytest.fixture(scope="module")
def evaluator(varied: Built) -> Evaluator:
    return Evaluator(varied.oracle(), varied.as_of)


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
@pytest.mark.parametrize(
    "template",
    [
        "customer_tags CONTAINS '{}'",
        "customer_language = '{}'",
        "customer_email_domain != '{}'",
        "products_purchased MATCHES (tag IN ('{}', 'x'))",
        "sms_events NOT MATCHES (campaign = '{}')",
    ],
)
def test_hostile_strings_are_plain_values(con, varied: Built, evaluator: Evaluator, template: str, value: str) -> None:
    query = template.format(value.replace("\\", "\\\\").replace("'", "\\'"))
    for dialect in ("duckdb", "spark", "postgres", "snowflake"):
        sqlglot.parse_one(render(compile_query(query, varied.as_of), dialect), read=dialect)
    everyone = con.execute("select count(*) from marts.customers").fetchall()[0][0]
    members = {row[0] for row in con.execute(render(compile_query(query, varied.as_of))).fetchall()}
    # the value is compared as the text it is: the evaluator, which never builds SQL, agrees on who matches
    assert members == evaluator.members(parse_checked(query))
    if "!=" not in template and "NOT" not in template:
        assert members == set(), "no customer has a tag, language or campaign like this"
    else:
        assert 0 < len(members) <= everyone
    assert con.execute("select count(*) from marts.customers").fetchall()[0][0] == everyone


def test_injection_leaves_the_warehouse_intact(varied: Built, tmp_path: Path) -> None:
    copy = tmp_path / "warehouse.duckdb"
    shutil.copyfile(varied.warehouse, copy)
    con = duckdb.connect(str(copy))
    try:
        before = con.execute("select count(*) from marts.customers").fetchall()[0][0]
        query = r"customer_tags CONTAINS '\'); drop table marts.customers; --'"
        defn = SegmentDefinition(
            name="evil", description="", path=Path("evil.yaml"), query=query, tree=parse_checked(query)
        )
        assert create_segment_view(con, defn, varied.as_of) == 0
        assert con.execute("select count(*) from marts.customers").fetchall()[0][0] == before
        assert [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'segments'"
            ).fetchall()
        ] == ["evil"]
    finally:
        con.close()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("amount_spent > 1; drop table marts.customers", "unexpected character ';'"),
        ("amount_spent > 1 -- comment", "unexpected character '-'"),
        ("amount_spent > (select 1)", "expected a value after amount_spent >, found '('"),
        ("marts.customers.amount_spent > 1", "unknown attribute 'marts.customers.amount_spent'"),
        ("lower(customer_language) = 'it'", "expected ':' after customer_language, found ')'"),
        ("customer_tags CONTAINS 'unterminated", "string not closed"),
        ("amount_spent > 1e308", "'1e308' is not a number, date or relative date"),
        ("amount_spent > " + "9" * 10_000, "number too long"),
        ("segments CONTAINS 'x; drop'", "the string 'x; drop' is not a segment name"),
    ],
)
def test_anything_but_a_predicate_is_a_clear_error(query: str, message: str) -> None:
    with pytest.raises(SegmentErrors) as caught:
        compile_query(query, dt.date(2026, 10, 15))
    assert message in caught.value.errors[0].message


def test_a_thousand_or_clauses_compile_render_and_run(con, varied: Built) -> None:
    query = " OR ".join(f"customer_tags CONTAINS 'tag{i}'" for i in range(999)) + " OR amount_spent = 59.90"
    expr = compile_query(query, varied.as_of)
    sqlglot.parse_one(render(expr, "spark"), read="spark")
    assert con.execute(render(expr)).fetchall() == [(30,)]


def test_a_thousand_and_clauses_run(con, varied: Built) -> None:
    query = " AND ".join(f"amount_spent != {i}" for i in range(1000, 2000))
    assert len(con.execute(render(compile_query(query, varied.as_of))).fetchall()) > 0


def test_the_deepest_nesting_allowed_runs(con, varied: Built) -> None:
    query = "amount_spent = 59.90"
    for i in range(50):
        query = f"({query} AND amount_spent != {i + 5000})" if i % 2 else f"({query} OR amount_spent = {i + 5000})"
    assert con.execute(render(compile_query(query, varied.as_of))).fetchall() == [(30,)]


# Every kind of token, the pasted Shopify forms among them, in any order.
PIECES = [
    "FROM",
    "customers",
    "SHOW",
    "WHERE",
    "ORDER",
    "BY",
    "LIMIT",
    "(",
    ")",
    ",",
    ":",
    "=",
    "!=",
    ">",
    "AND",
    "OR",
    "NOT",
    "IN",
    "IS",
    "NULL",
    "MATCHES",
    "CONTAINS",
    "BETWEEN",
    "true",
    "false",
    "amount_spent",
    "customer_tags",
    "segments",
    "products_purchased",
    "orders_placed",
    "id",
    "date",
    "count",
    "shopify_email.opened",
    "'x'",
    "42",
    "2026-10-01",
    "2026-10-01T10:00:00Z",
    "30_days_ago",
    "-3m",
    "today",
    "anniversary",
    "'SUBSCRIBED'",
    "sms_subscription_status",
    "(1, 2)",
    "metafields.a.b",
    "2026/10/01",
    "2026-10-01T99:00",
]


@settings(max_examples=2000, deadline=None)
@given(pieces=st.lists(st.sampled_from(PIECES), min_size=1, max_size=14))
def test_any_sequence_of_tokens_is_a_query_or_its_errors(pieces: list[str]) -> None:
    try:
        compile_query(" ".join(pieces), dt.date(2026, 10, 15))
    except SegmentErrors as e:
        assert e.errors and all(error.line == 1 and error.column >= 1 for error in e.errors)
