"""Where a night's store files come from: one interface, whatever the source.

A source names, for each store file, the store directory to read it from. The built-in demo and a
directory of JSONL files are here; a real shop's downloads are `pipeline.shopify.downloads.ShopifySource`.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pipeline.store.demo import demo_store


class StoreSource(Protocol):
    def directory(self, file: str) -> Path:
        """The store directory holding `file` (customers.jsonl, ...) tonight."""
        ...


@dataclass(frozen=True)
class DirectorySource:
    """`--source jsonl:DIR`: a store directory written by something else (an export, a test)."""

    path: Path

    def directory(self, file: str) -> Path:
        return self.path


@dataclass(frozen=True)
class DemoSource:
    """`--source demo`: the built-in demo shop, generated once a day under data/source/."""

    data_dir: Path

    def directory(self, file: str) -> Path:
        return demo_store(self.data_dir)
