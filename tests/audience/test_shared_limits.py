"""An account's rate limits shared by every process using its key: the slot log, its setting, shops syncing at once."""

import hashlib
import logging
import re
import shutil
import sqlite3
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from pipeline.audience.gateways import AudienceTarget, GatewayError
from pipeline.audience.klaviyo import RATE_LIMITS, KlaviyoGateway
from pipeline.audience.klaviyo_emulator import KlaviyoEmulator
from pipeline.audience.limits import SLACK_SECONDS, Limit, SharedLimits
from pipeline.defs.exports import gateway_resource
from tests.audience.conftest import KLAVIYO_KEY, mobile, sync_child
from tests.fixtures.stores import Store, customer

LIMITS = {"op": (Limit(3, 1.0), Limit(5, 60.0)), "other": (Limit(3, 1.0),)}


class FrozenClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- the slot log


def test_slots_keep_every_window_and_go_out_in_order_across_processes_sharing_the_file(tmp_path: Path):
    clock = FrozenClock()
    path = tmp_path / "account.sqlite"
    # two handles on one file, taking turns: as two processes would
    first, second = SharedLimits(path, LIMITS, clock), SharedLimits(path, LIMITS, clock)
    waits = [(first if i % 2 else second).take("op", 600) for i in range(7)]
    burst, steady = 1 + SLACK_SECONDS, 60 + SLACK_SECONDS
    # 3 a second: the 4th and 5th wait a burst window; 5 a minute: the 6th and 7th wait a steady one
    assert waits == [0, 0, 0, burst, burst, steady, steady]
    assert first.take("other", 600) == 0, "each operation has its own windows"


def test_a_slot_further_than_the_longest_wait_is_refused_and_not_taken(tmp_path: Path):
    clock = FrozenClock()
    limits = SharedLimits(tmp_path / "account.sqlite", LIMITS, clock)
    for _ in range(5):
        limits.take("op", 600)
    with pytest.raises(GatewayError, match=r"op: the account's next free slot is 60 s away \(3 a second, 5 a minute,"):
        limits.take("op", 30)
    assert limits.take("op", 600) == 60 + SLACK_SECONDS, "the refused slot was left free"
    clock.now += 200
    assert limits.take("op", 0) == 0, "a minute later the windows are empty again"


def test_a_log_held_too_long_by_another_process_or_unreadable_fails_the_request_saying_what_to_do(
    tmp_path: Path, monkeypatch
):
    path = tmp_path / "account.sqlite"
    limits = SharedLimits(path, LIMITS)
    limits.take("op", 600)
    monkeypatch.setattr("pipeline.audience.limits.LOCK_SECONDS", 0.1)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("begin immediate")  # a process stuck inside its transaction
    try:
        with pytest.raises(GatewayError, match=r"account.sqlite \(SMSSEG_LIMITS_DIR\): database is locked") as locked:
            limits.take("op", 600)
    finally:
        holder.close()
    assert locked.value.retryable

    path.write_bytes(b"not a database, whoever wrote it" * 100)
    with pytest.raises(GatewayError, match="account.sqlite .*: file is not a database; delete it") as unreadable:
        limits.take("op", 600)
    assert not unreadable.value.retryable


# --- the setting


def test_an_unwritable_limits_dir_fails_the_gateway_before_any_request_naming_SMSSEG_LIMITS_DIR(
    tmp_path: Path, klaviyo
):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    gateway = KlaviyoGateway(url=klaviyo.url, api_key=KLAVIYO_KEY, limits_dir=str(blocker / "limits"))
    with pytest.raises(GatewayError, match="SMSSEG_LIMITS_DIR .*a-file/limits.*: cannot write there") as failure:
        gateway.upsert_audience(AudienceTarget("s"))
    assert not failure.value.retryable
    assert sum(klaviyo.received.values()) == 0


def test_the_gateway_keeps_the_data_dirs_limits_and_names_the_account_by_a_hash(tmp_path: Path, klaviyo, monkeypatch):
    monkeypatch.delenv("SMSSEG_LIMITS_DIR")
    monkeypatch.setenv("KLAVIYO_API_KEY", KLAVIYO_KEY)
    assert gateway_resource("klaviyo", str(tmp_path / "shop")).limits_dir == str(tmp_path / "shop" / "limits")
    monkeypatch.setenv("SMSSEG_LIMITS_DIR", str(tmp_path / "fleet"))
    assert gateway_resource("klaviyo", str(tmp_path / "shop")).limits_dir == str(tmp_path / "fleet")

    KlaviyoGateway(url=klaviyo.url, api_key=KLAVIYO_KEY, limits_dir=str(tmp_path / "shared")).upsert_audience(
        AudienceTarget("s")
    )
    account = f"klaviyo-{hashlib.sha256(KLAVIYO_KEY.encode()).hexdigest()[:16]}.sqlite"
    files = sorted((tmp_path / "shared").iterdir())
    assert [f.name for f in files] == [account, f"{account}-journal"]
    assert not any(KLAVIYO_KEY.encode() in f.read_bytes() for f in files)


def test_a_wait_for_a_turn_another_process_took_is_logged_with_its_reason(klaviyo, limits_dir: Path, caplog):
    caplog.set_level(logging.INFO)
    account = limits_dir / f"klaviyo-{hashlib.sha256(KLAVIYO_KEY.encode()).hexdigest()[:16]}.sqlite"
    burst, steady = RATE_LIMITS["create_list"]
    limits_dir.mkdir()
    theirs = SharedLimits(account, {"create_list": (Limit(burst, 1.0), Limit(steady, 60.0))})
    for _ in range(steady):  # another process takes the minute's every Create List
        theirs.take("create_list", 600)
    waits = []
    mine = KlaviyoGateway(url=klaviyo.url, api_key=KLAVIYO_KEY).with_sleep(waits.append)
    mine.upsert_audience(AudienceTarget("mine"))
    assert len(waits) == 1 and 50 < waits[0] <= 60 + SLACK_SECONDS, "the minute's first slot, and a slack, later"
    assert re.search(
        r"klaviyo create_list: waiting [56][0-9]\.[0-9] s for its turn under the account's limits \(10 a second, "
        r"150 a minute\), shared by every process using this key",
        caplog.text,
    )
    assert KLAVIYO_KEY not in caplog.text


# --- shops on one account, each syncing in its own process


SHOPS = {"rome": 1, "milan": 0}  # shop -> the parity of its customers' ids
PER_SHOP, BATCH = 100, 4  # 25 import jobs a shop: more than the 10 a second Bulk Import Profiles allows


def sync_shops_at_once(audience_db, tmp_path: Path, limits_dirs: dict[str, Path]) -> Counter[str]:
    """Each shop's segment synced to its own list by its own process, all at once, to one emulated account
    with the documented limits; checks every list ends right, and returns the 429s the account answered."""
    con = audience_db(Store(customers=[customer(i, phone=mobile(i)) for i in range(1, 2 * PER_SHOP + 1)]))
    con.execute("create view segments.rome as select customer_id from marts.customers where customer_id % 2 = 1")
    con.execute("create view segments.milan as select customer_id from marts.customers where customer_id % 2 = 0")
    con.close()
    with KlaviyoEmulator(KLAVIYO_KEY) as server:
        children = {}
        for shop in SHOPS:
            (tmp_path / shop / "data").mkdir(parents=True)
            warehouse = tmp_path / shop / "warehouse.duckdb"
            shutil.copyfile(tmp_path / "segment-warehouse.duckdb", warehouse)
            env = {
                "KLAVIYO_API_URL": server.url,
                "KLAVIYO_API_KEY": KLAVIYO_KEY,
                "SMSSEG_LIMITS_DIR": str(limits_dirs[shop]),
            }
            children[shop] = sync_child(
                KlaviyoGateway, env, warehouse, tmp_path / shop / "data", shop, BATCH, f"{shop} SMS"
            )
        for shop, child in children.items():
            try:
                _, err = child.communicate(timeout=180)
            except subprocess.TimeoutExpired:
                child.kill()
                _, err = child.communicate(timeout=10)
            assert child.returncode == 0, f"{shop}'s sync failed: {err.decode()[-3000:]}"
        for shop, parity in SHOPS.items():
            wanted = {mobile(i) for i in range(1, 2 * PER_SHOP + 1) if i % 2 == parity}
            assert set(server.members(f"{shop} SMS")) == wanted
            assert server.adds_of(f"{shop} SMS") == dict.fromkeys(wanted, 1)
        assert server.received["bulk_import_profiles"] - sum(server.throttled.values()) >= 2 * PER_SHOP // BATCH
        return server.throttled


def test_shops_sharing_an_account_together_stay_within_its_limits(audience_db, tmp_path: Path):
    shared = tmp_path / "limits"
    assert sync_shops_at_once(audience_db, tmp_path, {"rome": shared, "milan": shared}) == Counter()


def test_shops_pacing_each_alone_overrun_the_account_and_ride_out_its_429s(audience_db, tmp_path: Path):
    """What the shared limits prevent: each process within the limits alone, together over them."""
    apart = {"rome": tmp_path / "rome-limits", "milan": tmp_path / "milan-limits"}
    throttled = sync_shops_at_once(audience_db, tmp_path, apart)
    assert throttled["bulk_import_profiles"] > 0
