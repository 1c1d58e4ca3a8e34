"""Assembles one shop's Dagster definitions; the work lives in pipeline/defs/ and the packages it calls.

`dagster dev` loads them through pipeline/fleet/location.py (settings from the environment); `smsseg run`
builds its own with the flags it was given. Both record runs in the same instance (DAGSTER_HOME).
"""

import datetime as dt
import os
from collections.abc import Callable

import dagster as dg
import duckdb

from pipeline.audience.state import copy_audience_tables, forget_redacted
from pipeline.defs.checks import data_test_checks, swing_check
from pipeline.defs.exports import export_asset, gateway_resource, retired_asset
from pipeline.defs.extract import extract_assets
from pipeline.defs.resources import PipelineSettings, RunOptions, ShopifyResource, daily_partitions
from pipeline.defs.segments import segment_assets, segment_key
from pipeline.defs.warehouse import MARTS_KEYS, model_assets, phone_numbers, published_warehouse_asset
from pipeline.segments import SegmentDefinition
from pipeline.segments.compiler import bring_views_to_day
from pipeline.segments.history import copy_history
from pipeline.settings import Settings
from pipeline.shopify.client import API_VERSION
from pipeline.warehouse.build import first_order_day

NIGHTLY = "nightly"


# The first day the partitions offer when neither SMSSEG_FIRST_DAY nor an extracted order says
FIRST_DAY_BEFORE_ANY_ORDER = dt.date(2000, 1, 1)


def nightly_schedule(job: dg.JobDefinition, timezone: str) -> dg.ScheduleDefinition:
    @dg.schedule(
        job=job,
        cron_schedule="0 2 * * *",
        execution_timezone=timezone,
        name="nightly_at_2am",
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )
    def _nightly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        """02:00 in the shop's time zone, evaluated as of that day: its partition."""
        day = context.scheduled_execution_time.date().isoformat()
        return dg.RunRequest(run_key=day, partition_key=day)

    return _nightly


def first_day(settings: Settings, timezone: str) -> dt.date:
    """The first partition: SMSSEG_FIRST_DAY, or the day of the shop's first order; never after --as-of."""
    first = settings.first_day or first_order_day(settings.data_dir, timezone) or FIRST_DAY_BEFORE_ANY_ORDER
    return min(first, settings.as_of) if settings.as_of else first


def analysts_copy(healthy: list[SegmentDefinition]) -> Callable[[duckdb.DuckDBPyConnection, dt.date], None]:
    def copy_for_analysts(con: duckdb.DuckDBPyConnection, day: dt.date) -> None:
        """The warehouse about to be published: every segment's view as of its day, and the pipeline's own
        records that analysts read."""
        bring_views_to_day(con, healthy, day)
        forget_redacted(con)
        copy_audience_tables(con)
        copy_history(con)

    return copy_for_analysts


def build_definitions(
    settings: Settings, loggers: dict[str, dg.LoggerDefinition] | None = None, **resources: dg.ConfigurableResource
) -> dg.Definitions:
    """Everything Dagster shows, for these settings; `resources` replace the defaults (tests, demos)."""
    pipeline_settings = PipelineSettings(
        data_dir=str(settings.data_dir),
        segments_dir=str(settings.segments_dir),
        source=settings.source,
        swing_threshold=settings.swing_threshold,
        memory_limit=settings.memory_limit,
        batch_size=settings.batch_size,
    )
    segments, definitions = segment_assets(settings.segments_dir)
    healthy = definitions.healthy()
    exported = [name for name in healthy if definitions.definitions[name].export]
    exports = [export_asset(definitions.definitions[name]) for name in exported]
    retired = retired_asset(exported, kept=[n for n in definitions.names if n not in healthy])
    # a broken definition fails its own asset; the warehouse still publishes with every healthy segment
    publish = published_warehouse_asset(
        deps=[*MARTS_KEYS, *(segment_key(n) for n in healthy), *(e.key for e in exports), retired.key],
        before_publish=analysts_copy([definitions.definitions[n] for n in healthy]),
    )
    timezone = pipeline_settings.shop_timezone()
    days = daily_partitions(timezone, first_day(settings, timezone))
    assets = dg.map_asset_specs(
        lambda spec: spec.replace_attributes(partitions_def=days),
        [*extract_assets(settings.source), *model_assets, phone_numbers, *segments, *exports, retired, publish],
    )
    job = dg.define_asset_job(
        NIGHTLY,
        selection=dg.AssetSelection.all(),
        description="Extract, build the warehouse, evaluate segments, sync audiences, as of one day (the partition).",
    )
    return dg.Definitions(
        assets=assets,
        asset_checks=[*data_test_checks, *(swing_check(e.key.path[-1]) for e in exports)],
        jobs=[job],
        schedules=[nightly_schedule(job, timezone)],
        loggers=loggers,
        resources={
            "settings": pipeline_settings,
            "run": RunOptions(),
            **source_resources(settings),
            "gateway": gateway_resource(
                settings.gateway, str(settings.data_dir), settings.variables, settings.limits_dir
            ),
            **resources,
        },
    )


def source_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """The Shopify client, configured from the environment, when the source is a real shop."""
    if settings.source != "shopify":
        return {}
    return {
        "shopify": ShopifyResource(
            store=dg.EnvVar(settings.variable("SHOPIFY_STORE")),
            access_token=dg.EnvVar(settings.variable("SHOPIFY_ACCESS_TOKEN")),
            api_version=os.environ.get(settings.variable("SHOPIFY_API_VERSION")) or API_VERSION,
        )
    }
