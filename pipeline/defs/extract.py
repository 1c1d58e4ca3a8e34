"""Extraction assets: one per store file, each publishing its raw Parquet batch."""

import dagster as dg

from pipeline.defs.resources import PipelineSettings, ShopifyResource
from pipeline.shopify import downloads
from pipeline.shopify.client import ShopifyError
from pipeline.store.ingest import StoreError, ingest_file
from pipeline.store.redact import erase_redacted
from pipeline.store.schema import STORE_FILES, resources_in
from pipeline.warehouse.build import raw_dir


def raw_asset_key(file: str) -> dg.AssetKey:
    return dg.AssetKey(["raw", file.removesuffix(".jsonl")])


def resource_asset_key(resource_name: str) -> dg.AssetKey:
    """The extraction asset that writes a raw resource (order_lines come with orders)."""
    file = next(f for f in STORE_FILES if any(r.name == resource_name for r in resources_in(f)))
    return raw_asset_key(file)


SHOPIFY_DOWNLOAD = dg.AssetKey(["raw", "shopify_download"])


@dg.asset(key=SHOPIFY_DOWNLOAD, group_name="extract", kinds={"shopify"})
def shopify_download(
    context: dg.AssetExecutionContext, settings: PipelineSettings, shopify: ShopifyResource
) -> dg.MaterializeResult:
    """The shop's records changed since the bookmark, as a store directory, via bulk operations."""
    try:
        with shopify.client() as client:
            folder, manifest = downloads.download(client, settings.data_path)
    except ShopifyError as e:
        raise dg.Failure(str(e)) from None
    context.log.info(f"downloaded {manifest['rows']} since {manifest['since'] or 'the beginning'} into {folder}")
    return dg.MaterializeResult(
        metadata={
            "since": manifest["since"] or "full load",
            "started_at": manifest["started_at"],
            **{f"lines_{file.removesuffix('.jsonl')}": dg.MetadataValue.int(n) for file, n in manifest["rows"].items()},
        }
    )


def extract_asset(file: str, source: str) -> dg.AssetsDefinition:
    resources = resources_in(file)
    upstream = [SHOPIFY_DOWNLOAD] if source == "shopify" else []
    if file == "customers.jsonl":
        # redactions first, so a new request erases data already in raw; events first, so their
        # numbers are erased the same night
        upstream += [raw_asset_key("redactions.jsonl"), raw_asset_key("sms_events.jsonl")]

    @dg.asset(
        key=raw_asset_key(file),
        deps=upstream,
        group_name="extract",
        kinds={"parquet"},
        description=f"Raw Parquet batches of {file}: {', '.join(r.name for r in resources)}, typed and checked.",
    )
    def _extract(context: dg.AssetExecutionContext, settings: PipelineSettings) -> dg.MaterializeResult:
        with settings.memory_bound():
            try:
                store = settings.store_source().directory(file)
                ingested = ingest_file(store, file, raw_dir(settings.data_path), settings.memory_limit)
            except StoreError as e:
                raise dg.Failure(str(e)) from None
            downloads.mark_published(store, file)
            scrubbed = {}
            if file == "customers.jsonl":
                erased = erase_redacted(settings.data_path, settings.memory_limit)
                scrubbed = {name: dg.MetadataValue.int(n) for name, n in erased.items()}
        context.log.info(f"{file}: batch {ingested.batch}" + (" (unchanged, nothing new)" if ingested.skipped else ""))
        for warning in ingested.warnings:  # counts, file, line and an enum value: no personal data
            context.log.warning(warning)
        return dg.MaterializeResult(
            metadata={
                "batch": ingested.batch,
                "unchanged": ingested.skipped,
                "warnings": dg.MetadataValue.int(len(ingested.warnings)),
                **{f"rows_{name}": dg.MetadataValue.int(n) for name, n in ingested.rows.items()},
                **scrubbed,
            }
        )

    return _extract


def extract_assets(source: str) -> list[dg.AssetsDefinition]:
    """One asset per store file, after the Shopify download when the source is a real shop."""
    assets = [extract_asset(file, source) for file in STORE_FILES]
    return [shopify_download, *assets] if source == "shopify" else assets
