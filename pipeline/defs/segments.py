"""Segment assets: one per definition file, each a view segments.<name> in the build warehouse."""

import re
from pathlib import Path

import dagster as dg

from pipeline.defs.resources import PipelineSettings, RunOptions
from pipeline.defs.warehouse import ALL_MARTS, POOL, day_build, table_asset_key
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


def segment_asset(name: str, path: Path, definitions: DefinitionSet) -> dg.AssetsDefinition:
    definition = definitions.definitions.get(name)
    reads, uses = segment_reads(definition), definition.uses if definition else ()

    @dg.asset(
        key=segment_key(name),
        deps=[*map(table_asset_key, reads), *map(segment_key, uses)],
        group_name="segments",
        kinds={"duckdb", "sql"},
        pool=POOL,
        description=(definition.description if definition else None) or f"Segment defined in {path.name}",
        metadata={"definition": dg.MetadataValue.path(str(path))},
    )
    def _segment(
        context: dg.AssetExecutionContext, settings: PipelineSettings, run: RunOptions
    ) -> dg.MaterializeResult:
        if definition is None:
            raise failure(path, definitions.errors_for(name))

        with day_build(context, settings, run, reads) as (con, night):
            as_of = night.day
            before = previous_size(con, name, as_of)
            size = create_segment_view(con, definition, as_of)
            change = (
                {}
                if before is None
                else {"previous_size": dg.MetadataValue.int(before), "size_change": dg.MetadataValue.int(size - before)}
            )
            if not run.dry_run:  # live or backfill, the day's membership is recorded
                change |= {k: dg.MetadataValue.int(v) for k, v in record_membership(con, name, as_of).items()}
            # dates, tags, collections and segment names: nothing personal reaches the event log
            reason = empty_reason(con, definition, as_of, definitions.definitions) if size == 0 else None
        return dg.MaterializeResult(
            metadata={
                "size": dg.MetadataValue.int(size),
                **change,
                **({"empty_reason": reason} if reason else {}),
                "as_of": as_of.isoformat(),
                "mode": night.mode,
                "exported": definition.export,
                "sql": dg.MetadataValue.md(f"```sql\n{render(segment_view(definition, as_of), pretty=True)}\n```"),
            }
        )

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
    return [
        *(segment_asset(name, path, definitions) for name, path in definitions.names.items()),
        *(unreadable_asset(path, key, definitions) for path, key in unreadable_keys(definitions.unnamed).items()),
    ], definitions
