"""The asset keys of what the night makes from the store: raw Parquet and warehouse tables."""

import dagster as dg

from pipeline.store.schema import STORE_FILES, resources_in


def raw_asset_key(file: str) -> dg.AssetKey:
    return dg.AssetKey(["raw", file.removesuffix(".jsonl")])


def resource_asset_key(resource_name: str) -> dg.AssetKey:
    """The extraction asset that writes a raw resource (order_lines come with orders)."""
    file = next(f for f in STORE_FILES if any(r.name == resource_name for r in resources_in(f)))
    return raw_asset_key(file)


def table_asset_key(table: str) -> dg.AssetKey:
    """The asset that makes a warehouse table: raw.* come from extraction, the rest from models."""
    schema, name = table.split(".")
    return resource_asset_key(name) if schema == "raw" else dg.AssetKey([schema, name])
