"""Warehouse assets: one per sql/ model, the phone step, and the publish that swaps the warehouse in."""

import datetime as dt
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import dagster as dg
import duckdb

from pipeline.audience.gateways import erase_from_exports
from pipeline.audience.state import copy_audience_tables, forget_redacted, mark_compacted, record_erasures
from pipeline.defs.extract import resource_asset_key
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
from pipeline.warehouse.models import PYTHON_TABLES, Model, load_models
from pipeline.warehouse.phones import refresh_phone_table

POOL = "duckdb"  # DuckDB has one writer: every asset that writes the build warehouse shares this pool
PHONE_TABLE = PYTHON_TABLES[0]
ALL_MARTS = tuple(m.table for m in load_models() if m.schema == "marts")


def table_asset_key(table: str) -> dg.AssetKey:
    """The asset that makes a warehouse table: raw.* come from extraction, the rest from models."""
    schema, name = table.split(".")
    return resource_asset_key(name) if schema == "raw" else dg.AssetKey([schema, name])


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


def model_asset(model: Model) -> dg.AssetsDefinition:
    @dg.asset(
        key=table_asset_key(model.table),
        deps=[table_asset_key(d) for d in model.deps],
        group_name="warehouse",
        kinds={"duckdb", "sql"},
        pool=POOL,
        description=model.description,
        code_version=hashlib.sha256(model.sql.encode()).hexdigest()[:12],
    )
    def _model(context: dg.AssetExecutionContext, settings: PipelineSettings, run: RunOptions) -> dg.MaterializeResult:
        with day_build(context, settings, run, reads=model.deps) as (con, _):
            create_raw_views(con, settings.data_path, model.deps)
            rows = run_model(con, model)
        return dg.MaterializeResult(
            metadata={
                **({} if rows is None else {"rows": dg.MetadataValue.int(rows)}),
                "materialized": model.materialized,
                "sql": dg.MetadataValue.md(f"```sql\n{model.sql}\n```"),
                "path": dg.MetadataValue.path(str(model.path)),
            }
        )

    return _model


@dg.asset(
    key=table_asset_key(PHONE_TABLE),
    deps=[table_asset_key("staging.stg_customers")],
    group_name="warehouse",
    kinds={"duckdb", "python"},
    pool=POOL,
)
def phone_numbers(
    context: dg.AssetExecutionContext, settings: PipelineSettings, run: RunOptions
) -> dg.MaterializeResult:
    """Every customer's phone number in E.164 (NULL when invalid), each distinct number parsed once ever."""
    with day_build(context, settings, run, reads=()) as (con, _):
        counts = refresh_phone_table(con)
    context.log.info(f"phone numbers: {counts}")
    return dg.MaterializeResult(metadata={k: dg.MetadataValue.int(v) for k, v in counts.items()})


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


model_assets = [model_asset(m) for m in load_models()]
MARTS_KEYS = [table_asset_key(m.table) for m in load_models() if m.schema == "marts"]
