"""Segment assets: one per definition file, each a view segments.<name> in the build warehouse; the healthy
ones evaluated in one step."""

import re
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb

from pipeline.defs.keys import table_asset_key
from pipeline.defs.resources import PipelineSettings, RunOptions
from pipeline.defs.warehouse import ALL_MARTS, POOL, day_build
from pipeline.segments import (
    DefinitionSet,
    SegmentDefinition,
    create_segment_view,
    empty_reason,
    load_definitions,
    reads_reachability,
    render,
    segment_view,
    tables_read,
)
from pipeline.segments.history import previous_size, record_membership
from pipeline.warehouse.days import Evaluation
from pipeline.warehouse.models import load_models


def segment_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["segments", name])


def unreadable_keys(paths: list[Path]) -> dict[Path, dg.AssetKey]:
    """Definition files with no usable name: keyed by the file, apart from every segment's key, each
    once (a-b.yaml and a_b.yml are segment_files/a_b and segment_files/a_b_2)."""
    keys: dict[Path, dg.AssetKey] = {}
    for path in paths:
        base = name = re.sub(r"[^A-Za-z0-9_]", "_", path.stem)
        n = 1
        while dg.AssetKey(["segment_files", name]) in keys.values():
            n += 1
            name = f"{base}_{n}"
        keys[path] = dg.AssetKey(["segment_files", name])
    return keys


def failure(path: Path, errors: list) -> dg.Failure:
    shown = "\n\n".join(str(e) for e in errors)
    return dg.Failure(f"{path}: the definition has errors; fix them (smsseg segments check):\n\n{shown}")


def segment_reads(definition: SegmentDefinition | None) -> tuple[str, ...]:
    """The warehouse tables the segment's view reads, as its compiled query names them: its asset waits for
    them, and its step brings them to the run's day (a UI rerun of the segment materialises just these).

    A definition that reads can_receive_sms reads every mart, and staging under them, to build
    audience.sms_reachable; one with errors too (its step only fails). Fewer tables than every mart is
    what the asset graph should show, and a Dagster step looks up the latest partition of each of its
    deps, in the instance, before it starts.
    """
    if definition is None or reads_reachability(definition):
        return ALL_MARTS
    models = {m.table for m in load_models()}
    return tuple(sorted(tables_read(definition) & models))


def segment_spec(name: str, path: Path, definitions: DefinitionSet, reads: tuple[str, ...]) -> dg.AssetSpec:
    """The segment's asset, after the tables it `reads` (segment_reads) and the segments it uses."""
    definition = definitions.definitions.get(name)
    return dg.AssetSpec(
        segment_key(name),
        deps=[*map(table_asset_key, reads), *map(segment_key, definition.uses if definition else ())],
        group_name="segments",
        kinds={"duckdb", "sql"},
        description=(definition.description if definition else None) or f"Segment defined in {path.name}",
        metadata={"definition": dg.MetadataValue.path(str(path))},
        skippable=True,
    )


def evaluate_segment(
    con: duckdb.DuckDBPyConnection,
    definition: SegmentDefinition,
    night: Evaluation,
    run: RunOptions,
    definitions: DefinitionSet,
) -> dg.MaterializeResult:
    """The segment's view as of the night's day, its membership recorded (not by a dry run), and what its
    materialization records: dates, tags, collections and segment names, nothing personal."""
    name, as_of = definition.name, night.day
    before = previous_size(con, name, as_of)
    size = create_segment_view(con, definition, as_of)
    change = (
        {}
        if before is None
        else {"previous_size": dg.MetadataValue.int(before), "size_change": dg.MetadataValue.int(size - before)}
    )
    if not run.dry_run:  # live or backfill, the day's membership is recorded
        change |= {k: dg.MetadataValue.int(v) for k, v in record_membership(con, name, as_of).items()}
    reason = empty_reason(con, definition, as_of, definitions.definitions) if size == 0 else None
    return dg.MaterializeResult(
        asset_key=segment_key(name),
        metadata={
            "size": dg.MetadataValue.int(size),
            **change,
            **({"empty_reason": reason} if reason else {}),
            "as_of": as_of.isoformat(),
            "mode": night.mode,
            "exported": definition.export,
            "sql": dg.MetadataValue.md(f"```sql\n{render(segment_view(definition, as_of), pretty=True)}\n```"),
        },
    )


def healthy_segments_asset(definitions: DefinitionSet) -> dg.AssetsDefinition:
    """Every healthy segment, one asset each, evaluated in one step that opens the build once.

    A step per segment cost Dagster's own work and an opening of the build each, for views that take
    milliseconds. The UI still shows, plots and reruns each segment: a run of some (a subset) evaluates
    just those. A segment that fails at run time fails the step, and with it every export of the night:
    the checker (smsseg segments check) is what keeps a valid definition from failing there.
    """
    healthy = [definitions.definitions[name] for name in definitions.healthy()]  # each after those it uses
    reads = {d.name: segment_reads(d) for d in healthy}  # compiled once, not again by every night's step

    @dg.multi_asset(
        name="segments",
        specs=[segment_spec(d.name, definitions.names[d.name], definitions, reads[d.name]) for d in healthy],
        can_subset=True,
        pool=POOL,
    )
    def _segments(
        context: dg.AssetExecutionContext, settings: PipelineSettings, run: RunOptions
    ) -> Iterator[dg.MaterializeResult]:
        chosen = [d for d in healthy if segment_key(d.name) in context.selected_asset_keys]
        with day_build(context, settings, run, sorted({t for d in chosen for t in reads[d.name]})) as (con, night):
            for definition in chosen:
                yield evaluate_segment(con, definition, night, run, definitions)

    return _segments


def segment_asset(name: str, path: Path, definitions: DefinitionSet) -> dg.AssetsDefinition:
    """A segment that is not healthy, in a step of its own: a definition with errors fails it, and one that
    uses such a segment waits for it (and is skipped), so neither stops the healthy segments' step."""
    definition = definitions.definitions.get(name)
    reads = segment_reads(definition)

    @dg.multi_asset(
        name=segment_key(name).to_python_identifier(), specs=[segment_spec(name, path, definitions, reads)], pool=POOL
    )
    def _segment(
        context: dg.AssetExecutionContext, settings: PipelineSettings, run: RunOptions
    ) -> Iterator[dg.MaterializeResult]:
        if definition is None:
            raise failure(path, definitions.errors_for(name))
        with day_build(context, settings, run, reads) as (con, night):
            yield evaluate_segment(con, definition, night, run, definitions)

    return _segment


def unreadable_asset(path: Path, key: dg.AssetKey, definitions: DefinitionSet) -> dg.AssetsDefinition:
    """A definition file whose name could not be read still fails a run of its own, rather than vanish from it."""

    @dg.asset(
        key=key,
        group_name="segments",
        kinds={"yaml"},
        description=f"Segment definition {path.name}, which has errors and no usable name",
        metadata={"definition": dg.MetadataValue.path(str(path))},
    )
    def _unreadable() -> dg.MaterializeResult:
        raise failure(path, definitions.errors_in(path))

    return _unreadable


def segment_assets(segments_dir: Path) -> tuple[list[dg.AssetsDefinition], DefinitionSet]:
    definitions = load_definitions(segments_dir)
    healthy = definitions.healthy()
    return [
        *([healthy_segments_asset(definitions)] if healthy else []),
        *(segment_asset(name, path, definitions) for name, path in definitions.names.items() if name not in healthy),
        *(unreadable_asset(path, key, definitions) for path, key in unreadable_keys(definitions.unnamed).items()),
    ], definitions
