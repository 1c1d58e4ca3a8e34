"""The run lifecycle on a real instance: dead runs recovered, live ones refused, the instance yaml kept current."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.test_utils import create_run_for_test

from pipeline.cli import dagster_home
from pipeline.defs.runs import (
    HOST_TAG,
    LOCK_FILE,
    PID_TAG,
    PROCESS_STARTED_TAG,
    RunInProgressError,
    folder_lock,
    held_pools,
    process_started,
    process_tags,
    recover_dead_runs,
    refuse_if_running,
)
from pipeline.settings import SettingsError

OLD_INSTANCE_YAML = """\
# Written by smsseg: the Dagster instance shared by `smsseg run` and `dagster dev`.
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 1
"""


@pytest.fixture
def instance(tmp_path: Path, monkeypatch) -> dg.DagsterInstance:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = dagster_home(tmp_path / "data")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance


def started_run(instance: dg.DagsterInstance, step: str | None = None, **tags: str) -> dg.DagsterRun:
    """A STARTED run with these tags; holding the duckdb slot for `step` when given."""
    run = create_run_for_test(instance, job_name="nightly", status=dg.DagsterRunStatus.STARTED, tags=tags)
    if step:
        instance.event_log_storage.initialize_concurrency_limit_to_default("duckdb")
        assert instance.event_log_storage.claim_concurrency_slot("duckdb", run.run_id, step).is_claimed
    return run


def ended_process() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    return child.pid


def test_a_run_whose_process_died_is_marked_failed_and_its_slot_freed(instance) -> None:
    dead = started_run(instance, "staging__stg_customers", **{**process_tags(), PID_TAG: str(ended_process())})
    lines = recover_dead_runs(instance)
    assert lines == [
        f"recovered run {dead.run_id}: its process (pid {dead.tags[PID_TAG]} on {dead.tags[HOST_TAG]}) "
        "died in no step; marked failed, its duckdb pool slot freed"
    ]
    assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
    assert held_pools(instance) == {}
    refuse_if_running(instance)  # nothing left in the way


def test_a_reused_pid_does_not_pass_for_the_run_process(instance) -> None:
    reused = started_run(instance, "marts__customers", **{**process_tags(), PROCESS_STARTED_TAG: "another boot:1"})
    assert [line.split(":")[0] for line in recover_dead_runs(instance)] == [f"recovered run {reused.run_id}"]


def test_a_live_run_is_refused_by_name_and_left_alone(instance) -> None:
    live = started_run(instance, "marts__customers", **process_tags())  # this very process
    assert recover_dead_runs(instance) == []
    with pytest.raises(RunInProgressError) as refused:
        refuse_if_running(instance)
    assert f"run {live.run_id} is STARTED, holding the duckdb pool slot, in `smsseg run` pid {os.getpid()} on " in str(
        refused.value
    )
    assert held_pools(instance) == {live.run_id: {"duckdb"}}


def test_a_run_of_another_host_is_not_judged_from_here(instance) -> None:
    elsewhere = started_run(instance, None, **{**process_tags(), HOST_TAG: "other-machine", PID_TAG: "1"})
    assert recover_dead_runs(instance) == []
    with pytest.raises(RunInProgressError) as refused:
        refuse_if_running(instance)
    assert (
        f"run {elsewhere.run_id} is STARTED, in `smsseg run` pid 1 on other-machine. Wait for it to end, "
        "or stop it (`kill 1` on other-machine)"
    ) in str(refused.value)
    assert instance.get_run_by_id(elsewhere.run_id).status == dg.DagsterRunStatus.STARTED


def test_a_run_the_ui_launched_is_left_to_dagster_run_monitoring(instance) -> None:
    ui = started_run(instance, "segments__buyers")  # no process tags
    assert recover_dead_runs(instance) == []
    with pytest.raises(RunInProgressError) as refused:
        refuse_if_running(instance)
    assert (
        f"run {ui.run_id} (launched from the Dagster UI or its schedule) is STARTED, holding the duckdb "
        "pool slot. Wait for it to end, or terminate it in the UI"
    ) in str(refused.value)
    assert held_pools(instance) == {ui.run_id: {"duckdb"}}


def test_an_ended_run_that_kept_its_slot_gives_it_back(instance) -> None:
    run = started_run(instance, "exports__buyers")
    instance.report_run_failed(run, "marked failed in the UI")
    assert recover_dead_runs(instance) == [f"run {run.run_id} had ended holding the duckdb pool slot: freed"]
    assert held_pools(instance) == {}


def test_process_started_tells_a_live_process_from_an_ended_one() -> None:
    assert process_started(os.getpid()) == process_tags()[PROCESS_STARTED_TAG] != ""
    assert process_started(ended_process()) is None


def test_an_older_instance_yaml_gains_the_new_settings_and_keeps_the_users_own(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    config = tmp_path / "home" / "dagster.yaml"
    config.write_text(
        OLD_INSTANCE_YAML + "run_monitoring:\n  poll_interval_seconds: 30\n"
        "retention:\n  schedule:\n    purge_after_days: 90\n"
    )
    dagster_home(tmp_path / "data")
    settings = yaml.safe_load(config.read_text())
    assert settings["run_monitoring"] == {
        "poll_interval_seconds": 30,
        "enabled": True,
        "free_slots_after_run_end_seconds": 60,
    }
    assert settings["retention"] == {"schedule": {"purge_after_days": 90}}
    assert settings["concurrency"] == {"pools": {"default_limit": 1}, "runs": {"max_concurrent_runs": 1}}
    assert settings["telemetry"] == {"enabled": False}
    with dg.DagsterInstance.get() as instance:  # Dagster accepts it
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] == 60

    config.write_text("run_monitoring:\n  enabled: false\n")  # a value the user chose stays
    dagster_home(tmp_path / "data")
    assert yaml.safe_load(config.read_text())["run_monitoring"]["enabled"] is False
    written = config.read_text()
    dagster_home(tmp_path / "data")
    assert config.read_text() == written, "nothing to add, nothing rewritten"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("concurrency: [unclosed\n", "not valid YAML"),
        ("- a list\n", "expected a mapping of Dagster instance settings, found list"),
    ],
)
def test_a_broken_instance_yaml_is_named(tmp_path: Path, monkeypatch, text: str, message: str) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    (tmp_path / "dagster.yaml").write_text(text)
    with pytest.raises(SettingsError) as error:
        dagster_home(tmp_path / "data")
    assert f"{tmp_path / 'dagster.yaml'}: {message}" in str(error.value) and "delete it" in str(error.value)


def test_a_folder_s_lock_names_its_holder_and_dies_with_it(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from pipeline.defs.runs import folder_lock\n"
            "with folder_lock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(600)",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(RunInProgressError) as refused:
            with folder_lock(tmp_path):
                pass
        assert f"{tmp_path}: another night is running in this folder (pid {holder.pid} on " in str(refused.value)
    finally:
        holder.kill()  # SIGKILL: nothing of the holder's runs after this
        holder.wait(timeout=30)
    with folder_lock(tmp_path):  # the kernel freed it with the process
        assert (tmp_path / LOCK_FILE).read_text() == f"pid {os.getpid()} on {socket.gethostname()}\n"
    assert (tmp_path / LOCK_FILE).read_text() == ""  # released: it names no one


def test_smsseg_run_is_refused_in_a_folder_a_shop_s_night_holds(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    data = tmp_path / "data"
    data.mkdir()
    with folder_lock(data):
        run = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", "run", "--data-dir", str(data)], capture_output=True, text=True
        )
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"not started: {data}: another night is running in this folder (pid {os.getpid()} on " in run.stdout
    assert not (data / "warehouse.duckdb").exists()
