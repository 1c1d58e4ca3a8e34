"""Assembles the Dagster definitions; the work lives in pipeline/defs/ and the packages it calls.

`dagster dev` loads `defs` (settings from the environment); `smsseg run` builds its own with the
flags it was given. Both record runs in the same instance (DAGSTER_HOME).
"""

import os

import dagster as dg
import duckdb

from pipeline.audience.state import copy_audience_tables, forget_redacted
from pipeline.defs.checks import data_test_checks, swing_check
from pipeline.defs.exports import export_asset, gateway_resource, retired_asset
from pipeline.defs.extract import extract_assets
from pipeline.defs.resources import PipelineSettings, RunOptions, ShopifyResource
from pipeline.defs.segments import healthy_segments, segment_assets, segment_key
from pipeline.defs.warehouse import MARTS_KEYS, model_assets, phone_numbers, published_warehouse_asset
from pipeline.segments.history import copy_history
from pipeline.settings import Settings
from pipeline.shopify.client import API_VERSION

NIGHTLY = "nightly"


def nightly_schedule(job: dg.JobDefinition, timezone: str) -> dg.ScheduleDefinition:
    @dg.schedule(job=job, cron_schedule="0 2 * * *", execution_timezone=timezone, name="nightly_at_2am",
                 default_status=dg.DefaultScheduleStatus.STOPPED)
    def _nightly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        """02:00 in the shop's time zone, evaluated as of that day."""
        as_of = context.scheduled_execution_time.date().isoformat()
        return dg.RunRequest(run_key=as_of, run_config={"resources": {"run": {"config": {"as_of": as_of}}}},
                             tags={"smsseg/as_of": as_of})

    return _nightly


def copy_for_analysts(con: duckdb.DuckDBPyConnection) -> None:
    """The pipeline's own records that analysts read, copied into the warehouse about to be published."""
    forget_redacted(con)
    copy_audience_tables(con)
    copy_history(con)


def build_definitions(settings: Settings, loggers: dict[str, dg.LoggerDefinition] | None = None,
                      **resources: dg.ConfigurableResource) -> dg.Definitions:
    """Everything Dagster shows, for these settings; `resources` replace the defaults (tests, demos)."""
    pipeline_settings = PipelineSettings(data_dir=str(settings.data_dir), segments_dir=str(settings.segments_dir),
                                         source=settings.source, swing_threshold=settings.swing_threshold,
                                         memory_limit=settings.memory_limit, batch_size=settings.batch_size)
    segments, definitions = segment_assets(settings.segments_dir)
    healthy = healthy_segments(definitions)
    exported = [name for name in healthy if definitions.definitions[name].export]
    exports = [export_asset(definitions.definitions[name]) for name in exported]
    retired = retired_asset(exported, kept=[n for n in definitions.names if n not in healthy])
    # a broken definition fails its own asset; the warehouse still publishes with every healthy segment
    publish = published_warehouse_asset(
        deps=[*MARTS_KEYS, *(segment_key(n) for n in healthy), *(e.key for e in exports), retired.key],
        before_publish=copy_for_analysts)
    assets = [*extract_assets(settings.source), *model_assets, phone_numbers, *segments, *exports, retired, publish]
    job = dg.define_asset_job(NIGHTLY, selection=dg.AssetSelection.all(),
                              description="Extract, build the warehouse, evaluate segments, sync audiences.")
    return dg.Definitions(
        assets=assets,
        asset_checks=[*data_test_checks, *(swing_check(e.key.path[-1]) for e in exports)],
        jobs=[job],
        schedules=[nightly_schedule(job, pipeline_settings.shop_timezone())],
        loggers=loggers,
        resources={"settings": pipeline_settings, "run": RunOptions(), **source_resources(settings.source),
                   "gateway": gateway_resource(settings.gateway, str(settings.data_dir)), **resources},
    )


def source_resources(source: str) -> dict[str, dg.ConfigurableResource]:
    """The Shopify client, configured from the environment, when the source is a real shop."""
    if source != "shopify":
        return {}
    return {"shopify": ShopifyResource(store=dg.EnvVar("SHOPIFY_STORE"), access_token=dg.EnvVar("SHOPIFY_ACCESS_TOKEN"),
                                       api_version=os.environ.get("SHOPIFY_API_VERSION") or API_VERSION)}


defs = build_definitions(Settings.resolve())
