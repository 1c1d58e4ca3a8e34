"""The asset graph: the groups' lineage runs one way, and a segment waits for what its view reads."""

import datetime as dt
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from bench.segments import SEGMENTS, bench_segments, write_segment_defs
from pipeline.definitions import build_definitions
from pipeline.defs.keys import table_asset_key
from pipeline.defs.segments import segment_key
from pipeline.defs.warehouse import MARTS_KEYS
from pipeline.segments import load_definitions, render, segment_view
from pipeline.settings import PROJECT_DIR, Settings
from pipeline.warehouse.models import load_models, referenced_tables


def test_the_group_lineage_has_no_cycle(tmp_path: Path) -> None:
    defs = build_definitions(Settings(data_dir=tmp_path, segments_dir=PROJECT_DIR / "segment_defs"))
    graph = defs.resolve_asset_graph()
    group = {key: graph.get(key).group_name for key in graph.get_all_asset_keys()}
    upstream: dict[str, set[str]] = {}
    for key, name in group.items():
        upstream.setdefault(name, set()).update(group[p] for p in graph.get(key).parent_keys if group[p] != name)
    try:
        order = list(TopologicalSorter(upstream).static_order())
    except CycleError as e:
        raise AssertionError(f"the groups' lineage has a cycle: {e.args[1]}") from None
    assert order.index("warehouse") < order.index("segments") < order.index("exports") < order.index("publish")


def test_a_segment_waits_for_every_table_its_view_reads(tmp_path: Path) -> None:
    """The segment's deps against the SQL its step runs, parsed again from the text: every model table it
    names (a segment that ran before one of them would read yesterday's table, and say nothing)."""
    write_segment_defs(tmp_path / "defs", bench_segments(len(SEGMENTS)))  # the whole language
    for path in (PROJECT_DIR / "segment_defs").glob("*.yaml"):
        (tmp_path / "defs" / path.name).write_text(path.read_text())
    settings = Settings(data_dir=tmp_path / "data", segments_dir=tmp_path / "defs")
    graph = build_definitions(settings).resolve_asset_graph()
    models = {m.table: table_asset_key(m.table) for m in load_models()}
    definitions = load_definitions(tmp_path / "defs").definitions
    narrowed = 0
    for name, definition in definitions.items():
        deps = graph.get(segment_key(name)).parent_keys
        read = set(referenced_tables(render(segment_view(definition, dt.date(2026, 12, 6)))))
        assert {models[t] for t in read if t in models} <= deps, name
        assert {segment_key(t.split(".")[1]) for t in read if t.startswith("segments.")} - {segment_key(name)} <= deps
        if "audience.sms_reachable" in read:  # built in the step from consent and phones: after every mart
            assert set(MARTS_KEYS) <= deps, name
        narrowed += not set(MARTS_KEYS) <= deps
    assert len(definitions) > 40 and narrowed > len(definitions) / 2  # most read a few marts, not all
