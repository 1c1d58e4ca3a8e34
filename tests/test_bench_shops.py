"""`smsseg bench --shops`: the many-shops figures, on a local cluster. Its own file, so xdist runs it beside
the one-shop bench rather than after it. Speed is never asserted here."""

import json
from pathlib import Path

import dagster as dg
import pytest

from pipeline.cli import main


def test_many_shops_bench_reports_the_engine_one_after_another_and_the_fixed_cost(tmp_path: Path) -> None:
    """Two shops on a local cluster of one worker: the bench's figures, and the cap (SMSSEG_WORKERS) held."""
    out, work = tmp_path / "shops.json", tmp_path / "work"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SMSSEG_WORKERS", "1")
        env.delenv("SMSSEG_DASK_SCHEDULER", raising=False)
        status = main(
            ["bench", "--shops", "2", "--customers-per-shop", "5", "--alone-sample", "1", "--out", str(out)]
            + ["--work-dir", str(work), "--keep"]
        )
    report = json.loads(out.read_text())
    assert status == 0, report
    assert (report["shops"], report["customers_per_shop"], report["workers"]) == (2, 5, 1)
    assert report["alone_sampled_shops"] == 1 and sorted(p.name for p in (work / "alone").iterdir()) == ["shop-0000"]
    assert not report["engine_failed"] and report["alone_failed_shops"] == 0 and report["fixed_cost_warm_ok"]
    for key in ("engine_s", "alone_s", "fixed_cost_warm_s"):
        assert report[key] > 0, key
    assert report["speedup"] == pytest.approx(report["alone_s"] / report["engine_s"], abs=0.01)

    nights = {}  # one worker runs one shop at a time: the two shops' steps do not overlap
    with dg.DagsterInstance.from_config(str(work / "fleet" / "dagster")) as instance:
        (run,) = instance.get_run_records()
        for kind in (dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS):
            for record in instance.get_records_for_run(run.dagster_run.run_id, of_type=kind).records:
                nights.setdefault(record.event_log_entry.step_key, []).append(record.event_log_entry.timestamp)
    assert sorted(nights) == ["shop_shop_0000", "shop_shop_0001"], nights
    (_, first_end), (second_start, _) = sorted(nights.values())
    assert first_end <= second_start, f"two shops ran at once on one worker: {nights}"


def test_many_shops_bench_refuses_nothing_to_measure(tmp_path: Path) -> None:
    assert main(["bench", "--shops", "0", "--out", str(tmp_path / "x.json")]) == 2
    assert main(["bench", "--out", str(tmp_path / "x.json")]) == 2  # neither --customers nor --shops
    for sample in ("0", "3"):
        assert main(["bench", "--shops", "2", "--alone-sample", sample, "--out", str(tmp_path / "x.json")]) == 2
