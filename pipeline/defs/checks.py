"""Asset checks: the sql/tests data tests, and the segment-size swing that holds an export.

A data test is a query returning the violating rows (sql/tests/<schema>/<table>/<check>.sql, first
line `-- blocking: ...` or `-- warning: ...`). A blocking one that finds rows stops everything
downstream of its asset, so bad data never reaches the gateway.
"""

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from pipeline.audience.sync import swing
from pipeline.defs.resources import PipelineSettings, RunOptions, evaluation_day
from pipeline.defs.segments import segment_key
from pipeline.defs.warehouse import POOL, day_build, table_asset_key
from pipeline.warehouse.build import create_raw_views
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


def data_test_check(test: DataTest) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=table_asset_key(test.table),
        name=test.name,
        blocking=test.blocking,
        description=test.description,
        pool=POOL,
    )
    def _check(
        context: dg.AssetCheckExecutionContext, settings: PipelineSettings, run: RunOptions
    ) -> dg.AssetCheckResult:
        reads = referenced_tables(test.sql)
        with day_build(context, settings, run, reads=reads) as (con, _):
            create_raw_views(con, settings.data_path, reads)
            result = con.execute(test.sql)
            columns = [d[0] for d in result.description]
            rows = result.fetchall()
        sample = [dict(zip(columns, map(str, row), strict=True)) for row in rows[:SAMPLE_ROWS]]
        return dg.AssetCheckResult(
            passed=not rows,
            severity=dg.AssetCheckSeverity.ERROR if test.blocking else dg.AssetCheckSeverity.WARN,
            metadata={
                "violations": dg.MetadataValue.int(len(rows)),
                "sample": dg.MetadataValue.json(sample),
                "sql": dg.MetadataValue.md(f"```sql\n{test.sql}\n```"),
            },
        )

    return _check


data_test_checks = [data_test_check(t) for t in load_data_tests()]


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
