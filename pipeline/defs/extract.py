"""Extraction assets: one per store file, each publishing its raw Parquet batch."""

import shutil
from pathlib import Path

import dagster as dg

from pipeline.defs.resources import PipelineSettings
from pipeline.store.demo import DEMO_CUSTOMERS, generate_store
from pipeline.store.ingest import StoreError, ingest_file
from pipeline.store.schema import STORE_FILES, resources_in
from pipeline.warehouse.build import raw_dir

DEMO_SEED = 0


def raw_asset_key(file: str) -> dg.AssetKey:
    return dg.AssetKey(["raw", file.removesuffix(".jsonl")])


def resource_asset_key(resource_name: str) -> dg.AssetKey:
    """The extraction asset that writes a raw resource (order_lines come with orders)."""
    file = next(f for f in STORE_FILES if any(r.name == resource_name for r in resources_in(f)))
    return raw_asset_key(file)


def store_directory(settings: PipelineSettings) -> Path:
    """The store directory this run reads: the built-in demo, a jsonl: directory, or a Shopify extract."""
    if settings.source.startswith("jsonl:"):
        return Path(settings.source.removeprefix("jsonl:"))
    if settings.source == "demo":
        return demo_store(settings.data_path)
    raise dg.Failure(f"source {settings.source!r} has no store directory here; use demo or jsonl:DIR")


def demo_store(data_dir: Path) -> Path:
    """The deterministic built-in demo store, generated once and then reused."""
    target = data_dir / "source" / f"demo-{DEMO_CUSTOMERS}-{DEMO_SEED}"
    if not target.exists():
        tmp = target.with_name(f".{target.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        generate_store(tmp, customers=DEMO_CUSTOMERS, seed=DEMO_SEED)
        tmp.rename(target)
    return target


def extract_asset(file: str) -> dg.AssetsDefinition:
    resources = resources_in(file)

    @dg.asset(
        key=raw_asset_key(file),
        group_name="extract",
        kinds={"parquet"},
        description=f"Raw Parquet batches of {file}: {', '.join(r.name for r in resources)}, typed and checked.",
    )
    def _extract(context: dg.AssetExecutionContext, settings: PipelineSettings) -> dg.MaterializeResult:
        try:
            ingested = ingest_file(store_directory(settings), file, raw_dir(settings.data_path))
        except StoreError as e:
            raise dg.Failure(str(e)) from None
        context.log.info(f"{file}: batch {ingested.batch}" + (" (unchanged, nothing new)" if ingested.skipped else ""))
        return dg.MaterializeResult(metadata={
            "batch": ingested.batch,
            "unchanged": ingested.skipped,
            **{f"rows_{name}": dg.MetadataValue.int(n) for name, n in ingested.rows.items()},
        })

    return _extract


extract_assets = [extract_asset(file) for file in STORE_FILES]
