"""Each source names the store directory of each file: a directory, the daily demo, a shop's downloads."""

import datetime as dt
import re
from pathlib import Path

import pytest

from pipeline.shopify.downloads import ShopifySource, downloads_dir
from pipeline.store.ingest import StoreError
from pipeline.store.sources import DemoSource, DirectorySource


def test_a_directory_source_is_that_directory_for_every_file(tmp_path: Path) -> None:
    assert {DirectorySource(tmp_path).directory(f) for f in ("customers.jsonl", "deletions.jsonl")} == {tmp_path}


def test_the_demo_source_is_todays_demo_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pipeline.store.demo.today", lambda: dt.date(2026, 11, 6))
    folder = DemoSource(tmp_path).directory("orders.jsonl")
    assert folder.name.endswith("2026-11-06") and (folder / "orders.jsonl").exists()


def test_a_shop_reads_its_newest_download_and_its_inbox(tmp_path: Path) -> None:
    source = ShopifySource(tmp_path)
    expected = f"{re.escape(str(downloads_dir(tmp_path)))}: no Shopify download yet. Materialise raw/shopify_download"
    with pytest.raises(StoreError, match=expected):
        source.directory("customers.jsonl")
    assert source.directory("redactions.jsonl") == tmp_path / "inbox"  # webhooks, not the bulk API
