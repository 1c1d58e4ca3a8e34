"""Assembles one shop's Dagster definitions; the work lives in pipeline/defs/ and the packages it calls.

`dagster dev` loads them through pipeline/fleet/location.py (settings from the environment); `smsseg run`
builds its own with the flags it was given. Both record runs in the same instance (DAGSTER_HOME).
"""

import os

import dagster as dg

from pipeline.defs.checks import raw_data_tests, swing_check
from pipeline.defs.exports import export_asset, gateway_resource, retired_asset
from pipeline.defs.extract import extract_assets
from pipeline.defs.resources import PipelineSettings, RunOptions, ShopifyResource
from pipeline.defs.schedules import daily_partitions, first_day, nightly_schedule
from pipeline.defs.segments import segment_assets, segment_key
from pipeline.defs.warehouse import MARTS_KEYS, models, published_warehouse_asset
from pipeline.settings import Settings
from pipeline.shopify.client import API_VERSION

NIGHTLY = "nightly"


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
        healthy=[definitions.definitions[n] for n in healthy],
    )
    timezone = pipeline_settings.shop_timezone()
    days = daily_partitions(timezone, first_day(settings, timezone))
    assets = dg.map_asset_specs(
        lambda spec: spec.replace_attributes(partitions_def=days),
        [*extract_assets(settings.source), models, *segments, *exports, retired, publish],
    )
    job = dg.define_asset_job(
        NIGHTLY,
        selection=dg.AssetSelection.all(),
        description="Extract, build the warehouse, evaluate segments, sync audiences, as of one day (the partition).",
    )
    return dg.Definitions(
        assets=assets,
        asset_checks=[raw_data_tests, *(swing_check(e.key.path[-1]) for e in exports)],
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
