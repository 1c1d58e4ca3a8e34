"""state.duckdb's tables: every one is created here, and changed only by a numbered migration.

state.duckdb outlives upgrades (it is what the gateway holds, and who was in which segment when),
so it is never deleted to change a table. `state.schema_version` records the migrations applied;
`migrate` applies the missing ones in order, each in one transaction, and refuses a file written by
a newer smsseg, whose tables this code would misread.
"""

import weakref

import duckdb

from pipeline.warehouse.build import opening, transaction


class StateVersionError(RuntimeError):
    """state.duckdb was written by a newer smsseg than this one."""


# Migration N is MIGRATIONS[N - 1]. Append, never edit: a file at version N has already run 1..N.
MIGRATIONS: list[list[str]] = [
    # 1: the tables as the first releases created them, one by one as each module first ran; a file
    # from then has some or all of them and no schema_version
    [
        # each distinct (number, region) a customer has, normalised once (pipeline/warehouse/phones.py)
        "create table if not exists state.phone_cache (phone varchar, region varchar, phone_e164 varchar)",
        # segment membership over time, one row per stay (pipeline/segments/history.py)
        "create table if not exists state.segment_membership "
        "(segment varchar, customer_id bigint, entered_on date, left_on date)",
        # the first and latest day recorded per segment
        "create table if not exists state.segment_history_days "
        "(segment varchar primary key, first_as_of date, as_of date)",
        # what the gateway holds, as the gateway confirmed it
        """create table if not exists state.audience_sync_state (
            segment varchar, phone varchar, customer_id bigint, fields_hash varchar,
            synced_at timestamptz, run_id varchar)""",
        # one row per add or remove sent, with its outcome: who joined or left an audience when
        """create table if not exists state.audience_changes (
            run_id varchar, as_of date, segment varchar, action varchar, phone varchar, customer_id bigint,
            batch_no integer, outcome varchar, reason varchar, changed_at timestamptz)""",
        "create table if not exists state.audience_suppressions "
        "(phone varchar, reason varchar, source varchar, since timestamptz)",
        # write-ahead plan: a batch is stored before it is sent, so a killed run can replay it with
        # its original Idempotency-Key instead of sending its numbers again under a new one. status:
        # planned (maybe sent; the next run replays it), confirmed, failed (refused for good), unsent
        # (a batch before it in its group finally failed). The contents are dropped once it is settled.
        """create table if not exists state.audience_batches (
            idempotency_key varchar, segment varchar, run_id varchar, batch_no integer, as_of date,
            contents varchar, status varchar, planned_at timestamptz, done_at timestamptz)""",
        # the eligible members of the last real sync of each segment
        """create table if not exists state.audience_members (
            segment varchar, phone varchar, customer_id bigint, first_name varchar, last_name varchar,
            country varchar, fields json, as_of date, run_id varchar)""",
    ],
    # 2: one ledger per destination (file, http, klaviyo, shopify-tags), so switching destinations
    # starts a fresh audience there. Rows from before have no destination: the first real sync of
    # their segment claims them for its destination (pipeline/audience/sync.py), as the release that
    # wrote them, with one gateway, would have. destination_id: the destination's own id for a
    # member (a Klaviyo profile), handed back when removing it.
    [
        "alter table state.audience_sync_state add column destination varchar",
        "alter table state.audience_sync_state add column destination_id varchar",
        "alter table state.audience_changes add column destination varchar",
        "alter table state.audience_batches add column destination varchar",
        # each audience a destination holds: the target it was synced to (a retired definition no
        # longer names it) and the id the destination gave it
        """create table state.audience_targets (
            destination varchar, segment varchar, list_name varchar, tag varchar, audience_id varchar,
            updated_at timestamptz, primary key (destination, segment))""",
    ],
    # 3: GDPR erasures no audience holds any more (pipeline/audience/state.py record_erasures);
    # compacted: the DuckDB files were rewritten since, so no freed page holds the customer's data
    [
        "create table state.erased_customers (customer_id bigint, erased_at timestamptz, compacted boolean)",
    ],
    # 4: the evaluation date is a Dagster partition, and a backfill rewrites an earlier day's history.
    # evaluation_days: every day a run evaluated; a day before the latest is a backfill
    # (pipeline/warehouse/days.py). segment_days: every day a segment's membership was recorded, which a
    # backfilled day needs to know how far its answer carries (pipeline/segments/history.py); seeded
    # from the days the stays begin and end on and the first and latest day of segment_history_days,
    # which it replaces.
    [
        "create table state.evaluation_days (day date primary key, live boolean, run_id varchar, "
        "recorded_at timestamptz)",
        "create table state.segment_days (segment varchar, day date, primary key (segment, day))",
        """insert into state.segment_days
            select distinct segment, day from (
                select segment, entered_on as day from state.segment_membership
                union all select segment, left_on from state.segment_membership where left_on is not null
                union all select segment, first_as_of from state.segment_history_days
                union all select segment, as_of from state.segment_history_days
            )""",
        """insert into state.evaluation_days
            select day, true, null, now() from (select distinct day from state.segment_days)""",
        "drop table state.segment_history_days",
    ],
]
VERSION = len(MIGRATIONS)
# The openings (pipeline/warehouse/build.py) whose attached state.duckdb migrate found or brought to VERSION
_current: "weakref.WeakSet[duckdb.DuckDBPyConnection]" = weakref.WeakSet()


def state_version(con: duckdb.DuckDBPyConnection) -> int:
    """The migrations the attached state.duckdb has had: 0 for a new file or one from before schema_version."""
    tables = {
        row[0] for row in con.execute("select table_name from duckdb_tables() where database_name = 'state'").fetchall()
    }
    if "schema_version" not in tables:
        return 0
    return con.execute("select coalesce(max(version), 0) from state.schema_version").fetchall()[0][0]


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Brings the attached state.duckdb up to VERSION; returns the version it found.

    Every module that reads or writes state calls it first; through a held build the version is read once
    per opening (build.opening), not by each of a night's ~40 calls (~1-5 ms each).
    """
    held = opening(con)
    if held is not None and held in _current:
        return VERSION
    found = state_version(con)
    if found > VERSION:
        raise StateVersionError(
            f"data/state.duckdb is at schema version {found}, but this smsseg knows versions up to {VERSION}: "
            "it was written by a newer smsseg. Run that version (or newer), or restore the state file "
            "kept from before the upgrade; do not delete it (it records what the gateway holds)."
        )
    for version in range(found + 1, VERSION + 1):
        with transaction(con):
            con.execute("create table if not exists state.schema_version (version integer, applied_at timestamptz)")
            for statement in MIGRATIONS[version - 1]:
                con.execute(statement)
            con.execute("insert into state.schema_version values (?, now())", [version])
    if held is not None:
        _current.add(held)
    return found
