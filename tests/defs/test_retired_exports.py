"""A segment no longer exported (deleted, renamed, export: false) is emptied at its destination, once."""

import datetime as dt
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipeline.audience.emulator import GatewayEmulator
from pipeline.audience.gateways import HttpGateway
from pipeline.cli import print_summary
from pipeline.defs.exports import RETIRED_KEY
from pipeline.settings import Settings
from tests.defs.test_export_assets import AS_OF, TOKEN, shop
from tests.fixtures.nightly import run_nightly_job

VIPS = "name: vips\nquery: number_of_orders >= 1\nsms:\n  export: true\n"
BUYERS = "name: buyers\nquery: number_of_orders >= 1\nsms:\n  export: true\n"


def night(tmp_path: Path, definitions: dict[str, str], day: int, **resources) -> dg.ExecuteInProcessResult:
    folder = tmp_path / "defs"
    folder.mkdir(exist_ok=True)
    for old in folder.glob("*.yaml"):
        old.unlink()
    for name, text in definitions.items():
        (folder / f"{name}.yaml").write_text(text)
    settings = Settings(
        source=f"jsonl:{shop().write(tmp_path / 'store')}", data_dir=tmp_path / "data", segments_dir=folder
    )
    result = run_nightly_job(settings, resources=resources, as_of=AS_OF + dt.timedelta(days=day))
    assert result.success
    return result


def retired(result: dg.ExecuteInProcessResult) -> dict:
    event = next(e for e in result.get_asset_materialization_events() if e.asset_key == RETIRED_KEY)
    return {k: v.value for k, v in event.event_specific_data.materialization.metadata.items()}


@pytest.mark.parametrize("change", ["deleted", "renamed", "export_false"])
def test_a_segment_no_longer_exported_is_emptied_once(
    tmp_path: Path, change: str, capsys: pytest.CaptureFixture
) -> None:
    night(tmp_path, {"buyers": BUYERS, "vips": VIPS}, 0)
    folder = tmp_path / "data" / "exports" / "vips"
    assert len((folder / f"{AS_OF}.csv").read_text().splitlines()) == 1 + 8

    tonight = {
        "deleted": {"buyers": BUYERS},
        "renamed": {"buyers": BUYERS, "top": VIPS.replace("name: vips", "name: top")},
        "export_false": {"buyers": BUYERS, "vips": VIPS.replace("export: true", "export: false")},
    }[change]
    second = night(tmp_path, tonight, 1)
    assert retired(second)["retired"] == {"vips": 8}
    day = AS_OF + dt.timedelta(days=1)
    assert (folder / f"{day}.csv").read_text().replace('"', "").splitlines() == [
        "phone,customer_id,first_name,last_name,country"
    ]
    assert [line.split(",")[0] for line in (folder / f"{day}.changes.csv").read_text().splitlines()[1:]] == [
        "remove"
    ] * 8
    with duckdb.connect(str(tmp_path / "data" / "state.duckdb"), read_only=True) as state:
        assert state.sql("select segment, count(*) from audience_sync_state group by all order by 1").fetchall() == (
            [("buyers", 8), ("top", 8)] if change == "renamed" else [("buyers", 8)]
        )
    print_summary(second)
    assert "segment vips is no longer exported: removed 8 numbers from file" in capsys.readouterr().out

    third = night(tmp_path, tonight, 2)
    assert (retired(third)["retired"], retired(third)["removed"]) == ({}, 0)


def test_retiring_over_http_removes_every_member_at_the_gateway(tmp_path: Path) -> None:
    with GatewayEmulator(TOKEN) as emulator:
        gateway = HttpGateway(url=emulator.url, token=TOKEN)
        night(tmp_path, {"buyers": BUYERS, "vips": VIPS}, 0, gateway=gateway)
        assert len(emulator.members("vips")) == 8
        night(tmp_path, {"buyers": BUYERS}, 1, gateway=gateway)
        assert emulator.members("vips") == {} and len(emulator.members("buyers")) == 8


def test_a_failing_export_does_not_keep_a_retired_audience_up(tmp_path: Path) -> None:
    night(tmp_path, {"buyers": BUYERS, "vips": VIPS}, 0)
    (tmp_path / "defs" / "vips.yaml").unlink()
    buyers = tmp_path / "data" / "exports" / "buyers"
    shutil.rmtree(buyers)
    buyers.write_text("in the way")  # the file gateway cannot write buyers' audience: its export fails
    settings = Settings(
        source=f"jsonl:{shop().write(tmp_path / 'store')}", data_dir=tmp_path / "data", segments_dir=tmp_path / "defs"
    )
    result = run_nightly_job(settings, as_of=AS_OF + dt.timedelta(days=1))
    assert [e.step_key for e in result.all_events if e.is_step_failure] == ["exports__buyers"]
    assert retired(result)["retired"] == {"vips": 8}
