"""Keeps a gateway's copy of a segment's audience equal to its eligible members, by diff, crash-safely.

A run: compute the eligible audience; replay any batch a killed run planned but never saw
confirmed (same Idempotency-Key, so the gateway applies it at most once); diff the eligible
set against what the gateway confirmed holding (state.audience_sync_state); then send the
diff batch by batch. Batches go in groups of at most GROUP_BATCHES: the group's plans are
written to state.audience_batches and committed before any of them is sent, then the group is
sent batch by batch, and every outcome of the group is committed in one transaction.

Why a group and not a batch: each commit flushes state.duckdb to disk, and two commits a batch
were most of a first night's export. Why it is as safe: a plan is still committed before it is
sent, so a run killed mid-group leaves every batch the gateway may hold pending, and the next run
replays each under its own key (the gateway applies a key at most once); sync_state then lags the
gateway by at most the one group in flight, never by a number sent twice.
"""

import datetime as dt
import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
from sqlglot import exp

from pipeline.audience.eligibility import Eligibility, eligible_audience
from pipeline.audience.gateways import AudienceGateway, AudienceTarget, GatewayError
from pipeline.segments.catalogue import MEMBER_COLUMNS
from pipeline.settings import DEFAULT_BATCH_SIZE
from pipeline.sqlbuild import call, column, identifier, table, temp, to_sql
from pipeline.warehouse.build import transaction
from pipeline.warehouse.state import migrate, state_version

log = logging.getLogger(__name__)

# Batches planned in one transaction and settled in one: the most a killed run leaves to replay.
GROUP_BATCHES = 20
# A first night writes ~100 MB of ledger, sync state and plans to state.duckdb's WAL. At DuckDB's
# default 16 MB threshold the commits kept stopping to checkpoint, each time recompressing the
# tail of the growing ledger; with this a sync's commits only append to the WAL, and DuckDB
# checkpoints it once, when the connection closes.
CHECKPOINT_THRESHOLD = "256MB"
# what settling a batch reads back from its plan (contents also carry each member's fields)
PLAN_TYPE = json.dumps(
    {
        "adds": [
            {"member": {"phone": "VARCHAR", "customer_id": "BIGINT"}, "fields_hash": "VARCHAR", "kind": "VARCHAR"}
        ],
        "removes": [{"phone": "VARCHAR", "customer_id": "BIGINT", "destination_id": "VARCHAR"}],
    }
)


@dataclass
class SyncResult:
    """What one sync of one segment did (or, in a dry run, would do)."""

    segment: str
    run_id: str
    dry_run: bool
    members: int  # segment members before exclusions
    eligible: int
    excluded: dict[str, int]  # reason -> members
    added: int = 0  # numbers new to the gateway
    updated: int = 0  # numbers sent again because their fields changed
    removed: int = 0
    rejected: int = 0  # refused by the gateway this run; recorded and never retried
    failed: int = 0  # in a batch that finally failed
    unchanged: int = 0
    rejected_before: int = 0  # eligible, but refused by the gateway in an earlier run
    replayed_batches: int = 0  # planned by a killed run and resent with their original key
    pending_batches: int = 0  # dry run: batches a killed run left unconfirmed
    batches: int = 0
    held: bool = False  # a swing held the export: only removals of numbers that may not be texted were sent
    hold_reason: str = ""  # why the sync held itself (an adopted audience that swung); empty otherwise
    adopted: int = 0  # numbers the destination held that the ledger had lost, taken as synced
    # the first adds and removes by phone, as {"customer_id", "kind"}: never the number, since the
    # result goes into Dagster's event log
    sample_adds: list[dict] = field(default_factory=list)
    sample_removes: list[dict] = field(default_factory=list)

    def metadata(self) -> dict[str, int | bool | str]:
        """Flat numbers a person would plot, for a Dagster MaterializeResult."""
        counts = {
            name: getattr(self, name)
            for name in (
                "members",
                "eligible",
                "added",
                "updated",
                "removed",
                "rejected",
                "failed",
                "unchanged",
                "rejected_before",
                "replayed_batches",
                "pending_batches",
                "batches",
                "adopted",
            )
        }
        held = {"held": True, "removed_despite_hold": self.removed} if self.held else {}
        return {
            "segment": self.segment,
            "dry_run": self.dry_run,
            **counts,
            **held,
            **{f"excluded_{reason}": n for reason, n in self.excluded.items()},
        }


class SyncError(RuntimeError):
    """The gateway finally refused the audience or a batch. What was confirmed stays; `result` says how far it got."""

    def __init__(self, message: str, result: SyncResult):
        super().__init__(message)
        self.result = result


def sync_segment(
    con: duckdb.DuckDBPyConnection,
    gateway: AudienceGateway,
    segment: str,
    *,
    as_of: dt.date,
    run_id: str | None = None,
    fields: tuple[str, ...] = (),
    suppressions_csv: Path | None = None,
    target: AudienceTarget | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    held: bool = False,
    swing_threshold: float | None = None,
    sample_size: int = 10,
) -> SyncResult:
    """Syncs `segments.<segment>` to the gateway; `con` is the build warehouse with state.duckdb as `state`.

    dry_run computes the diff and returns it (counts and a sample) without writing state or
    calling the gateway. `held` (a size swing no one acknowledged) sends only the removals of
    numbers that must not be texted (`_keep_consent_removals`): an opt-out never waits for a
    person. `swing_threshold`, for a segment with no size history to hold it by: when the sync
    adopts what the destination holds (`_adopt_held`), it holds itself if the eligible audience
    differs from that by more than this share. Raises SyncError when the gateway finally refuses
    the audience or a batch.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size {batch_size}: must be at least 1")
    run_id = run_id or uuid.uuid4().hex
    target = target or AudienceTarget(segment)
    if not dry_run and _moved(con, gateway, target):
        # the definition names another list or tag: the old one is emptied first, as a retired segment is
        retire_segment(con, gateway, segment, as_of=as_of, run_id=run_id, batch_size=batch_size)
    audience = eligible_audience(con, segment, fields=fields, suppressions_csv=suppressions_csv)
    result = SyncResult(
        segment=segment,
        run_id=run_id,
        dry_run=dry_run,
        members=audience.members,
        eligible=audience.eligible,
        excluded=audience.excluded,
        held=held and not dry_run,
    )
    return _sync(
        con,
        gateway,
        target,
        audience,
        result,
        as_of=as_of,
        batch_size=batch_size,
        sample_size=sample_size,
        suppressions=True,
        swing_threshold=swing_threshold,
    )


def swing(before: int, after: int, threshold: float) -> float | None:
    """The signed share by which a size moved from `before` to `after` (-0.6: it shrank by 60%), when it
    moved by more than `threshold`; None when it did not. The one rule that holds an export."""
    share = (after - before) / max(before, 1)
    return share if abs(share) > threshold else None


def retire_segment(
    con: duckdb.DuckDBPyConnection,
    gateway: AudienceGateway,
    segment: str,
    *,
    as_of: dt.date,
    run_id: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
) -> SyncResult:
    """Removes every member the destination holds for `segment`, which no definition exports any more.

    It is a sync to an empty audience, so it resumes like one: a killed run's batches are replayed
    first, and once every removal is confirmed the ledger holds nothing for the segment, so the
    next night does not retire it again. The target is the one the segment was last synced to.
    """
    run_id = run_id or uuid.uuid4().hex
    con.execute(
        "create or replace temp table audience_eligible (phone varchar, customer_id bigint, "
        "first_name varchar, last_name varchar, country varchar, fields_hash varchar)"
    )
    audience = Eligibility(segment=segment, members=0, eligible=0, excluded={}, fields=())
    result = SyncResult(segment=segment, run_id=run_id, dry_run=dry_run, members=0, eligible=0, excluded={})
    target = recorded_target(con, gateway.destination, segment) or AudienceTarget(segment)
    return _sync(
        con, gateway, target, audience, result, as_of=as_of, batch_size=batch_size, sample_size=0, suppressions=False
    )


def retired_segments(con: duckdb.DuckDBPyConnection, destination: str, exported: set[str]) -> list[str]:
    """Segments `destination` holds members of, or has batches pending for, by the ledger, that are not `exported`."""
    if state_version(con) == 0:
        return []
    migrate(con)
    return [
        row[0]
        for row in con.execute(
            """
        select distinct segment from state.audience_sync_state
        where (destination = $destination or destination is null) and not list_contains($exported, segment)
        union
        select distinct segment from state.audience_batches
        where (destination = $destination or destination is null) and status = 'planned'
            and not list_contains($exported, segment)
        order by 1""",
            {"destination": destination, "exported": sorted(exported)},
        ).fetchall()
    ]


def _moved(con: duckdb.DuckDBPyConnection, gateway: AudienceGateway, target: AudienceTarget) -> bool:
    """Whether the destination holds members of the segment under a target that is not `target`'s audience."""
    if state_version(con) == 0:
        return False
    migrate(con)
    recorded = recorded_target(con, gateway.destination, target.segment)
    return recorded is not None and not gateway.same_audience(recorded, target)


def recorded_target(con: duckdb.DuckDBPyConnection, destination: str, segment: str) -> AudienceTarget | None:
    """The target `segment` was last synced to at `destination` (its definition may be gone), if any."""
    row = con.execute(
        "select list_name, tag from state.audience_targets where destination = ? and segment = ?",
        [destination, segment],
    ).fetchall()
    return AudienceTarget(segment, name=row[0][0] or "", tag=row[0][1] or "") if row else None


def _sync(
    con: duckdb.DuckDBPyConnection,
    gateway: AudienceGateway,
    target: AudienceTarget,
    audience: Eligibility,
    result: SyncResult,
    *,
    as_of: dt.date,
    batch_size: int,
    sample_size: int,
    suppressions: bool,
    swing_threshold: float | None = None,
) -> SyncResult:
    """Brings the destination's copy of `target.segment` to the temp table audience_eligible."""
    segment, run_id, destination = target.segment, result.run_id, gateway.destination
    if result.dry_run:
        # a dry run before any real one creates no state; one on an older file migrates it (its
        # tables, not what they hold) so it reads what the real run will
        has_state = state_version(con) > 0
        if has_state:
            migrate(con)
        _load_current(con, destination, segment, from_state=has_state)
        if has_state:
            result.pending_batches = con.execute(
                "select count(*) from state.audience_batches where (destination = ? or destination is null) "
                "and segment = ? and status = 'planned'",
                [destination, segment],
            ).fetchall()[0][0]
        _diff(con, result, batch_size, sample_size)
        return result

    migrate(con)
    with _checkpoints_deferred(con):
        if suppressions:
            _save_suppressions(con)
        _claim_unowned(con, destination, segment)
        try:
            _upsert_audience(con, gateway, target)
        except GatewayError as exc:
            raise SyncError(f"audience {segment}: {exc}", result) from exc
        if _ledger_empty(con, destination, segment):
            try:
                result.adopted = _adopt_held(con, gateway, target, run_id)
            except GatewayError as exc:
                raise SyncError(f"audience {segment}: reading what the destination holds: {exc}", result) from exc
            share = swing(result.adopted, result.eligible, swing_threshold) if swing_threshold is not None else None
            if result.adopted and share is not None:
                result.held = True
                result.hold_reason = (
                    f"{segment}: the ledger was empty and {destination} holds {result.adopted:,} numbers, where "
                    f"{result.eligible:,} are eligible now ({share:+.0%}; the limit is {swing_threshold:.0%}). "
                    f"Check the segment, then acknowledge the swing (smsseg run --ack-swing {segment})."
                )
        pending = _pending_batches(con, destination, segment)
        for start in range(0, len(pending), GROUP_BATCHES):
            # a killed run's batches: the gateway may have applied them, so only their own keys may resend them
            _send_group(
                con, gateway, target, pending[start : start + GROUP_BATCHES], run_id, as_of, result, replay=True
            )
        _load_current(con, destination, segment, from_state=True)
        _diff(con, result, batch_size, sample_size)
        if result.held:
            _keep_consent_removals(con, result, batch_size)
        # a rerun under the same run_id numbers on, so no Idempotency-Key is ever used for two contents
        numbered = con.execute(
            "select coalesce(max(batch_no), 0) from state.audience_batches where run_id = ? and segment = ?",
            [run_id, segment],
        ).fetchall()[0][0]
        for first in range(1, result.batches + 1, GROUP_BATCHES):
            parts = range(first, min(first + GROUP_BATCHES, result.batches + 1))
            plans = _plan_group(con, destination, segment, run_id, as_of, numbered, parts, batch_size, audience.fields)
            _send_group(con, gateway, target, plans, run_id, as_of, result, replay=False)
        if not result.held:
            _save_members(con, segment, as_of, run_id, audience)
            gateway.finish(target, as_of, _members_table(con, audience))
        elif result.removed or result.replayed_batches:
            _forget_removed_members(con, destination, segment)
            gateway.finish(target, as_of, _held_members_table(con, destination, segment, audience))
    log.info(
        "audience %s: %d eligible, %d added, %d updated, %d removed, %d rejected, %d unchanged",
        segment,
        result.eligible,
        result.added,
        result.updated,
        result.removed,
        result.rejected,
        result.unchanged,
    )
    return result


@contextmanager
def _checkpoints_deferred(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Raises DuckDB's checkpoint threshold to CHECKPOINT_THRESHOLD for the sync, then puts it back.

    Every commit is still written to the WAL and flushed, so nothing confirmed is lost to a crash.
    """
    previous = con.execute("select current_setting('checkpoint_threshold')").fetchall()[0][0]
    con.execute("set checkpoint_threshold = ?", [CHECKPOINT_THRESHOLD])
    try:
        yield
    finally:
        con.execute("set checkpoint_threshold = ?", [previous])


def _claim_unowned(con: duckdb.DuckDBPyConnection, destination: str, segment: str) -> None:
    """Gives the segment's rows from before destinations were recorded (state migration 2) to `destination`.

    The release that wrote them had one gateway for every run; the first sync after the upgrade
    is taken to use it still, so it resumes that ledger (and replays its planned batches) rather
    than resend the audience.
    """
    with transaction(con):
        for name in ("audience_sync_state", "audience_changes", "audience_batches"):
            con.execute(
                to_sql(
                    exp.update(
                        table(name, "state"),
                        {"destination": exp.Placeholder()},
                        where="destination is null and segment = ?",
                    )
                ),
                [destination, segment],
            )


def _ledger_empty(con: duckdb.DuckDBPyConnection, destination: str, segment: str) -> bool:
    """Whether state.duckdb has no record of `segment` at `destination`: new, or lost with the file."""
    return not con.execute(
        """
        select 1 from state.audience_sync_state where destination = $d and segment = $s
        union all
        select 1 from state.audience_changes where destination = $d and segment = $s
        limit 1""",
        {"d": destination, "s": segment},
    ).fetchall()


def _adopt_held(con: duckdb.DuckDBPyConnection, gateway: AudienceGateway, target: AudienceTarget, run_id: str) -> int:
    """Takes what the destination holds for the segment as its sync state; returns how many numbers.

    So a lost state.duckdb sends nothing twice and leaves nothing behind: the diff then adds only
    who the destination lacks and removes who is no longer eligible. An adopted member who is
    still eligible is taken as up to date (its fields hash is the eligible one): no update is sent.
    """
    held = gateway.list_members(target)
    con.register(
        "audience_held",
        pa.table(
            {
                "phone": pa.array([m.phone for m in held], pa.string()),
                "customer_id": pa.array([m.customer_id for m in held], pa.int64()),
                "destination_id": pa.array([m.destination_id for m in held], pa.string()),
            }
        ),
    )
    try:
        with transaction(con):
            con.execute(
                """
                insert into state.audience_sync_state by name
                select
                    $segment as segment, h.phone, coalesce(any_value(h.customer_id), any_value(e.customer_id))
                        as customer_id,
                    any_value(e.fields_hash) as fields_hash, now() as synced_at, $run_id as run_id,
                    $destination as destination, any_value(h.destination_id) as destination_id
                from audience_held as h
                left join audience_eligible as e on h.phone = e.phone
                group by h.phone""",
                {"segment": target.segment, "run_id": run_id, "destination": gateway.destination},
            )
    finally:
        con.unregister("audience_held")
    return len({m.phone for m in held})


def _upsert_audience(con: duckdb.DuckDBPyConnection, gateway: AudienceGateway, target: AudienceTarget) -> None:
    """Creates or renames the audience at the gateway, and records its target and the id it was given."""
    destination = gateway.destination
    known = con.execute(
        "select audience_id from state.audience_targets where destination = ? and segment = ?",
        [destination, target.segment],
    ).fetchall()
    audience_id = gateway.upsert_audience(target, known[0][0] if known else None)
    with transaction(con):
        con.execute(
            """
            insert or replace into state.audience_targets values (?, ?, ?, ?, ?, now())""",
            [destination, target.segment, target.name, target.tag, audience_id],
        )


@dataclass(frozen=True)
class _Plan:
    key: str
    destination: str
    segment: str
    batch_no: int
    # JSON {"adds": [{"member": what the gateway gets, "fields_hash", "kind": new|update}],
    #       "removes": [{"phone", "customer_id", "destination_id"}]}, parsed only as it is sent
    contents: str


def _load_current(con: duckdb.DuckDBPyConnection, destination: str, segment: str, *, from_state: bool) -> None:
    """Temp tables of what the destination holds for `segment` and the numbers it refused before."""
    if from_state:
        # a dry run may come before a real run claimed the rows of an older release (destination null)
        con.execute(
            "create or replace temp table audience_current as "
            "select phone, customer_id, fields_hash, destination_id from state.audience_sync_state "
            "where (destination = ? or destination is null) and segment = ?",
            [destination, segment],
        )
        con.execute(
            "create or replace temp table audience_rejected_before as "
            "select distinct phone from state.audience_changes "
            "where (destination = ? or destination is null) and segment = ? "
            "and action = 'add' and outcome = 'rejected'",
            [destination, segment],
        )
    else:  # a dry run before any real one: state.duckdb may not even have the tables yet
        con.execute(
            "create or replace temp table audience_current "
            "(phone varchar, customer_id bigint, fields_hash varchar, destination_id varchar)"
        )
        con.execute("create or replace temp table audience_rejected_before (phone varchar)")


def _diff(con: duckdb.DuckDBPyConnection, result: SyncResult, batch_size: int, sample_size: int) -> None:
    """Temp table `audience_diff(seq, action, kind, phone, customer_id, ...member columns, fields_hash)`.

    A real run counts added/updated/removed as the gateway confirms them; a dry run reports the diff.
    """
    # the adds carry every member column now, so a batch is then a cheap range read of seq
    con.execute("""
        create or replace temp table audience_diff as
        with adds as (
            select
                'add' as action,
                case when cur.phone is null then 'new' else 'update' end as kind,
                e.*
            from audience_eligible as e
            left join audience_current as cur on e.phone = cur.phone
            anti join audience_rejected_before as rej on e.phone = rej.phone
            where cur.phone is null or cur.fields_hash is distinct from e.fields_hash
        ),

        removes as (
            select 'remove' as action, 'remove' as kind, cur.phone, cur.customer_id, cur.destination_id
            from audience_current as cur
            anti join audience_eligible as e on cur.phone = e.phone
        )

        select row_number() over (order by action, phone) as seq, *
        from (select * from adds union all by name select * from removes)
        order by seq""")
    counts = dict(con.execute("select kind, count(*) from audience_diff group by kind").fetchall())
    result.unchanged = con.execute("""
        select count(*) from audience_eligible as e
        inner join audience_current as cur on e.phone = cur.phone and e.fields_hash = cur.fields_hash
        """).fetchall()[0][0]
    result.rejected_before = con.execute("""
        select count(*) from audience_eligible as e
        semi join audience_rejected_before as rej on e.phone = rej.phone
        anti join audience_current as cur on e.phone = cur.phone""").fetchall()[0][0]
    total = sum(counts.values())
    result.batches = -(-total // batch_size)
    for action, target in (("add", result.sample_adds), ("remove", result.sample_removes)):
        target.extend(
            {"customer_id": customer_id, "kind": kind}
            for customer_id, kind in con.execute(
                "select customer_id, kind from audience_diff where action = ? order by phone limit ?",
                [action, sample_size],
            ).fetchall()
        )
    if result.dry_run:
        result.added, result.updated, result.removed = (counts.get(k, 0) for k in ("new", "update", "remove"))


def _keep_consent_removals(con: duckdb.DuckDBPyConnection, result: SyncResult, batch_size: int) -> None:
    """Cuts the diff down to the removals of numbers that must not be texted, for an export a swing holds.

    Those are the suppressed numbers (read as eligibility reads them) and the numbers of customers
    who are no longer SUBSCRIBED, were redacted, or are gone from marts.customers. The rest waits
    for the swing to be acknowledged.
    """
    con.execute("""
        create or replace temp table audience_diff as
        select row_number() over (order by phone) as seq, * exclude (seq)
        from audience_diff as d
        where action = 'remove' and (
            not exists (
                select 1 from marts.customers as c
                where c.customer_id = d.customer_id and c.sms_subscription_status = 'SUBSCRIBED'
                    and c.is_redacted is not true
            )
            or audience_suppressed_number(d.phone, (
                select p.default_country from staging.stg_customers as p where p.customer_id = d.customer_id
            ))
        )""")
    total = con.execute("select count(*) from audience_diff").fetchall()[0][0]
    result.batches = -(-total // batch_size)


def _plan_group(
    con: duckdb.DuckDBPyConnection,
    destination: str,
    segment: str,
    run_id: str,
    as_of: dt.date,
    numbered: int,
    parts: range,
    batch_size: int,
    fields: tuple[str, ...],
) -> list[_Plan]:
    """Commits `parts` of the diff to state.audience_batches, as batch numbers `numbered` + part, before any is sent.

    DuckDB builds each plan's JSON from the diff in one statement, which is then what is sent.
    """
    # what the gateway gets of each member: the member columns and the definition's fields
    member = call(
        "struct_pack", *(exp.PropertyEQ(this=identifier(c), expression=column(c)) for c in (*MEMBER_COLUMNS, *fields))
    )
    con.execute(
        to_sql(
            temp(
                "audience_diff_members",
                exp.select("*", exp.alias_(member, identifier("member"))).from_(table("audience_diff")),
                kind="VIEW",
            )
        )
    )
    con.execute(
        """
        insert into state.audience_batches by name
        select
            format('{}:{}:{}', ?, ?, ? + part) as idempotency_key, ? as segment, ? as run_id,
            ? + part as batch_no, ? as as_of,
            to_json(struct_pack(adds := adds, removes := removes)) as contents, 'planned' as status,
            now() as planned_at, ? as destination
        from (
            select
                (seq - 1) // ? + 1 as part,
                coalesce(list(struct_pack(member := member, fields_hash := fields_hash, kind := kind)
                              order by seq) filter (where action = 'add'), []) as adds,
                coalesce(list(struct_pack(phone := phone, customer_id := customer_id, destination_id := destination_id)
                              order by seq) filter (where action = 'remove'), []) as removes
            from audience_diff_members
            where seq > ? and seq <= ?
            group by part
        )""",
        [
            run_id,
            segment,
            numbered,
            segment,
            run_id,
            numbered,
            as_of,
            destination,
            batch_size,
            (parts.start - 1) * batch_size,
            (parts.stop - 1) * batch_size,
        ],
    )
    return _plans(
        destination,
        segment,
        con.execute(
            "select idempotency_key, batch_no, contents from state.audience_batches where destination = ? "
            "and segment = ? and run_id = ? and batch_no > ? and batch_no <= ? order by batch_no",
            [destination, segment, run_id, numbered + parts.start - 1, numbered + parts.stop - 1],
        ).fetchall(),
    )


def _pending_batches(con: duckdb.DuckDBPyConnection, destination: str, segment: str) -> list[_Plan]:
    return _plans(
        destination,
        segment,
        con.execute(
            "select idempotency_key, batch_no, contents from state.audience_batches where destination = ? "
            "and segment = ? and status = 'planned' order by planned_at, batch_no",
            [destination, segment],
        ).fetchall(),
    )


def _plans(destination: str, segment: str, rows: list[tuple]) -> list[_Plan]:
    """The segment's stored plans at `destination`, from rows (idempotency_key, batch_no, contents)."""
    return [_Plan(key, destination, segment, batch_no, contents) for key, batch_no, contents in rows]


def _send_group(
    con: duckdb.DuckDBPyConnection,
    gateway: AudienceGateway,
    target: AudienceTarget,
    plans: list[_Plan],
    run_id: str,
    as_of: dt.date,
    result: SyncResult,
    *,
    replay: bool,
) -> None:
    """Sends planned batches in order, then commits all their outcomes at once; raises SyncError on a final failure.

    A final failure ends the group. A fresh plan after it was never sent: it is settled as
    'unsent' and its numbers go out in the next run's diff. A replayed one after it stays pending,
    since the killed run may have sent it.
    """
    outcomes: list[tuple[str, str, str | None]] = []  # (key, status, error)
    rejections: list[tuple[str, str, str]] = []  # (key, phone, reason)
    ids: list[tuple[str, str, str]] = []  # (key, phone, the destination's id for the member)
    failure = None
    for plan in plans:
        # one plan's members at a time: a whole group's dicts alive at once would keep Python's GC busy
        body = json.loads(plan.contents)
        # a plan from before destination ids were kept has none for its removes
        removes = [
            {"phone": r["phone"], "customer_id": r["customer_id"], "destination_id": r.get("destination_id")}
            for r in body["removes"]
        ]
        try:
            sent = gateway.send_batch(target, [a["member"] for a in body["adds"]], removes, plan.key)
        except GatewayError as exc:
            # A retryable failure may still have landed at the gateway: the plan stays pending and the
            # next run replays it under the same key. A refusal did not land: the next diff resends.
            outcomes.append((plan.key, "planned" if exc.retryable else "failed", str(exc)))
            failure = plan, exc
            break
        outcomes.append((plan.key, "confirmed", None))
        rejections.extend((plan.key, phone, reason) for phone, reason in dict(sent.rejected).items())
        ids.extend((plan.key, phone, destination_id) for phone, destination_id in sent.ids.items())
    if not replay:
        outcomes.extend((plan.key, "unsent", None) for plan in plans[len(outcomes) :])
    counts = _record(
        con, plans[0].destination, plans[0].segment, outcomes, rejections, ids, run_id, as_of, replay=replay
    )
    result.added += counts.get(("new", "sent"), 0)
    result.updated += counts.get(("update", "sent"), 0)
    result.removed += counts.get(("remove", "sent"), 0)
    result.rejected += sum(n for (_, outcome), n in counts.items() if outcome == "rejected")
    result.failed += sum(n for (_, outcome), n in counts.items() if outcome == "failed")
    if replay:
        result.replayed_batches += sum(status == "confirmed" for _, status, _ in outcomes)
    if failure:
        plan, exc = failure
        raise SyncError(f"audience {plan.segment}: batch {plan.batch_no} failed: {exc}", result) from exc


def _record(
    con: duckdb.DuckDBPyConnection,
    destination: str,
    segment: str,
    outcomes: list[tuple[str, str, str | None]],
    rejections: list[tuple[str, str, str]],
    ids: list[tuple[str, str, str]],
    run_id: str,
    as_of: dt.date,
    *,
    replay: bool,
) -> dict[tuple[str, str], int]:
    """One transaction: the ledger rows of the settled batches, the sync state they imply, and the plans' new status.

    The rows are read back from the plans, so no member passes through Python. Returns rows by (kind, outcome).
    """
    _temp_table(con, "audience_outcomes", ("idempotency_key", "status", "error"), outcomes)
    _temp_table(con, "audience_rejections", ("idempotency_key", "phone", "reason"), rejections)
    _temp_table(con, "audience_ids", ("idempotency_key", "phone", "destination_id"), ids)
    con.execute(
        """
        create or replace temp table audience_settled as
        with plans as (
            select o.idempotency_key, o.status, o.error, b.batch_no, from_json(b.contents, ?) as body
            from audience_outcomes as o
            inner join state.audience_batches as b on o.idempotency_key = b.idempotency_key
            where o.status <> 'unsent'
        ),

        adds as (select *, unnest(body.adds) as a from plans),

        removes as (select *, unnest(body.removes) as r from plans),

        members as (
            select idempotency_key, status, error, batch_no, 'add' as action, a.kind,
                   a.member.phone as phone, a.member.customer_id as customer_id, a.fields_hash
            from adds
            union all
            select idempotency_key, status, error, batch_no, 'remove', 'remove',
                   r.phone, r.customer_id, null
            from removes
        )

        select
            m.*,
            case
                when m.status <> 'confirmed' then 'failed'
                when rej.phone is not null then 'rejected'
                else 'sent'
            end as outcome,
            case
                when m.status <> 'confirmed' then m.error
                when rej.phone is not null then rej.reason
                when ? then 'replay of ' || m.idempotency_key
            end as reason
        from members as m
        left join audience_rejections as rej
            on m.action = 'add' and m.idempotency_key = rej.idempotency_key and m.phone = rej.phone""",
        [PLAN_TYPE, replay],
    )
    counts = {
        (kind, outcome): n
        for kind, outcome, n in con.execute(
            "select kind, outcome, count(*) from audience_settled group by all"
        ).fetchall()
    }
    # a fresh group of new numbers cannot be in the sync state yet: skip the delete, which scans it
    replaces = replay or any(kind != "new" and outcome == "sent" for kind, outcome in counts)
    with transaction(con):
        con.execute(
            "insert into state.audience_changes select ?, ?, ?, action, phone, customer_id, batch_no, "
            "outcome, reason, now(), ? from audience_settled order by batch_no, action, phone",
            [run_id, as_of, segment, destination],
        )
        if replaces:
            con.execute(
                "delete from state.audience_sync_state where destination = ? and segment = ? and phone in "
                "(select phone from audience_settled where outcome = 'sent')",
                [destination, segment],
            )
        # pending plans all come from one diff, which names a number once: no two rows here share one
        con.execute(
            "insert into state.audience_sync_state "
            "select ?, s.phone, s.customer_id, s.fields_hash, now(), ?, ?, ids.destination_id "
            "from audience_settled as s left join audience_ids as ids "
            "on s.idempotency_key = ids.idempotency_key and s.phone = ids.phone "
            "where s.action = 'add' and s.outcome = 'sent'",
            [segment, run_id, destination],
        )
        # a settled batch is never resent: drop its contents (names and numbers) rather than keep them forever
        con.execute("""
            update state.audience_batches as b
            set status = o.status, done_at = now(), contents = case when o.status = 'planned' then b.contents end
            from audience_outcomes as o
            where b.idempotency_key = o.idempotency_key""")
    return counts


def _temp_table(con: duckdb.DuckDBPyConnection, name: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Temp table `name` of text columns holding `rows`."""
    con.register(
        f"{name}_rows", pa.table({c: pa.array([row[i] for row in rows], pa.string()) for i, c in enumerate(columns)})
    )
    try:
        con.execute(to_sql(temp(name, exp.select("*").from_(table(f"{name}_rows")))))
    finally:
        con.unregister(f"{name}_rows")


def _save_suppressions(con: duckdb.DuckDBPyConnection) -> None:
    """Replaces state.audience_suppressions with today's list, keeping when each number was first suppressed."""
    con.execute("""
        create or replace temp table audience_suppressions_next as
        with today as (  -- a national number read in several regions is one suppressed number here
            select phone, source, any_value(reason) as reason, min(since) as since
            from audience_suppressed
            group by phone, source
        )

        select s.phone, s.reason, s.source, coalesce(s.since, old.since, now()) as since
        from today as s
        left join state.audience_suppressions as old on s.phone = old.phone and s.source = old.source""")
    with transaction(con):
        con.execute("delete from state.audience_suppressions")
        con.execute("insert into state.audience_suppressions select * from audience_suppressions_next")


def _save_members(
    con: duckdb.DuckDBPyConnection, segment: str, as_of: dt.date, run_id: str, audience: Eligibility
) -> None:
    fields = call("json_object", *(arg for f in audience.fields for arg in (exp.Literal.string(f), column(f))))
    members = exp.select(
        exp.Placeholder(),
        "phone",
        "customer_id",
        "first_name",
        "last_name",
        "country",
        fields,
        exp.Placeholder(),
        exp.Placeholder(),
    ).from_(table("audience_eligible"))
    with transaction(con):
        con.execute("delete from state.audience_members where segment = ?", [segment])
        con.execute(to_sql(exp.insert(members, table("audience_members", "state"))), [segment, as_of, run_id])


def _forget_removed_members(con: duckdb.DuckDBPyConnection, destination: str, segment: str) -> None:
    """Drops from state.audience_members the numbers a held sync removed, so it stays what the gateway holds."""
    with transaction(con):
        con.execute(
            "delete from state.audience_members where segment = ? and phone not in (select phone from "
            "state.audience_sync_state where destination = ? and segment = ?)",
            [segment, destination, segment],
        )


def _held_members_table(
    con: duckdb.DuckDBPyConnection, destination: str, segment: str, audience: Eligibility
) -> pa.Table:
    """The audience a held sync leaves at the destination: its sync state, with each member's details as
    the last real sync sent them (or, for a member adopted from the destination, as they are now)."""
    sent = {c: column(c, "m") for c in ("first_name", "last_name", "country")}
    sent |= {f: call("json_extract_string", column("fields", "m"), exp.Literal.string(f)) for f in audience.fields}
    query = (
        exp.select(
            column("phone", "s"),
            column("customer_id", "s"),
            *(exp.alias_(exp.func("coalesce", value, column(c, "e")), identifier(c)) for c, value in sent.items()),
        )
        .from_("state.audience_sync_state as s")
        .join("state.audience_members as m", on="m.segment = s.segment and m.phone = s.phone", join_type="left")
        .join("audience_eligible as e", on="e.phone = s.phone", join_type="left")
        .where("s.destination = ? and s.segment = ?")
        .order_by(column("phone", "s"))
    )
    return con.sql(to_sql(query), params=[destination, segment]).to_arrow_table()


def _members_table(con: duckdb.DuckDBPyConnection, audience: Eligibility) -> pa.Table:
    columns = ("phone", "customer_id", "first_name", "last_name", "country", *audience.fields)
    query = exp.select(*(column(c) for c in columns)).from_(table("audience_eligible")).order_by(column("phone"))
    return con.sql(to_sql(query)).to_arrow_table()
