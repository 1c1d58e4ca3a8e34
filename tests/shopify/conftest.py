"""Fixtures: a tiny store served by the emulator, and a client whose sleeps are recorded, not slept."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from shopify_store import TOKEN, write_store

from pipeline.shopify.client import ShopifyClient
from pipeline.shopify.emulator import ShopifyEmulator


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return write_store(tmp_path / "store")


@pytest.fixture
def emulator(store_dir: Path) -> Iterator[ShopifyEmulator]:
    with ShopifyEmulator(store_dir, token=TOKEN) as emu:
        yield emu


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(emulator: ShopifyEmulator, sleeps: list[float]) -> Iterator[ShopifyClient]:
    with ShopifyClient(emulator.url, TOKEN, timeout=5.0, max_retries=4, sleep=sleeps.append) as shopify:
        yield shopify
