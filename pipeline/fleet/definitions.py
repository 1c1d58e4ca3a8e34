"""Many shops on Dask: each shop's night a step of one Dagster run, on whichever worker is free.

Each shop is a one-shop smsseg in its own folder (<data-dir>/shops/<name>/: its warehouse, ledger and
exports), and its night is exactly `smsseg run`'s job (pipeline/fleet/night.py), run inside the step on an
instance in memory. The fleet's own instance records one asset, `shop_night`, partitioned by shop and day:
the UI shows each shop's state, reruns one shop's day, backfills one shop. The `shops_nightly` job runs
every shop's live day, a step per shop; a shop that fails fails its own step, and the others go on.

Steps run on a dask.distributed cluster through dagster-dask: an existing scheduler (SMSSEG_DASK_SCHEDULER,
workers anywhere that see the data directory) or a local cluster of SMSSEG_WORKERS processes. A worker that
dies mid-night loses its task to Dask, which runs it again on another worker; the kernel freed the dead
night's folder lock with its process, and the night converges as a rerun of `smsseg run` does.
"""

import dataclasses
import datetime as dt
import os
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster._core.definitions.reconstruct import ReconstructableJob
from dagster_dask import dask_executor

from pipeline.defs.resources import MODE_TAG
from pipeline.fleet.night import execute_night, night_figures, night_job, problems, shop_instance
from pipeline.fleet.shops import Shop, load_shops
from pipeline.settings import Settings, refuse_future, today_in
from pipeline.warehouse.build import first_order_day, shop_timezone

SHOP_NIGHT = dg.AssetKey("shop_night")
SHOPS_NIGHTLY = "shops_nightly"


@dataclass(frozen=True)
class ShopNight:
    """What one shop's night did, for the fleet's records."""

    shop: str
    day: dt.date
    mode: str
    problems: list[str]
    figures: dict[str, int]  # segments, and the numbers the exports added and removed (night_figures)

    def metadata(self) -> dict[str, str | int]:
        return {"day": self.day.isoformat(), "mode": self.mode, **self.figures}


def run_shop_night(shop: Shop, fleet: Settings, env: Mapping[str, str], day: dt.date | None) -> ShopNight:
    """`smsseg run` for one shop: its settings, its instance, its day (default its own today)."""
    settings = shop.settings(fleet, env)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    today = today_in(shop_timezone(settings.data_dir))
    day = day or today
    refuse_future(day, today, f"shop {shop.name}: --as-of")
    settings = dataclasses.replace(settings, as_of=day)
    with shop_instance(settings.data_dir) as instance:
        # a worker's console says nothing: the fleet's summary says how each shop ended, and what it did
        result = execute_night(night_job(settings), settings, instance, console_level="CRITICAL")
        run_tags = instance.get_run_by_id(result.run_id).tags
    found = [str(p) for p in problems(result)]
    if not result.success and not found:
        found = [
            "the night failed before any step could say why; run the shop alone (smsseg run --data-dir "
            f"{settings.data_dir} --source {settings.source}) for its log"
        ]
    mode = run_tags.get(MODE_TAG, "not reached")
    return ShopNight(shop.name, day, mode, found, night_figures(result))


def shop_night_or_failure(shop: Shop, fleet: Settings, day: dt.date | None) -> ShopNight:
    """A step's shop night, in the worker's environment (its secrets); a night with problems fails the step."""
    night = run_shop_night(shop, fleet, os.environ, day)
    if night.problems:
        raise dg.Failure(description="; ".join(night.problems), metadata=night.metadata())
    return night


def fleet_partitions(shops: list[Shop], first_day: dt.date) -> dg.MultiPartitionsDefinition:
    """Shop by day. Days are dates: each shop evaluates a day in its own time zone; the day dimension runs in
    UTC and one day ahead, so every shop's today is there wherever it is."""
    return dg.MultiPartitionsDefinition(
        {
            "shop": dg.StaticPartitionsDefinition([shop.name for shop in shops]),
            "day": dg.DailyPartitionsDefinition(start_date=first_day.isoformat(), timezone="UTC", end_offset=1),
        }
    )


def fleet_first_day(shops: list[Shop], fleet: Settings) -> dt.date:
    """SMSSEG_FIRST_DAY, or the first order day of any shop extracted so far, or today."""
    if fleet.first_day:
        return fleet.first_day
    found = []
    for shop in shops:
        data_dir = shop.data_dir(fleet.data_dir)
        if data_dir.exists():
            found.append(first_order_day(data_dir, shop_timezone(data_dir)))
    return min([day for day in found if day] or [fleet.as_of or dt.date.today()])


def shop_step_name(shop: Shop) -> str:
    return "shop_" + shop.name.replace("-", "_")  # names are [a-z0-9-]: one step name each


def fleet_executor(fleet: Settings) -> dg.ExecutorDefinition:
    if fleet.dask_scheduler:
        return dask_executor.configured({"cluster": {"existing": {"address": fleet.dask_scheduler}}})
    return dask_executor.configured(
        {"cluster": {"local": {"n_workers": fleet.workers, "processes": True, "dashboard_address": None}}}
    )


class ShopsRun(dg.Config):
    """The shops_nightly run's options. The hourly schedule sets `due_hour` 2: each shop runs at 02:00 where it
    is, as one shop's nightly schedule does; the others' steps end at once. `smsseg run --shops` runs all."""

    due_hour: int | None = None


def shop_op(shop: Shop, fleet: Settings) -> dg.OpDefinition:
    @dg.op(name=shop_step_name(shop), tags={"shop": shop.name}, out=dg.Out(dg.Nothing))
    def _shop(context: dg.OpExecutionContext, config: ShopsRun):
        """One shop's live night (or --as-of's day), recorded as its partition of shop_night."""
        if config.due_hour is not None and local_hour(shop, fleet) != config.due_hour:
            context.log.info(f"shop {shop.name}: not its {config.due_hour:02}:00 yet where it is")
            return
        night = shop_night_or_failure(shop, fleet, fleet.as_of)
        partition = dg.MultiPartitionKey({"shop": shop.name, "day": night.day.isoformat()})
        yield dg.AssetMaterialization(SHOP_NIGHT, partition=partition, metadata=night.metadata())

    return _shop


def local_hour(shop: Shop, fleet: Settings) -> int:
    timezone = shop_timezone(shop.data_dir(fleet.data_dir))
    return dt.datetime.now(zoneinfo.ZoneInfo(timezone)).hour


def shop_night_asset(shops: list[Shop], fleet: Settings) -> dg.AssetsDefinition:
    by_name = {shop.name: shop for shop in shops}

    @dg.asset(key=SHOP_NIGHT, partitions_def=fleet_partitions(shops, fleet_first_day(shops, fleet)), group_name="shops")
    def _shop_night(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """One shop's night for one day, as `smsseg run --as-of DAY` in the shop's folder."""
        keys = context.partition_key.keys_by_dimension
        shop, day = by_name[keys["shop"]], dt.date.fromisoformat(keys["day"])
        return dg.MaterializeResult(metadata=shop_night_or_failure(shop, fleet, day).metadata())

    return _shop_night


def fleet_job(shops_file: str, settings: dict) -> dg.JobDefinition:
    """The shops_nightly job; a module-level function of plain arguments, so each Dask worker rebuilds it."""
    return build_fleet_definitions(Path(shops_file), Settings(**fleet_fields(settings))).resolve_job_def(SHOPS_NIGHTLY)


def build_fleet_definitions(shops_file: Path, fleet: Settings) -> dg.Definitions:
    shops = load_shops(shops_file)
    ops = [shop_op(shop, fleet) for shop in shops]

    @dg.graph(name=SHOPS_NIGHTLY, description="Every shop's live night, a step per shop, on the Dask cluster.")
    def _shops_nightly() -> None:
        for op in ops:
            op()

    return dg.Definitions(
        assets=[shop_night_asset(shops, fleet)],
        jobs=[_shops_nightly.to_job(executor_def=fleet_executor(fleet))],
        schedules=[
            dg.ScheduleDefinition(
                name="shops_nightly_at_2am_each",
                job_name=SHOPS_NIGHTLY,
                cron_schedule="0 * * * *",
                run_config=dg.RunConfig(ops={shop_step_name(shop): ShopsRun(due_hour=2) for shop in shops}),
                default_status=dg.DefaultScheduleStatus.STOPPED,
                description="Every hour, the shops where it is now 02:00 run their live day.",
            )
        ],
        executor=fleet_executor(fleet),
    )


def recon_fleet_job(fleet: Settings) -> ReconstructableJob:
    """The job as each worker rebuilds it: from the shops file and the fleet's settings, not the environment."""
    return dg.build_reconstructable_job(
        "pipeline.fleet.definitions",
        "fleet_job",
        reconstructable_kwargs={"shops_file": str(fleet.shops_file), "settings": fleet_arguments(fleet)},
    )


PASSED = ("source", "data_dir", "segments_dir", "gateway", "as_of", "first_day", "dry_run", "dask_scheduler", "workers")


def fleet_arguments(fleet: Settings) -> dict[str, str | int | bool | None]:
    values = {name: getattr(fleet, name) for name in PASSED}
    return {k: str(v) if isinstance(v, Path | dt.date) else v for k, v in values.items()}


def fleet_fields(arguments: dict) -> dict:
    fields = dict(arguments)
    for name in ("data_dir", "segments_dir"):
        fields[name] = Path(fields[name])
    for name in ("as_of", "first_day"):
        fields[name] = dt.date.fromisoformat(fields[name]) if fields[name] else None
    return fields
