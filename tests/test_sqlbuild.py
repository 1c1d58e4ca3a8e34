"""The one quoting of names: whatever a name holds, DuckDB reads it as that one name."""

import duckdb
import pytest
from sqlglot import exp

from pipeline.sqlbuild import column, qualified, table, temp, to_sql

NAMES = ["plain", "Mixed Case", 'with "quotes"', "it's", "x; drop table t; --", "1st", "select"]


@pytest.mark.parametrize("name", NAMES)
def test_a_name_stays_one_name(name: str) -> None:
    con = duckdb.connect()
    con.execute("create schema s")
    con.execute(
        to_sql(
            exp.Create(
                this=table(name, "s"),
                kind="TABLE",
                expression=exp.select(exp.alias_(exp.Literal.number(7), name, quoted=True)),
            )
        )
    )
    assert con.execute("select table_name from information_schema.tables where table_schema = 's'").fetchall() == [
        (name,)
    ]
    query = exp.select(column(name, "t")).from_(exp.alias_(table(name, "s"), "t", table=True))
    assert con.execute(to_sql(query)).fetchall() == [(7,)]
    con.execute(to_sql(temp("copied", exp.select(column(name)).from_(table(name, "s")))))
    assert con.execute("select * from copied").fetchall() == [(7,)]


@pytest.mark.parametrize("name", ["plain", "select", "Mixed Case", "it's"])
def test_a_qualified_name_is_its_schema_and_table_each_quoted(name: str) -> None:
    assert to_sql(qualified(f"segments.{name}")) == to_sql(table(name, "segments"))
    assert to_sql(qualified(name)) == to_sql(table(name))
