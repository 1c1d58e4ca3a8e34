"""Shopify extractions on disk: one folder a download, and the bookmark derived from them.

A download folder is a store directory plus `extract.json` (when it started, since when). Each
file is marked once its raw batch is published. The bookmark is the start of the newest download
whose files are all published, so it can never pass data that did not land.
"""

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipeline.shopify.client import ShopifyClient
from pipeline.store.ingest import StoreError
from pipeline.store.schema import INBOX_FILES, REQUIRED_FILES

MANIFEST = "extract.json"
KEEP = 3  # published downloads kept for inspection; older ones are deleted


def downloads_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "downloads"


def _complete(folder: Path) -> bool:
    return (folder / MANIFEST).exists()


def _published(folder: Path) -> bool:
    return all((folder / f"{file}.published").exists() for file in REQUIRED_FILES)


def latest_download(data_dir: Path) -> Path | None:
    """The newest complete download: what the extraction assets ingest."""
    folders = sorted(p for p in downloads_dir(data_dir).glob("*") if p.is_dir() and _complete(p))
    return folders[-1] if folders else None


@dataclass(frozen=True)
class ShopifySource:
    """`--source shopify`: the newest complete bulk download. Shopify's bulk API carries neither GDPR
    redaction or deletion webhooks nor gateway events, so those files are read from data/inbox/, where
    their receivers drop them."""

    data_dir: Path

    def directory(self, file: str) -> Path:
        if file in INBOX_FILES:
            return self.data_dir / "inbox"
        latest = latest_download(self.data_dir)
        if latest is None:
            raise StoreError(
                f"{downloads_dir(self.data_dir)}: no Shopify download yet. Materialise raw/shopify_download first."
            )
        return latest


def bookmark(data_dir: Path) -> datetime | None:
    """Start time of the newest download whose every file was published; None means a full load."""
    folders = sorted(p for p in downloads_dir(data_dir).glob("*") if p.is_dir() and _complete(p) and _published(p))
    if not folders:
        return None
    return datetime.fromisoformat(json.loads((folders[-1] / MANIFEST).read_text())["started_at"])


def mark_published(store_dir: Path, file: str) -> None:
    """Called once `file`'s raw batch is in place; no-op for folders that are not downloads."""
    if (store_dir / MANIFEST).exists():
        (store_dir / f"{file}.published").touch()


def download(client: ShopifyClient, data_dir: Path) -> tuple[Path, dict]:
    """Extracts everything updated since the bookmark into a new download folder."""
    since = bookmark(data_dir)
    folder = downloads_dir(data_dir) / datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    result = client.extract(folder, since=since)
    manifest = {
        "started_at": result.started_at.isoformat(),
        "since": since.isoformat() if since else None,
        "rows": dict(result.rows),
    }
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest))
    tmp.rename(folder / MANIFEST)
    _prune(data_dir)
    return folder, manifest


def _prune(data_dir: Path) -> None:
    """Keeps the latest download and the newest published ones; the rest is superseded (and holds PII).

    An unpublished download is superseded by any later one: the bookmark did not move, so the
    later one asked Shopify for everything it had and more.
    """
    folders = sorted(p for p in downloads_dir(data_dir).glob("*") if p.is_dir())
    keep = {latest_download(data_dir), *[p for p in folders if _complete(p) and _published(p)][-KEEP:]}
    for folder in folders:
        if folder not in keep:
            shutil.rmtree(folder, ignore_errors=True)
