"""`smsseg bench` on a small store: every figure of the report is there, and the memberships the
pipeline computes equal the hand-written DuckDB baseline's. Speed is never asserted here."""

import json
import os
from pathlib import Path

import pytest
import yaml

from bench import measure
from bench.destinations import bench_klaviyo, bench_shopify_tags, floor_points, rate_limit_floor
from bench.measure import Sampler
from bench.nights import STAGES, stage_of
from bench.segments import SEGMENTS, bench_segments, write_segment_defs
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
    for key in ("customers", "orders", "line_items", "total_s", "warm_total_s", "baseline_s", "ratio", "peak_rss_mb"):
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


def test_a_bad_memory_limit_is_refused_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
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
    assert stage_of("extract") == stage_of("raw__data_tests") == "ingest_s"
    assert stage_of("models") == stage_of("warehouse") == "warehouse_s"
    assert stage_of("segments") == stage_of("segments__broken") == "segments_s"
    assert stage_of("segments__vip_big_spenders_size_swing") is None
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

    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    real_glob = Path.glob

    def racing_glob(self: Path, pattern: str):  # what pathlib does when the entry goes mid-listing
        if str(self) == f"/proc/{ended.pid}/task":
            raise FileNotFoundError(2, "No such file or directory", str(self))
        return real_glob(self, pattern)

    monkeypatch.setattr(Path, "glob", racing_glob)
    assert measure._process_tree(ended.pid) == [ended.pid]
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert alive.pid in measure._process_tree(os.getpid())
    finally:
        alive.kill()
        alive.wait()


def test_destinations_report_each_sync_against_its_floor(tmp_path: Path) -> None:
    out = tmp_path / "destinations.json"
    assert main(["bench", "--customers", "1200", "--destinations", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["members"] == 1200 and report["throttled"] is False
    for name in ("klaviyo", "shopify_tags"):
        row = report[name]
        assert row["held"] == 1200, f"every number reached {name}"
        assert row["requests"] > 0 and row["seconds"] > 0
        expected = round(row["seconds"] / row["floor_seconds"], 2) if row["floor_seconds"] else None
        assert row["ratio_to_floor"] == expected
    assert report["klaviyo"]["floor_seconds"] == 0, "3 import jobs fit the first minute's allowance"
    # the last batch, 200 numbers, is small enough for a tagsAdd each: 2,000 points, a bucket and 10 s more
    assert report["shopify_tags"]["floor_seconds"] > 0


def test_klaviyo_reports_time_requests_and_the_rate_limit_floor() -> None:
    run = bench_klaviyo(1200, 500, throttled=False)
    assert run.held == 1200
    by_operation = run.detail["by_operation"]
    assert by_operation["bulk_import_profiles"] == 3
    assert by_operation["get_profiles_for_list"] == 12, "the list asked before each import, 100 a time"
    assert by_operation["get_profiles"] == 12, "and the new profiles' ids after it"
    assert run.requests == sum(by_operation.values())
    assert run.floor_seconds == 0, "3 jobs and 12 lookups fit the first minute's allowance"
    assert run.seconds > 0 and run.ratio_to_floor is None
    # 451 jobs at 150 a minute need 3 minutes after the first; 1,000 lookups at 750 a minute, 1
    assert rate_limit_floor({"bulk_import_profiles": 451, "get_profiles": 1000}) == ("bulk_import_profiles", 180.0)
    assert rate_limit_floor({"bulk_import_profiles": 150, "get_profiles": 1501}) == ("get_profiles", 120.0)


def test_shopify_tags_tags_everyone_and_prices_it_against_the_rate_limits() -> None:
    run = bench_shopify_tags(600, 300, throttled=False)
    assert run.held == 600
    assert (run.detail["uploads"], run.detail["downloads"]) == (2, 2)
    # one page listing who carries the tag (no one), then per batch: stage, run, polls (2 in the emulator)
    assert run.requests == 1 + 2 * (1 + 1 + 2)
    assert run.detail["points"] == 2 + 2 * 250 + 2 * (10 + 10 + 1), "a page of customers, then 21 a bulk mutation"
    assert run.detail["floor_seconds_by_plan"] == {"standard": 0.0, "advanced": 0.0, "plus": 0.0}, (
        "544 points: a bucket's worth"
    )
    assert run.floor_seconds == 0.0 and run.seconds > 0
    assert floor_points(600, 100) == 6 * (100 + 10 * 100), "small batches pay 10 points a tagsAdd"


def test_the_benchmark_stays_out_of_every_other_command(capsys: pytest.CaptureFixture) -> None:
    """`smsseg --help` (and every command but bench) imports no benchmark module: bench/ is not the pipeline's."""
    import subprocess
    import sys

    smsseg = Path(sys.executable).parent / "smsseg"  # the installed command, as a user runs it
    for argv in (["--help"], ["run", "--help"], ["segments", "--help"]):
        started = subprocess.run(
            [smsseg, *argv],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"},
        )
        imported = {line.rsplit("|", 1)[-1].strip() for line in started.stderr.splitlines() if "|" in line}
        assert "pipeline.cli" in imported, "importtime lists the modules imported"
        assert not {m for m in imported if any("bench" in part for part in m.split("."))}, argv
    assert main(["bench", "--customers", "0", "--out", "x.json"]) == 2, "bench reads its own options"
    assert f"--customers 0 and --segments {len(SEGMENTS)}: both need to be 1 or more" in capsys.readouterr().out
