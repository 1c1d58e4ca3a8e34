"""One shop's night: its Dagster instance, the nightly job run in this process, and what went wrong.

`smsseg run` runs one shop's night this way; a shop of many runs exactly the same night, in a worker. So a
shop behaves in a fleet as it does alone, by construction. Only the instance differs: `smsseg run` keeps
its runs in the folder's instance (data/dagster), for its UI and for recovering a killed run; a shop of
many runs on an instance in memory (`shop_instance`), because a night of small shops is mostly the cost
of Dagster's records (a SQLite connection and commit per event: 8 s of a 10-customer shop's 11), and the
fleet's own instance keeps each shop's night as its partition of `shop_night`. Both hold the folder's
lock while they run (pipeline/defs/runs.py).
"""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import yaml

from pipeline.definitions import NIGHTLY, build_definitions
from pipeline.defs.runs import folder_lock, process_tags, recover_dead_runs, refuse_if_running
from pipeline.settings import Settings, SettingsError

INSTANCE_YAML = """\
# Written by smsseg: the Dagster instance shared by `smsseg run` and `dagster dev`.
telemetry:
  enabled: false            # nothing about a shop leaves the machine
concurrency:
  pools:
    default_limit: 1        # DuckDB has one writer: the duckdb pool runs one asset at a time
  runs:
    max_concurrent_runs: 1  # and the UI's runs (a backfill's days) go one after another: a run that
                            # executes in one process holds the build warehouse until it ends
run_monitoring:             # the daemon `smsseg ui` starts watches the runs the UI launches
  enabled: true             # fails a run stuck starting or canceling
  free_slots_after_run_end_seconds: 60  # frees the pool slots a run still holds a minute after it ended
"""
INTERRUPTIONS = ("DagsterExecutionInterruptedError", "KeyboardInterrupt")  # SIGTERM or Ctrl-C, inside a step


def instance_home(data_dir: Path, given: str | None = None) -> Path:
    """The Dagster instance folder (`given`, or data_dir/dagster), its settings written on first use and kept
    up to date."""
    home = Path(given or data_dir / "dagster")
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if config.exists():
        add_missing_instance_settings(config)
    else:
        config.write_text(INSTANCE_YAML)
    return home


def add_missing_instance_settings(config: Path) -> None:
    """An instance file of an older release (or the user's own) gains the settings it lacks; its keys stay."""
    try:
        current = yaml.safe_load(config.read_text())
    except yaml.YAMLError as e:
        raise SettingsError(
            f"{config}: not valid YAML ({' '.join(str(e).split())}). Fix it, or delete it and smsseg writes a new one."
        ) from None
    if current is None:
        current = {}
    if not isinstance(current, dict):
        raise SettingsError(
            f"{config}: expected a mapping of Dagster instance settings, found "
            f"{type(current).__name__}. Fix it, or delete it and smsseg writes a new one."
        )
    merged = with_defaults(current, yaml.safe_load(INSTANCE_YAML))
    if merged != current:
        config.write_text(
            "# smsseg added the settings this file lacked (see INSTANCE_YAML in pipeline/fleet/night.py).\n"
            + yaml.safe_dump(merged, sort_keys=False)
        )


def with_defaults(given: dict, defaults: dict) -> dict:
    """`given` with every key of `defaults` it lacks, nested mappings merged; a value given always wins."""
    merged = dict(given)
    for key, default in defaults.items():
        if merged.get(key) is None:
            merged[key] = default
        elif isinstance(merged[key], dict) and isinstance(default, dict):
            merged[key] = with_defaults(merged[key], default)
    return merged


@contextmanager
def night_instance(data_dir: Path, home: Path, recovered: list[str]) -> Iterator[dg.DagsterInstance]:
    """The instance at `home`, after marking failed the runs whose process died (a line each in `recovered`),
    with data_dir's lock held.

    Raises RunInProgressError, naming the run, when one is really still going.
    """
    with dg.DagsterInstance.from_config(str(home)) as instance:
        recovered.extend(recover_dead_runs(instance))
        refuse_if_running(instance)  # rather than wait, at full CPU and forever, for its pool slot
        with folder_lock(data_dir):  # and not beside a shop's night of a fleet, which this instance cannot see
            yield instance


@contextmanager
def shop_instance(data_dir: Path) -> Iterator[dg.DagsterInstance]:
    """A shop of many's instance: in memory, for one night, with data_dir's lock held.

    Raises RunInProgressError, naming the process, when another night holds the folder.
    """
    with folder_lock(data_dir), dg.DagsterInstance.ephemeral() as instance:
        yield instance


def night_job(settings: Settings, loggers: Mapping[str, dg.LoggerDefinition] | None = None) -> dg.JobDefinition:
    """The nightly job for these settings; `loggers` are added to Dagster's own (progress bars, the console)."""
    return build_definitions(settings, loggers=dict(loggers) if loggers else None).resolve_job_def(NIGHTLY)


def execute_night(
    job: dg.JobDefinition,
    settings: Settings,
    instance: dg.DagsterInstance,
    *,
    acknowledge_swings: list[str] | None = None,
    tags: Mapping[str, str] | None = None,
    console_level: str = "INFO",
) -> dg.ExecuteInProcessResult:
    """Runs `job` for the day settings.as_of (its partition), in this process, tagged with its identity.

    `console_level` bounds what Dagster's console logger prints, when the job has it; the instance keeps all.
    """
    run_options = {"dry_run": settings.dry_run, "acknowledge_swings": acknowledge_swings or []}
    return job.execute_in_process(
        run_config={
            "resources": {"run": {"config": run_options}},
            "loggers": {
                name: {"config": {"log_level": console_level}} if name == "console" else {} for name in job.loggers
            },
        },
        instance=instance,
        raise_on_error=False,
        partition_key=settings.as_of.isoformat(),
        tags={"smsseg/source": settings.source, **process_tags(), **(tags or {})},
    )


@dataclass(frozen=True)
class Problem:
    kind: str  # failed, interrupted, check failed, held
    text: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.text}"


def problems(result: dg.ExecuteInProcessResult) -> list[Problem]:
    """What needs a person after a night: failed steps (with what failed), failed checks, held exports."""
    found = []
    for event in result.all_events:
        if not event.is_step_failure:
            continue
        error = event.event_specific_data.error
        if error is not None and error.cls_name in INTERRUPTIONS:
            found.append(
                Problem(
                    "interrupted",
                    f"{event.step_key}: stopped by a signal; what it was writing was rolled back and its pool "
                    "slot freed. `smsseg run` again to finish.",
                )
            )
            continue
        found.append(Problem("failed", f"{event.step_key}: {failure_text(event)}"))
    for check in result.get_asset_check_evaluations():
        if not check.passed and check.severity == dg.AssetCheckSeverity.ERROR:
            reason = check.metadata.get("swing") or check.metadata.get("violations")
            found.append(
                Problem(
                    "check failed",
                    f"{check.asset_key.to_user_string()} {check.check_name}: {reason.value if reason else ''}",
                )
            )
    # a held export is a night that needs a person, whichever guard held it (the size swing's check,
    # or an audience that moved too far from what the destination holds)
    for event in result.get_asset_materialization_events():
        metadata = event.event_specific_data.materialization.metadata
        if event.asset_key.path[0] == "exports" and metadata.get("held", dg.MetadataValue.bool(False)).value:
            found.append(Problem("held", f"{event.asset_key.to_user_string()}: held; see its swing check"))
    return found


def night_figures(result: dg.ExecuteInProcessResult) -> dict[str, int]:
    """What a night did, in numbers a fleet's record keeps for each shop: its segments, and the numbers its
    exports added to and removed from the destinations (a dry run's would-be figures)."""
    figures = {"segments": 0, "added": 0, "removed": 0}
    for event in result.get_asset_materialization_events():
        metadata = event.event_specific_data.materialization.metadata
        if event.asset_key.path[0] == "segments":
            figures["segments"] += 1
        elif event.asset_key.path[0] == "exports":
            figures["added"] += metadata["added"].value if "added" in metadata else 0
            figures["removed"] += metadata["removed"].value if "removed" in metadata else 0
    return figures


def failure_text(event: dg.DagsterEvent) -> str:
    """What failed, without Dagster's wrapper: a Failure's description, or the error's own message."""
    data = event.event_specific_data
    if data.user_failure_data is not None and data.user_failure_data.description:
        return data.user_failure_data.description
    error = data.error
    while error is not None and error.cause is not None and "DagsterExecutionStepExecutionError" in error.cls_name:
        error = error.cause  # Dagster's wrapper says only that the step failed: show what did
    return error.message.strip() if error else "no error recorded"


def not_run(result: dg.ExecuteInProcessResult) -> list[str]:
    """The steps a failed night never started (upstream failed); a backfill's skipped publish is by design."""
    if result.success:
        return []
    started = {e.step_key for e in result.all_events if e.is_step_start}
    return [name for name in result.job_def.graph.node_names() if name not in started]
