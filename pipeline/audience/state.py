"""The export's durable record in state.duckdb, and the copy of it analysts read in the warehouse.

state.duckdb is attached as `state` on the build connection. It is written a group of batches at
a time, in its own transactions, so a crash at any point leaves it consistent and the next run
resumes.
"""

import duckdb

STATE_TABLES = {
    # what the gateway holds, as the gateway confirmed it
    "audience_sync_state": """(
        segment varchar, phone varchar, customer_id bigint, fields_hash varchar,
        synced_at timestamptz, run_id varchar)""",
    # one row per add or remove sent, with its outcome: who joined or left an audience when
    "audience_changes": """(
        run_id varchar, as_of date, segment varchar, action varchar, phone varchar, customer_id bigint,
        batch_no integer, outcome varchar, reason varchar, changed_at timestamptz)""",
    "audience_suppressions": "(phone varchar, reason varchar, source varchar, since timestamptz)",
    # write-ahead plan: a batch is stored before it is sent, so a killed run can replay it with
    # its original Idempotency-Key instead of sending its numbers again under a new one. status:
    # planned (maybe sent; the next run replays it), confirmed, failed (refused for good), unsent
    # (a batch before it in its group finally failed). The contents are dropped once it is settled.
    "audience_batches": """(
        idempotency_key varchar, segment varchar, run_id varchar, batch_no integer, as_of date,
        contents varchar, status varchar, planned_at timestamptz, done_at timestamptz)""",
    # the eligible members of the last real sync of each segment
    "audience_members": """(
        segment varchar, phone varchar, customer_id bigint, first_name varchar, last_name varchar,
        country varchar, fields json, as_of date, run_id varchar)""",
}

# warehouse table <- state table
WAREHOUSE_COPIES = {
    "audience.members": "state.audience_members",
    "audience.changes": "state.audience_changes",
    "audience.sync_state": "state.audience_sync_state",
    "audience.suppressions": "state.audience_suppressions",
}


def ensure_state_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Creates the export's tables in the attached state database when they are missing."""
    for name, columns in STATE_TABLES.items():
        con.execute(f"create table if not exists state.{name} {columns}")


def state_tables_exist(con: duckdb.DuckDBPyConnection) -> bool:
    found = con.execute("select count(*) from duckdb_tables() where database_name = 'state' "
                        "and table_name in (select unnest(?))", [list(STATE_TABLES)]).fetchall()[0][0]
    return found == len(STATE_TABLES)


def copy_audience_tables(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Copies the export's state into the warehouse being built (audience.*); returns rows per table.

    Analysts read these; the pipeline never does, so the copy can lag a crashed run without harm.
    """
    ensure_state_tables(con)
    con.execute("create schema if not exists audience")
    counts = {}
    for table, source in WAREHOUSE_COPIES.items():
        con.execute(f"create or replace table {table} as select * from {source}")  # noqa: S608 - constant names
        counts[table] = con.execute(f"select count(*) from {table}").fetchall()[0][0]  # noqa: S608
    return counts


def forget_redacted(con: duckdb.DuckDBPyConnection) -> int:
    """Erases redacted customers' numbers from the ledger once no audience holds them; returns rows erased.

    The ledger keeps the customer id and what happened (anonymous rows keep their id, as in the
    marts); only sync_state needs the number, and only until the gateway confirms its removal.
    """
    ensure_state_tables(con)
    return con.execute("""
        update state.audience_changes set phone = null
        where phone is not null
            and customer_id in (select customer_id from staging.stg_redactions)
            and customer_id not in (select customer_id from state.audience_sync_state)
        """).fetchall()[0][0]


def record_erasures(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Records the redacted customers no audience holds any more; returns those whose files are still to rewrite.

    Those are the newly erased and any whose rewrite a crash interrupted (compacted is false): the
    caller rewrites the export files and the DuckDB files, then calls `mark_compacted`. A customer
    still held by an audience (a held or failed export) waits for the removal to be confirmed.
    """
    ensure_state_tables(con)
    # compacted: the DuckDB files were rewritten since, so no freed page holds the customer's data
    con.execute("create table if not exists state.erased_customers "
                "(customer_id bigint, erased_at timestamptz, compacted boolean)")
    con.execute("""
        insert into state.erased_customers
        select customer_id, now(), false from staging.stg_redactions
        where customer_id not in (select customer_id from state.erased_customers)
            and customer_id not in (select customer_id from state.audience_sync_state where customer_id is not null)
        """)
    rows = con.execute("select customer_id from state.erased_customers where not compacted order by 1").fetchall()
    return [row[0] for row in rows]


def mark_compacted(con: duckdb.DuckDBPyConnection, customer_ids: list[int]) -> None:
    """Notes that the files holding these erased customers were rewritten (state.duckdb attached as `state`)."""
    con.execute("update state.erased_customers set compacted = true where customer_id in (select unnest(?))",
                [customer_ids])
