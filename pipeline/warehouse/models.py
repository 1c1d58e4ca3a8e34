"""The sql/ models: one .sql file a table, its dependencies read from the SQL itself."""

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
        """The model's leading comment, which says what one row is."""
        lines = [ln.removeprefix("--").strip() for ln in self.sql.splitlines() if ln.startswith("--")]
        first_code = next((i for i, ln in enumerate(self.sql.splitlines()) if not ln.startswith("--")), 0)
        return " ".join(lines[:first_code])


def referenced_tables(sql: str) -> tuple[str, ...]:
    """Schema-qualified tables a query reads; CTE names carry no schema and so drop out."""
    tree = sqlglot.parse_one(sql, dialect="duckdb")
    return tuple(sorted({f"{t.db}.{t.name}" for t in tree.find_all(exp.Table) if t.db}))


@cache
def load_models(sql_dir: Path = SQL_DIR) -> tuple[Model, ...]:
    """Every model under sql/staging and sql/marts, in an order where each comes after what it reads."""
    models = {}
    for schema in ("staging", "marts"):
        for path in sorted((sql_dir / schema).glob("*.sql")):
            sql = path.read_text()
            model = Model(schema, path.stem, path, sql, referenced_tables(sql))
            models[model.table] = model
    graph = {table: [d for d in m.deps if d in models] for table, m in models.items()}
    return tuple(models[t] for t in TopologicalSorter(graph).static_order())
