"""The asset groups the UI draws: their lineage runs one way, so the group graph has no cycle."""

from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from pipeline.definitions import build_definitions
from pipeline.settings import PROJECT_DIR, Settings


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
