"""The `smsseg` command: parses flags into settings, then runs the nightly job or a tool."""

import argparse
import logging
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline.settings import PROJECT_DIR, Settings, SettingsError

console = Console()
if not console.is_terminal:
    console.width = 160  # logs and pipes: wide enough that segment names and figures are never cut
INSTANCE_YAML = """\
# Written by smsseg: the Dagster instance shared by `smsseg run` and `dagster dev`.
telemetry:
  enabled: false            # nothing about a shop leaves the machine
concurrency:
  pools:
    default_limit: 1        # DuckDB has one writer: the duckdb pool runs one asset at a time
"""


def dagster_home(data_dir: Path) -> Path:
    """DAGSTER_HOME (default data/dagster), with the instance settings written on first use."""
    home = Path(os.environ.get("DAGSTER_HOME") or data_dir / "dagster")
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(INSTANCE_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def cmd_run(args: argparse.Namespace) -> int:
    settings = Settings.resolve(source=args.source, data_dir=args.data_dir, segments_dir=args.segments_dir,
                                gateway=args.gateway, as_of=args.as_of, dry_run=args.dry_run)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    dagster_home(settings.data_dir)

    import dagster as dg

    from pipeline.definitions import NIGHTLY, build_definitions
    from pipeline.progress import progress_logger

    # Dagster captures each step's stdout at the file-descriptor level for its compute logs; the bar
    # draws on a duplicate of the terminal's descriptor, taken before any step runs.
    terminal = Console(file=open(os.dup(sys.stdout.fileno()), "w", buffering=1),  # noqa: SIM115 (closed below)
                       force_terminal=console.is_terminal)
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=terminal, transient=True)
    loggers = {"progress": progress_logger(progress)}
    if args.verbose:
        loggers["console"] = dg.colored_console_logger
    defs = build_definitions(settings, loggers=loggers)
    job = defs.resolve_job_def(NIGHTLY)
    run_options = {"dry_run": settings.dry_run, "acknowledge_swings": args.ack_swing or []}
    if settings.as_of:
        run_options["as_of"] = settings.as_of.isoformat()
    run_config = {"resources": {"run": {"config": run_options}},
                  "loggers": {name: {"config": {"log_level": "INFO"}} if name == "console" else {} for name in loggers}}
    with dg.DagsterInstance.get() as instance, progress:
        progress.add_task("starting", total=len(job.graph.node_names()))
        result = job.execute_in_process(
            run_config=run_config, instance=instance, raise_on_error=False,
            tags={"smsseg/source": settings.source, "smsseg/launched_by": "cli"})
    terminal.file.close()
    print_summary(result)
    failures = [e for e in result.all_events if e.is_step_failure]
    for event in failures:
        error = event.event_specific_data.error
        while error is not None and error.cause is not None and "DagsterExecutionStepExecutionError" in error.cls_name:
            error = error.cause  # Dagster's wrapper says only that the step failed: show what did
        console.print(f"[red]failed:[/red] {event.step_key}: {error.message.strip() if error else ''}", soft_wrap=True)
    started = {e.step_key for e in result.all_events if e.is_step_start}
    not_run = [name for name in result.job_def.graph.node_names() if name not in started]
    if not_run:
        console.print(f"[yellow]not run (upstream failed):[/yellow] {', '.join(not_run)}", soft_wrap=True)
    failed_checks = [c for c in result.get_asset_check_evaluations()
                     if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR]
    for check in failed_checks:
        reason = check.metadata.get("swing") or check.metadata.get("violations")
        console.print(f"[red]check failed:[/red] {check.asset_key.to_user_string()} {check.check_name}: "
                      f"{reason.value if reason else ''}", soft_wrap=True)
    ok = result.success and not failed_checks
    console.print(f"run {result.run_id} " + ("[green]succeeded[/green]" if ok else "[red]failed[/red]"))
    return 0 if ok else 1


def print_summary(result) -> None:
    """What a person checks after a night: how many customers, each segment's size, what changed."""
    figures: dict[tuple[str, ...], dict] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        figures[tuple(materialization.asset_key.path)] = {k: v.value for k, v in materialization.metadata.items()}
    warehouse = figures.get(("warehouse",), {})
    if warehouse:
        console.print(f"customers {warehouse['customers']:,}, counted orders {warehouse['counted_orders']:,}"
                      + ("" if warehouse.get("published", True) else " (dry run: warehouse not published)"))
    table = Table(title="segments")
    for column in ("segment", "size", "change", "eligible", "added", "updated", "removed", "rejected", "excluded"):
        table.add_column(column, justify="left" if column in ("segment", "excluded") else "right")
    for path, segment in sorted(figures.items()):
        if path[0] != "segments":
            continue
        export = figures.get(("exports", path[1]))
        excluded = ", ".join(f"{k.removeprefix('excluded_')} {v:,}" for k, v in (export or {}).items()
                             if k.startswith("excluded_") and v)
        counts = ("eligible", "added", "updated", "removed", "rejected")
        if export and export.get("held"):  # a real run's held export still removed who may not be texted
            despite = export.get("removed_despite_hold")
            cells = ["held", "", "", "" if despite is None else f"{despite:,}", ""]
        else:
            cells = [f"{export[k]:,}" for k in counts] if export else [""] * len(counts)
        change = segment.get("size_change")
        table.add_row(path[1], f"{segment['size']:,}", "" if change is None else f"{change:+,}", *cells, excluded)
    if table.row_count:
        console.print(table)
    for path, export in sorted(figures.items()):
        if path[0] == "exports" and export.get("dry_run"):
            console.print(f"dry run {path[1]}: would add {export['added']:,}, update {export['updated']:,}, "
                          f"remove {export['removed']:,}; sample adds {export.get('sample_adds')}, "
                          f"removes {export.get('sample_removes')}"
                          + ("; held by a size swing: --ack-swing to send it" if export.get("held") else ""),
                          soft_wrap=True)
        elif path == ("retired_exports",):
            for segment, removed in export.get("retired", {}).items():
                console.print(f"segment {segment} is no longer exported: "
                              f"{'would remove' if export.get('dry_run') else 'removed'} {removed:,} numbers "
                              f"from {export['destination']}")
        elif path[0] == "exports" and export.get("held"):
            console.print(f"{path[1]} is held by a size swing: sent only {export['removed_despite_hold']:,} removals "
                          "of numbers that may no longer be texted; --ack-swing to send the rest", soft_wrap=True)


def cmd_ui(args: argparse.Namespace) -> int:
    """The Dagster UI on loopback, on the same instance (and settings) as `smsseg run`."""
    settings = Settings.resolve(data_dir=args.data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    home = dagster_home(settings.data_dir)
    os.environ["SMSSEG_DATA_DIR"] = str(settings.data_dir)
    console.print(f"Dagster UI on http://127.0.0.1:{args.port} (instance {home}); Ctrl-C stops it")
    dagster = Path(sys.executable).parent / "dagster"
    os.chdir(PROJECT_DIR)  # where pyproject.toml names the code location
    os.execv(dagster, [str(dagster), "dev", "-h", "127.0.0.1", "-p", str(args.port)])


def cmd_demo_generate(args: argparse.Namespace) -> int:
    from pipeline.store.demo import generate_store

    counts = generate_store(Path(args.out), customers=args.customers, seed=args.seed)
    console.print(", ".join(f"{k} {v:,}" for k, v in counts.items()) + f" written to {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smsseg", description="Shopify SMS audience segmentation, nightly.")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the nightly job once, in-process, through Dagster")
    run.add_argument("--source", help="demo | jsonl:DIR | shopify (env SMSSEG_SOURCE; default demo)")
    run.add_argument("--as-of", help="evaluation date YYYY-MM-DD (default: today in the shop's time zone)")
    run.add_argument("--segments-dir", help="segment definitions (env SMSSEG_SEGMENTS_DIR; default segment_defs/)")
    run.add_argument("--data-dir", help="where everything is written (env SMSSEG_DATA_DIR; default data/)")
    run.add_argument("--gateway", help="file | http (env SMSSEG_GATEWAY; default file)")
    run.add_argument("--dry-run", action="store_true", help="compute and print each export's diff; change nothing")
    run.add_argument("--ack-swing", action="append", metavar="SEGMENT",
                     help="export this segment although its size swung past the threshold (repeatable)")
    run.add_argument("--verbose", action="store_true", help="show Dagster's log as it runs")
    run.set_defaults(func=cmd_run)

    ui = commands.add_parser("ui", help="serve the Dagster UI on 127.0.0.1, on the instance smsseg run uses")
    ui.add_argument("--port", type=int, default=3000)
    ui.add_argument("--data-dir", help="as for run (env SMSSEG_DATA_DIR; default data/)")
    ui.set_defaults(func=cmd_ui)

    demo = commands.add_parser("demo", help="the demo store").add_subparsers(dest="demo_command", required=True)
    generate = demo.add_parser("generate", help="write a realistic, deterministic store directory")
    generate.add_argument("--customers", type=int, required=True)
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--out", required=True)
    generate.set_defaults(func=cmd_demo_generate)

    from pipeline.segments.commands import register as register_segments

    register_segments(commands)
    from pipeline.bench import register as register_bench

    register_bench(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines carry signed download URLs
    try:
        return args.func(args)
    except SettingsError as e:
        console.print(f"[red]setting:[/red] {e}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
