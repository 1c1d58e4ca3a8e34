"""What every asset is given: the pipeline's fixed settings and the options of this run."""

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from pipeline.settings import DEFAULT_BATCH_SIZE, DEFAULT_MEMORY_LIMIT
from pipeline.shopify.client import API_VERSION, ShopifyClient
from pipeline.shopify.downloads import ShopifySource
from pipeline.store.sources import DemoSource, DirectorySource, StoreSource
from pipeline.warehouse import days
from pipeline.warehouse.build import held_open, shop_timezone
from pipeline.warehouse.days import Evaluation

PARTITION_TAG = "dagster/partition"
MODE_TAG = "smsseg/mode"  # live or backfill
LATEST_TAG = "smsseg/latest_day"  # a backfill's: the latest day run before it


class PipelineSettings(dg.ConfigurableResource):
    """Where the data lives and where it comes from; fixed when the definitions are built."""

    data_dir: str
    segments_dir: str
    source: str = "demo"
    swing_threshold: float = 0.5  # an exported segment whose size moves by more than this share is held
    memory_limit: str = DEFAULT_MEMORY_LIMIT  # DuckDB's bound in extraction and the warehouse; beyond it, spill
    batch_size: int = DEFAULT_BATCH_SIZE  # the most numbers one gateway request carries

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator["PipelineSettings"]:
        """For as long as Dagster holds the resources: a run in one process (`smsseg run`), or one step
        of a run the UI launches, which runs each step in its own process. The build warehouse stays
        open that long, rather than being opened again for each step."""
        with held_open(self.data_path):
            yield self

    def store_source(self) -> StoreSource:
        """Where tonight's store files come from: `source` is demo, jsonl:DIR or shopify (Settings checked it)."""
        if self.source.startswith("jsonl:"):
            return DirectorySource(Path(self.source.removeprefix("jsonl:")))
        if self.source == "shopify":
            return ShopifySource(self.data_path)
        return DemoSource(self.data_path)

    def shop_timezone(self) -> str:
        return shop_timezone(self.data_path)

    @contextmanager
    def memory_bound(self) -> Iterator[None]:
        """Turns DuckDB running out of its memory bound into a failure that names the setting."""
        try:
            yield
        except duckdb.OutOfMemoryException as e:
            reason = str(e).splitlines()[0]
            raise dg.Failure(
                f"DuckDB ran out of memory within SMSSEG_MEMORY_LIMIT={self.memory_limit} ({reason}). "
                "Raise SMSSEG_MEMORY_LIMIT (e.g. 4GB for a shop of several million customers) "
                "and rerun."
            ) from None


class RunOptions(dg.ConfigurableResource):
    """Per-run options, set in the launchpad or by `smsseg run` as run config. The day is the partition."""

    dry_run: bool = False  # exports compute and report the diff but change nothing
    acknowledge_swings: list[str] = []  # segments whose size swing an operator has checked: export them


def evaluation_day(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> dt.date:
    """The day a step evaluates: its run's partition."""
    key = context.run.tags.get(PARTITION_TAG)
    if key is None:
        raise dg.Failure(
            "This run has no day: every nightly asset is partitioned by the evaluation date. "
            "Pick a partition (a day) when you materialise it."
        )
    return dt.date.fromisoformat(key)


def run_evaluation(context: dg.AssetExecutionContext, con: duckdb.DuckDBPyConnection, run: RunOptions) -> Evaluation:
    """Whether this run is live or a backfill: decided by its first step that reaches the warehouse and
    kept in the run's tags, so every later step of the run agrees and the runs list shows it.

    A dry run decides without recording its day as run.
    """
    day = evaluation_day(context)
    tags = context.instance.get_run_by_id(context.run.run_id).tags
    if MODE_TAG in tags:
        latest = tags.get(LATEST_TAG)
        return Evaluation(day, tags[MODE_TAG] == "live", dt.date.fromisoformat(latest) if latest else None)
    decided = days.evaluation(con, day) if run.dry_run else days.claim(con, day, context.run.run_id)
    tags = {MODE_TAG: decided.mode, **({LATEST_TAG: decided.latest.isoformat()} if decided.latest else {})}
    context.instance.add_run_tags(context.run.run_id, tags)
    return decided


class ShopifyResource(dg.ConfigurableResource):
    """The Admin GraphQL API of one shop. The token comes from SHOPIFY_ACCESS_TOKEN and is never shown."""

    store: str  # my-shop.myshopify.com, or a full URL such as the local emulator's
    access_token: str
    api_version: str = API_VERSION
    poll_interval_s: float = 1.0  # first wait between bulk-operation polls; it doubles up to 30 s

    def client(self) -> ShopifyClient:
        return ShopifyClient(self.store, self.access_token, self.api_version, poll_interval_s=self.poll_interval_s)
