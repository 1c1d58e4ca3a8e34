"""Progress of a run on the terminal: a Dagster logger that moves a rich progress bar as steps finish."""

import logging

import dagster as dg
from rich.progress import Progress


def progress_logger(progress: Progress) -> dg.LoggerDefinition:
    """A logger for the job's run config; the bar is the first task of `progress`."""

    class StepProgress(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            event = (getattr(record, "dagster_meta", None) or {}).get("dagster_event")
            if event is None or not progress.tasks:
                return
            task = progress.tasks[0].id
            if event.event_type_value == "STEP_START":
                progress.update(task, description=event.step_key.replace("__", "/"))
            elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
                progress.advance(task)

    @dg.logger
    def _progress(_init_context: dg.InitLoggerContext) -> logging.Logger:
        logger = logging.Logger("smsseg.progress", level=logging.DEBUG)
        logger.addHandler(StepProgress())
        return logger

    return _progress
