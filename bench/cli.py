"""`smsseg bench`: its options, and which benchmark they run. pipeline.cli imports this only when it runs."""

import argparse
import datetime as dt
import os
import shutil
import tempfile
from pathlib import Path

from rich.console import Console

from bench.destinations import DESTINATIONS, bench_destinations
from bench.nights import run_benchmark
from bench.report import destinations_summary, nights_summary, write_report
from bench.segments import SEGMENTS
from bench.shops import bench_shops, shops_summary
from pipeline.settings import SettingsError, memory_limit_from

console = Console()


def build_parser() -> argparse.ArgumentParser:
    bench = argparse.ArgumentParser(
        prog="smsseg bench",
        description=(
            "Time night 1, night 2 and a plain-DuckDB baseline on a demo store (under SMSSEG_MEMORY_LIMIT, as a run). "
            "BENCHMARKS.md says how to read the report."
        ),
    )
    bench.add_argument("--customers", type=int, help="customers in the generated demo store")
    bench.add_argument(
        "--segments",
        type=int,
        default=len(SEGMENTS),
        help=f"segment definitions to evaluate (default {len(SEGMENTS)}, covering the whole language)",
    )
    bench.add_argument("--out", required=True, help="the JSON report to write")
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument(
        "--work-dir",
        help="where the stores and data go (default: a new directory under the temp dir, deleted afterwards)",
    )
    bench.add_argument("--keep", action="store_true", help="keep the work directory for a closer look")
    bench.add_argument(
        "--destinations",
        action="store_true",
        help="instead: a first night's sync of --customers numbers to the Klaviyo and Shopify "
        "emulators, set against the floor their documented rate limits allow",
    )
    bench.add_argument(
        "--throttled",
        action="store_true",
        help="with --destinations: the emulators enforce those limits in real time (slow)",
    )
    bench.add_argument(
        "--shops",
        type=int,
        help="instead: this many generated shops on the Dask engine (smsseg run --shops) against one after "
        "another, and a 10-customer shop's fixed cost",
    )
    bench.add_argument("--customers-per-shop", type=int, default=2000, help="with --shops (default 2000)")
    bench.add_argument(
        "--alone-sample",
        type=int,
        help="with --shops: run only this many of the shops one after another, and scale their time to all "
        "(default: every shop; the report says which)",
    )
    return bench


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        memory_limit = memory_limit_from(os.environ)
    except SettingsError as e:
        console.print(f"[red]bench:[/red] {e}")
        return 2
    if args.shops is not None:
        return bench_many_shops(args)
    if args.customers is None:
        console.print("[red]bench:[/red] give --customers (one shop's nights) or --shops (many shops)")
        return 2
    if args.customers < 1 or args.segments < 1:
        console.print(
            f"[red]bench:[/red] --customers {args.customers} and --segments {args.segments}: both need to be 1 or more"
        )
        return 2
    out = Path(args.out)
    if args.destinations:
        report = bench_destinations(args.customers, throttled=args.throttled)
        write_report(out, report)
        for line in destinations_summary(report, list(DESTINATIONS)):
            console.print(line)
        return 0 if all(report[name]["held"] == args.customers for name in DESTINATIONS) else 1
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="smsseg-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        report = run_benchmark(args.customers, args.segments, work=work, seed=args.seed, memory_limit=memory_limit)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    write_report(out, report)
    console.print(nights_summary(report, out))
    return 0 if report["membership_mismatches"] == 0 else 1


def bench_many_shops(args: argparse.Namespace) -> int:
    if args.shops < 1 or args.customers_per_shop < 1:
        console.print(f"[red]bench:[/red] --shops {args.shops} and --customers-per-shop: both need to be 1 or more")
        return 2
    sample = args.shops if args.alone_sample is None else args.alone_sample
    if not 1 <= sample <= args.shops:
        console.print(f"[red]bench:[/red] --alone-sample {sample}: give 1 to --shops ({args.shops}) shops")
        return 2
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="smsseg-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        report = bench_shops(args.shops, args.customers_per_shop, work, dt.date.today(), sample)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    write_report(Path(args.out), report)
    for line in shops_summary(report):
        console.print(line)
    ok = not report["engine_failed"] and not report["alone_failed_shops"]
    return 0 if ok and report["fixed_cost_warm_ok"] else 1
