"""The `smsseg` command: parses flags into settings, then runs the nightly job or a tool."""

import argparse
import dataclasses
import datetime as dt
import logging
import os
import signal
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline.settings import (
    PROJECT_DIR,
    Settings,
    SettingsError,
    data_dir_from,
    parse_day,
    refuse_future,
    today_in,
)
from pipeline.warehouse.build import shop_timezone

if TYPE_CHECKING:  # dagster is imported when a command needs it: `smsseg --help` stays quick
    import dagster as dg

console = Console()
if not console.is_terminal and not os.environ.get("COLUMNS"):
    console.width = 160  # logs and pipes: wide enough that segment names and figures are never cut
BACKFILL_TAG = "smsseg/backfill"  # the days `smsseg backfill` was asked for


def dagster_home(data_dir: Path) -> Path:
    """DAGSTER_HOME (default data/dagster), its settings written on first use and kept up to date, and set for
    whatever this process starts (`dagster dev`)."""
    from pipeline.fleet.night import instance_home

    home = instance_home(data_dir, os.environ.get("DAGSTER_HOME"))
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def cmd_run(args: argparse.Namespace) -> int:
    settings = Settings.resolve(
        source=args.source,
        data_dir=args.data_dir,
        segments_dir=args.segments_dir,
        gateway=args.gateway,
        as_of=args.as_of,
        dry_run=args.dry_run,
        shops=args.shops,
    )
    if settings.shops_file:
        for flag, given in (("--source", args.source), ("--ack-swing", args.ack_swing)):
            if given:
                raise SettingsError(
                    f"{flag} is one shop's: with --shops each shop's source is in the shops file, and a swing is "
                    "acknowledged for one shop with smsseg run --data-dir DATA/shops/NAME --source ... --ack-swing"
                )
        return run_shops(settings, args.verbose)
    today = today_in(shop_timezone(settings.data_dir))
    day = settings.as_of or today
    refuse_future(day, today, "--as-of")
    with cli_instance(settings) as instance:
        if instance is None:
            return 1
        result = run_nightly(dataclasses.replace(settings, as_of=day), args, instance)
        return report(result, instance)


def run_shops(settings: Settings, verbose: bool) -> int:
    """Every shop's live night (or --as-of's day), a step per shop on the Dask cluster; 1 when any shop failed."""
    import dagster as dg

    from pipeline.defs.runs import process_tags
    from pipeline.fleet.definitions import recon_fleet_job
    from pipeline.fleet.outcomes import shop_outcomes
    from pipeline.fleet.shops import load_shops

    shops = load_shops(settings.shops_file)
    if not verbose:  # the Dask scheduler's and workers' comings and goings (the workers read it at start)
        logging.getLogger("distributed").setLevel(logging.ERROR)
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error")
    engine = settings.dask_scheduler or f"a local Dask cluster of {settings.workers} workers"
    console.print(f"{len(shops)} shops from {settings.shops_file}, on {engine}", soft_wrap=True)
    with cli_instance(settings) as instance:
        if instance is None:
            return 1
        result = dg.execute_job(
            recon_fleet_job(settings),
            instance=instance,
            run_config={"loggers": {"console": {"config": {"log_level": "INFO" if verbose else "CRITICAL"}}}},
            raise_on_error=False,
            tags={"smsseg/launched_by": "cli", **process_tags()},
        )
        outcomes = shop_outcomes(instance, result.run_id, shops)
    table = Table(title="shops")
    counts = ("segments", "added", "removed")  # a night's figures (pipeline/fleet/night.py night_figures)
    for column in ("shop", "day", "mode", *counts, "outcome"):
        table.add_column(column, overflow="fold", justify="right" if column in counts else "left")
    for outcome in outcomes:
        figures = outcome.figures or {}
        cells = [f"{figures[k]:,}" if k in figures else "" for k in counts]
        state = "ok" if outcome.ok else "[red]failed[/red]"
        table.add_row(outcome.shop, outcome.day or "", outcome.mode or "", *cells, state)
    console.print(table)
    failed = [outcome for outcome in outcomes if not outcome.ok]
    for outcome in failed:
        console.print(f"[red]shop {outcome.shop} failed:[/red] {outcome.error}", soft_wrap=True)
    console.print(
        f"run {result.run_id}: {len(shops) - len(failed)} of {len(shops)} shops succeeded"
        + (f"; failed: {', '.join(o.shop for o in failed)}" if failed else "")
    )
    return 1 if failed else 0


def cmd_backfill(args: argparse.Namespace) -> int:
    """One run per day from --from to --to, oldest first, each as `smsseg run --as-of` that day would be."""
    settings = Settings.resolve(
        source=args.source, data_dir=args.data_dir, segments_dir=args.segments_dir, gateway=args.gateway
    )
    first, last = parse_day(args.start, "--from"), parse_day(args.end, "--to")
    if first > last:
        raise SettingsError(f"--from {first} is after --to {last}: give the earlier day first")
    refuse_future(last, today_in(shop_timezone(settings.data_dir)), "--to")
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    failed = []
    with cli_instance(settings) as instance:
        if instance is None:
            return 1
        for n, day in enumerate(days, start=1):
            console.print(f"[bold]{day}[/bold] ({n}/{len(days)})")
            result = run_nightly(
                dataclasses.replace(settings, as_of=day), args, instance, tags={BACKFILL_TAG: f"{first}..{last}"}
            )
            if report(result, instance, brief=True):
                failed.append(day)
    console.print(
        f"backfill {first}..{last}: {len(days) - len(failed)} of {len(days)} days succeeded"
        + (f"; failed: {', '.join(map(str, failed))} (rerun each with smsseg run --as-of)" if failed else "")
    )
    return 1 if failed else 0


@contextmanager
def cli_instance(settings: Settings) -> "Iterator[dg.DagsterInstance | None]":
    """The shared instance, after recovering runs whose process died; None (said why) beside a live run."""
    from pipeline.defs.runs import RunInProgressError
    from pipeline.fleet.night import night_instance

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    recovered: list[str] = []
    try:
        with night_instance(settings.data_dir, dagster_home(settings.data_dir), recovered) as instance:
            print_recovered(recovered)
            yield instance
    except RunInProgressError as e:
        print_recovered(recovered)
        console.print(f"[red]not started:[/red] {e}", soft_wrap=True)
        yield None


def print_recovered(lines: list[str]) -> None:
    for line in lines:
        console.print(f"[yellow]{line}[/yellow]", soft_wrap=True)
    lines.clear()


def run_nightly(
    settings: Settings, args: argparse.Namespace, instance: "dg.DagsterInstance", tags: dict[str, str] | None = None
) -> "dg.ExecuteInProcessResult":
    """The nightly job for the day settings.as_of (its partition) in this process, with a progress bar."""
    import dagster as dg

    from pipeline.fleet.night import execute_night, night_job
    from pipeline.progress import progress_logger

    # Dagster captures each step's stdout at the file-descriptor level for its compute logs; the bar
    # draws on a duplicate of the terminal's descriptor, taken before any step runs.
    terminal = Console(
        file=open(os.dup(sys.stdout.fileno()), "w", buffering=1),  # noqa: SIM115 (closed below)
        force_terminal=console.is_terminal,
    )
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=terminal,
        transient=True,
    )
    loggers = {"progress": progress_logger(progress)}
    if args.verbose:
        loggers["console"] = dg.colored_console_logger
    # SIGTERM as Ctrl-C, as Dagster's own run worker does: the step raises, its transaction rolls back,
    # the run is marked failed and its pool slot freed, where SIGTERM's default would end the process at once.
    # Python's own Ctrl-C handler, not SIGINT's current one: a shell's background job ignores SIGINT.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    job = night_job(settings, loggers)
    with progress:
        progress.add_task("starting", total=len(job.asset_layer.executable_asset_keys))
        result = execute_night(
            job,
            settings,
            instance,
            acknowledge_swings=getattr(args, "ack_swing", None) or [],
            tags={"smsseg/launched_by": "cli", **(tags or {})},
        )
    terminal.file.close()
    return result


def report(result: "dg.ExecuteInProcessResult", instance: "dg.DagsterInstance", *, brief: bool = False) -> int:
    """The summary (one line when `brief`), what failed and why, and the exit status."""
    from pipeline.fleet.night import not_run, problems

    console.print(evaluated(instance.get_run_by_id(result.run_id).tags), soft_wrap=True)
    if not brief:
        print_summary(result)
    found = problems(result)
    for problem in found:
        if problem.kind != "held":  # the summary said so, with what was still removed
            console.print(f"[red]{problem.kind}:[/red] {problem.text}", soft_wrap=True)
    skipped = not_run(result)
    if skipped:
        console.print(f"[yellow]not run (upstream failed):[/yellow] {', '.join(skipped)}", soft_wrap=True)
    ok = result.success and not found
    console.print(f"run {result.run_id} " + ("[green]succeeded[/green]" if ok else "[red]failed[/red]"))
    return 0 if ok else 1


def evaluated(tags: "Mapping[str, str]") -> str:
    """The summary's first line: the day, and whether the run was live or a backfill."""
    from pipeline.defs.resources import LATEST_TAG, MODE_TAG, PARTITION_TAG
    from pipeline.warehouse.days import Evaluation

    day = tags.get(PARTITION_TAG, "?")
    if MODE_TAG not in tags:  # it failed before reaching the warehouse
        return f"evaluating {day}: the run stopped before it reached the warehouse; nothing was changed past extraction"
    latest = tags.get(LATEST_TAG)
    return Evaluation(
        dt.date.fromisoformat(day), tags[MODE_TAG] == "live", dt.date.fromisoformat(latest) if latest else None
    ).describe()


def print_summary(result) -> None:
    """What a person checks after a night: how many customers, each segment's size, what changed."""
    figures: dict[tuple[str, ...], dict] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        figures[tuple(materialization.asset_key.path)] = {k: v.value for k, v in materialization.metadata.items()}
    warehouse = figures.get(("warehouse",), {})
    if warehouse:
        console.print(
            f"customers {warehouse['customers']:,}, counted orders {warehouse['counted_orders']:,}"
            + ("" if warehouse.get("published", True) else " (dry run: warehouse not published)")
        )
    # two narrow tables rather than one wide one: at 80 columns the wide one cut every name and figure
    sizes = Table(title="segments")
    for column in ("segment", "size", "change"):
        sizes.add_column(column, justify="left" if column == "segment" else "right", overflow="fold")
    exports = Table(title="exports")
    counts = ("eligible", "added", "updated", "removed", "rejected")
    for column in ("segment", *counts):
        exports.add_column(column, justify="left" if column == "segment" else "right", overflow="fold")
    excluded: dict[str, str] = {}
    for path, segment in sorted(figures.items()):
        if path[0] != "segments":
            continue
        change = segment.get("size_change")
        sizes.add_row(path[1], f"{segment['size']:,}", "" if change is None else f"{change:+,}")
        export = figures.get(("exports", path[1]))
        if export is None:
            continue
        if export.get("held"):  # a real run's held export still removed who may not be texted
            despite = export.get("removed_despite_hold")
            exports.add_row(path[1], "held", "", "", "" if despite is None else f"{despite:,}", "")
        else:
            exports.add_row(path[1], *(f"{export[k]:,}" for k in counts))
        reasons = ", ".join(
            f"{k.removeprefix('excluded_')} {v:,}" for k, v in export.items() if k.startswith("excluded_") and v
        )
        if reasons:
            excluded[path[1]] = reasons
    if sizes.row_count:
        console.print(sizes)
    for path, segment in sorted(figures.items()):
        if path[0] == "segments" and segment.get("empty_reason"):
            console.print(f"segments/{path[1]} is empty: {segment['empty_reason']}", soft_wrap=True)
    if exports.row_count:
        console.print(exports)
    for name, reasons in excluded.items():
        console.print(f"not sent from {name}: {reasons}", soft_wrap=True)
    for path, export in sorted(figures.items()):
        if path[0] == "exports" and export.get("dry_run"):
            console.print(
                f"dry run {path[1]}: would add {export['added']:,}, update {export['updated']:,}, "
                f"remove {export['removed']:,}; sample adds {export.get('sample_adds')}, "
                f"removes {export.get('sample_removes')}"
                + ("; held by a size swing: --ack-swing to send it" if export.get("held") else ""),
                soft_wrap=True,
            )
        elif path == ("retired_exports",):
            for segment, removed in export.get("retired", {}).items():
                console.print(
                    f"segment {segment} is no longer exported: "
                    f"{'would remove' if export.get('dry_run') else 'removed'} {removed:,} numbers "
                    f"from {export['destination']}"
                )
        elif path[0] == "exports" and export.get("held"):
            console.print(
                f"{path[1]} is held by a size swing: sent only {export['removed_despite_hold']:,} removals "
                "of numbers that may no longer be texted; --ack-swing to send the rest",
                soft_wrap=True,
            )


def cmd_ui(args: argparse.Namespace) -> int:
    """The Dagster UI on loopback, on the same instance (and settings) as `smsseg run`."""
    data_dir = data_dir_from(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    home = dagster_home(data_dir)
    os.environ["SMSSEG_DATA_DIR"] = str(data_dir)
    if args.shops:  # the code location serves the shops' nights (pipeline/fleet/location.py)
        os.environ["SMSSEG_SHOPS"] = str(Path(args.shops).resolve())
    console.print(f"Dagster UI on http://127.0.0.1:{args.port} (instance {home}); Ctrl-C stops it")
    dagster = Path(sys.executable).parent / "dagster"
    os.chdir(PROJECT_DIR)  # where pyproject.toml names the code location
    os.execv(dagster, [str(dagster), "dev", "-h", "127.0.0.1", "-p", str(args.port)])


def cmd_shell(args: argparse.Namespace) -> int:
    """SQL on the live warehouse, read-only, with the DuckDB that wrote it (no duckdb command needed)."""
    import duckdb

    from pipeline.warehouse.build import live_path

    path = live_path(data_dir_from(args.data_dir))
    if not path.exists():
        console.print(f"{path}: no warehouse yet. Run `smsseg run` first.")
        return 1
    interactive = not args.sql and sys.stdin.isatty()
    with duckdb.connect(str(path), read_only=True) as con:
        if interactive:
            console.print(
                f"{path} (read-only, duckdb {duckdb.__version__}): end a statement with ;  quit with Ctrl-D",
                highlight=False,
                soft_wrap=True,
            )
            return _shell_loop(con)
        ok = True
        for statement in args.sql or [sys.stdin.read()]:
            ok = _run_sql(con, statement) and ok
        return 0 if ok else 1


def _shell_loop(con) -> int:
    import readline  # noqa: F401 - line editing and history for input()

    pending: list[str] = []
    while True:
        try:
            line = input("... " if pending else "D ")
        except EOFError:
            print()
            return 0
        except KeyboardInterrupt:
            print()
            pending = []
            continue
        pending.append(line)
        if line.rstrip().endswith(";"):
            _run_sql(con, "\n".join(pending))
            pending = []


def _run_sql(con, sql: str) -> bool:
    """Runs the statements of `sql`, printing the last one's rows as DuckDB's table; False on an error."""
    import duckdb

    try:
        relation = con.sql(sql)
    except duckdb.Error as e:
        console.print(f"[red]error:[/red] {e}", soft_wrap=True, markup=True, highlight=False)
        return False
    if relation is not None:
        print(relation)
    return True


def cmd_demo_generate(args: argparse.Namespace) -> int:
    from pipeline.store.demo import generate_store

    counts = generate_store(Path(args.out), customers=args.customers, seed=args.seed, end_day=args.end_day)
    console.print(", ".join(f"{k} {v:,}" for k, v in counts.items()) + f" written to {args.out}")
    return 0


def end_day(value: str) -> dt.date:
    """--end-day as a date, or an argparse error that says what to write."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: expected a date such as 2026-10-31") from None


def version_line() -> str:
    """smsseg's version and the engines' it pins: an analyst's DuckDB must read this warehouse's files."""
    from importlib.metadata import version

    return f"smsseg {version('smsseg')} (duckdb {version('duckdb')}, dagster {version('dagster')})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smsseg", description="Shopify SMS audience segmentation, nightly.")
    parser.add_argument("--version", action="version", version=version_line())
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the nightly job once, in-process, through Dagster")
    run.add_argument("--source", help="demo | jsonl:DIR | shopify (env SMSSEG_SOURCE; default demo)")
    run.add_argument("--as-of", help="evaluation date YYYY-MM-DD (default: today in the shop's time zone)")
    run.add_argument("--segments-dir", help="segment definitions (env SMSSEG_SEGMENTS_DIR; default segment_defs/)")
    run.add_argument("--data-dir", help="where everything is written (env SMSSEG_DATA_DIR; default data/)")
    run.add_argument("--gateway", help="file | http | klaviyo | shopify-tags (env SMSSEG_GATEWAY; default file)")
    run.add_argument("--dry-run", action="store_true", help="compute and print each export's diff; change nothing")
    run.add_argument(
        "--ack-swing",
        action="append",
        metavar="SEGMENT",
        help="export this segment although its size swung past the threshold (repeatable)",
    )
    run.add_argument("--verbose", action="store_true", help="show Dagster's log as it runs")
    run.add_argument(
        "--shops", help="a shops file: run every shop's night on Dask (env SMSSEG_SHOPS; see docs/deploy.md)"
    )
    run.set_defaults(func=cmd_run)

    backfill = commands.add_parser(
        "backfill",
        help="evaluate each day of a range, oldest first; days before the latest day run change nothing "
        "but their membership history",
    )
    backfill.add_argument("--from", dest="start", required=True, help="first day YYYY-MM-DD")
    backfill.add_argument("--to", dest="end", required=True, help="last day YYYY-MM-DD")
    for flag in ("--source", "--segments-dir", "--data-dir", "--gateway"):
        backfill.add_argument(flag, help="as for run")
    backfill.add_argument("--verbose", action="store_true", help="show Dagster's log as it runs")
    backfill.set_defaults(func=cmd_backfill, dry_run=False)

    ui = commands.add_parser("ui", help="serve the Dagster UI on 127.0.0.1, on the instance smsseg run uses")
    ui.add_argument("--port", type=int, default=3000)
    ui.add_argument("--data-dir", help="as for run (env SMSSEG_DATA_DIR; default data/)")
    ui.add_argument("--shops", help="a shops file: show shop_night by shop and day (env SMSSEG_SHOPS)")
    ui.set_defaults(func=cmd_ui)

    shell = commands.add_parser("shell", help="SQL on data/warehouse.duckdb, read-only, with the pinned DuckDB")
    shell.add_argument("sql", nargs="*", help="statements to run (default: read them from the terminal or stdin)")
    shell.add_argument("--data-dir", help="as for run (env SMSSEG_DATA_DIR; default data/)")
    shell.set_defaults(func=cmd_shell)

    demo = commands.add_parser("demo", help="the demo store").add_subparsers(dest="demo_command", required=True)
    generate = demo.add_parser("generate", help="write a realistic, deterministic store directory")
    generate.add_argument("--customers", type=int, required=True)
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--out", required=True)
    generate.add_argument(
        "--end-day", type=end_day, help="the store's last day YYYY-MM-DD, in its time zone (default: today there)"
    )
    generate.set_defaults(func=cmd_demo_generate)

    from pipeline.segments.commands import register as register_segments

    register_segments(commands)
    # The benchmark is a package of its own (bench/), outside the pipeline's import path: every other command
    # starts without it. It reads its own options, so `smsseg bench --help` is its help.
    bench = commands.add_parser(
        "bench", add_help=False, help="time the nightly job, or the destinations' syncs, at scale (smsseg bench --help)"
    )
    bench.set_defaults(func=cmd_bench)
    return parser


def cmd_bench(args: argparse.Namespace) -> int:
    from bench.cli import main as bench_main

    return bench_main(args.bench_args)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "bench":
        args.bench_args = rest
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines carry signed download URLs
    try:
        return args.func(args)
    except SettingsError as e:
        console.print(f"[red]setting:[/red] {e}")
        return 2
    except KeyboardInterrupt:  # SIGTERM or Ctrl-C before a run began or after it ended
        console.print("[red]interrupted[/red]")
        return 130


if __name__ == "__main__":
    sys.exit(main())
