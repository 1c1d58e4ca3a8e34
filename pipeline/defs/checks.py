"""Asset checks run in steps of their own: the raw layer's data tests, and the segment-size swing that holds
an export. The staging and marts data tests run in the models' step, each right after its table
(pipeline/defs/warehouse.py).
"""

import datetime as dt
from collections.abc import Iterator

import dagster as dg

from pipeline.audience.sync import swing
from pipeline.defs.data_tests import DataTest, data_test_result, load_data_tests
from pipeline.defs.resources import PipelineSettings, RunOptions, evaluation_day
from pipeline.defs.segments import segment_key
from pipeline.defs.warehouse import POOL, day_build
from pipeline.warehouse.build import create_raw_views, transaction

SIZE_LOOKBACK = 50  # materializations of a segment searched for an earlier day's size (reruns, dry runs)


def raw_checks(tests: list[DataTest]) -> dg.AssetChecksDefinition:
    """The data tests of the raw layer, run together after extraction: one open of the build, one transaction.

    Each is still a check of its own table, with its own name, severity and result. A blocking one that
    fails fails the step, which stops everything downstream of the raw tables.
    """

    @dg.multi_asset_check(
        # asset keys joined by __, as every other step's key
        name="raw__data_tests",
        specs=[test.spec() for test in tests],
        description="The sql/tests/raw data tests, run together on the build warehouse.",
        can_subset=True,
        pool=POOL,
    )
    def _checks(
        context: dg.AssetCheckExecutionContext, settings: PipelineSettings, run: RunOptions
    ) -> Iterator[dg.AssetCheckResult]:
        selected = [test for test in tests if test.key in context.selected_asset_check_keys]
        reads = sorted({table for test in selected for table in test.reads})
        with day_build(context, settings, run, reads=reads) as (con, _), transaction(con):
            create_raw_views(con, settings.data_path, reads)
            results = [data_test_result(con, test) for test in selected]
        yield from results

    return _checks


raw_data_tests = raw_checks([test for test in load_data_tests() if test.table.startswith("raw.")])


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
