"""Deleting state.duckdb between two nights: nothing sent twice, nothing left behind, no swing let through."""

import datetime as dt
from pathlib import Path

import dagster as dg
import pytest

from pipeline.cli import report
from pipeline.settings import Settings
from tests.defs.test_checks import checks
from tests.defs.test_export_assets import AS_OF
from tests.fixtures.nightly import run_nightly_job
from tests.fixtures.stores import Store, customer

VIPS = "name: vips\nquery: customer_tags CONTAINS 'vip'\nsms:\n  export: true\n"
LATER = "2026-10-31T12:00:00Z"


def store(shrunk: bool) -> Store:
    """Ten VIPs; shrunk: 5..10 lose the tag and 1 unsubscribes (the segment goes from 10 to 4)."""
    return Store(
        customers=[
            customer(
                n,
                phone=f"+39347{n:07d}",
                tags=["vip"] if not shrunk or n < 5 else [],
                sms_state="UNSUBSCRIBED" if shrunk and n == 1 else "SUBSCRIBED",
                updated=LATER if shrunk else None,
            )
            for n in range(1, 11)
        ]
    )


def night(
    tmp_path: Path, shrunk: bool, day: int, instance: dg.DagsterInstance | None, **options: object
) -> dg.ExecuteInProcessResult:
    defs = tmp_path / "defs"
    defs.mkdir(exist_ok=True)
    (defs / "vips.yaml").write_text(VIPS)
    settings = Settings(
        source=f"jsonl:{store(shrunk).write(tmp_path / 'store')}", data_dir=tmp_path / "data", segments_dir=defs
    )
    return run_nightly_job(settings, instance=instance, as_of=AS_OF + dt.timedelta(days=day), **options)


def export(result: dg.ExecuteInProcessResult) -> dict:
    event = next(
        e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(["exports", "vips"])
    )
    return {k: v.value for k, v in event.event_specific_data.materialization.metadata.items()}


def changes(tmp_path: Path, day: int) -> list[str]:
    path = tmp_path / "data" / "exports" / "vips" / f"{AS_OF + dt.timedelta(days=day)}.changes.csv"
    return sorted(path.read_text().splitlines()[1:])


def held_audience(tmp_path: Path) -> list[str]:
    """Customer ids in the file gateway's audience of the second night."""
    audience = (tmp_path / "data" / "exports" / "vips" / f"{AS_OF + dt.timedelta(days=1)}.csv").read_text()
    return [line.split(",")[1] for line in audience.splitlines()[1:]]


@pytest.mark.parametrize("dagster_history", [True, False], ids=["dagster-kept", "dagster-lost-too"])
def test_deleting_state_between_two_nights_is_harmless(tmp_path: Path, dagster_history: bool) -> None:
    with dg.DagsterInstance.ephemeral() as first, dg.DagsterInstance.ephemeral() as second:
        instance = first if dagster_history else second  # Dagster's records of the first night are lost too
        assert night(tmp_path, False, 0, first).success
        for path in (tmp_path / "data").glob("state.duckdb*"):
            path.unlink()

        held = night(tmp_path, True, 1, instance)
        figures = export(held)
        assert (figures["held"], figures["adopted"], figures["added"], figures["removed"]) == (True, 10, 0, 1)
        assert changes(tmp_path, 1) == ["remove,+393470000001,1"]  # consent is never held; no number resent
        assert held_audience(tmp_path) == [str(n) for n in range(2, 11)]  # what the destination now holds
        if dagster_history:  # the size Dagster recorded for the day before turns the check red too
            assert "went from 10 to 4 members (-60%" in checks(held)["segments/vips:size_swing"][1]
        else:
            assert "holds 10 numbers, where 3 are eligible now (-70%" in figures["reason"]
        assert report(held, instance) == 1, "a held export is a night that needs a person, also when the check is green"

        acknowledged = night(tmp_path, True, 1, instance, acknowledge_swings=["vips"])
        assert (export(acknowledged)["added"], export(acknowledged)["removed"]) == (0, 6)
        assert held_audience(tmp_path) == ["2", "3", "4"]  # none left behind
