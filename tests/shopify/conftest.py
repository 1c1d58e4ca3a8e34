"""Fixtures: a tiny store served by the emulator, and a client whose sleeps are recorded, not slept."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from shopify_store import TOKEN, write_store

from pipeline.retry import RetryPolicy
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
    policy = RetryPolicy(max_attempts=5)
    with ShopifyClient(emulator.url, TOKEN, timeout=5.0, retry=policy, sleep=sleeps.append) as shopify:
        yield shopify
