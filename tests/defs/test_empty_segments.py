"""An empty segment's asset carries why it is empty, and the run summary prints it under the sizes."""

import datetime as dt
from pathlib import Path

import pytest

from pipeline.cli import print_summary
from pipeline.settings import Settings
from tests.fixtures.nightly import run_nightly_job
from tests.fixtures.stores import Store, customer, order

AS_OF = dt.date(2026, 10, 31)
DEFINITIONS = {
    "recent": "orders_placed MATCHES (date >= -7d)",  # the last order is on 1 October
    "recent_vips": "segments CONTAINS 'recent' AND customer_tags CONTAINS 'vip'",
    "big_spenders": "amount_spent > 1000",  # empty with orders to look at: no reason to give
    "buyers": "number_of_orders >= 1",
}


def test_empty_segments_say_why_in_metadata_and_summary(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    defs = tmp_path / "defs"
    defs.mkdir()
    for name, query in DEFINITIONS.items():
        (defs / f"{name}.yaml").write_text(f'name: {name}\nquery: "{query}"\n')
    store = Store(
        customers=[customer(n, tags=["vip"]) for n in (1, 2)],
        orders=[order(10, 1, processed="2026-10-01T10:00:00Z", total="20.00")],
    )
    settings = Settings(
        source=f"jsonl:{store.write(tmp_path / 'store')}", data_dir=tmp_path / "data", segments_dir=defs
    )
    logs: list[str] = []
    result = run_nightly_job(settings, as_of=AS_OF, log_lines=logs)
    assert result.success

    metadata = {
        e.asset_key.path[-1]: {k: v.value for k, v in e.event_specific_data.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()
        if e.asset_key.path[0] == "segments"
    }
    window = "no order on or after 2026-10-24, the start of this segment's window; the latest order is 2026-10-01"
    assert metadata["recent"]["empty_reason"] == window
    assert metadata["recent_vips"]["empty_reason"] == f"the segment recent it requires is empty: {window}"
    assert metadata["big_spenders"]["size"] == 0 and "empty_reason" not in metadata["big_spenders"]
    assert metadata["buyers"]["size"] == 1 and "empty_reason" not in metadata["buyers"]

    print_summary(result)
    out = capsys.readouterr().out
    assert f"segments/recent is empty: {window}" in out
    assert f"segments/recent_vips is empty: the segment recent it requires is empty: {window}" in out
    assert "big_spenders is empty" not in out and "buyers is empty" not in out
    assert out.index("segments/recent is empty") > out.index("recent_vips ")  # under the sizes table
    assert not any("Ada" in line or "+39347" in line for line in logs)
