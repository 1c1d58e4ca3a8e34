"""`--source shopify` end to end: the nightly job against the Shopify emulator on loopback."""

import datetime as dt
import json
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipeline.defs.resources import ShopifyResource
from pipeline.settings import Settings
from pipeline.shopify import downloads
from pipeline.shopify.emulator import ShopifyEmulator
from pipeline.store.demo import generate_store
from tests.fixtures.nightly import run_nightly_job

TOKEN = "shpat_secret_never_logged_42"
AS_OF = dt.date(2026, 11, 1)


def run(
    data_dir: Path, source: str, emulator: ShopifyEmulator | None = None, logs: list[str] | None = None, **shopify: str
) -> dg.ExecuteInProcessResult:
    if emulator is not None:  # what the gateway's event export and the GDPR webhook receiver drop off
        (data_dir / "inbox").mkdir(parents=True, exist_ok=True)
        for file in ("sms_events.jsonl", "redactions.jsonl"):
            shutil.copyfile(emulator.store_dir / file, data_dir / "inbox" / file)
    settings = Settings(source=source, data_dir=data_dir, segments_dir=data_dir / "none")
    extra = {}
    if emulator is not None:
        extra["shopify"] = ShopifyResource(store=emulator.url, access_token=TOKEN, poll_interval_s=0.01, **shopify)
    logs = [] if logs is None else logs
    result = run_nightly_job(settings, resources=extra, log_lines=logs, as_of=AS_OF)
    assert not any(TOKEN in line for line in logs), "the access token reached the run log"
    return result


def table(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.sql(sql).fetchall()


CUSTOMERS = "select * exclude (as_of) from marts.customers order by customer_id"
LINES = "select * from marts.order_lines order by line_id"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("shop") / "store"
    generate_store(folder, customers=300, seed=3, end_day=AS_OF + dt.timedelta(days=5))
    return folder


def test_a_changed_api_version_is_a_warning_in_the_run_log(tmp_path: Path, store: Path) -> None:
    logs: list[str] = []
    with ShopifyEmulator(store, token=TOKEN) as emulator:
        assert run(tmp_path / "data", "shopify", emulator, logs, api_version="2024-01").success
    assert any("API version" in line and "not the pinned 2024-01" in line for line in logs), logs[:5]


def test_full_then_incremental_extraction_equals_a_fresh_full_load(tmp_path: Path, store: Path) -> None:
    with ShopifyEmulator(store, token=TOKEN) as emulator:
        assert run(tmp_path / "shopify", "shopify", emulator).success
        assert run(tmp_path / "direct", f"jsonl:{store}").success
        ours, direct = tmp_path / "shopify" / "warehouse.duckdb", tmp_path / "direct" / "warehouse.duckdb"
        assert table(ours, CUSTOMERS) == table(direct, CUSTOMERS)
        assert table(ours, LINES) == table(direct, LINES)
        first_bookmark = downloads.bookmark(tmp_path / "shopify")
        assert first_bookmark is not None

        # the shop changes after the first extraction: a customer is revised, a new order comes in
        now = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
        customers = [json.loads(x) for x in (store / "customers.jsonl").read_text().splitlines()]
        customers[0] = {**customers[0], "tags": ["changed"], "updatedAt": now}
        (store / "customers.jsonl").write_text("".join(json.dumps(c) + "\n" for c in customers))
        new_order = {
            "id": "gid://shopify/Order/999999",
            "name": "#999999",
            "customer": {"id": customers[0]["id"]},
            "createdAt": "2026-11-01T08:00:00Z",
            "processedAt": "2026-11-01T08:00:00Z",
            "updatedAt": now,
            "cancelledAt": None,
            "test": False,
            "displayFinancialStatus": "PAID",
            "currencyCode": "EUR",
            "totalPriceSet": {"shopMoney": {"amount": "123.45", "currencyCode": "EUR"}},
            "currentTotalPriceSet": {"shopMoney": {"amount": "123.45", "currencyCode": "EUR"}},
        }
        with open(store / "orders.jsonl", "a") as f:
            f.write(json.dumps(new_order) + "\n")

        incremental = run(tmp_path / "shopify", "shopify", emulator)
        assert incremental.success
        download = next(
            e
            for e in incremental.get_asset_materialization_events()
            if e.asset_key == dg.AssetKey(["raw", "shopify_download"])
        )
        metadata = download.event_specific_data.materialization.metadata
        assert metadata["since"].value == first_bookmark.isoformat()
        later = {
            c["id"]
            for c in customers
            if "__parentId" not in c and dt.datetime.fromisoformat(c["updatedAt"]) > first_bookmark
        }
        # only what changed: those customers, each followed by its metafields and store credit accounts
        lines = len(later) + sum(c.get("__parentId") in later for c in customers)
        assert metadata["lines_customers"].value == lines < len(customers)
        assert run(tmp_path / "fresh", f"jsonl:{store}").success
        fresh = tmp_path / "fresh" / "warehouse.duckdb"
        assert table(ours, CUSTOMERS) == table(fresh, CUSTOMERS)
        assert table(ours, LINES) == table(fresh, LINES)
        assert downloads.bookmark(tmp_path / "shopify") > first_bookmark


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ({"fail_operation": "INTERNAL_SERVER_ERROR"}, "errorCode INTERNAL_SERVER_ERROR"),
        ({"cut_download": True}, "was cut off"),
        ({"missing_scope": "read_customers"}, "read_customers"),
    ],
)
def test_a_failed_extraction_publishes_nothing_and_keeps_the_bookmark(
    tmp_path: Path, store: Path, fault, message
) -> None:
    with ShopifyEmulator(store, token=TOKEN) as emulator:
        assert run(tmp_path, "shopify", emulator).success
        bookmark, live = downloads.bookmark(tmp_path), (tmp_path / "warehouse.duckdb").read_bytes()
        raw_before = sorted(p.name for p in (tmp_path / "raw").rglob("*.parquet"))
        for name, value in fault.items():
            setattr(emulator.faults, name, value)
        result = run(tmp_path, "shopify", emulator)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_key == "raw__shopify_download" and message in failure.event_specific_data.error.message
    assert downloads.bookmark(tmp_path) == bookmark
    assert (tmp_path / "warehouse.duckdb").read_bytes() == live
    assert sorted(p.name for p in (tmp_path / "raw").rglob("*.parquet")) == raw_before


def test_throttling_and_server_errors_are_ridden_out(tmp_path: Path, store: Path) -> None:
    with ShopifyEmulator(store, token=TOKEN) as emulator:
        emulator.faults.throttled, emulator.faults.server_errors, emulator.faults.drop_connections = 2, 2, 1
        assert run(tmp_path, "shopify", emulator).success


def test_shopify_source_needs_its_settings() -> None:
    from pipeline.settings import SettingsError

    with pytest.raises(SettingsError, match="source shopify needs SHOPIFY_STORE"):
        Settings.resolve(source="shopify", env={})
    with pytest.raises(SettingsError, match="needs SHOPIFY_ACCESS_TOKEN"):
        Settings.resolve(source="shopify", env={"SHOPIFY_STORE": "x.myshopify.com"})
