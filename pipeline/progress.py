"""Progress of a run: a Dagster logger that moves a rich progress bar as steps finish, or, when the
output is not a terminal (cron, a CI log, a pipe), writes one plain line per finished step."""

import logging
import time

import dagster as dg
from rich.progress import Progress


def progress_logger(progress: Progress) -> dg.LoggerDefinition:
    """A logger for the job's run config; the bar is the first task of `progress`."""

    started: dict[str, float] = {}

    class StepProgress(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            event = (getattr(record, "dagster_meta", None) or {}).get("dagster_event")
            if event is None or not progress.tasks:
                return
            task = progress.tasks[0]
            step = event.step_key.replace("__", "/") if event.step_key else ""
            if event.event_type_value == "STEP_START":
                started[step] = time.monotonic()
                progress.update(task.id, description=step)
            elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
                progress.advance(task.id)
                if not progress.console.is_terminal:  # no bar is drawn there: say it in a line a log keeps
                    outcome = "done" if event.event_type_value == "STEP_SUCCESS" else "FAILED"
                    seconds = time.monotonic() - started.pop(step, time.monotonic())
                    width = len(str(task.total))
                    progress.console.print(
                        f"[{task.completed:>{width}}/{task.total}] {step} {outcome} {seconds:.1f}s",
                        markup=False,
                        highlight=False,
                        soft_wrap=True,
                    )

    @dg.logger
    def _progress(_init_context: dg.InitLoggerContext) -> logging.Logger:
        logger = logging.Logger("smsseg.progress", level=logging.DEBUG)
        logger.addHandler(StepProgress())
        return logger

    return _progress
