"""Customers deleted in Shopify leave marts.customers and every audience; their orders stay.

Two ways in: a customers/delete webhook (deletions.jsonl), and, with --source shopify, the nightly
sweep of every id the shop still has, against the Shopify emulator on loopback.
"""

import datetime as dt
import json
import shutil
from pathlib import Path

import dagster as dg
import duckdb

from pipeline.defs.resources import ShopifyResource
from pipeline.settings import Settings
from pipeline.shopify.emulator import ShopifyEmulator
from tests.fixtures.nightly import run_nightly_job
from tests.fixtures.stores import Store, customer, order
from tests.oracle import Oracle

AS_OF = dt.date(2026, 11, 1)
TOKEN = "shpat_deletions_test"
SEGMENT = "name: everyone\nquery: amount_spent >= 0\nsms:\n  export: true\n"


def shop() -> Store:
    return Store(
        customers=[customer(n, phone=f"+39347111000{n}") for n in range(1, 5)],
        orders=[order(100 + n, n, total=f"{n}.50") for n in range(1, 5)],
    )


def deleted(*customers: int) -> str:
    return "".join(
        json.dumps({"customer": {"id": f"gid://shopify/Customer/{n}"}, "deletedAt": "2026-11-02T10:00:00Z"}) + "\n"
        for n in customers
    )


def night(
    data: Path, source: str, as_of: dt.date, emulator: ShopifyEmulator | None = None
) -> dg.ExecuteInProcessResult:
    resources = {}
    if emulator is not None:
        resources["shopify"] = ShopifyResource(store=emulator.url, access_token=TOKEN, poll_interval_s=0.01)
    settings = Settings(source=source, data_dir=data, segments_dir=data.parent / "defs")
    result = run_nightly_job(settings, resources=resources, as_of=as_of)
    assert result.success, [e.event_specific_data.error.message for e in result.all_events if e.is_step_failure]
    # the data tests hold: an order whose customer was deleted still has a known customer in staging
    assert all(c.passed for c in result.get_asset_check_evaluations())
    return result


def query(data: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.sql(sql).fetchall()


def audience(data: Path, as_of: dt.date) -> set[str]:
    lines = (data / "exports" / "everyone" / f"{as_of.isoformat()}.csv").read_text().splitlines()[1:]
    return {line.split(",")[1].strip('"') for line in lines}


def segment_folder(tmp_path: Path) -> None:
    (tmp_path / "defs").mkdir()
    (tmp_path / "defs" / "everyone.yaml").write_text(SEGMENT)


def test_a_deletion_webhook_takes_the_customer_out_of_the_marts_and_the_audience(tmp_path: Path) -> None:
    segment_folder(tmp_path)
    data, store = tmp_path / "data", shop().write(tmp_path / "store")
    night(data, f"jsonl:{store}", AS_OF)
    assert audience(data, AS_OF) == {"1", "2", "3", "4"}

    (store / "deletions.jsonl").write_text(deleted(3))
    later = AS_OF + dt.timedelta(days=1)
    night(data, f"jsonl:{store}", later)
    assert [r[0] for r in query(data, "select customer_id from marts.customers order by 1")] == [1, 2, 4]
    assert query(data, "select customer_id from marts.orders where order_id = 103") == [(3,)]  # Shopify keeps it
    assert audience(data, later) == {"1", "2", "4"}
    changes = (data / "exports" / "everyone" / f"{later.isoformat()}.changes.csv").read_text().splitlines()
    assert changes[1:] == ["remove,+393471110003,3"]
    # an independent reading of the same store agrees
    oracle = Oracle(store, later).customers["customer_id"].to_list()
    assert oracle == [r[0] for r in query(data, "select customer_id from marts.customers order by 1")]


def test_a_customer_missing_from_the_shopify_sweep_was_deleted(tmp_path: Path) -> None:
    segment_folder(tmp_path)
    data, store = tmp_path / "data", shop().write(tmp_path / "store")
    for file in ("sms_events.jsonl", "redactions.jsonl"):
        (store / file).unlink()
    with ShopifyEmulator(store, token=TOKEN) as emulator:
        night(data, "shopify", AS_OF, emulator)
        assert audience(data, AS_OF) == {"1", "2", "3", "4"}

        # deleted in the shop: the emulator stops serving it, and no webhook reached the inbox
        (store / "deletions.jsonl").write_text(deleted(2))
        later = AS_OF + dt.timedelta(days=1)
        night(data, "shopify", later, emulator)
    assert not (data / "inbox" / "deletions.jsonl").exists()
    assert [r[0] for r in query(data, "select customer_id from marts.customers order by 1")] == [1, 3, 4]
    assert query(data, "select customer_id from staging.stg_deletions") == [(2,)]
    assert query(data, "select customer_id from marts.orders where order_id = 102") == [(2,)]
    assert audience(data, later) == {"1", "3", "4"}

    # a sweep is whole or absent: with no sweep at all (other sources), nobody is missing from one
    shutil.rmtree(data / "raw" / "customer_ids")
    (data / "raw" / "customer_ids").mkdir()
    (store / "deletions.jsonl").unlink()
    night(data, f"jsonl:{store}", later)
    assert [r[0] for r in query(data, "select customer_id from marts.customers order by 1")] == [1, 2, 3, 4]
