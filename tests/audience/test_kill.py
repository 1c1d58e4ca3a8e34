"""A sync killed mid-export (SIGKILL, real subprocess), then rerun: gateway equals the eligible set, no double add.

The kill lands inside the second group of batches: the first group is recorded, the second is
planned and partly sent but not recorded, so the rerun must replay batches the gateway holds.
"""

from pathlib import Path

import duckdb

from pipeline.audience.emulator import Faults
from pipeline.audience.gateways import HttpGateway
from pipeline.audience.sync import GROUP_BATCHES, sync_segment
from pipeline.warehouse.build import attach_state
from tests.audience.conftest import AS_OF, SEGMENT, TOKEN, kill_sync, mobile
from tests.fixtures.stores import Store, customer

MEMBERS = 3000
BATCH = 50
KILL_AFTER_POSTS = GROUP_BATCHES + GROUP_BATCHES // 2  # halfway through the second group


def test_killed_sync_then_rerun_converges_without_adding_any_number_twice(audience_db, emulator, tmp_path: Path):
    assert MEMBERS // BATCH > 2 * GROUP_BATCHES, "the kill must land in a group before the last"
    store = Store(customers=[customer(i, phone=mobile(i), first=f"C{i}") for i in range(1, MEMBERS + 1)])
    audience_db(store).close()
    warehouse, data_dir = tmp_path / "segment-warehouse.duckdb", tmp_path / "data"
    emulator.set_faults(Faults(slow_seconds=0.03))

    env = {"SMS_GATEWAY_URL": emulator.url, "SMS_GATEWAY_TOKEN": TOKEN}
    kill_sync(HttpGateway, env, tmp_path, BATCH, lambda: emulator.received["POST"] >= KILL_AFTER_POSTS)
    emulator.wait_idle()  # the request the dead process was making is applied, or not, for good

    applied = len(emulator.members(SEGMENT))
    assert 0 < applied < MEMBERS, "killed mid-export"
    emulator.set_faults(Faults())
    con = duckdb.connect(str(warehouse))
    attach_state(con, data_dir)
    try:
        confirmed = con.execute("select count(*) from state.audience_sync_state").fetchall()[0][0]
        pending = con.execute("select count(*) from state.audience_batches where status = 'planned'").fetchall()[0][0]
        # the first group is recorded as a whole; the gateway holds numbers of the second that no state has
        assert confirmed == GROUP_BATCHES * BATCH < applied
        assert pending == GROUP_BATCHES, "the whole second group was planned before any of it was sent"
        gateway = HttpGateway(url=emulator.url, token=TOKEN).with_sleep(lambda seconds: None)
        result = sync_segment(con, gateway, SEGMENT, as_of=AS_OF, run_id="rerun", batch_size=BATCH)
        eligible = {row[0] for row in con.execute("select phone from audience_eligible").fetchall()}
        synced = {row[0] for row in con.execute("select phone from state.audience_sync_state").fetchall()}
        plans = con.execute(
            "select status, count(*), count(contents) from state.audience_batches group by all"
        ).fetchall()
    finally:
        con.close()

    assert len(eligible) == MEMBERS
    assert set(emulator.members(SEGMENT)) == eligible == synced
    assert set(emulator.adds_of(SEGMENT).values()) == {1}, "a number was added twice"
    assert result.added == MEMBERS - confirmed
    assert result.replayed_batches == pending, "sent or not, every batch of the killed group went under its own key"
    assert [(status, kept) for status, _, kept in plans] == [("confirmed", 0)], "all settled, contents dropped"
