"""Faults the emulator injects: what is retried succeeds, what is not fails clearly and writes nothing."""

import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from shopify_store import TOKEN, line_item, lines_of, order, write_jsonl

from pipeline.retry import RetryPolicy
from pipeline.shopify.client import (
    BulkOperationFailed,
    DownloadError,
    ShopifyAccessDenied,
    ShopifyClient,
    ShopifyRetriesExhausted,
)
from pipeline.shopify.emulator import ShopifyEmulator


def assert_whole_copy(out_dir: Path, store_dir: Path) -> None:
    for name in ("customers.jsonl", "orders.jsonl", "products.jsonl", "abandoned_checkouts.jsonl"):
        assert lines_of(out_dir / name) == lines_of(store_dir / name), name


def assert_nothing_written(out_dir: Path) -> None:
    assert list(out_dir.iterdir()) == [], "a failed extraction must leave no file, whole or partial"


def test_throttled_answers_are_retried(client, emulator, store_dir, sleeps, tmp_path):
    emulator.faults.throttled = 3
    result = client.extract(tmp_path / "batch")
    assert_whole_copy(result.out_dir, store_dir)
    assert sum(r.throttled for r in emulator.requests) == 3


@pytest.mark.parametrize("fault", ["server_errors", "drop_connections"])
def test_server_errors_and_dropped_connections_are_retried(client, emulator, store_dir, fault, tmp_path):
    setattr(emulator.faults, fault, 3)
    result = client.extract(tmp_path / "batch")
    assert_whole_copy(result.out_dir, store_dir)
    assert getattr(emulator.faults, fault) == 0


def test_timeouts_are_retried(emulator, store_dir, tmp_path):
    emulator.faults.stalls = 1
    emulator.faults.stall_seconds = 0.5
    with ShopifyClient(emulator.url, TOKEN, timeout=0.1, sleep=lambda s: None) as shopify:
        result = shopify.extract(tmp_path / "batch")
    assert_whole_copy(result.out_dir, store_dir)


def test_backoff_is_capped_and_retries_are_bounded(emulator, sleeps, tmp_path):
    emulator.faults.server_errors = 100
    policy = RetryPolicy(max_attempts=9, backoff_seconds=0.5, max_backoff_seconds=2.0)
    with ShopifyClient(emulator.url, TOKEN, retry=policy, sleep=sleeps.append) as shopify:
        with pytest.raises(
            ShopifyRetriesExhausted,
            match=r"reading the shop: gave up after 9 attempts at POST http://127\.0\.0\.1:\d+/admin/api/2026-10/"
            r"graphql\.json, last: HTTP 50[23] .*rerun later",
        ):
            shopify.extract(tmp_path / "batch")
    assert len(sleeps) == 8
    # full jitter under a ceiling that doubles from 0.5 s up to the 2 s cap
    assert all(0 <= s <= cap for s, cap in zip(sleeps, [0.5, 1, 2, 2, 2, 2, 2, 2], strict=True))
    assert_nothing_written(tmp_path / "batch")


def test_client_waits_for_the_bucket_before_it_runs_dry(store_dir, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="pipeline.shopify")
    with ShopifyEmulator(store_dir, token=TOKEN, bucket_size=25, restore_rate=30) as emu:
        with ShopifyClient(emu.url, TOKEN, poll_interval_s=0.001, sleep=time.sleep) as shopify:
            shopify.extract(tmp_path / "batch")
        assert not any(r.throttled for r in emu.requests), "the client let the bucket run dry"
    # A 25-point bucket cannot serve four 10-point mutations back to back.
    assert any("budget low" in r.getMessage() for r in caplog.records)


def test_failed_bulk_operation_names_its_error_code(client, emulator, tmp_path):
    emulator.faults.fail_operation = "INTERNAL_SERVER_ERROR"
    with pytest.raises(BulkOperationFailed, match="ended FAILED with errorCode INTERNAL_SERVER_ERROR.*rerun") as e:
        client.extract(tmp_path / "batch")
    assert e.value.error_code == "INTERNAL_SERVER_ERROR"
    assert "customers bulk query (gid://shopify/BulkOperation/1)" in str(e.value)
    assert_nothing_written(tmp_path / "batch")


def test_cut_download_is_retried_then_fails_without_a_partial_file(client, emulator, tmp_path):
    emulator.faults.cut_download = True
    cut_off = "customers bulk query: gave up after 5 attempts at GET .*was cut off.*nothing was written"
    with pytest.raises(DownloadError, match=cut_off):
        client.extract(tmp_path / "batch")
    assert sum(r.method == "GET" for r in emulator.requests) == 5
    assert_nothing_written(tmp_path / "batch")


def test_cut_download_heals_when_the_connection_recovers(emulator, store_dir, tmp_path):
    def sleep(seconds: float) -> None:
        if any(r.method == "GET" for r in emulator.requests):
            emulator.faults.cut_download = False

    emulator.faults.cut_download = True
    with ShopifyClient(emulator.url, TOKEN, sleep=sleep) as shopify:
        result = shopify.extract(tmp_path / "batch")
    assert_whole_copy(result.out_dir, store_dir)
    assert sum(r.method == "GET" for r in emulator.requests) == 6  # five results (the id sweep too), one fetched twice


def test_expired_download_url_is_not_retried(client, emulator, tmp_path):
    emulator.faults.expired_url = True
    with pytest.raises(DownloadError, match="HTTP 403 \\(AccessDenied\\).*expired.*rerun the extraction"):
        client.extract(tmp_path / "batch")
    assert sum(r.method == "GET" for r in emulator.requests) == 1
    assert_nothing_written(tmp_path / "batch")


@pytest.mark.parametrize(
    ("scope", "resource"),
    [("read_customers", "customers"), ("read_orders", "orders"), ("read_products", "products")],
)
def test_missing_scope_is_named(client, emulator, tmp_path, scope, resource):
    emulator.faults.missing_scope = scope
    with pytest.raises(ShopifyAccessDenied, match=f"{resource} bulk query .*ACCESS_DENIED.*lacks.*{scope}") as e:
        client.extract(tmp_path / "batch")
    assert scope in e.value.scopes
    assert "SHOPIFY_ACCESS_TOKEN" in str(e.value)
    assert_nothing_written(tmp_path / "batch")


def test_access_denied_on_a_plain_query_names_the_scope_shopify_reports(client, emulator):
    emulator.faults.missing_scope = "read_orders"
    with pytest.raises(ShopifyAccessDenied, match="lacks a scope it needs \\(read_orders\\)") as e:
        client.graphql("{ orders(first: 1) { edges { node { id } } } }", purpose="probing orders")
    assert e.value.scopes == ("read_orders",)


def test_without_read_all_orders_shopify_serves_only_recent_orders(client, emulator, store_dir, tmp_path):
    # Shopify raises no error for this scope: older orders are silently left out, as the emulator does.
    old = {**order(1001, 1), "createdAt": "2020-01-01T00:00:00Z"}
    recent = {**order(1003, 1), "createdAt": datetime.now(UTC).isoformat()}
    write_jsonl(store_dir / "orders.jsonl", [old, line_item(5001, 1001), recent])
    emulator.faults.missing_scope = "read_all_orders"
    out = client.extract(tmp_path / "batch").out_dir
    assert [json.loads(line)["id"] for line in (out / "orders.jsonl").read_text().splitlines()] == [
        "gid://shopify/Order/1003"
    ]
