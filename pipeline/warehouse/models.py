"""The sql/ models: one .sql file a table (or a view, when it says so), its dependencies read from the SQL itself."""

from dataclasses import dataclass
from functools import cache
from graphlib import TopologicalSorter
from pathlib import Path

import sqlglot
from sqlglot import exp

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
# Tables made by Python steps rather than sql/ files: the models may read them all the same.
PYTHON_TABLES = ("staging.stg_phone_numbers",)


@dataclass(frozen=True)
class Model:
    schema: str
    name: str
    path: Path
    sql: str
    deps: tuple[str, ...]  # schema-qualified tables it reads: raw.*, staging.*, marts.*

    @property
    def table(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def description(self) -> str:
        """The model's leading comment, which says what one row is (its `materialized:` line aside)."""
        return " ".join(line for line in _leading_comment(self.sql) if not line.startswith(MATERIALIZED))

    @property
    def materialized(self) -> str:
        """ "table", or "view" when the leading comment has a `-- materialized: view` line."""
        return _materialized(self.sql) or "table"


MATERIALIZED = "materialized:"
KINDS = ("table", "view")


class ModelError(ValueError):
    """A sql/ model file that can't be built; the message names the file and what to fix."""


def _leading_comment(sql: str) -> list[str]:
    lines = sql.splitlines()
    first_code = next((i for i, line in enumerate(lines) if not line.startswith("--")), len(lines))
    return [line.removeprefix("--").strip() for line in lines[:first_code]]


def _materialized(sql: str) -> str | None:
    return next(
        (line.removeprefix(MATERIALIZED).strip() for line in _leading_comment(sql) if line.startswith(MATERIALIZED)),
        None,
    )


def referenced_tables(sql: str) -> tuple[str, ...]:
    """Schema-qualified tables a query reads; CTE names carry no schema and so drop out."""
    tree = sqlglot.parse_one(sql, dialect="duckdb")
    return tuple(sorted({f"{t.db}.{t.name}" for t in tree.find_all(exp.Table) if t.db}))


@cache
def load_macros(sql_dir: Path = SQL_DIR) -> tuple[str, ...]:
    """The `create or replace macro` statements of sql/macros, which models call like functions."""
    return tuple(path.read_text() for path in sorted((sql_dir / "macros").glob("*.sql")))


@cache
def load_models(sql_dir: Path = SQL_DIR) -> tuple[Model, ...]:
    """Every model under sql/staging and sql/marts, in an order where each comes after what it reads."""
    models = {}
    for schema in ("staging", "marts"):
        for path in sorted((sql_dir / schema).glob("*.sql")):
            sql = path.read_text()
            if (materialized := _materialized(sql)) not in (None, *KINDS):
                raise ModelError(
                    f"{path}: materialized: {materialized!r} is not one of {', '.join(KINDS)}. "
                    "Write `-- materialized: view` in the leading comment, or leave the line out "
                    "for a table."
                )
            model = Model(schema, path.stem, path, sql, referenced_tables(sql))
            models[model.table] = model
    graph = {table: [d for d in m.deps if d in models] for table, m in models.items()}
    return tuple(models[t] for t in TopologicalSorter(graph).static_order())
