"""Warehouse assets: one per sql/ model and the phone table, made in one step, and the publish that swaps the
warehouse in."""

import datetime as dt
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from graphlib import TopologicalSorter

import dagster as dg
import duckdb

from pipeline.audience.gateways import erase_from_exports
from pipeline.audience.state import copy_audience_tables, forget_redacted, mark_compacted, record_erasures
from pipeline.defs.data_tests import DataTest, data_test_result, load_data_tests
from pipeline.defs.keys import table_asset_key
from pipeline.defs.resources import PipelineSettings, RunOptions, evaluation_day, run_evaluation
from pipeline.segments import SegmentDefinition
from pipeline.segments.compiler import bring_views_to_day
from pipeline.segments.history import copy_history
from pipeline.warehouse.build import (
    attach_state,
    bring_to_day,
    create_raw_views,
    open_build,
    publish,
    rewrite_fresh,
    run_model,
)
from pipeline.warehouse.days import Evaluation
from pipeline.warehouse.models import PYTHON_TABLES, load_models
from pipeline.warehouse.phones import refresh_phone_table

POOL = "duckdb"  # DuckDB has one writer: every asset that writes the build warehouse shares this pool
PHONE_TABLE = PYTHON_TABLES[0]
MODELS = {m.table: m for m in load_models()}
ALL_MARTS = tuple(table for table, m in MODELS.items() if m.schema == "marts")


@contextmanager
def day_build(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
    settings: PipelineSettings,
    run: RunOptions,
    reads: Iterable[str] = ALL_MARTS,
) -> Iterator[tuple[duckdb.DuckDBPyConnection, Evaluation]]:
    """The build warehouse as of this run's day, with state.duckdb attached, and whether the run is live.

    The marts among `reads` (the tables the step reads) and what they are built from are of the run's
    day first: rebuilt when an earlier step, or a backfill, left them as of another day.
    """
    day = evaluation_day(context)
    with settings.memory_bound(), open_build(settings.data_path, day, settings.memory_limit) as con:
        attach_state(con, settings.data_path)
        evaluation = run_evaluation(context, con, run)
        rebuilt = bring_to_day(con, day, reads)
        if rebuilt:
            context.log.info(f"rebuilt as of {day}, as they were of another day: {', '.join(rebuilt)}")
        yield con, evaluation


PHONE_DEPS = ("staging.stg_customers",)


def warehouse_tables() -> dict[str, tuple[str, ...]]:
    """Every table the models' step makes, each after the tables it reads: the sql/ models and the phone table
    (made in Python, read by models)."""
    reads = {table: m.deps for table, m in MODELS.items()} | {PHONE_TABLE: PHONE_DEPS}
    graph = {table: [d for d in deps if d in reads] for table, deps in reads.items()}
    return {table: reads[table] for table in TopologicalSorter(graph).static_order()}


def table_spec(table: str, reads: tuple[str, ...]) -> dg.AssetSpec:
    model = MODELS.get(table)
    common = {"key": table_asset_key(table), "deps": list(map(table_asset_key, reads)), "group_name": "warehouse"}
    if model is None:
        return dg.AssetSpec(
            **common,
            kinds={"duckdb", "python"},
            description="Every customer's phone number in E.164 (NULL when invalid), each distinct number parsed "
            "once ever.",
            skippable=True,
        )
    return dg.AssetSpec(
        **common,
        kinds={"duckdb", "sql"},
        description=model.description,
        code_version=hashlib.sha256(model.sql.encode()).hexdigest()[:12],
        skippable=True,  # a table downstream of a failed blocking data test is not built
    )


def build_table(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, dg.MetadataValue | str]:
    """Makes one table of the build; returns what its materialization records."""
    model = MODELS.get(table)
    if model is None:
        return {k: dg.MetadataValue.int(v) for k, v in refresh_phone_table(con).items()}
    rows = run_model(con, model)
    return {
        **({} if rows is None else {"rows": dg.MetadataValue.int(rows)}),
        "materialized": model.materialized,
        "sql": dg.MetadataValue.md(f"```sql\n{model.sql}\n```"),
        "path": dg.MetadataValue.path(str(model.path)),
    }


def models_asset(tests: list[DataTest]) -> dg.AssetsDefinition:
    """Every staging and marts table, one asset each, made in one step that opens the build once, as dbt's
    Dagster assets do; each table's data tests run as soon as it, and any table of the step they read, is made.

    A step per table cost ~30 ms of Dagster's own work and an opening of the build each: most of a small
    shop's night. The UI still shows, plots and reruns each table: a run of some tables (a subset) makes
    just those, after bringing what they read to the run's day. A blocking test that fails leaves
    everything downstream of its table unbuilt, and fails the step when it ends.
    """
    tables = warehouse_tables()

    @dg.multi_asset(
        name="models",
        specs=[table_spec(table, reads) for table, reads in tables.items()],
        check_specs=[test.spec() for test in tests],
        can_subset=True,
        pool=POOL,
    )
    def _models(
        context: dg.AssetExecutionContext, settings: PipelineSettings, run: RunOptions
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        chosen = [table for table in tables if table_asset_key(table) in context.selected_asset_keys]
        checks = [test for test in tests if test.key in context.selected_asset_check_keys]
        needed = {d for table in chosen for d in tables[table]} | {t for test in checks for t in test.reads}
        reads = sorted(needed - set(chosen))
        blocked: set[str] = set()  # tables a failed blocking test found wrong, and what is made from them
        unbuilt: list[str] = []
        # a test runs once every table it reads that this step makes is made (its own first)
        waiting = {test: set(test.reads) & set(chosen) for test in checks}
        with day_build(context, settings, run, reads=reads) as (con, _):
            create_raw_views(con, settings.data_path, reads)
            for table in chosen:
                if blocked.intersection(tables[table]):
                    blocked.add(table)
                    unbuilt.append(table)
                    continue
                metadata = build_table(con, table)
                # as a step per table did: the blocks of the table it replaced are free for the next one
                # only after a checkpoint (one at the step's end left the file 23% bigger at 100k)
                con.execute("checkpoint")
                yield dg.MaterializeResult(asset_key=table_asset_key(table), metadata=metadata)
                for unmade in waiting.values():
                    unmade.discard(table)
                ready = [test for test, unmade in waiting.items() if not unmade]
                for test in ready:
                    del waiting[test]
                    result = data_test_result(con, test)
                    if test.blocking and not result.passed:
                        blocked.add(test.table)
                    yield result
            # tests of tables the step does not make (the UI's "Execute checks"): on the tables the build holds.
            # Those still waiting for a table are downstream of a failed blocking test, as that table is.
            yield from (data_test_result(con, test) for test, unmade in waiting.items() if not unmade)
        if unbuilt:
            context.log.error(f"not built, downstream of a failed blocking data test: {', '.join(unbuilt)}")

    return _models


def copy_for_analysts(con: duckdb.DuckDBPyConnection, healthy: list[SegmentDefinition], day: dt.date) -> None:
    """The warehouse about to be published: every healthy segment's view as of its day, and the pipeline's
    own records that analysts read."""
    bring_views_to_day(con, healthy, day)
    forget_redacted(con)
    copy_audience_tables(con)
    copy_history(con)


def published_warehouse_asset(deps: Sequence[dg.AssetKey], healthy: list[SegmentDefinition]) -> dg.AssetsDefinition:
    """The live warehouse.duckdb: the build, copied in with one rename once everything upstream is done,
    with the views of the `healthy` segments (a broken definition's has no place in it)."""

    # a group of its own: it comes after the segments and exports, so in the warehouse group it made the
    # lineage of groups a cycle (warehouse -> segments -> exports -> warehouse)
    @dg.asset(
        key="warehouse", deps=list(deps), group_name="publish", kinds={"duckdb"}, pool=POOL, output_required=False
    )
    def _publish(
        context: dg.AssetExecutionContext, settings: PipelineSettings, run: RunOptions
    ) -> Iterator[dg.MaterializeResult]:
        """data/warehouse.duckdb, swapped in atomically: readers keep the snapshot they opened.

        Only a live run publishes; a backfill leaves the analysts' warehouse as it is (and has no
        materialization for its day). A night that finished erasing a redacted customer (every
        audience has let them go) also erases them from the file gateway's past exports and rewrites
        the DuckDB files fresh, so the published copy, the build and state.duckdb hold no trace of them.
        """
        with day_build(context, settings, run) as (con, night):
            if not night.live:
                context.log.info("backfill: data/warehouse.duckdb stays as the latest live day published it")
                return
            copy_for_analysts(con, healthy, night.day)
            erased = [] if run.dry_run else record_erasures(con)
            figures = {
                "customers": dg.MetadataValue.int(con.execute("select count(*) from marts.customers").fetchall()[0][0]),
                "counted_orders": dg.MetadataValue.int(
                    con.execute("select count(*) from marts.orders").fetchall()[0][0]
                ),
            }
        if run.dry_run:
            context.log.info("dry run: the warehouse was built but not published")
            yield dg.MaterializeResult(metadata={**figures, "published": False})
            return
        erasure = {}
        if erased:
            files = erase_from_exports(settings.data_path, erased)
            sizes = rewrite_fresh(settings.data_path, settings.memory_limit)
            with day_build(context, settings, run, reads=()) as (con, _):
                mark_compacted(con, erased)
            context.log.info(
                f"erased {len(erased)} redacted customer(s): {files} export file(s) rewritten, "
                f"DuckDB files rewritten fresh ({sizes})"
            )
            erasure = {
                "erased_customers": dg.MetadataValue.int(len(erased)),
                "export_files_rewritten": dg.MetadataValue.int(files),
            }
        path = publish(settings.data_path)
        context.log.info(f"published {path}")
        yield dg.MaterializeResult(metadata={**figures, **erasure, "path": dg.MetadataValue.path(str(path))})

    return _publish


models = models_asset([test for test in load_data_tests() if not test.table.startswith("raw.")])
MARTS_KEYS = [table_asset_key(table) for table in ALL_MARTS]
