"""The diff sync against the emulator over real loopback HTTP, and with the file gateway."""

import csv
from pathlib import Path

import pytest

from pipeline.audience.emulator import Faults, GatewayEmulator
from pipeline.audience.gateways import FileGateway, HttpGateway
from pipeline.audience.state import copy_audience_tables
from pipeline.audience.sync import SyncError, sync_segment
from tests.audience.conftest import AS_OF, SEGMENT, TOKEN, mobile
from tests.fixtures.stores import Store, checkout, customer

LATER = "2026-10-20T10:00:00Z"


def shop(n: int, *changed: dict, checkouts: list[dict] | None = None) -> Store:
    """n subscribed customers with distinct mobiles; `changed` customers replace theirs (a later version)."""
    by_id = {i: customer(i, phone=mobile(i), first=f"C{i}") for i in range(1, n + 1)}
    by_id.update({int(c["id"].rsplit("/", 1)[1]): c for c in changed})
    return Store(customers=list(by_id.values()), abandoned_checkouts=checkouts or [])


def http(emulator: GatewayEmulator, **options: float) -> HttpGateway:
    gateway = HttpGateway(url=emulator.url, token=TOKEN, timeout_seconds=options.pop("timeout_seconds", 2.0), **options)
    return gateway.with_sleep(lambda seconds: None)


def eligible_phones(con) -> set[str]:
    return {row[0] for row in con.execute("select phone from audience_eligible").fetchall()}


def ledger(con, run_id: str) -> set[tuple[str, str]]:
    return set(
        con.execute(
            "select action, phone from state.audience_changes where run_id = ? and outcome = 'sent'", [run_id]
        ).fetchall()
    )


def test_first_sync_adds_everyone_and_an_unchanged_rerun_sends_nothing(audience_db, emulator):
    con = audience_db(shop(30))
    first = sync_segment(con, http(emulator), SEGMENT, as_of=AS_OF, run_id="r1", batch_size=7)
    assert (first.added, first.removed, first.unchanged, first.batches) == (30, 0, 0, 5)
    assert {k: first.metadata()[k] for k in ("eligible", "added", "excluded_no_consent")} == {
        "eligible": 30,
        "added": 30,
        "excluded_no_consent": 0,
    }
    assert set(emulator.members(SEGMENT)) == eligible_phones(con)
    posts = emulator.received["POST"]
    second = sync_segment(con, http(emulator), SEGMENT, as_of=AS_OF, run_id="r2", batch_size=7)
    assert (second.added, second.updated, second.removed, second.unchanged, second.batches) == (0, 0, 0, 30, 0)
    assert emulator.received["POST"] == posts
    assert set(emulator.adds_of(SEGMENT).values()) == {1}


def test_a_customer_who_unsubscribes_is_removed(audience_db, emulator):
    con = audience_db(shop(5))
    sync_segment(con, http(emulator), SEGMENT, as_of=AS_OF, run_id="r1")
    con = audience_db(shop(5, customer(3, phone=mobile(3), first="C3", sms_state="UNSUBSCRIBED", updated=LATER)))
    result = sync_segment(con, http(emulator), SEGMENT, as_of=AS_OF, run_id="r2")
    assert (result.added, result.removed, result.unchanged) == (0, 1, 4)
    assert mobile(3) not in emulator.members(SEGMENT)
    assert ledger(con, "r2") == {("remove", mobile(3))}
    assert con.execute("select count(*) from state.audience_sync_state where phone = ?", [mobile(3)]).fetchall() == [
        (0,)
    ]


def test_a_changed_extra_field_is_sent_again_once(audience_db, emulator):
    fields = ("abandoned_checkout_url",)
    old = [checkout(70, 2, created="2026-10-10T10:00:00Z", url="https://shop/old")]
    con = audience_db(shop(3, checkouts=old))
    sync_segment(con, http(emulator), SEGMENT, as_of=AS_OF, run_id="r1", fields=fields)
    assert emulator.members(SEGMENT)[mobile(2)]["abandoned_checkout_url"] == "https://shop/old"
    new = [*old, checkout(71, 2, created="2026-10-25T10:00:00Z", url="https://shop/new")]
    con = audience_db(shop(3, checkouts=new))
    result = sync_segment(con, http(emulator), SEGMENT, as_of=AS_OF, run_id="r2", fields=fields)
    assert (result.added, result.updated, result.unchanged) == (0, 1, 2)
    assert emulator.members(SEGMENT)[mobile(2)]["abandoned_checkout_url"] == "https://shop/new"
    again = sync_segment(con, http(emulator), SEGMENT, as_of=AS_OF, run_id="r3", fields=fields)
    assert (again.updated, again.batches) == (0, 0)
    assert emulator.adds_of(SEGMENT)[mobile(2)] == 2


def test_with_every_fault_the_sync_converges_to_the_eligible_set(audience_db, emulator):
    emulator.set_faults(
        Faults(
            script=["429", "429", "ok", "500", "500_after", "drop", "drop_after", "slow", "ok"],
            slow_step_seconds=0.4,
            reject={mobile(7): "landline"},
        )
    )
    store = shop(120)
    con = audience_db(store)
    result = sync_segment(
        con, http(emulator, timeout_seconds=0.2, max_attempts=12), SEGMENT, as_of=AS_OF, run_id="r1", batch_size=10
    )
    assert emulator.received["POST"] > 2 * result.batches  # the faults did happen
    expected = eligible_phones(con) - {mobile(7)}
    assert set(emulator.members(SEGMENT)) == expected
    assert set(emulator.adds_of(SEGMENT).values()) == {1}
    assert (result.added, result.rejected) == (119, 1)
    assert con.execute(
        "select outcome, reason from state.audience_changes where phone = ?", [mobile(7)]
    ).fetchall() == [("rejected", "landline")]
    # the rejected number is not retried, and nothing else is due
    emulator.set_faults(Faults())
    again = sync_segment(con, http(emulator), SEGMENT, as_of=AS_OF, run_id="r2", batch_size=10)
    assert (again.batches, again.rejected_before, again.unchanged) == (0, 1, 119)


def test_dry_run_reports_exactly_what_the_real_run_then_sends_and_changes_nothing(audience_db, emulator):
    con = audience_db(shop(20))
    sync_segment(con, http(emulator), SEGMENT, as_of=AS_OF, run_id="r1", batch_size=6)
    con = audience_db(
        shop(
            23,
            customer(4, phone=mobile(4), sms_state="UNSUBSCRIBED", updated=LATER),
            customer(9, phone=mobile(9), first="Nina", updated=LATER),
        )
    )
    state_before = state_snapshot(con)
    gateway_before = emulator.snapshot()

    dry = sync_segment(
        con, http(emulator), SEGMENT, as_of=AS_OF, run_id="dry", batch_size=6, dry_run=True, sample_size=100
    )
    assert state_snapshot(con) == state_before
    assert emulator.snapshot() == gateway_before
    assert (dry.added, dry.updated, dry.removed, dry.unchanged) == (3, 1, 1, 18)

    real = sync_segment(con, http(emulator), SEGMENT, as_of=AS_OF, run_id="r2", batch_size=6)
    reported = {("add", m["customer_id"]) for m in dry.sample_adds} | {
        ("remove", m["customer_id"]) for m in dry.sample_removes
    }
    assert reported == set(
        con.execute("select action, customer_id from state.audience_changes where run_id = 'r2'").fetchall()
    )
    assert (real.added, real.updated, real.removed) == (dry.added, dry.updated, dry.removed)


def test_a_rerun_under_the_same_run_id_never_reuses_a_key(audience_db, emulator):
    con = audience_db(shop(3))
    sync_segment(con, http(emulator), SEGMENT, as_of=AS_OF, run_id="same")
    con = audience_db(shop(4))
    result = sync_segment(con, http(emulator), SEGMENT, as_of=AS_OF, run_id="same")
    assert result.added == 1
    assert con.execute("select idempotency_key from state.audience_batches order by planned_at").fetchall() == [
        (f"same:{SEGMENT}:1",),
        (f"same:{SEGMENT}:2",),
    ]


def test_dry_run_before_any_real_run_creates_no_state(audience_db, emulator):
    con = audience_db(shop(4))
    before = state_snapshot(con)  # the warehouse build made state.duckdb's tables (for its phone cache)
    result = sync_segment(con, http(emulator), SEGMENT, as_of=AS_OF, dry_run=True)
    assert result.added == 4
    assert state_snapshot(con) == before and not any(before.values())
    assert emulator.snapshot()["received"] == {}


def fail_at_batch_3(con, emulator) -> SyncError:
    """A sync in batches of 10 whose gateway goes down for good after two batches: the error it raises."""
    # PUT, the GET of what a new audience holds, 2 batches, then down
    emulator.set_faults(Faults(script=["ok", "ok", "ok", "ok", "500", "500", "500"]))
    with pytest.raises(SyncError, match="batch 3 failed") as failure:
        sync_segment(con, http(emulator, max_attempts=3), SEGMENT, as_of=AS_OF, run_id="r1", batch_size=10)
    return failure.value


def test_a_batch_that_finally_fails_keeps_what_was_confirmed_and_the_rerun_sends_the_rest(audience_db, emulator):
    con = audience_db(shop(25))
    failure = fail_at_batch_3(con, emulator)
    assert (failure.result.added, failure.result.failed) == (20, 5)
    assert con.execute("select count(*) from state.audience_sync_state").fetchall() == [(20,)]
    assert TOKEN not in str(failure)

    emulator.set_faults(Faults())
    result = sync_segment(con, http(emulator), SEGMENT, as_of=AS_OF, run_id="r2", batch_size=10)
    assert (result.replayed_batches, result.added, result.batches) == (1, 5, 0)
    assert set(emulator.members(SEGMENT)) == eligible_phones(con)
    assert set(emulator.adds_of(SEGMENT).values()) == {1}


def test_a_failure_mid_group_settles_the_unsent_batches_after_it_and_the_rerun_sends_them_once(audience_db, emulator):
    con = audience_db(shop(45))
    failure = fail_at_batch_3(con, emulator)
    assert (failure.result.added, failure.result.failed) == (20, 10)
    assert con.execute(
        "select batch_no, status, contents is not null from state.audience_batches order by batch_no"
    ).fetchall() == [
        (1, "confirmed", False),
        (2, "confirmed", False),
        (3, "planned", True),
        (4, "unsent", False),
        (5, "unsent", False),
    ]
    assert con.execute("select count(*) from state.audience_changes where batch_no > 3").fetchall() == [(0,)]

    emulator.set_faults(Faults())
    result = sync_segment(con, http(emulator), SEGMENT, as_of=AS_OF, run_id="r2", batch_size=10)
    assert (result.replayed_batches, result.added, result.batches) == (1, 25, 2)
    assert set(emulator.members(SEGMENT)) == eligible_phones(con)
    assert set(emulator.adds_of(SEGMENT).values()) == {1}


def test_file_gateway_writes_the_audience_and_the_changes(audience_db, tmp_path: Path):
    data_dir = tmp_path / "data"
    checkouts = [checkout(70, 2, created="2026-10-10T10:00:00Z", url="https://shop/2")]
    con = audience_db(shop(3, checkouts=checkouts))
    gateway = FileGateway(data_dir=str(data_dir))
    fields = ("abandoned_checkout_url",)
    sync_segment(con, gateway, SEGMENT, as_of=AS_OF, run_id="r1", fields=fields, batch_size=2)
    folder = data_dir / "exports" / SEGMENT
    assert read_csv(folder / "2026-10-31.csv") == [
        ["phone", "customer_id", "first_name", "last_name", "country", "abandoned_checkout_url"],
        [mobile(1), "1", "C1", "Rossi", "IT", ""],
        [mobile(2), "2", "C2", "Rossi", "IT", "https://shop/2"],
        [mobile(3), "3", "C3", "Rossi", "IT", ""],
    ]
    assert read_csv(folder / "2026-10-31.changes.csv") == [
        ["action", "phone", "customer_id"],
        *[["add", mobile(i), str(i)] for i in (1, 2, 3)],
    ]

    con = audience_db(
        shop(3, customer(1, phone=mobile(1), sms_state="UNSUBSCRIBED", updated=LATER), checkouts=checkouts)
    )
    sync_segment(con, gateway, SEGMENT, as_of=AS_OF, run_id="r2", fields=fields)
    assert read_csv(folder / "2026-10-31.changes.csv") == [
        ["action", "phone", "customer_id"],
        ["remove", mobile(1), "1"],
    ]
    sync_segment(con, gateway, SEGMENT, as_of=AS_OF, run_id="r3", fields=fields)
    assert read_csv(folder / "2026-10-31.changes.csv") == [["action", "phone", "customer_id"]]
    assert sorted(p.name for p in folder.iterdir()) == [".pending", "2026-10-31.changes.csv", "2026-10-31.csv"]


def test_warehouse_copy_of_the_audience_tables(audience_db, emulator):
    con = audience_db(shop(4))
    sync_segment(con, http(emulator), SEGMENT, as_of=AS_OF, run_id="r1", fields=("rfm_group",))
    counts = copy_audience_tables(con)
    assert counts == {
        "audience.members": 4,
        "audience.changes": 4,
        "audience.sync_state": 4,
        "audience.suppressions": 0,
    }
    assert con.execute(
        "select segment, phone, customer_id, fields->>'rfm_group' from audience.members order by phone limit 1"
    ).fetchall() == [(SEGMENT, mobile(1), 1, "PROSPECTS")]


def state_snapshot(con) -> dict[str, list]:
    tables = [
        r[0]
        for r in con.execute(
            "select table_name from duckdb_tables() where database_name = 'state' "
            "and table_name like 'audience%' order by 1"
        ).fetchall()
    ]
    return {t: sorted(map(repr, con.table(f"state.{t}").fetchall())) for t in tables}


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))
