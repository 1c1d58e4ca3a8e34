"""`smsseg bench` on a small store: every figure of the report is there, and the memberships the
pipeline computes equal the hand-written DuckDB baseline's. Speed is never asserted here."""

import json
import os
from pathlib import Path

import pytest
import yaml

from pipeline.bench import SEGMENTS, STAGES, Sampler, bench_segments, stage_of, write_segment_defs
from pipeline.cli import main
from pipeline.segments import load_definitions
from pipeline.segments.catalogue import ATTRIBUTES, FUNCTIONS

CUSTOMERS = 300


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    work = tmp_path_factory.mktemp("work")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SMSSEG_MEMORY_LIMIT", "512MB")  # both nights and the baseline run under the run's setting
        assert main(["bench", "--customers", str(CUSTOMERS), "--out", str(out), "--work-dir", str(work)]) == 0
    assert not work.exists()  # big data is deleted unless --keep
    return json.loads(out.read_text())


def test_report_has_every_figure(report: dict) -> None:
    for key in ("customers", "orders", "line_items", "total_s", "warm_total_s", "baseline_s", "ratio",
                "peak_rss_mb"):
        assert isinstance(report[key], int | float), key
    assert set(report["stages"]) == set(STAGES)
    assert all(seconds >= 0 for seconds in report["stages"].values())
    assert report["customers"] == CUSTOMERS and report["orders"] > 0 and report["line_items"] > report["orders"]
    assert report["ratio"] == pytest.approx(report["warm_total_s"] / report["baseline_s"], abs=0.01)
    assert report["peak_rss_mb"] > 0
    assert set(report["cpu_s"]) == {"night1", "night2", "baseline"}
    assert all(seconds > 0 for seconds in report["cpu_s"].values())
    for key in ("stages_cpu", "warm_stages_cpu"):
        assert set(report[key]) == set(STAGES) and all(seconds >= 0 for seconds in report[key].values())
    # the baseline's own stages, to set beside ours: it has no phones and no export
    for key in ("baseline_stages", "baseline_stages_cpu"):
        assert set(report[key]) == {"ingest_s", "warehouse_s", "segments_s"}
    assert sum(report["baseline_stages"].values()) <= report["baseline_s"]
    # Every stage's CPU is part of the night's, which also holds Dagster's own work between steps.
    assert 0 < sum(report["stages_cpu"].values()) <= report["cpu_s"]["night1"]
    assert report["night_two_changes"]["changed_customers"] > 0 and report["night_two_changes"]["new_orders"] > 0
    assert report["memory_limit"] == "512MB"


def test_a_bad_memory_limit_is_refused_before_anything_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("SMSSEG_MEMORY_LIMIT", "plenty")
    out, work = tmp_path / "b.json", tmp_path / "w"
    assert main(["bench", "--customers", "10", "--out", str(out), "--work-dir", str(work)]) == 2
    assert "SMSSEG_MEMORY_LIMIT 'plenty'" in capsys.readouterr().out
    assert not work.exists() and not out.exists()


def test_memberships_equal_the_baseline(report: dict) -> None:
    assert report["membership_mismatches"] == 0, report["mismatches_by_segment"]
    assert len(report["segment_sizes"]) == len(SEGMENTS)
    # Most segments have members even in a small store, so the comparison compares something.
    assert sum(size > 0 for size in report["segment_sizes"].values()) >= len(SEGMENTS) * 3 // 4


def test_bench_segments_are_valid_and_use_the_whole_language(tmp_path: Path) -> None:
    write_segment_defs(tmp_path, bench_segments(len(SEGMENTS) * 2 + 3))
    definitions = load_definitions(tmp_path)
    assert definitions.errors == [] and len(definitions.definitions) == len(SEGMENTS) * 2 + 3
    queries = " ".join(yaml.safe_load(p.read_text())["query"] for p in tmp_path.glob("*.yaml"))
    for name in [*ATTRIBUTES, *FUNCTIONS, *(p for f in FUNCTIONS.values() for p in f.params)]:
        assert name in queries, name
    for operator in ("BETWEEN", "IS NULL", "IS NOT NULL", "NOT CONTAINS", "NOT MATCHES", " IN (", " OR ", "!="):
        assert operator in queries, operator


def test_steps_count_under_their_stage() -> None:
    assert stage_of("raw__orders") == "ingest_s"
    assert stage_of("staging__stg_phone_numbers") == "phones_s"
    assert stage_of("staging__stg_orders") == stage_of("marts__customers") == stage_of("warehouse") == "warehouse_s"
    assert stage_of("segments__vip_big_spenders") == "segments_s"
    assert stage_of("exports__vip_big_spenders") == "export_s"


def test_a_steps_cpu_is_read_off_the_samples_at_its_start_and_end() -> None:
    sampler = Sampler()
    sampler.cpu_samples = [(100.0, 1.0), (100.02, 1.5), (100.04, 2.5)]  # (time, CPU seconds so far)
    assert sampler.cpu_between(100.0, 100.04) == 1.5
    assert sampler.cpu_between(100.01, 100.03) == 0.5  # the last sample at or before each instant
    assert sampler.cpu_between(99.0, 100.0) == 0.0  # before the first sample counts as the first


def test_the_process_tree_leaves_out_a_process_that_ends_while_it_looks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The memory sampler lists the process tree every 20 ms while child processes come and go. A 5M run
    lost its sampler thread, and with it every later CPU figure, to a worker whose /proc entry was
    there when pathlib checked it and gone when it listed it (FileNotFoundError from scandir)."""
    import subprocess
    import sys

    from pipeline import bench

    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    real_glob = Path.glob

    def racing_glob(self: Path, pattern: str):  # what pathlib does when the entry goes mid-listing
        if str(self) == f"/proc/{ended.pid}/task":
            raise FileNotFoundError(2, "No such file or directory", str(self))
        return real_glob(self, pattern)

    monkeypatch.setattr(Path, "glob", racing_glob)
    assert bench._process_tree(ended.pid) == [ended.pid]
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert alive.pid in bench._process_tree(os.getpid())
    finally:
        alive.kill()
        alive.wait()


def test_destinations_report_each_sync_against_its_floor(tmp_path: Path) -> None:
    out = tmp_path / "destinations.json"
    assert main(["bench", "--customers", "1200", "--destinations", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["members"] == 1200 and report["throttled"] is False
    assert report["klaviyo"]["detail"]["held"] == 1200, "every number reached the list"
    assert report["shopify_tags"]["detail"]["members"] == 1200
    for name in ("klaviyo", "shopify_tags"):
        row = report[name]
        assert row["requests"] > 0 and row["seconds"] > 0
        expected = round(row["seconds"] / row["floor_seconds"], 2) if row["floor_seconds"] else None
        assert row["ratio_to_floor"] == expected
    assert report["klaviyo"]["floor_seconds"] == 0, "3 import jobs fit the first minute's allowance"
    # the last batch, 200 numbers, is small enough for a tagsAdd each: 2,000 points, a bucket and 10 s more
    assert report["shopify_tags"]["floor_seconds"] > 0
