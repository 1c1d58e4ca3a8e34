"""The one way Python puts a name into SQL: sqlglot expressions, rendered for DuckDB.

A statement that never changes is a literal (or a file in sql/); one that depends on names (a
definition's fields, a segment's view, the columns of schema.py) is built from these, and its
values go in as `?` parameters. Every name is quoted, so whatever it holds it stays one name.
"""

from sqlglot import exp

DIALECT = "duckdb"


def identifier(name: str) -> exp.Identifier:
    """`name` as a quoted identifier: the one quoting of a name in the pipeline."""
    return exp.to_identifier(name, quoted=True)


def table(name: str, schema: str | None = None) -> exp.Table:
    return exp.Table(this=identifier(name), db=identifier(schema) if schema else None)


def qualified(name: str) -> exp.Table:
    """A table the code names as schema.table (marts.customers, the catalogue's and the models' tables)."""
    schema, _, table_name = name.rpartition(".")
    return table(table_name, schema or None)


def column(name: str, table: str | None = None) -> exp.Column:
    return exp.Column(this=identifier(name), table=identifier(table) if table else None)


def call(function: str, *args: exp.Expression) -> exp.Anonymous:
    """A call of DuckDB's `function`, as written: sqlglot must not translate it into another (it would
    shift a list index, or turn `len` into `length`)."""
    return exp.Anonymous(this=function, expressions=list(args))


def count_rows(source: exp.Expression) -> exp.Select:
    """`select count(*) from source`: a table, or a subquery."""
    return exp.select(exp.Count(this=exp.Star())).from_(source)


def to_sql(expression: exp.Expression) -> str:
    return expression.sql(dialect=DIALECT)


def temp(name: str, query: exp.Query, kind: str = "TABLE") -> exp.Create:
    """`create or replace temp table name as query` (or a temp view, with kind="VIEW")."""
    return exp.Create(
        this=table(name),
        kind=kind,
        replace=True,
        expression=query,
        properties=exp.Properties(expressions=[exp.TemporaryProperty()]),
    )
