"""Keeps a gateway's copy of a segment's audience equal to its eligible members, by diff, crash-safely.

A run: compute the eligible audience; replay any batch a killed run planned but never saw
confirmed (same Idempotency-Key, so the gateway applies it at most once); diff the eligible
set against what the gateway confirmed holding (state.audience_sync_state); then send the
diff batch by batch. Each batch is written to state.audience_batches and committed before it
is sent, and its outcome is committed as soon as the gateway confirms it.
"""

import datetime as dt
import json
import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
from sqlglot import exp

from pipeline.audience.eligibility import (
    ELIGIBLE_TABLE,
    SUPPRESSED_TABLE,
    Eligibility,
    eligible_audience,
    quote_identifier,
)
from pipeline.audience.gateways import AudienceGateway, GatewayError
from pipeline.audience.state import ensure_state_tables, state_tables_exist

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500
DIFF_TABLE = "audience_diff"


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
    sample_adds: list[dict] = field(default_factory=list)  # the first adds by phone (phone, customer_id, kind)
    sample_removes: list[dict] = field(default_factory=list)

    def metadata(self) -> dict[str, int | bool | str]:
        """Flat numbers a person would plot, for a Dagster MaterializeResult."""
        counts = {name: getattr(self, name) for name in (
            "members", "eligible", "added", "updated", "removed", "rejected", "failed", "unchanged",
            "rejected_before", "replayed_batches", "pending_batches", "batches")}
        return {"segment": self.segment, "dry_run": self.dry_run, **counts,
                **{f"excluded_{reason}": n for reason, n in self.excluded.items()}}


class SyncError(RuntimeError):
    """The gateway finally refused the audience or a batch. What was confirmed stays; `result` says how far it got."""

    def __init__(self, message: str, result: SyncResult):
        super().__init__(message)
        self.result = result


def sync_segment(con: duckdb.DuckDBPyConnection, gateway: AudienceGateway, segment: str, *, as_of: dt.date,
                 run_id: str | None = None, fields: tuple[str, ...] = (), suppressions_csv: Path | None = None,
                 name: str | None = None, description: str = "", batch_size: int = DEFAULT_BATCH_SIZE,
                 dry_run: bool = False, sample_size: int = 10) -> SyncResult:
    """Syncs `segments.<segment>` to the gateway; `con` is the build warehouse with state.duckdb as `state`.

    dry_run computes the diff and returns it (counts and a sample) without writing state or
    calling the gateway. Raises SyncError when the gateway finally refuses the audience or a batch.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size {batch_size}: must be at least 1")
    run_id = run_id or uuid.uuid4().hex
    audience = eligible_audience(con, segment, fields=fields, suppressions_csv=suppressions_csv)
    result = SyncResult(segment=segment, run_id=run_id, dry_run=dry_run, members=audience.members,
                        eligible=audience.eligible, excluded=audience.excluded)
    if dry_run:
        _load_current(con, segment, from_state=state_tables_exist(con))
        if state_tables_exist(con):
            result.pending_batches = len(_pending_batches(con, segment))
        _diff(con, result, batch_size, sample_size)
        return result

    ensure_state_tables(con)
    _save_suppressions(con)
    try:
        gateway.upsert_audience(segment, name or segment, description)
    except GatewayError as exc:
        raise SyncError(f"audience {segment}: {exc}", result) from exc
    for plan in _pending_batches(con, segment):
        # a killed run's batch: the gateway may have applied it, so only its own key may resend it
        _send(con, gateway, plan, run_id, as_of, result, replay=True)
        result.replayed_batches += 1
    _load_current(con, segment, from_state=True)
    _diff(con, result, batch_size, sample_size)
    # a rerun under the same run_id numbers on, so no Idempotency-Key is ever used for two contents
    numbered = con.execute("select coalesce(max(batch_no), 0) from state.audience_batches "
                           "where run_id = ? and segment = ?", [run_id, segment]).fetchall()[0][0]
    for part in range(1, result.batches + 1):
        plan = _plan_batch(con, segment, run_id, as_of, numbered + part, part, batch_size, audience)
        _send(con, gateway, plan, run_id, as_of, result, replay=False)
    _save_members(con, segment, as_of, run_id, audience)
    gateway.finish(segment, as_of, _members_table(con, audience))
    log.info("audience %s: %d eligible, %d added, %d updated, %d removed, %d rejected, %d unchanged",
             segment, result.eligible, result.added, result.updated, result.removed, result.rejected,
             result.unchanged)
    return result


@dataclass(frozen=True)
class _Plan:
    key: str
    segment: str
    batch_no: int
    adds: list[dict]  # {"member": what the gateway gets, "fields_hash": ..., "kind": new|update}
    removes: list[dict]  # {"phone", "customer_id"}


def _load_current(con: duckdb.DuckDBPyConnection, segment: str, *, from_state: bool) -> None:
    """Temp tables of what the gateway holds for `segment` and the numbers it refused before."""
    if from_state:
        con.execute("create or replace temp table audience_current as "
                    "select phone, customer_id, fields_hash from state.audience_sync_state where segment = ?",
                    [segment])
        con.execute("create or replace temp table audience_rejected_before as "
                    "select distinct phone from state.audience_changes "
                    "where segment = ? and action = 'add' and outcome = 'rejected'", [segment])
    else:  # a dry run before any real one: state.duckdb may not even have the tables yet
        con.execute("create or replace temp table audience_current "
                    "(phone varchar, customer_id bigint, fields_hash varchar)")
        con.execute("create or replace temp table audience_rejected_before (phone varchar)")


def _diff(con: duckdb.DuckDBPyConnection, result: SyncResult, batch_size: int, sample_size: int) -> None:
    """Temp table `audience_diff(seq, action, kind, phone, customer_id, ...member columns, fields_hash)`.

    A real run counts added/updated/removed as the gateway confirms them; a dry run reports the diff.
    """
    # the adds carry every member column now, so a batch is then a cheap range read of seq
    con.execute(f"""
        create or replace temp table {DIFF_TABLE} as
        with adds as (
            select
                'add' as action,
                case when cur.phone is null then 'new' else 'update' end as kind,
                e.*
            from {ELIGIBLE_TABLE} as e
            left join audience_current as cur on e.phone = cur.phone
            anti join audience_rejected_before as rej on e.phone = rej.phone
            where cur.phone is null or cur.fields_hash is distinct from e.fields_hash
        ),

        removes as (
            select 'remove' as action, 'remove' as kind, cur.phone, cur.customer_id
            from audience_current as cur
            anti join {ELIGIBLE_TABLE} as e on cur.phone = e.phone
        )

        select row_number() over (order by action, phone) as seq, *
        from (select * from adds union all by name select * from removes)
        order by seq""")  # noqa: S608 - constant names
    counts = dict(con.execute(f"select kind, count(*) from {DIFF_TABLE} group by kind").fetchall())  # noqa: S608
    result.unchanged = con.execute(f"""
        select count(*) from {ELIGIBLE_TABLE} as e
        inner join audience_current as cur on e.phone = cur.phone and e.fields_hash = cur.fields_hash
        """).fetchall()[0][0]  # noqa: S608
    result.rejected_before = con.execute(f"""
        select count(*) from {ELIGIBLE_TABLE} as e
        semi join audience_rejected_before as rej on e.phone = rej.phone
        anti join audience_current as cur on e.phone = cur.phone""").fetchall()[0][0]  # noqa: S608
    total = sum(counts.values())
    result.batches = -(-total // batch_size)
    for action, target in (("add", result.sample_adds), ("remove", result.sample_removes)):
        target.extend({"phone": phone, "customer_id": customer_id, "kind": kind} for phone, customer_id, kind in
                      con.execute(f"select phone, customer_id, kind from {DIFF_TABLE} where action = ? "  # noqa: S608
                                  "order by phone limit ?", [action, sample_size]).fetchall())
    if result.dry_run:
        result.added, result.updated, result.removed = (counts.get(k, 0) for k in ("new", "update", "remove"))


def _plan_batch(con: duckdb.DuckDBPyConnection, segment: str, run_id: str, as_of: dt.date, batch_no: int,
                part: int, batch_size: int, audience: Eligibility) -> _Plan:
    """Reads part `part` of the diff and commits it to state.audience_batches before anything is sent."""
    extra = "".join(f", {quote_identifier(f)}" for f in audience.fields)
    rows = con.execute(f"""
        select action, kind, phone, customer_id, fields_hash, first_name, last_name, country {extra}
        from {DIFF_TABLE}
        where seq > ? and seq <= ?
        order by seq""", [(part - 1) * batch_size, part * batch_size]).fetchall()  # noqa: S608
    adds, removes = [], []
    for action, kind, phone, customer_id, fields_hash, first_name, last_name, country, *values in rows:
        if action == "add":
            member = {"phone": phone, "customer_id": customer_id, "first_name": first_name,
                      "last_name": last_name, "country": country, **dict(zip(audience.fields, values, strict=True))}
            adds.append({"member": member, "fields_hash": fields_hash, "kind": kind})
        else:
            removes.append({"phone": phone, "customer_id": customer_id})
    plan = _Plan(key=f"{run_id}:{segment}:{batch_no}", segment=segment, batch_no=batch_no, adds=adds,
                 removes=removes)
    con.execute("insert into state.audience_batches values (?, ?, ?, ?, ?, ?, 'planned', now(), null)",
                [plan.key, segment, run_id, batch_no, as_of, json.dumps({"adds": adds, "removes": removes})])
    return plan


def _pending_batches(con: duckdb.DuckDBPyConnection, segment: str) -> list[_Plan]:
    rows = con.execute("select idempotency_key, batch_no, contents from state.audience_batches "
                       "where segment = ? and status = 'planned' order by planned_at, batch_no",
                       [segment]).fetchall()
    plans = []
    for key, batch_no, contents in rows:
        body = json.loads(contents)
        plans.append(_Plan(key=key, segment=segment, batch_no=batch_no, adds=body["adds"], removes=body["removes"]))
    return plans


def _send(con: duckdb.DuckDBPyConnection, gateway: AudienceGateway, plan: _Plan, run_id: str, as_of: dt.date,
          result: SyncResult, *, replay: bool) -> None:
    """Sends one planned batch and commits its outcome; on a final failure records it and raises SyncError."""
    try:
        sent = gateway.send_batch(plan.segment, [a["member"] for a in plan.adds], plan.removes, plan.key)
    except GatewayError as exc:
        # A retryable failure may still have landed at the gateway: the plan stays pending and the
        # next run replays it under the same key. A refusal did not land: the next diff resends.
        status = "planned" if exc.retryable else "failed"
        rows = [("add", a["member"]["phone"], a["member"]["customer_id"], a["fields_hash"], "failed", str(exc))
                for a in plan.adds]
        rows += [("remove", r["phone"], r["customer_id"], None, "failed", str(exc)) for r in plan.removes]
        _record(con, plan, rows, run_id, as_of, status, replaces=False)
        result.failed += len(rows)
        raise SyncError(f"audience {plan.segment}: batch {plan.batch_no} failed: {exc}", result) from exc
    rejected = dict(sent.rejected)
    replayed = f"replay of {plan.key}" if replay else None
    rows = [("add", a["member"]["phone"], a["member"]["customer_id"], a["fields_hash"],
             "rejected" if a["member"]["phone"] in rejected else "sent",
             rejected.get(a["member"]["phone"], replayed)) for a in plan.adds]
    rows += [("remove", r["phone"], r["customer_id"], None, "sent", replayed) for r in plan.removes]
    # new numbers of a fresh batch cannot be in the sync state yet: skip the delete, which scans it
    replaces = replay or bool(plan.removes) or any(a["kind"] == "update" for a in plan.adds)
    _record(con, plan, rows, run_id, as_of, "confirmed", replaces=replaces)
    result.rejected += len(rejected)
    for a in plan.adds:
        if a["member"]["phone"] not in rejected:
            result.added += a["kind"] == "new"
            result.updated += a["kind"] == "update"
    result.removed += len(plan.removes)


def _record(con: duckdb.DuckDBPyConnection, plan: _Plan, rows: list[tuple], run_id: str, as_of: dt.date,
            status: str, *, replaces: bool) -> None:
    """One transaction: the ledger rows, the sync state they imply, and the plan's new status."""
    columns = ("action", "phone", "customer_id", "fields_hash", "outcome", "reason")
    con.register("audience_batch_rows", pa.table(
        {name: pa.array([row[i] for row in rows], pa.int64() if name == "customer_id" else pa.string())
         for i, name in enumerate(columns)}))
    try:
        con.execute("begin transaction")
        con.execute("insert into state.audience_changes "
                    "select ?, ?, ?, action, phone, customer_id, ?, outcome, reason, now() from audience_batch_rows",
                    [run_id, as_of, plan.segment, plan.batch_no])
        if replaces:
            con.execute("delete from state.audience_sync_state where segment = ? and phone in "
                        "(select phone from audience_batch_rows where outcome = 'sent')", [plan.segment])
        con.execute("insert into state.audience_sync_state "
                    "select ?, phone, customer_id, fields_hash, now(), ? from audience_batch_rows "
                    "where action = 'add' and outcome = 'sent'", [plan.segment, run_id])
        # a settled batch is never resent: drop its contents (names and numbers) rather than keep them forever
        con.execute("update state.audience_batches set status = ?, done_at = now(), "
                    "contents = case when ? = 'planned' then contents end where idempotency_key = ?",
                    [status, status, plan.key])
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    finally:
        con.unregister("audience_batch_rows")


def _save_suppressions(con: duckdb.DuckDBPyConnection) -> None:
    """Replaces state.audience_suppressions with today's list, keeping when each number was first suppressed."""
    con.execute(f"""
        create or replace temp table audience_suppressions_next as
        select s.phone, s.reason, s.source, coalesce(s.since, old.since, now()) as since
        from {SUPPRESSED_TABLE} as s
        left join state.audience_suppressions as old on s.phone = old.phone and s.source = old.source""")  # noqa: S608
    con.execute("begin transaction")
    try:
        con.execute("delete from state.audience_suppressions")
        con.execute("insert into state.audience_suppressions select * from audience_suppressions_next")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def _save_members(con: duckdb.DuckDBPyConnection, segment: str, as_of: dt.date, run_id: str,
                  audience: Eligibility) -> None:
    pairs = ", ".join(f"{exp.Literal.string(f).sql(dialect='duckdb')}, {quote_identifier(f)}" for f in audience.fields)
    con.execute("begin transaction")
    try:
        con.execute("delete from state.audience_members where segment = ?", [segment])
        con.execute(f"""
            insert into state.audience_members
            select ?, phone, customer_id, first_name, last_name, country, json_object({pairs}), ?, ?
            from {ELIGIBLE_TABLE}""", [segment, as_of, run_id])  # noqa: S608 - names quoted by sqlglot
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def _members_table(con: duckdb.DuckDBPyConnection, audience: Eligibility) -> pa.Table:
    columns = ", ".join(["phone", "customer_id", "first_name", "last_name", "country",
                         *(quote_identifier(f) for f in audience.fields)])
    return con.sql(f"select {columns} from {ELIGIBLE_TABLE} order by phone").to_arrow_table()  # noqa: S608


