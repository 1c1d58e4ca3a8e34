"""What every asset is given: the pipeline's fixed settings and the options of this run."""

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb

from pipeline.settings import DEFAULT_BATCH_SIZE, DEFAULT_MEMORY_LIMIT, parse_as_of
from pipeline.shopify.client import API_VERSION, ShopifyClient
from pipeline.warehouse.build import held_open, shop_timezone


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

    def shop_timezone(self) -> str:
        return shop_timezone(self.data_path)

    @contextmanager
    def memory_bound(self) -> Iterator[None]:
        """Turns DuckDB running out of its memory bound into a failure that names the setting."""
        try:
            yield
        except duckdb.OutOfMemoryException as e:
            reason = str(e).splitlines()[0]
            raise dg.Failure(f"DuckDB ran out of memory within SMSSEG_MEMORY_LIMIT={self.memory_limit} ({reason}). "
                             "Raise SMSSEG_MEMORY_LIMIT (e.g. 4GB for a shop of several million customers) "
                             "and rerun.") from None


class RunOptions(dg.ConfigurableResource):
    """Per-run options, set in the launchpad, by the schedule or by `smsseg run` as run config."""

    as_of: str = ""  # YYYY-MM-DD; empty: today in the shop's time zone when the run was created
    dry_run: bool = False  # exports compute and report the diff but change nothing
    acknowledge_swings: list[str] = []  # segments whose size swing an operator has checked: export them

    def as_of_date(self, context: dg.AssetExecutionContext, settings: PipelineSettings) -> dt.date:
        """The evaluation date, the same for every asset of a run even when it crosses midnight."""
        if self.as_of:
            return parse_as_of(self.as_of)
        record = context.instance.get_run_record_by_id(context.run.run_id)
        created = record.create_timestamp if record else dt.datetime.now(dt.UTC)
        if created.tzinfo is None:
            created = created.replace(tzinfo=dt.UTC)
        return created.astimezone(ZoneInfo(settings.shop_timezone())).date()


class ShopifyResource(dg.ConfigurableResource):
    """The Admin GraphQL API of one shop. The token comes from SHOPIFY_ACCESS_TOKEN and is never shown."""

    store: str  # my-shop.myshopify.com, or a full URL such as the local emulator's
    access_token: str
    api_version: str = API_VERSION
    poll_interval_s: float = 1.0  # first wait between bulk-operation polls; it doubles up to 30 s

    def client(self) -> ShopifyClient:
        return ShopifyClient(self.store, self.access_token, self.api_version, poll_interval_s=self.poll_interval_s)
