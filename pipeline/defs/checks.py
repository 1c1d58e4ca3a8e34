"""Asset checks: the sql/tests data tests, and the segment-size swing that holds an export.

A data test is a query returning the violating rows (sql/tests/<schema>/<table>/<check>.sql, first
line `-- blocking: ...` or `-- warning: ...`). A blocking one that finds rows stops everything
downstream of the tables its step checks, so bad data never reaches the gateway.
"""

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb

from pipeline.audience.sync import swing
from pipeline.defs.resources import PipelineSettings, RunOptions, evaluation_day
from pipeline.defs.segments import segment_key
from pipeline.defs.warehouse import POOL, day_build, table_asset_key
from pipeline.warehouse.build import create_raw_views, transaction
from pipeline.warehouse.models import SQL_DIR, referenced_tables

SAMPLE_ROWS = 5
SIZE_LOOKBACK = 50  # materializations of a segment searched for an earlier day's size (reruns, dry runs)


@dataclass(frozen=True)
class DataTest:
    table: str  # schema.table the test is about
    name: str
    sql: str
    blocking: bool
    description: str


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


def layer_checks(layer: str, tests: list[DataTest]) -> dg.AssetChecksDefinition:
    """The data tests of one layer (raw, staging, marts) run together: one open of the build, one transaction.

    Each test is still a check of its own table, with its own name, severity and result; a step per
    test cost a build open and a Dagster step each (about 1 CPU s a night at 100k). A table that
    another model of its layer reads is checked before that model runs (stg_customers before
    stg_phone_numbers), so Dagster splits the layer into a step per dependency depth
    (`staging__data_tests`, `_2`, `_3`), each running the checks it was handed. A blocking test that
    fails fails its step, which stops everything downstream of every table that step checks.
    """
    by_key = {dg.AssetCheckKey(table_asset_key(t.table), t.name): t for t in tests}

    @dg.multi_asset_check(
        # asset keys joined by __, as every other step's key: `staging__data_tests`
        name=f"{layer}__data_tests",
        specs=[
            dg.AssetCheckSpec(t.name, asset=table_asset_key(t.table), blocking=t.blocking, description=t.description)
            for t in tests
        ],
        description=f"The sql/tests/{layer} data tests, run together on the build warehouse.",
        can_subset=True,
        pool=POOL,
    )
    def _checks(
        context: dg.AssetCheckExecutionContext, settings: PipelineSettings, run: RunOptions
    ) -> Iterator[dg.AssetCheckResult]:
        selected = [test for key, test in by_key.items() if key in context.selected_asset_check_keys]
        reads = sorted({table for test in selected for table in referenced_tables(test.sql)})
        with day_build(context, settings, run, reads=reads) as (con, _), transaction(con):
            create_raw_views(con, settings.data_path, reads)
            results = [_data_test_result(con, test) for test in selected]
        yield from results

    return _checks


def _data_test_result(con: duckdb.DuckDBPyConnection, test: DataTest) -> dg.AssetCheckResult:
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


def data_test_checks_by_layer(tests: list[DataTest]) -> list[dg.AssetChecksDefinition]:
    layers: dict[str, list[DataTest]] = {}
    for test in tests:
        layers.setdefault(test.table.split(".")[0], []).append(test)
    return [layer_checks(layer, layer_tests) for layer, layer_tests in layers.items()]


data_test_checks = data_test_checks_by_layer(load_data_tests())


def size_swing(instance: dg.DagsterInstance, segment: str, threshold: float, day: dt.date) -> str | None:
    """Why the segment's size on `day` is a swing beyond `threshold`, or None when it is not."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=segment_key(segment), asset_partitions=[day.isoformat()]), limit=1
    ).records
    event = records[0].asset_materialization if records else None
    metadata = event.metadata if event else {}
    if "size" not in metadata:
        return None
    before = (
        metadata["previous_size"].value
        if "previous_size" in metadata
        else _size_before(instance, segment, metadata["as_of"].value)
    )
    if before is None:
        return None  # a first run has nothing to compare with
    size = metadata["size"].value
    share = swing(before, size, threshold)  # signed: a shrinking segment reads -60%, not +60%
    if share is None:
        return None
    return (
        f"segments.{segment} went from {before:,} to {size:,} members ({share:+.0%} of its size; the limit is "
        f"{threshold:.0%}). Check the segment, then acknowledge the swing (smsseg run --ack-swing {segment}, "
        f"or run config acknowledge_swings) or raise SMSSEG_SWING_THRESHOLD."
    )


def _size_before(instance: dg.DagsterInstance, segment: str, as_of: str) -> int | None:
    """The size Dagster last recorded for the segment on a day before `as_of`.

    The guard's fallback for when the membership history is gone with a lost state.duckdb: without
    it, the night after the loss would compare with nothing and let any swing through.
    """
    records = instance.fetch_materializations(segment_key(segment), limit=SIZE_LOOKBACK).records
    for record in records:  # newest first
        metadata = record.asset_materialization.metadata if record.asset_materialization else {}
        if "as_of" in metadata and "size" in metadata and metadata["as_of"].value < as_of:
            return metadata["size"].value
    return None


def swing_check(segment: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=segment_key(segment),
        name="size_swing",
        blocking=False,
        description="The segment did not grow or shrink by more than the swing threshold since the "
        "last run; when it did, its export is held until acknowledged.",
    )
    def _check(
        context: dg.AssetCheckExecutionContext, settings: PipelineSettings, run: RunOptions
    ) -> dg.AssetCheckResult:
        swing = size_swing(context.instance, segment, settings.swing_threshold, evaluation_day(context))
        acknowledged = segment in run.acknowledge_swings
        return dg.AssetCheckResult(
            passed=swing is None or acknowledged,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"swing": swing or "none", "acknowledged": acknowledged},
        )

    return _check
