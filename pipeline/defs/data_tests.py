"""The sql/tests data tests: each a query returning the rows that violate it, run as a Dagster asset check.

A test lives at sql/tests/<schema>/<table>/<check>.sql, its first line `-- blocking: ...` or
`-- warning: ...`. A blocking one that finds rows stops everything downstream of its table, so bad data
never reaches the gateway.
"""

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import dagster as dg
import duckdb

from pipeline.defs.keys import table_asset_key
from pipeline.warehouse.models import SQL_DIR, referenced_tables

SAMPLE_ROWS = 5


@dataclass(frozen=True)
class DataTest:
    table: str  # schema.table the test is about
    name: str
    sql: str
    blocking: bool
    description: str

    @cached_property  # parsed once, not by each night's step that asks
    def reads(self) -> tuple[str, ...]:
        """The tables its query reads: its own table, and any it looks others up in."""
        return referenced_tables(self.sql)

    @property
    def key(self) -> dg.AssetCheckKey:
        return dg.AssetCheckKey(table_asset_key(self.table), self.name)

    def spec(self) -> dg.AssetCheckSpec:
        return dg.AssetCheckSpec(
            self.name, asset=table_asset_key(self.table), blocking=self.blocking, description=self.description
        )


def load_data_tests(sql_dir: Path = SQL_DIR) -> list[DataTest]:
    tests = []
    for path in sorted((sql_dir / "tests").glob("*/*/*.sql")):
        sql = path.read_text()
        kind, _, description = sql.splitlines()[0].removeprefix("--").strip().partition(":")
        if kind not in ("blocking", "warning"):
            raise ValueError(f"{path}:1: a data test starts with '-- blocking: ...' or '-- warning: ...'")
        tests.append(
            DataTest(
                f"{path.parent.parent.name}.{path.parent.name}", path.stem, sql, kind == "blocking", description.strip()
            )
        )
    return tests


def data_test_result(con: duckdb.DuckDBPyConnection, test: DataTest) -> dg.AssetCheckResult:
    result = con.execute(test.sql)
    columns = [d[0] for d in result.description]
    rows = result.fetchall()
    sample = [dict(zip(columns, map(str, row), strict=True)) for row in rows[:SAMPLE_ROWS]]
    return dg.AssetCheckResult(
        asset_key=table_asset_key(test.table),
        check_name=test.name,
        passed=not rows,
        severity=dg.AssetCheckSeverity.ERROR if test.blocking else dg.AssetCheckSeverity.WARN,
        metadata={
            "violations": dg.MetadataValue.int(len(rows)),
            "sample": dg.MetadataValue.json(sample),
            "sql": dg.MetadataValue.md(f"```sql\n{test.sql}\n```"),
        },
    )
