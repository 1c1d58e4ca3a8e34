"""Progress of a run: a Dagster logger that moves a rich progress bar as assets are made, or, when the
output is not a terminal (cron, a CI log, a pipe), writes one plain line per asset made (and per failed
step). Counted by asset, not step: the models' step makes 27 tables, the segments' step every segment."""

import logging
import time

import dagster as dg
from rich.progress import Progress


def progress_logger(progress: Progress) -> dg.LoggerDefinition:
    """A logger for the job's run config; the bar is the first task of `progress`, its total the job's assets."""

    since: dict[str, float] = {}  # step -> when it started, or made its last asset

    class AssetProgress(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            event = (getattr(record, "dagster_meta", None) or {}).get("dagster_event")
            if event is None or not progress.tasks:
                return
            task, kind, now = progress.tasks[0], event.event_type_value, time.monotonic()
            step = event.step_key.replace("__", "/") if event.step_key else ""
            if kind == "STEP_START":
                since[step] = now
                progress.update(task.id, description=step)
            elif kind == "ASSET_MATERIALIZATION":
                progress.advance(task.id)
                width = len(str(task.total))
                line(f"[{task.completed:>{width}}/{task.total}] {event.asset_key.to_user_string()} done", step, now)
            elif kind == "STEP_FAILURE":
                line(f"{step} FAILED", step, now)

    def line(text: str, step: str, now: float) -> None:
        """When no bar is drawn (not a terminal), the event in a line a log keeps, with its seconds."""
        seconds = now - since.get(step, now)
        since[step] = now
        if not progress.console.is_terminal:
            progress.console.print(f"{text} {seconds:.1f}s", markup=False, highlight=False, soft_wrap=True)

    @dg.logger
    def _progress(_init_context: dg.InitLoggerContext) -> logging.Logger:
        logger = logging.Logger("smsseg.progress", level=logging.DEBUG)
        logger.addHandler(AssetProgress())
        return logger

    return _progress
