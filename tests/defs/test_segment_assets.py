"""Segment assets in the nightly job: views in the published warehouse, failures kept to their own asset."""

from pathlib import Path

import dagster as dg
import duckdb

from tests.defs.test_nightly import AS_OF, run_nightly, small_store


def write_defs(folder: Path, **queries: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, query in queries.items():
        (folder / f"{name}.yaml").write_text(f"name: {name}\ndescription: test\nquery: {query}\n")
    return folder


def test_segments_become_views_with_sizes(tmp_path: Path) -> None:
    store = small_store(4).write(tmp_path / "store")
    defs = write_defs(tmp_path / "defs", big="amount_spent > 2", bigger="segments CONTAINS 'big' AND amount_spent > 3")
    result = run_nightly(tmp_path / "data", store, segments_dir=defs)
    assert result.success
    sizes = {e.asset_key: e.event_specific_data.materialization.metadata["size"].value
             for e in result.get_asset_materialization_events() if e.asset_key.path[0] == "segments"}
    assert sizes == {dg.AssetKey(["segments", "big"]): 3, dg.AssetKey(["segments", "bigger"]): 2}
    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as con:
        assert con.sql("select customer_id from segments.bigger order by 1").fetchall() == [(3,), (4,)]


def test_a_broken_definition_fails_its_own_asset_and_no_other(tmp_path: Path) -> None:
    store = small_store(4).write(tmp_path / "store")
    defs = write_defs(tmp_path / "defs", good="number_of_orders >= 1", typo="amount_spnt > 2",
                      uses_typo="segments CONTAINS 'typo'")
    result = run_nightly(tmp_path / "data", store, segments_dir=defs)
    assert not result.success
    failed = [e.step_key for e in result.all_events if e.is_step_failure]
    started = {e.step_key for e in result.all_events if e.is_step_start}
    assert failed == ["segments__typo"]
    assert "segments__good" in started and "segments__uses_typo" not in started  # upstream failed
    message = next(e for e in result.all_events if e.is_step_failure).event_specific_data.error.message
    assert "typo.yaml:3" in message and "amount_spent" in message  # where, and the closest known name
    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as con:
        assert con.sql("select count(*) from segments.good").fetchall() == [(4,)]
        assert con.sql("select as_of from marts.customers limit 1").fetchall() == [(AS_OF,)]
