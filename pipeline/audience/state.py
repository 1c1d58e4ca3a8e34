"""The export's durable record in state.duckdb, and the copy of it analysts read in the warehouse.

state.duckdb is attached as `state` on the build connection; its tables are made and migrated by
pipeline/warehouse/state.py. It is written a group of batches at
a time, in its own transactions, so a crash at any point leaves it consistent and the next run
resumes.
"""

import duckdb
from sqlglot import exp

from pipeline.sqlbuild import table, to_sql
from pipeline.warehouse.state import migrate

# audience.<table> in the warehouse <- state.<table>
WAREHOUSE_COPIES = {
    "members": "audience_members",
    "changes": "audience_changes",
    "sync_state": "audience_sync_state",
    "suppressions": "audience_suppressions",
}


def copy_audience_tables(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Copies the export's state into the warehouse being built (audience.*); returns rows per table.

    Analysts read these; the pipeline never does, so the copy can lag a crashed run without harm.
    """
    migrate(con)
    con.execute("create schema if not exists audience")
    counts = {}
    for name, source in WAREHOUSE_COPIES.items():
        copy = table(name, "audience")
        con.execute(
            to_sql(
                exp.Create(
                    this=copy, kind="TABLE", replace=True, expression=exp.select("*").from_(table(source, "state"))
                )
            )
        )
        counts[f"audience.{name}"] = con.execute(to_sql(exp.select("count(*)").from_(copy))).fetchall()[0][0]
    return counts


def forget_redacted(con: duckdb.DuckDBPyConnection) -> int:
    """Erases redacted customers' numbers from the ledger once no audience holds them; returns rows erased.

    The ledger keeps the customer id and what happened (anonymous rows keep their id, as in the
    marts); only sync_state needs the number, and only until the gateway confirms its removal.
    """
    migrate(con)
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
    migrate(con)
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
    con.execute(
        "update state.erased_customers set compacted = true where customer_id in (select unnest(?))", [customer_ids]
    )
