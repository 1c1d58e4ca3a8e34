"""The next warehouse, built beside the live one and swapped in atomically.

Analysts keep `warehouse.duckdb` open at any hour. DuckDB lets one process write a file, so the
run never writes the live file: it builds `build/warehouse.duckdb` and publishes a copy with one
rename. A reader holding the old file keeps its snapshot; a crash leaves the old file whole.
"""

import datetime as dt
import os
import shutil
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pyarrow.parquet as pq
from sqlglot import exp

from pipeline.settings import DEFAULT_MEMORY_LIMIT
from pipeline.sqlbuild import column, count_rows, identifier, qualified, table, to_sql
from pipeline.store.schema import RESOURCES
from pipeline.warehouse.models import Model, load_macros, load_models

SCHEMAS = ("raw", "staging", "marts", "segments", "audience")
# Build warehouses held open in this process (see held_open): path -> the connection that holds it
_held: dict[Path, duckdb.DuckDBPyConnection | None] = {}
# The connection that holds the database each step's connection joined (see opening)
_holders: "weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection]" = (
    weakref.WeakKeyDictionary()
)


class WarehouseError(RuntimeError):
    """The warehouse could not be built or published; the live file is untouched."""


# What DuckDB says when another process has the file open read-write (one writer per file)
LOCKED = "Could not set lock on file"
WHO_HOLDS_IT = (
    "That is usually another run of the pipeline (`smsseg run` keeps the build open until it "
    "ends; a run from the UI, for one step at a time): let it finish, then rerun. Otherwise close "
    "the process named (data/build and data/state.duckdb are the pipeline's own: open only "
    "data/warehouse.duckdb). Nothing was changed."
)


@contextmanager
def _not_locked(what: str) -> Iterator[None]:
    """Turns DuckDB refusing a file another process holds into a WarehouseError that says what to do."""
    try:
        yield
    except duckdb.IOException as e:
        if LOCKED not in str(e):
            raise
        reason = str(e).splitlines()[0].removeprefix("IO Error: ")
        raise WarehouseError(f"{what} is open in another process: {reason}. {WHO_HOLDS_IT}") from None


def live_path(data_dir: Path) -> Path:
    return Path(data_dir) / "warehouse.duckdb"


def build_path(data_dir: Path) -> Path:
    return Path(data_dir) / "build" / "warehouse.duckdb"


def state_path(data_dir: Path) -> Path:
    return Path(data_dir) / "state.duckdb"


def raw_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "raw"


def shop_timezone(data_dir: Path) -> str:
    """The shop's time zone from the latest extracted shop line; UTC before any extraction."""
    files = sorted((raw_dir(data_dir) / "shop").glob("*.parquet"))
    if not files:
        return "UTC"
    rows = pq.read_table(files[-1], columns=["iana_timezone"]).to_pylist()
    return (rows[-1]["iana_timezone"] if rows else None) or "UTC"


def first_order_day(data_dir: Path, timezone: str) -> dt.date | None:
    """The day of the shop's first order in its time zone, from the extracted batches; None before any."""
    batches = sorted((raw_dir(data_dir) / "orders").glob("*.parquet"))
    if not batches:
        return None
    files = exp.Array(expressions=[exp.Literal.string(str(path)) for path in batches])
    first = exp.select(exp.func("min", column("created_at"))).from_(exp.func("read_parquet", files))
    with duckdb.connect() as con:
        earliest = con.execute(to_sql(first)).fetchall()[0][0]
    if earliest is None:
        return None
    return earliest.astimezone(ZoneInfo(timezone)).date()


@contextmanager
def open_build(
    data_dir: Path, as_of: dt.date, memory_limit: str = DEFAULT_MEMORY_LIMIT
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the next warehouse with `as_of` set for the models.

    DuckDB would take 80% of RAM; bounded by `memory_limit`, it spills joins and windows to disk
    instead, so the run stays within it however big the machine is.

    The build file persists between runs, so rerunning one model from the UI builds on the rest.
    When it is missing, it starts as a copy of the live warehouse.
    """
    build, live = build_path(data_dir), live_path(data_dir)
    build.parent.mkdir(parents=True, exist_ok=True)
    if not build.exists() and live.exists():
        shutil.copyfile(live, build)
    key = build.resolve()
    with _not_locked("The build warehouse"):
        if key in _held and _held[key] is None:
            # a connection of its own: DuckDB hands the database it opened to the next connect of this path
            _held[key] = duckdb.connect(str(build))
            _prepare(_held[key])
        con = duckdb.connect(str(build))
    if _held.get(key) is not None:
        _holders[con] = _held[key]
    try:
        con.execute("set memory_limit = ?", [memory_limit])
        con.execute("set variable as_of = ?::date", [as_of])
        # where the steps that read more than the warehouse find it (audience.sms_reachable: suppressions.csv)
        con.execute("set variable data_dir = ?", [str(Path(data_dir).resolve())])
        if key not in _held:
            _prepare(con)
        yield con
        con.execute("checkpoint")
    finally:
        con.close()


def _prepare(con: duckdb.DuckDBPyConnection) -> None:
    """The build's schemas, macros and day stamps, once per opening of the file: a held build is
    prepared when first opened, not by each of the night's steps (recreating the macros made every
    step's checkpoint write the catalog again: ~15 ms a step)."""
    for schema in SCHEMAS:
        con.execute(to_sql(exp.Create(this=exp.Table(db=identifier(schema)), kind="SCHEMA", exists=True)))
    # kept in the file, not the connection: the published warehouse's views call them too
    for macro in load_macros():
        con.execute(macro)
    # a warehouse built by an earlier release has no day stamps
    con.execute("create table if not exists main.built_as_of (table_name varchar primary key, as_of date)")


@contextmanager
def held_open(data_dir: Path) -> Iterator[None]:
    """Keeps the build warehouse open in this process from the first `open_build` until the block ends.

    `smsseg run` runs the night's steps in one process, each in its own `open_build`: opening
    the file, reading its catalog and attaching state.duckdb took ~30 ms a step, and closing it
    dropped DuckDB's cache of the tables the step before had just written. Held, each step's
    connection joins the open database instead. Each step still ends with a checkpoint, so the
    file is whole between steps and `publish` copies a complete warehouse; state.duckdb, attached
    to it, is checkpointed when the block ends (until then its commits are in its WAL, which a
    next open replays).
    """
    path = build_path(data_dir).resolve()
    if path in _held:  # already held by an enclosing block, which closes it
        yield
        return
    _held[path] = None
    try:
        yield
    finally:
        holder = _held.pop(path)
        if holder is not None:
            holder.close()


def opening(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection | None:
    """The connection holding the held build that `con` joined, for as long as it stays open; None for
    a connection of its own.

    What is true of the open database, such as the schema version of the state.duckdb attached to it
    (no other process can write it meanwhile), needs checking once per opening, not by every step.
    """
    return _holders.get(con)


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One transaction: committed when the block ends, rolled back when it raises (even on a kill signal)."""
    con.execute("begin transaction")
    try:
        yield
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")


def attach_state(con: duckdb.DuckDBPyConnection, data_dir: Path) -> None:
    """Attaches state.duckdb, the pipeline's durable record, as schema `state`."""
    with _not_locked("state.duckdb"):
        con.execute("attach if not exists ? as state", [str(state_path(data_dir).resolve())])


def create_raw_views(con: duckdb.DuckDBPyConnection, data_dir: Path, reads: Iterable[str] | None = None) -> None:
    """raw.<resource> views over the Parquet batches there are now: those among `reads` (schema-qualified
    tables a query reads, e.g. a model's deps), or all of them.

    A view names its files rather than a glob, so the published warehouse's raw.* hold what its
    marts were built from: a batch a later run extracts shows up only once that run publishes, not
    in yesterday's warehouse when the run fails after extracting it.
    """
    wanted = None if reads is None else {table.removeprefix("raw.") for table in reads if table.startswith("raw.")}
    for resource in (r for r in RESOURCES if wanted is None or r.name in wanted):
        folder = raw_dir(data_dir).resolve() / resource.name
        batches = sorted(folder.glob("*.parquet"))
        if not batches:
            raise WarehouseError(f"{folder}: no Parquet batch. Run the extract assets first.")
        files = exp.Array(expressions=[exp.Literal.string(str(path)) for path in batches])
        source = exp.func("read_parquet", files, exp.EQ(this=exp.column("union_by_name"), expression=exp.true()))
        view = exp.Create(
            this=table(resource.name, "raw"),
            kind="VIEW",
            replace=True,
            expression=exp.select("*").from_(source),
        )
        con.execute(to_sql(view))


def run_model(con: duckdb.DuckDBPyConnection, model: Model) -> int | None:
    """Materialises one model as a table, or as a view when it says so; returns a table's row count.

    The build file persists between runs, so the object may be there already, of the other kind:
    it is replaced in the same transaction. A mart is stamped with the day it was built as of.
    """
    kind, name = model.materialized, to_sql(qualified(model.table))
    with transaction(con):
        existing = con.execute(
            "select table_type from information_schema.tables where table_schema = ? and table_name = ?",
            [model.schema, model.name],
        ).fetchall()
        if existing and existing[0][0] != ("VIEW" if kind == "view" else "BASE TABLE"):
            con.execute(f"drop {'table' if kind == 'view' else 'view'} {name}")
        # the model's own SQL from its file in sql/; only the name is built
        con.execute(f"create or replace {kind} {name} as\n{model.sql}")
        if model.schema == "marts":
            stamp(con, model.table, con.execute("select getvariable('as_of')").fetchall()[0][0])
    if kind == "view":
        return None  # counting would compute it: the reason it is a view is to compute it once, where it is read
    return con.execute(to_sql(count_rows(qualified(model.table)))).fetchall()[0][0]


def stamp(con: duckdb.DuckDBPyConnection, table: str, day: dt.date) -> None:
    """Records that `table` (a mart, or a segment's view) holds the answer as of `day`."""
    con.execute("insert or replace into main.built_as_of values (?, ?)", [table, day])


def built_as_of(con: duckdb.DuckDBPyConnection) -> dict[str, dt.date]:
    """The day each mart and segment view of the build was made as of."""
    return dict(con.execute("select table_name, as_of from main.built_as_of").fetchall())


def bring_to_day(con: duckdb.DuckDBPyConnection, day: dt.date, reads: Iterable[str]) -> list[str]:
    """Rebuilds, as of `day`, every mart that `reads` (tables) depend on and that is of another day.

    One build file serves every day: after a backfill of an earlier day its marts are that day's,
    so a step of another day, a UI rerun of one segment say, first rebuilds them for its own day
    rather than read another day's. In a night's run they are already of its day: one query.
    Returns the marts rebuilt.
    """
    models = {m.table: m for m in load_models()}
    needed, queue = set(), [t for t in reads if t in models]
    while queue:
        table = queue.pop()
        if table not in needed and models[table].schema == "marts":
            needed.add(table)
            queue.extend(d for d in models[table].deps if d in models)
    stamps = built_as_of(con)
    rebuilt: list[str] = []
    for table, model in models.items():  # dependency order
        if table in needed and (stamps.get(table) != day or any(d in rebuilt for d in model.deps)):
            run_model(con, model)
            rebuilt.append(table)
    return rebuilt


def publish(data_dir: Path) -> Path:
    """Swaps the built warehouse in as the live one: a copy under a temporary name, then a rename."""
    build, live = build_path(data_dir), live_path(data_dir)
    if not build.exists():
        raise WarehouseError(f"{build}: nothing built to publish. Run the warehouse assets first.")
    tmp = live.with_name(f".{live.name}.tmp")
    shutil.copyfile(build, tmp)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, live)
    # A published file is a copy of a closed, checkpointed build: it has no WAL of its own. One at
    # this path was left by a read-write connection to an earlier night, and would stop every
    # reader from opening this one ("WAL checkpoint iteration does not match").
    live.with_name(f"{live.name}.wal").unlink(missing_ok=True)
    return live


def rewrite_fresh(data_dir: Path, memory_limit: str = DEFAULT_MEMORY_LIMIT) -> dict[str, int]:
    """Rewrites the build warehouse and state.duckdb into fresh files; returns the bytes of each after.

    DuckDB reuses the blocks a delete or a replaced table frees, but does not zero them: an erased
    customer's name and number stay in the file until a block happens to be overwritten. A copy
    of the live data into a new file holds none of them; it is written under a temporary name and
    renamed over the old, so a crash leaves one whole file or the other. The build must not be in
    use: a run's held connection to it is closed first, and the next step opens the new file.
    """
    build = build_path(data_dir)
    holder = _held.get(build.resolve())
    if holder is not None:
        holder.close()
        _held[build.resolve()] = None
    return {path.name: _rewrite_file(path, memory_limit) for path in (build, state_path(data_dir)) if path.exists()}


def _rewrite_file(path: Path, memory_limit: str) -> int:
    fresh = path.with_name(f".{path.name}.fresh")
    fresh.unlink(missing_ok=True)
    with _not_locked(str(path)), duckdb.connect() as con:
        con.execute("set memory_limit = ?", [memory_limit])
        con.execute("set temp_directory = ?", [str(path.with_name(f".{path.name}.spill"))])
        con.execute("attach ? as old", [str(path)])
        con.execute("attach ? as fresh", [str(fresh)])
        con.execute("copy from database old to fresh")
        # detaching checkpoints both: the old file's WAL is folded in and gone, the new one has none
        con.execute("detach old")
        con.execute("detach fresh")
    with open(fresh, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(fresh, path)
    shutil.rmtree(path.with_name(f".{path.name}.spill"), ignore_errors=True)
    return path.stat().st_size


def build_all(data_dir: Path, as_of: dt.date, memory_limit: str = DEFAULT_MEMORY_LIMIT) -> dict[str, int | None]:
    """Builds every model into the next warehouse in one call (tests, benchmark); returns row counts (None: a view).

    The nightly job runs the same steps as separate assets. Staging comes first, then the phone
    numbers that marts.customers reads, then the marts, then who can receive SMS (which the segment
    assets otherwise build, with the first view of the day).
    """
    from pipeline.warehouse.phones import refresh_phone_table
    from pipeline.warehouse.reach import REACHABLE, refresh_reachable

    counts = {}
    models = load_models()
    with open_build(data_dir, as_of, memory_limit) as con:
        create_raw_views(con, data_dir)
        attach_state(con, data_dir)
        for model in (m for m in models if m.schema == "staging"):
            counts[model.table] = run_model(con, model)
        counts["staging.stg_phone_numbers"] = refresh_phone_table(con)["numbers"]
        for model in (m for m in models if m.schema == "marts"):
            counts[model.table] = run_model(con, model)
        counts[REACHABLE] = refresh_reachable(con, as_of, data_dir)
    return counts
