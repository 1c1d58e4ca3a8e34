"""The sql/ models: each is a table unless its leading comment asks for a view, and a bad ask is named."""

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from pipeline.warehouse.build import open_build, run_model
from pipeline.warehouse.models import ModelError, load_models

AS_OF = dt.date(2026, 10, 31)


def write_models(sql_dir: Path, **models: str) -> Path:
    (sql_dir / "marts").mkdir(parents=True)
    (sql_dir / "staging").mkdir()
    for name, sql in models.items():
        (sql_dir / "staging" / f"{name}.sql").write_text(sql)
    return sql_dir


def kind_of(con: duckdb.DuckDBPyConnection, name: str) -> str:
    return con.execute(
        "select table_type from information_schema.tables where table_schema = 'staging' and table_name = ?", [name]
    ).fetchall()[0][0]


def test_a_model_is_a_table_unless_its_leading_comment_asks_for_a_view(tmp_path: Path) -> None:
    models = {
        m.name: m
        for m in load_models(
            write_models(
                tmp_path / "sql",
                plain="-- One row a number.\nselect 1 as n\n",
                seen="-- One row a number,\n-- read once where it is used.\n-- materialized: view\nselect 1 as n\n",
                late="-- One row a number.\nselect 1 as n\n-- materialized: view\n",  # not in the leading comment
            )
        )
    }
    assert {name: m.materialized for name, m in models.items()} == {"plain": "table", "seen": "view", "late": "table"}
    assert models["seen"].description == "One row a number, read once where it is used."


def test_an_unknown_materialisation_names_the_file(tmp_path: Path) -> None:
    sql_dir = write_models(tmp_path / "sql", typo="-- One row.\n-- materialized: veiw\nselect 1 as n\n")
    with pytest.raises(ModelError, match=r"typo\.sql: materialized: 'veiw' is not one of table, view"):
        load_models(sql_dir)


def test_a_model_changes_kind_in_a_build_that_persists(tmp_path: Path) -> None:
    """The build file outlives a run: a model that was a table last night becomes a view, and back."""
    table, view = (
        load_models(write_models(tmp_path / kind, numbers=f"-- Numbers.\n{header}select 7 as n\n"))[0]
        for kind, header in (("table", ""), ("view", "-- materialized: view\n"))
    )
    for model, kind, rows in ((table, "BASE TABLE", 1), (view, "VIEW", None), (table, "BASE TABLE", 1)):
        with open_build(tmp_path / "data", AS_OF) as con:
            assert run_model(con, model) == rows
            assert kind_of(con, "numbers") == kind
            assert con.execute("select n from staging.numbers").fetchall() == [(7,)]
