"""Export assets: one per exported segment, syncing its eligible audience to the SMS gateway."""

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import dagster as dg

from pipeline.audience.gateways import AudienceGateway, AudienceTarget, FileGateway, HttpGateway
from pipeline.audience.klaviyo import DEFAULT_URL, REVISION, KlaviyoGateway
from pipeline.audience.shopify_tags import ShopifyTagsGateway
from pipeline.audience.sync import SyncError, SyncResult, retire_segment, retired_segments, sync_segment
from pipeline.defs.checks import size_swing
from pipeline.defs.resources import PipelineSettings, RunOptions, evaluation_day
from pipeline.defs.segments import segment_key
from pipeline.defs.warehouse import MARTS_KEYS, POOL, day_build
from pipeline.segments import SegmentDefinition
from pipeline.settings import limits_dir_from
from pipeline.shopify.client import API_VERSION

# not under exports/: any name there could be a segment's
RETIRED_KEY = dg.AssetKey(["retired_exports"])


def export_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["exports", name])


def gateway_resource(
    gateway: str, data_dir: str, variables: Mapping[str, str] | None = None, limits_dir: Path | None = None
) -> AudienceGateway:
    """The file gateway, the HTTP one (SMS_GATEWAY_URL, SMS_GATEWAY_TOKEN), Klaviyo (KLAVIYO_*, its rate limits
    shared in `limits_dir`, default SMSSEG_LIMITS_DIR or <data_dir>/limits) or the shop's customer tags
    (SHOPIFY_STORE, SHOPIFY_ACCESS_TOKEN, SHOPIFY_API_VERSION).

    Secrets stay EnvVars, read when the run starts; the optional URLs, revision and version are plain values.
    `variables` renames them for one shop of many (KLAVIYO_API_KEY -> ROME_KLAVIYO_API_KEY).
    """
    variables = variables or {}

    def env(name: str) -> str:
        return variables.get(name, name)

    if gateway == "http":
        return HttpGateway(url=dg.EnvVar(env("SMS_GATEWAY_URL")), token=dg.EnvVar(env("SMS_GATEWAY_TOKEN")))
    if gateway == "klaviyo":
        return KlaviyoGateway(
            api_key=dg.EnvVar(env("KLAVIYO_API_KEY")),
            url=os.environ.get(env("KLAVIYO_API_URL")) or DEFAULT_URL,
            revision=os.environ.get(env("KLAVIYO_REVISION")) or REVISION,
            limits_dir=str(limits_dir or limits_dir_from(Path(data_dir))),
        )
    if gateway == "shopify-tags":
        return ShopifyTagsGateway(
            store=dg.EnvVar(env("SHOPIFY_STORE")),
            token=dg.EnvVar(env("SHOPIFY_ACCESS_TOKEN")),
            api_version=os.environ.get(env("SHOPIFY_API_VERSION")) or API_VERSION,
        )
    return FileGateway(data_dir=data_dir)


def sync_metadata(result: SyncResult) -> dict[str, dg.MetadataValue]:
    metadata = {
        k: dg.MetadataValue.int(v) if isinstance(v, int) and not isinstance(v, bool) else v
        for k, v in result.metadata().items()
    }
    if result.dry_run:  # customer ids and kinds only: the event log never holds a number or a name
        metadata["sample_adds"] = dg.MetadataValue.json(result.sample_adds)
        metadata["sample_removes"] = dg.MetadataValue.json(result.sample_removes)
    return metadata


def export_asset(definition: SegmentDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=export_key(definition.name),
        deps=[segment_key(definition.name)],
        group_name="exports",
        kinds={"duckdb", "sms"},
        pool=POOL,
        output_required=False,  # a backfill syncs nothing, so it has no materialization for its day
        description=f"The consenting, valid, deduplicated phone numbers of segments.{definition.name}, "
        "synced to the gateway as adds and removes, by a live run.",
    )
    def _export(
        context: dg.AssetExecutionContext, settings: PipelineSettings, run: RunOptions, gateway: AudienceGateway
    ) -> Iterator[dg.MaterializeResult]:
        swing = size_swing(context.instance, definition.name, settings.swing_threshold, evaluation_day(context))
        acknowledged = definition.name in run.acknowledge_swings
        held = swing is not None and not acknowledged
        # a held export still sends the removals of numbers that must not be texted; a dry run
        # previews a held export's whole diff: what acknowledging the swing would send

        with day_build(context, settings, run) as (con, night):
            if not night.live:
                context.log.info(f"backfill of {night.day}: nothing synced ({night.latest} has run already)")
                return
            suppressions = settings.data_path / "suppressions.csv"
            try:
                result = sync_segment(
                    con,
                    gateway,
                    definition.name,
                    as_of=night.day,
                    run_id=context.run.run_id,
                    fields=definition.fields,
                    target=AudienceTarget(
                        definition.name,
                        name=definition.list_name,
                        tag=definition.tag,
                        description=definition.description or "",
                    ),
                    batch_size=settings.batch_size,
                    dry_run=run.dry_run,
                    held=held,
                    # no history to compare with: the sync compares with what the destination holds
                    swing_threshold=None if swing or acknowledged else settings.swing_threshold,
                    suppressions_csv=suppressions if suppressions.exists() else None,
                )
            except SyncError as e:
                raise dg.Failure(str(e), metadata=sync_metadata(e.result)) from None
        if result.dry_run:
            context.log.info(
                f"dry run, nothing sent: +{result.added} ~{result.updated} -{result.removed}; "
                f"sample adds {result.sample_adds}, removes {result.sample_removes}"
                + (f"; the real run would hold it: {swing}" if held else "")
            )
        reason = swing or result.hold_reason
        if result.held:
            context.log.warning(
                f"export held: sent only the {result.removed} removals of numbers that may "
                f"no longer be texted: {reason}"
            )
        yield dg.MaterializeResult(
            metadata={**sync_metadata(result), **({"held": True, "reason": reason} if held or result.held else {})}
        )

    return _export


def retired_asset(exported: list[str], kept: list[str]) -> dg.AssetsDefinition:
    """Empties, at the destination, every segment the ledger says it holds that no definition exports now.

    `kept` are segments whose definition is broken tonight: still meant to be exported, not retired.

    A definition deleted, renamed or set to `export: false` would otherwise leave its audience
    at the gateway for good, opted-out numbers included.
    """

    @dg.asset(
        key=RETIRED_KEY,
        # not after the exports: one failing export must not keep another segment's audience up
        deps=MARTS_KEYS,
        group_name="exports",
        kinds={"duckdb", "sms"},
        pool=POOL,
        output_required=False,  # a backfill changes no destination
        description="Removes every member of a segment no definition exports any more (deleted, renamed, "
        "or export: false) from the destination, once, in a live run.",
    )
    def _retired(
        context: dg.AssetExecutionContext, settings: PipelineSettings, run: RunOptions, gateway: AudienceGateway
    ) -> Iterator[dg.MaterializeResult]:
        removed: dict[str, int] = {}
        with day_build(context, settings, run) as (con, night):
            if not night.live:
                return
            for segment in retired_segments(con, gateway.destination, {*exported, *kept}):
                try:
                    result = retire_segment(
                        con,
                        gateway,
                        segment,
                        as_of=night.day,
                        run_id=context.run.run_id,
                        batch_size=settings.batch_size,
                        dry_run=run.dry_run,
                    )
                except SyncError as e:
                    raise dg.Failure(f"retiring segment {segment}: {e}", metadata=sync_metadata(e.result)) from None
                removed[segment] = result.removed
                context.log.info(
                    f"segment {segment} is no longer exported: "
                    f"{'would remove' if run.dry_run else 'removed'} {result.removed} numbers "
                    f"from {gateway.destination}"
                )
        yield dg.MaterializeResult(
            metadata={
                "destination": gateway.destination,
                "dry_run": run.dry_run,
                "segments": dg.MetadataValue.int(len(removed)),
                "removed": dg.MetadataValue.int(sum(removed.values())),
                "retired": dg.MetadataValue.json(removed),
            }
        )

    return _retired
