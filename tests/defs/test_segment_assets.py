"""Segment assets in the nightly job: views in the published warehouse, failures kept to their own asset."""

from pathlib import Path

import dagster as dg
import duckdb

from pipeline.definitions import build_definitions
from pipeline.settings import Settings
from tests.defs.test_nightly import AS_OF, run_nightly, small_store


def write_defs(folder: Path, **queries: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, query in queries.items():
        (folder / f"{name}.yaml").write_text(f"name: {name}\ndescription: test\nquery: {query}\n")
    return folder


def test_segments_become_views_with_sizes(tmp_path: Path) -> None:
    store = small_store(4).write(tmp_path / "store")
    defs = write_defs(tmp_path / "defs", big="amount_spent > 2", bigger="segments CONTAINS 'Big' AND amount_spent > 3")
    result = run_nightly(tmp_path / "data", store, segments_dir=defs)
    assert result.success
    sizes = {
        e.asset_key: e.event_specific_data.materialization.metadata["size"].value
        for e in result.get_asset_materialization_events()
        if e.asset_key.path[0] == "segments"
    }
    assert sizes == {dg.AssetKey(["segments", "big"]): 3, dg.AssetKey(["segments", "bigger"]): 2}
    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as con:
        assert con.sql("select customer_id from segments.bigger order by 1").fetchall() == [(3,), (4,)]


def test_a_broken_definition_fails_its_own_asset_and_no_other(tmp_path: Path) -> None:
    store = small_store(4).write(tmp_path / "store")
    defs = write_defs(
        tmp_path / "defs", good="number_of_orders >= 1", typo="amount_spnt > 2", uses_typo="segments CONTAINS 'typo'"
    )
    result = run_nightly(tmp_path / "data", store, segments_dir=defs)
    assert not result.success
    failed = [e.step_key for e in result.all_events if e.is_step_failure]
    started = {e.step_key for e in result.all_events if e.is_step_start}
    assert failed == ["segments__typo"]
    made = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "segments" in started and "segments/good" in made  # the healthy segments' step
    assert "segments__uses_typo" not in started  # upstream failed
    message = next(e for e in result.all_events if e.is_step_failure).event_specific_data.error.message
    assert "typo.yaml:3" in message and "amount_spent" in message  # where, and the closest known name
    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as con:
        assert con.sql("select count(*) from segments.good").fetchall() == [(4,)]
        assert con.sql("select as_of from marts.customers limit 1").fetchall() == [(AS_OF,)]


def test_a_definition_file_with_no_usable_name_fails_an_asset_of_its_own(tmp_path: Path) -> None:
    store = small_store(4).write(tmp_path / "store")
    defs = write_defs(tmp_path / "defs", good="number_of_orders >= 1")
    (defs / "broken.yaml").write_text("name: broken\nquery: [amount_spent\nsms: {export: true}\n")
    (defs / "Bad-Name.yaml").write_text("name: Bad-Name\nquery: amount_spent > 1\n")
    (defs / "Bad_Name.yml").write_text("- a list\n")  # the same key once cleaned up: it gets its own
    result = run_nightly(tmp_path / "data", store, segments_dir=defs)
    assert not result.success  # a typo must not silently leave an export out of the night
    failures = {e.step_key: e.event_specific_data.error.message for e in result.all_events if e.is_step_failure}
    assert sorted(failures) == ["segment_files__Bad_Name", "segment_files__Bad_Name_2", "segment_files__broken"]
    assert "broken.yaml:3:4: YAML syntax error" in failures["segment_files__broken"]
    assert "Bad-Name.yaml:1:7: 'Bad-Name' is not a valid segment name" in failures["segment_files__Bad_Name"]
    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as con:
        assert con.sql("select count(*) from segments.good").fetchall() == [(4,)]  # the rest published


def test_membership_history_records_who_entered_and_left_each_day(tmp_path: Path) -> None:
    import datetime as dt

    from tests.fixtures.stores import order

    defs = write_defs(tmp_path / "defs", recent="last_order_date >= -7d")
    store = small_store(3)  # orders on 2026-10-01
    day1, day2, day3 = dt.date(2026, 10, 5), dt.date(2026, 10, 10), dt.date(2026, 10, 12)
    assert run_nightly(tmp_path / "data", store.write(tmp_path / "store"), day1, segments_dir=defs).success
    store.orders.append(order(200, 2, processed="2026-10-09T10:00:00Z"))
    assert run_nightly(tmp_path / "data", store.write(tmp_path / "store"), day2, segments_dir=defs).success
    assert run_nightly(tmp_path / "data", store.write(tmp_path / "store"), day2, segments_dir=defs).success
    assert run_nightly(tmp_path / "data", store.write(tmp_path / "store"), day1, segments_dir=defs).success  # backfill
    store.orders.append(order(201, 1, processed="2026-10-11T10:00:00Z"))  # customer 1 comes back
    assert run_nightly(tmp_path / "data", store.write(tmp_path / "store"), day3, segments_dir=defs).success
    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as con:
        stays = con.sql(
            "select customer_id, entered_on, left_on from audience.segment_membership "
            "where segment = 'recent' order by 1, 2"
        ).fetchall()
    # customer 2 stays throughout (ordered on Oct 9); 1 leaves on day 2 and comes back on day 3;
    # the rerun of day 2 did not double anything and the backfill of day 1 changed nothing
    assert stays == [(1, day1, day2), (1, day3, None), (2, day1, None), (3, day1, day2)]


def test_a_segment_with_only_what_it_reads_upstream_materialises_on_a_new_warehouse(tmp_path: Path) -> None:
    """A UI *Materialize* of one segment selects it and its upstream: the marts its view reads, not every
    mart. On a warehouse no night has built, its step must not reach for a table outside the selection."""
    store = small_store(4).write(tmp_path / "store")
    defs_dir = write_defs(
        tmp_path / "defs", big="amount_spent > 2", texted="sms_events MATCHES (type = 'clicked', date >= -60d)"
    )
    settings = Settings(source=f"jsonl:{store}", data_dir=tmp_path / "data", segments_dir=defs_dir)
    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    selection = dg.AssetSelection.assets(dg.AssetKey(["segments", "big"])).upstream().resolve(graph)
    assert dg.AssetKey(["marts", "customers"]) in selection
    assert dg.AssetKey(["marts", "sms_events"]) not in selection  # read by `texted`, not by `big`
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, asset_selection=list(selection), partition_key=AS_OF.isoformat(), raise_on_error=False
        )
    failed = [(e.step_key, e.event_specific_data.error.message) for e in result.all_events if e.is_step_failure]
    assert result.success, failed
    size = next(
        e.event_specific_data.materialization.metadata["size"].value
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["segments", "big"])
    )
    assert size == 3  # customers 2, 3 and 4 spent 2.50, 3.50 and 4.50
