"""state.duckdb across upgrades: a file from the previous release is migrated and resumed, never resent."""

import datetime as dt
import gzip
import shutil
from pathlib import Path

import duckdb
import pytest

from pipeline.audience.gateways import FileGateway
from pipeline.audience.sync import sync_segment
from pipeline.warehouse.state import VERSION, StateVersionError, migrate
from tests.audience.conftest import SEGMENT, mobile
from tests.audience.test_sync import LATER, http, shop
from tests.fixtures.stores import Store, customer

FIXTURE = Path(__file__).parent.parent / "fixtures" / "state-v0.duckdb.gz"
V0_NIGHT = dt.date(2026, 10, 31)


def install_v0_state(data_dir: Path) -> None:
    """data/state.duckdb as the release at dd454bb left it (made by tests/fixtures/make_state_v0.py).

    Two nights of segments.all_customers with the file gateway and batches of 2: the first synced
    customers 1-5; the second, with 1-7, planned its first batch (adds of 6 and 7) and then the
    gateway failed, so the batch is still `planned`.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    with gzip.open(FIXTURE) as packed, open(data_dir / "state.duckdb", "wb") as out:
        shutil.copyfileobj(packed, out)


def test_a_state_file_from_the_previous_release_is_migrated_and_resumed_without_resending(audience_db, tmp_path: Path):
    data_dir = tmp_path / "data"
    install_v0_state(data_dir)
    con = audience_db(Store(customers=[customer(n, phone=mobile(n)) for n in range(1, 8)]), as_of=V0_NIGHT)
    assert con.execute("select count(*) from state.audience_batches where status = 'planned'").fetchall() == [(1,)]

    result = sync_segment(
        con, FileGateway(data_dir=str(data_dir)), SEGMENT, as_of=V0_NIGHT, run_id="upgraded", batch_size=2
    )
    assert con.execute("select max(version) from state.schema_version").fetchall() == [(VERSION,)]
    # the killed night's batch went again under its own key, and nothing else was needed
    assert (result.replayed_batches, result.added, result.batches) == (1, 2, 0)
    sent = con.execute(
        "select phone, count(*) from state.audience_changes "
        "where action = 'add' and outcome = 'sent' group by phone order by phone"
    ).fetchall()
    assert sent == [(mobile(n), 1) for n in range(1, 8)]  # every number added once, over both releases
    assert con.execute("select destination, count(*) from state.audience_sync_state group by all").fetchall() == [
        ("file", 7)
    ]
    changes = (data_dir / "exports" / SEGMENT / f"{V0_NIGHT}.changes.csv").read_text().splitlines()
    assert changes[1:] == [f"add,{mobile(6)},6", f"add,{mobile(7)},7"]
    # and the next night has nothing to send
    again = sync_segment(con, FileGateway(data_dir=str(data_dir)), SEGMENT, as_of=V0_NIGHT, run_id="next")
    assert (again.added, again.removed, again.unchanged) == (0, 0, 7)


def test_a_state_file_from_a_newer_release_is_refused(tmp_path: Path):
    with duckdb.connect() as con:
        con.execute("attach ? as state", [str(tmp_path / "state.duckdb")])
        migrate(con)
        con.execute("insert into state.schema_version values (?, now())", [VERSION + 1])
        with pytest.raises(
            StateVersionError,
            match=rf"schema version {VERSION + 1}, .* up to {VERSION}: it was "
            "written by a newer smsseg",
        ):
            migrate(con)


def test_migrating_twice_changes_nothing(tmp_path: Path):
    with duckdb.connect() as con:
        con.execute("attach ? as state", [str(tmp_path / "state.duckdb")])
        assert migrate(con) == 0
        tables = con.execute(
            "select table_name from duckdb_tables() where database_name = 'state' order by 1"
        ).fetchall()
        assert migrate(con) == VERSION
        assert (
            con.execute("select table_name from duckdb_tables() where database_name = 'state' order by 1").fetchall()
            == tables
        )
        assert con.execute("select count(*) from state.schema_version").fetchall() == [(VERSION,)]


def test_switching_destination_starts_a_fresh_audience_there(audience_db, emulator, tmp_path: Path):
    con = audience_db(shop(3))
    sync_segment(con, FileGateway(data_dir=str(tmp_path / "data")), SEGMENT, as_of=V0_NIGHT, run_id="r1")
    moved = sync_segment(con, http(emulator), SEGMENT, as_of=V0_NIGHT, run_id="r2")
    assert moved.added == 3  # the http gateway never had them, whatever the file gateway holds
    assert set(emulator.members(SEGMENT)) == {mobile(n) for n in (1, 2, 3)}
    assert con.execute(
        "select destination, count(*) from state.audience_sync_state group by all order by 1"
    ).fetchall() == [("file", 3), ("http", 3)]


def lose_state(con, tmp_path: Path) -> None:
    """Deletes data/state.duckdb, as an operator might, between two syncs."""
    con.close()
    for path in (tmp_path / "data").glob("state.duckdb*"):
        path.unlink()


def test_a_lost_ledger_is_rebuilt_from_the_destination_sending_nothing_twice(audience_db, emulator, tmp_path):
    con = audience_db(shop(10))
    sync_segment(con, http(emulator), SEGMENT, as_of=V0_NIGHT, run_id="r1", batch_size=4)
    lose_state(con, tmp_path)
    con = audience_db(
        shop(
            12,
            customer(3, phone=mobile(3), first="C3", sms_state="UNSUBSCRIBED", updated=LATER),
            customer(4, phone=mobile(4), first="Changed", updated=LATER),
        )
    )
    result = sync_segment(con, http(emulator), SEGMENT, as_of=V0_NIGHT, run_id="r2", batch_size=4)
    # adopted as up to date: 4's changed name is not sent (README), 3 is removed, 11 and 12 added
    assert (result.adopted, result.added, result.updated, result.removed) == (10, 2, 0, 1)
    assert set(emulator.adds_of(SEGMENT).values()) == {1}
    assert set(emulator.members(SEGMENT)) == {mobile(n) for n in range(1, 13)} - {mobile(3)}
    again = sync_segment(con, http(emulator), SEGMENT, as_of=V0_NIGHT, run_id="r3")
    assert (again.adopted, again.added, again.removed) == (0, 0, 0)


def test_an_adopted_audience_that_swung_is_held_but_still_loses_who_may_not_be_texted(audience_db, emulator, tmp_path):
    con = audience_db(shop(10))
    sync_segment(con, http(emulator), SEGMENT, as_of=V0_NIGHT, run_id="r1")
    lose_state(con, tmp_path)
    con = audience_db(
        shop(10, customer(1, phone=mobile(1), first="C1", sms_state="UNSUBSCRIBED", updated=LATER)),
        segment_sql="select customer_id from marts.customers where customer_id <= 4",
    )
    result = sync_segment(con, http(emulator), SEGMENT, as_of=V0_NIGHT, run_id="r2", swing_threshold=0.5)
    assert result.held and "holds 10 numbers, where 3 are eligible now (-70%" in result.hold_reason
    assert (result.removed, result.added) == (1, 0)  # the unsubscribed one; 5..10 wait for the acknowledgement
    assert set(emulator.members(SEGMENT)) == {mobile(n) for n in range(2, 11)}
    acknowledged = sync_segment(con, http(emulator), SEGMENT, as_of=V0_NIGHT, run_id="r3", swing_threshold=None)
    assert (acknowledged.held, acknowledged.removed) == (False, 6)  # nothing was left behind untracked
