"""Golden compiler cases (fixtures/golden.sql), and the same trees rendered for other dialects."""

import datetime as dt
from pathlib import Path

import pytest
import sqlglot

from pipeline.segments import compile_query, render, segment_view
from pipeline.segments.compiler import parse_checked
from pipeline.segments.definitions import SegmentDefinition

GOLDEN = Path(__file__).parent / "fixtures" / "golden.sql"
DIALECTS = ["spark", "postgres", "snowflake"]


def cases() -> list[tuple[str, dt.date, str]]:
    found = []
    for block in GOLDEN.read_text().split("\n\n"):
        meta = dict(line[3:].split(": ", 1) for line in block.splitlines() if line.startswith("-- ") and ": " in line)
        sql = "\n".join(line for line in block.splitlines() if not line.startswith("--"))
        if "query" in meta:
            found.append((meta["query"], dt.date.fromisoformat(meta["as-of"]), sql.strip()))
    return found


@pytest.mark.parametrize(("query", "as_of", "expected"), cases(), ids=[c[0][:60] for c in cases()])
def test_golden(query: str, as_of: dt.date, expected: str) -> None:
    assert render(compile_query(query, as_of)) == expected


@pytest.mark.parametrize(("query", "as_of", "expected"), cases(), ids=[c[0][:60] for c in cases()])
@pytest.mark.parametrize("dialect", DIALECTS)
def test_other_dialects_render_and_parse_back(query: str, as_of: dt.date, expected: str, dialect: str) -> None:
    expr = compile_query(query, as_of)
    for sql in (render(expr, dialect), sqlglot.transpile(expected, read="duckdb", write=dialect)[0]):
        assert sqlglot.parse_one(sql, read=dialect).find(sqlglot.exp.Where) is not None


def test_golden_file_has_every_case() -> None:
    assert len(cases()) == 19


def test_segment_view_selects_members_with_their_fields() -> None:
    query = "abandoned_checkout_date >= -1d"
    defn = SegmentDefinition(
        name="checkout",
        description="",
        query=query,
        path=Path("checkout.yaml"),
        tree=parse_checked(query),
        export=True,
        fields=("abandoned_checkout_url", "amount_spent"),
    )
    assert render(segment_view(defn, dt.date(2026, 10, 15))) == (
        'CREATE OR REPLACE VIEW "segments"."checkout" AS SELECT "customer_id", "first_name", "last_name", "email", '
        '"phone_e164", "sms_subscription_status", "amount_spent", "number_of_orders", "last_order_date", '
        '"abandoned_checkout_url" FROM "marts"."customers" WHERE "customer_id" IN (SELECT "customers"."customer_id" '
        'FROM "marts"."customers" AS "customers" WHERE "customers"."abandoned_checkout_date" >= '
        "CAST('2026-10-14' AS DATE))"
    )


def test_segment_view_compiles_the_definitions_checked_tree_not_its_text() -> None:
    # The loader parsed and checked the query once; a text that no longer matches the tree is not read again.
    defn = SegmentDefinition(
        name="big",
        description="",
        query="(this text is not read)",
        path=Path("big.yaml"),
        tree=parse_checked("amount_spent > 100"),
    )
    assert render(segment_view(defn, dt.date(2026, 10, 15))).endswith(
        'FROM "marts"."customers" AS "customers" WHERE "customers"."amount_spent" > 100)'
    )
