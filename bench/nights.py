"""The nightly job timed: night 1 (cold) and night 2 (warm) through the real Dagster job, set against the baseline."""

import datetime as dt
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from bench.baseline import membership_mismatches, run_baseline, segment_sizes
from bench.measure import load_average, measured
from bench.segments import SEGMENTS, bench_segments, write_segment_defs
from bench.stores import NIGHT_ONE, NIGHT_TWO, prepare_stores
from pipeline.settings import DEFAULT_MEMORY_LIMIT

if TYPE_CHECKING:
    import dagster as dg

STAGES = ("ingest_s", "warehouse_s", "segments_s", "export_s")


def stage_of(step_key: str) -> str | None:
    """Which figure of the report a Dagster step counts under (a layer's step, or asset keys joined by __).

    The phone table is made in the models' step since session 14, so it has no figure of its own.
    """
    if step_key.startswith("raw__") or step_key == "extract":
        return "ingest_s"
    if step_key in ("models", "warehouse"):
        return "warehouse_s"
    if step_key.startswith("segments"):
        return "segments_s" if not step_key.endswith("_size_swing") else None
    if step_key.startswith("exports__"):
        return "export_s"
    return None


def run_night(
    work: Path, store: Path, segments_dir: Path, as_of: dt.date, instance: "dg.DagsterInstance", memory_limit: str
) -> dict:
    """One nightly job through Dagster, in this process; returns its wall and CPU time, per stage too."""
    from pipeline.definitions import NIGHTLY, build_definitions
    from pipeline.settings import Settings

    settings = Settings(
        source=f"jsonl:{store}",
        data_dir=work / "data",
        segments_dir=segments_dir,
        gateway="file",
        memory_limit=memory_limit,
        as_of=as_of,
    )
    defs = build_definitions(settings)
    run_config = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    phase: dict = {}
    with measured(phase) as sampler:
        result = defs.resolve_job_def(NIGHTLY).execute_in_process(
            run_config=run_config, instance=instance, raise_on_error=False, partition_key=as_of.isoformat()
        )
    if not result.success:
        failed = [e.step_key for e in result.all_events if e.is_step_failure]
        raise RuntimeError(f"the nightly job failed as of {as_of} at {failed}; see the Dagster log above")
    started, steps, step_cpu = {}, {}, {}
    for entry in instance.all_logs(result.run_id):
        event = entry.dagster_event
        if event is None or not event.step_key:
            continue
        if event.is_step_start:
            started[event.step_key] = entry.timestamp
        elif event.is_step_success:
            steps[event.step_key] = entry.timestamp - started[event.step_key]
            step_cpu[event.step_key] = sampler.cpu_between(started[event.step_key], entry.timestamp)
    stages, stages_cpu = dict.fromkeys(STAGES, 0.0), dict.fromkeys(STAGES, 0.0)
    for step, seconds in steps.items():
        stage = stage_of(step)
        if stage:
            stages[stage] += seconds
            stages_cpu[stage] += step_cpu[step]
    return {
        "total_s": phase["seconds"],
        "cpu_s": phase["cpu_s"],
        "peak_rss_mb": phase["peak_rss_mb"],
        "stages": {k: round(v, 2) for k, v in stages.items()},
        "stages_cpu": {k: round(v, 2) for k, v in stages_cpu.items()},
        "steps": {k: (round(v, 2), round(step_cpu[k], 2)) for k, v in sorted(steps.items(), key=lambda kv: -kv[1])},
    }


def run_benchmark(
    customers: int,
    segment_count: int = len(SEGMENTS),
    *,
    work: Path,
    seed: int = 0,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
) -> dict:
    """Generates the stores, times both nights and the baseline, and returns the report.

    Both nights and the baseline run under the same DuckDB memory bound."""
    import dagster as dg

    segments = bench_segments(segment_count)
    write_segment_defs(work / "segment_defs", segments)
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        counts = pool.submit(prepare_stores, work, customers, seed).result()
    generate_s = round(time.perf_counter() - started, 2)
    load = {"before": load_average()}
    with dg.DagsterInstance.ephemeral() as instance:
        night_one = run_night(work, work / "night1", work / "segment_defs", NIGHT_ONE, instance, memory_limit)
        load["night1"] = load_average()
        night_two = run_night(work, work / "night2", work / "segment_defs", NIGHT_TWO, instance, memory_limit)
        load["night2"] = load_average()
    baseline = run_baseline(work, (work / "night1", work / "night2"), segments, NIGHT_TWO, memory_limit)
    load["baseline"] = load_average()
    warehouse = work / "data" / "warehouse.duckdb"
    mismatches = membership_mismatches(warehouse, Path(baseline["file"]), segments)
    warm = night_two["total_s"]
    return {
        "customers": customers,
        "orders": counts["orders"],
        "line_items": counts["line_items"],
        "segments": len(segments),
        "exported_segments": sum(s.export for s in segments),
        "memory_limit": memory_limit,
        "stages": night_one["stages"],
        "stages_cpu": night_one["stages_cpu"],
        "total_s": night_one["total_s"],
        "warm_total_s": warm,
        "warm_stages": night_two["stages"],
        "warm_stages_cpu": night_two["stages_cpu"],
        "baseline_s": baseline["seconds"],
        "baseline_stages": baseline["stages"],
        "baseline_stages_cpu": baseline["stages_cpu"],
        "ratio": round(warm / baseline["seconds"], 2) if baseline["seconds"] else None,
        "cpu_s": {"night1": night_one["cpu_s"], "night2": night_two["cpu_s"], "baseline": baseline["cpu_s"]},
        "peak_rss_mb": max(night_one["peak_rss_mb"], night_two["peak_rss_mb"], baseline["peak_rss_mb"]),
        "peak_rss_mb_by_phase": {
            "night1": night_one["peak_rss_mb"],
            "night2": night_two["peak_rss_mb"],
            "baseline": baseline["peak_rss_mb"],
        },
        "membership_mismatches": sum(mismatches.values()),
        "mismatches_by_segment": {k: v for k, v in mismatches.items() if v},
        "segment_sizes": segment_sizes(warehouse, segments),
        "night_two_changes": {k: counts[k] for k in ("changed_customers", "new_orders", "new_line_items")},
        "generate_s": generate_s,
        "store_bytes": sum(f.stat().st_size for f in (work / "night1").iterdir()),
        "slowest_steps": {
            "night1": dict(list(night_one["steps"].items())[:12]),
            "night2": dict(list(night_two["steps"].items())[:12]),
        },
        "load_average": load,
        "cpus": os.cpu_count(),
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
