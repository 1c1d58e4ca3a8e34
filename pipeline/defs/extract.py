"""Extraction assets: one per store file, each publishing its raw Parquet batch, all made in one step."""

from collections.abc import Iterator

import dagster as dg

from pipeline.defs.keys import raw_asset_key
from pipeline.defs.resources import PipelineSettings, ShopifyResource
from pipeline.shopify import downloads
from pipeline.shopify.client import ShopifyError
from pipeline.store.ingest import StoreError, ingest_file
from pipeline.store.redact import erase_redacted
from pipeline.store.schema import STORE_FILES, resources_in
from pipeline.warehouse.build import raw_dir

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


FIRST = ("redactions.jsonl", "sms_events.jsonl")  # before customers.jsonl, which erases what they say
ORDER = (*FIRST, *(file for file in STORE_FILES if file not in FIRST))


def waits_for(file: str) -> tuple[str, ...]:
    """The store files extracted before `file`, which it needs: customers.jsonl waits for the redactions,
    so a new request erases data already in raw, and for the SMS events, so their numbers are erased the
    same night."""
    return FIRST if file == "customers.jsonl" else ()


def extract_spec(file: str, source: str) -> dg.AssetSpec:
    upstream = [SHOPIFY_DOWNLOAD] if source == "shopify" else []
    upstream += [raw_asset_key(f) for f in waits_for(file)]
    resources = ", ".join(r.name for r in resources_in(file))
    return dg.AssetSpec(
        raw_asset_key(file),
        deps=upstream,
        group_name="extract",
        kinds={"parquet"},
        description=f"Raw Parquet batches of {file}: {resources}, typed and checked.",
        skippable=True,
    )


def extract_file(context: dg.AssetExecutionContext, settings: PipelineSettings, file: str) -> dg.MaterializeResult:
    """One store file ingested into its raw Parquet batch (customers.jsonl then erases the redacted)."""
    store = settings.store_source().directory(file)
    ingested = ingest_file(store, file, raw_dir(settings.data_path), settings.memory_limit)
    downloads.mark_published(store, file)
    scrubbed = {}
    if file == "customers.jsonl":
        erased = erase_redacted(settings.data_path, settings.memory_limit)
        scrubbed = {name: dg.MetadataValue.int(n) for name, n in erased.items()}
    context.log.info(f"{file}: batch {ingested.batch}" + (" (unchanged, nothing new)" if ingested.skipped else ""))
    for warning in ingested.warnings:  # counts, file, line and an enum value: no personal data
        context.log.warning(warning)
    return dg.MaterializeResult(
        asset_key=raw_asset_key(file),
        metadata={
            "batch": ingested.batch,
            "unchanged": ingested.skipped,
            "warnings": dg.MetadataValue.int(len(ingested.warnings)),
            **{f"rows_{name}": dg.MetadataValue.int(n) for name, n in ingested.rows.items()},
            **scrubbed,
        },
    )


def extract_asset(source: str) -> dg.AssetsDefinition:
    """Every store file's raw Parquet, one asset each, extracted in one step (a run of some extracts those).

    A file that cannot be read fails the step, with every such file named, once the others are extracted;
    customers.jsonl waits for the redactions and SMS events, and is not extracted when they failed.
    """

    @dg.multi_asset(name="extract", specs=[extract_spec(file, source) for file in ORDER], can_subset=True)
    def _extract(context: dg.AssetExecutionContext, settings: PipelineSettings) -> Iterator[dg.MaterializeResult]:
        failed: dict[str, str] = {}  # file -> why
        with settings.memory_bound():
            for file in ORDER:
                if raw_asset_key(file) not in context.selected_asset_keys:
                    continue
                if failed.keys() & set(waits_for(file)):
                    failed[file] = f"{file}: not extracted, as the redactions or SMS events could not be"
                    continue
                try:
                    yield extract_file(context, settings, file)
                except StoreError as e:
                    failed[file] = str(e)
        if failed:
            raise dg.Failure("\n".join(failed.values()))

    return _extract


def extract_assets(source: str) -> list[dg.AssetsDefinition]:
    """The store files' assets, after the Shopify download when the source is a real shop."""
    return [shopify_download, extract_asset(source)] if source == "shopify" else [extract_asset(source)]
