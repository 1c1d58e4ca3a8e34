"""How each shop's night ended in one fleet run, read back from the run's events."""

from dataclasses import dataclass

import dagster as dg

from pipeline.fleet.definitions import SHOP_NIGHT, shop_step_name
from pipeline.fleet.night import failure_text
from pipeline.fleet.shops import Shop


@dataclass(frozen=True)
class ShopOutcome:
    shop: str
    ok: bool
    day: str | None = None
    mode: str | None = None
    error: str | None = None
    figures: dict[str, int] | None = None  # segments, added, removed (pipeline/fleet/night.py night_figures)


def shop_outcomes(instance: dg.DagsterInstance, run_id: str, shops: list[Shop]) -> list[ShopOutcome]:
    """One outcome per shop, in the file's order: its day and mode, or why it failed or never ran."""
    done: dict[str, dict[str, str]] = {}
    errors: dict[str, str] = {}
    run_error = None
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.is_step_materialization and event.asset_key == SHOP_NIGHT:
            metadata = event.event_specific_data.materialization.metadata
            done[event.step_key] = {k: v.value for k, v in metadata.items()}
        elif event.is_step_failure:
            errors[event.step_key] = failure_text(event)
        elif event.event_type == dg.DagsterEventType.RUN_FAILURE:
            run_error = entry.user_message
    outcomes = []
    for shop in shops:
        step = shop_step_name(shop)
        if step in done:
            record = done[step]
            figures = {k: record[k] for k in ("segments", "added", "removed") if k in record}
            outcomes.append(ShopOutcome(shop.name, True, record.get("day"), record.get("mode"), figures=figures))
        else:
            error = errors.get(step) or f"its night never finished: {run_error or 'the run ended first'}"
            outcomes.append(ShopOutcome(shop.name, False, error=error))
    return outcomes
