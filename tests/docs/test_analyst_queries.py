"""docs/analysts.md stays true: its queries answer on a warehouse the nightly job built, its tables are the real ones.

The warehouse is built once for the module from the built-in demo store's shop (its history ending a
few days after the nights, so it is the same every day), two nights running (2026-10-31 then
2026-11-01), so the segment history and the audience ledger have a day to compare with.
"""

import datetime as dt
import re
from pathlib import Path

import duckdb
import pytest

from pipeline.settings import PROJECT_DIR, Settings
from pipeline.store.demo import DEMO_CUSTOMERS, DEMO_SEED, generate_store
from tests.fixtures.nightly import run_nightly_job

DOC = PROJECT_DIR / "docs" / "analysts.md"
NIGHTS = ("2026-10-31", "2026-11-01")
DOCUMENTED_SCHEMAS = ("staging", "marts", "audience")


def sql_blocks(text: str) -> list[str]:
    return re.findall(r"^```sql\n(.*?)^```", text, re.S | re.M)


QUERIES = sql_blocks(DOC.read_text())


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("analysts") / "data"
    store = data_dir.parent / "store"
    generate_store(store, DEMO_CUSTOMERS, DEMO_SEED, end_day=dt.date(2026, 11, 6))
    settings = Settings(source=f"jsonl:{store}", data_dir=data_dir, segments_dir=PROJECT_DIR / "segment_defs")
    for as_of in NIGHTS:
        result = run_nightly_job(settings, as_of=as_of)
        assert result.success, f"the nightly job failed for {as_of}"
    return data_dir / "warehouse.duckdb"


@pytest.fixture(scope="module")
def con(warehouse: Path):
    with duckdb.connect(str(warehouse), read_only=True) as con:
        yield con


def test_the_doc_has_ten_questions_each_with_its_question_first() -> None:
    assert len(QUERIES) >= 10
    for sql in QUERIES:
        first = sql.splitlines()[0]
        assert first.startswith("-- ") and len(first) > 10, f"a query without its question first: {sql[:200]}"


@pytest.mark.parametrize("sql", QUERIES, ids=[q.splitlines()[0][3:60] for q in QUERIES])
def test_each_query_answers_on_the_demo_warehouse(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    rows = con.execute(sql).fetchall()
    assert rows, f"no rows on the demo warehouse; pick an example that shows something:\n{sql}"


def section(doc: str, table: str) -> str:
    """The text documenting `table`: from its heading (### or **bold**) to the next one."""
    match = re.search(rf"^(### {re.escape(table)}\n|\*\*{re.escape(table)}\*\*)", doc, re.M)
    assert match, f"{table} is in the warehouse but not documented in {DOC.name}"
    end = re.search(r"^(### |## |\*\*)", doc[match.end() :], re.M)
    return doc[match.end() : match.end() + end.start()] if end else doc[match.end() :]


def test_every_table_and_column_is_documented(con: duckdb.DuckDBPyConnection) -> None:
    doc = DOC.read_text()
    tables = con.execute(
        "select schema_name, table_name from duckdb_tables() where schema_name in (select unnest(?)) order by all",
        [list(DOCUMENTED_SCHEMAS)],
    ).fetchall()
    assert len(tables) > 10
    for schema, name in tables:
        text = section(doc, f"{schema}.{name}")
        columns = [row[0] for row in con.execute(f"describe {schema}.{name}").fetchall()]
        missing = [c for c in columns if f"`{c}`" not in text]
        assert not missing, f"{schema}.{name}: columns {missing} are not documented in {DOC.name}"


def test_segment_view_columns_are_documented(con: duckdb.DuckDBPyConnection) -> None:
    text = section(DOC.read_text(), "segments.&lt;name&gt;")
    columns = [row[0] for row in con.execute("describe segments.winback_90d").fetchall()]
    assert not [c for c in columns if f"`{c}`" not in text]
