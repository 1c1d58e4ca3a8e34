"""When a night runs: the days the partitions offer, from the shop's first one, and the 02:00 schedule."""

import datetime as dt

import dagster as dg

from pipeline.settings import Settings
from pipeline.warehouse.build import first_order_day

# The first day the partitions offer when neither SMSSEG_FIRST_DAY nor an extracted order says
FIRST_DAY_BEFORE_ANY_ORDER = dt.date(2000, 1, 1)


def first_day(settings: Settings, timezone: str) -> dt.date:
    """The first partition: SMSSEG_FIRST_DAY, or the day of the shop's first order; never after --as-of."""
    first = settings.first_day or first_order_day(settings.data_dir, timezone) or FIRST_DAY_BEFORE_ANY_ORDER
    return min(first, settings.as_of) if settings.as_of else first


def daily_partitions(timezone: str, first_day: dt.date) -> dg.DailyPartitionsDefinition:
    """One partition per day in the shop's time zone, the evaluation date its key, today's included."""
    return dg.DailyPartitionsDefinition(start_date=first_day.isoformat(), timezone=timezone, end_offset=1)


def nightly_schedule(job: dg.JobDefinition, timezone: str) -> dg.ScheduleDefinition:
    @dg.schedule(
        job=job,
        cron_schedule="0 2 * * *",
        execution_timezone=timezone,
        name="nightly_at_2am",
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )
    def _nightly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        """02:00 in the shop's time zone, evaluated as of that day: its partition."""
        day = context.scheduled_execution_time.date().isoformat()
        return dg.RunRequest(run_key=day, partition_key=day)

    return _nightly
