"""Shared fixtures: hand-made stores built into a real warehouse."""

import datetime as dt
from pathlib import Path

import pytest

from pipeline.store.ingest import ingest_store
from pipeline.warehouse.build import build_all, publish
from tests.fixtures.stores import Store


def build_warehouse(store: Store | Path, data_dir: Path, as_of: dt.date) -> Path:
    """Ingests a store (a Store or a store directory), builds every model and publishes; returns the file."""
    store_dir = store if isinstance(store, Path) else store.write(data_dir.parent / f"{data_dir.name}-store")
    ingest_store(store_dir, data_dir / "raw")
    build_all(data_dir, as_of)
    return publish(data_dir)


@pytest.fixture
def warehouse(tmp_path: Path):
    """warehouse(store, as_of) -> path of a published warehouse.duckdb built from that store."""
    return lambda store, as_of: build_warehouse(store, tmp_path / "data", as_of)
