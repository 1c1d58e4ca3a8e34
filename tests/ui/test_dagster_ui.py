"""The Dagster UI in a real browser: `smsseg ui` on loopback, Debian's headless chromium driven by Playwright.

`smsseg ui` is what an operator starts (`make dev`): `dagster dev` on the instance smsseg writes, so the
webserver, the daemon (the run queue and the backfill loop) and one code server, on the instance's
own settings (the duckdb pool of one). Runs are launched through the GraphQL mutations the UI's buttons
call: *Materialize* of one day (a run tagged with its partition) and *Materialize* of several days (a
partition backfill, whose runs the daemon submits). Each run executes in one process (run config, which
the launch dialog lets an operator set too), as `smsseg run` does, instead of one process per step
(minutes a day here); the instance smsseg writes starts one run at a time.

The browser then finds the assets, the runs and their days, and a segment's partitions and its size
plotted by partition. Screenshots are kept in test-artifacts/ for a person to look at.
"""

import dataclasses
import datetime as dt
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import httpx
import pytest
from playwright import sync_api

from pipeline.definitions import NIGHTLY, build_definitions
from pipeline.defs.resources import LATEST_TAG, MODE_TAG, PARTITION_TAG
from pipeline.settings import PROJECT_DIR, Settings
from pipeline.store.demo import generate_store
from tests.fixtures.processes import stop_process_group

CHROMIUM = Path(os.environ.get("SMSSEG_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = PROJECT_DIR / "test-artifacts"
SEGMENT = dg.AssetKey(["segments", "big_spenders"])
SEGMENT_DEFS = {
    "big_spenders.yaml": "name: big_spenders\ndescription: Spent more than 100\nquery: amount_spent > 100\n",
    "italians.yaml": "name: italians\ndescription: Has an address in Italy\nquery: customer_countries CONTAINS 'IT'\n",
}
LIVE_DAY = dt.date(2026, 10, 31)  # the store's history ends here
BACKFILL_DAYS = [dt.date(2026, 10, 29), dt.date(2026, 10, 30)]  # before the live day: backfills
FIRST_DAY = dt.date(2026, 10, 1)  # the partitions offered: October onwards, not every day since 2000
LOCATION = "smsseg"
BACKFILL_TAG = "dagster/backfill"
SERVER_START_S = 90
RUN_S = 90
BACKFILL_S = 150  # the daemon looks for new backfills every 30 s; then the runs, one after another
IN_ONE_PROCESS = {"execution": {"config": {"in_process": {}}}}
# Beside the settings smsseg writes (one run at a time): the queue looked at every second, not every 5.
RUN_QUEUE_YAML = """\
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
"""

if not CHROMIUM.exists():
    MISSING = (
        f"{CHROMIUM} is missing: `make test` installs it when run as root with apt-get; "
        "otherwise run `sudo apt-get install chromium`"
    )
    if os.environ.get("CI"):  # CI runs as root on a fresh machine: a skip there would hide a broken install
        pytest.fail(MISSING, pytrace=False)
    pytest.skip(MISSING, allow_module_level=True)

pytestmark = pytest.mark.timeout(300)

LAUNCH_RUN = """
mutation Launch($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message stack }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PipelineNotFoundError { message }
    ... on InvalidSubsetError { message }
  }
}"""

LAUNCH_BACKFILL = """
mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PartitionKeysNotFoundError { message }
    ... on PythonError { message stack }
  }
}"""

RUNS = """
query Runs($filter: RunsFilter!) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs { results { runId status tags { key value } } }
    ... on PythonError { message }
  }
}"""

MATERIALIZATIONS = """
query Materializations($assetKey: AssetKeyInput!) {
  assetOrError(assetKey: $assetKey) {
    __typename
    ... on Asset { assetMaterializations { partition runId metadataEntries {
      label ... on IntMetadataEntry { intValue } } } }
  }
}"""

CODE_LOCATION = """
{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } } } } } }"""

FINISHED = ("SUCCESS", "FAILURE", "CANCELED")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, timeout_s: float, what: str, interval_s: float = 0.5):
    """Calls `check` until it returns something truthy; fails naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval_s)
    pytest.fail(f"{what}: not within {timeout_s} s")


def server_log(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:] if log.exists() else ""


class Dagster:
    """The UI's server: its base URL and the GraphQL endpoint the UI calls."""

    def __init__(self, base: str, settings: Settings, log: Path) -> None:
        self.base, self.settings, self.log = base, settings, log

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        response = httpx.post(f"{self.base}/graphql", json={"query": query, "variables": variables or {}}, timeout=30)
        assert response.status_code == 200, f"/graphql answered {response.status_code}: {response.text[:2000]}"
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def runs(self, **tags: str) -> list[dict]:
        found = self.graphql(RUNS, {"filter": {"tags": [{"key": k, "value": v} for k, v in tags.items()]}})
        assert found["runsOrError"]["__typename"] == "Runs", found
        return found["runsOrError"]["results"]

    def wait_for_runs(self, count: int, timeout_s: float, **tags: str) -> list[dict]:
        """The `count` runs with these tags, once every one has finished."""

        def finished() -> list[dict] | None:
            runs = self.runs(**tags)
            return runs if len(runs) == count and all(r["status"] in FINISHED for r in runs) else None

        return wait_until(finished, timeout_s, f"{count} finished runs tagged {tags} (log: {self.log})", interval_s=1)


@pytest.fixture(scope="module")
def dagster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dagster]:
    """`smsseg ui` on 127.0.0.1 over a small demo store and two segments, its instance in data/dagster."""
    root = tmp_path_factory.mktemp("dagster-ui")
    segments, store = root / "segments", root / "store"
    segments.mkdir()
    for name, text in SEGMENT_DEFS.items():
        (segments / name).write_text(text)
    generate_store(store, customers=200, end_day=LIVE_DAY)
    settings = Settings(source=f"jsonl:{store}", data_dir=root / "data", segments_dir=segments)
    (settings.data_dir / "dagster").mkdir(parents=True)
    (settings.data_dir / "dagster" / "dagster.yaml").write_text(RUN_QUEUE_YAML)  # smsseg ui adds its own

    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"},
        "SMSSEG_SOURCE": settings.source,
        "SMSSEG_SEGMENTS_DIR": str(segments),
        "SMSSEG_FIRST_DAY": FIRST_DAY.isoformat(),
    }
    log = root / "smsseg-ui.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("smsseg")),
                "ui",
                "--port",
                str(port),
                "--data-dir",
                str(settings.data_dir),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    ui = Dagster(f"http://127.0.0.1:{port}", settings, log)
    try:

        def serving() -> bool:
            if server.poll() is not None:
                pytest.fail(f"smsseg ui exited with {server.returncode}:\n{server_log(log)}")
            try:
                entries = ui.graphql(CODE_LOCATION)["workspaceOrError"]["locationEntries"]
            except httpx.HTTPError:
                return False
            loaded = [e for e in entries if e["name"] == LOCATION and e["loadStatus"] == "LOADED"]
            if loaded and loaded[0]["locationOrLoadError"]["__typename"] == "PythonError":
                pytest.fail(f"the code location did not load: {loaded[0]['locationOrLoadError']['message']}")
            return bool(loaded)

        wait_until(serving, SERVER_START_S, f"smsseg ui serving our code on {ui.base}")
        yield ui
    finally:
        stop_process_group(server)


@dataclasses.dataclass(frozen=True)
class Launched:
    live_run: str  # the run id of the live day's *Materialize*
    backfill: str  # the backfill id of the days before it


@pytest.fixture(scope="module")
def launched(dagster: Dagster) -> Launched:
    """*Materialize* of the segment and everything upstream of it for the live day, as the UI launches it
    (the asset job, the day as the run's partition tag), and right behind it the same assets for the days
    before, as the UI's backfill launches them. The queue starts runs one at a time in the order they were
    launched, so the live day runs first, while the daemon picks the backfill up (every 30 s)."""
    selection = upstream_of(dagster.settings, SEGMENT)
    assert dg.AssetKey(["marts", "customers"]) in selection and dg.AssetKey("warehouse") not in selection
    run = dagster.graphql(
        LAUNCH_RUN,
        {
            "executionParams": {
                "selector": {
                    "repositoryLocationName": LOCATION,
                    "repositoryName": "__repository__",
                    "jobName": "__ASSET_JOB",
                    "assetSelection": asset_keys(selection),
                },
                "runConfigData": IN_ONE_PROCESS,
                "executionMetadata": {"tags": [{"key": PARTITION_TAG, "value": LIVE_DAY.isoformat()}]},
                "mode": "default",
            }
        },
    )["launchPipelineExecution"]
    assert run["__typename"] == "LaunchRunSuccess", run
    backfill = dagster.graphql(
        LAUNCH_BACKFILL,
        {
            "backfillParams": {
                "assetSelection": asset_keys(selection),
                "partitionNames": [d.isoformat() for d in BACKFILL_DAYS],
                "fromFailure": False,
                "tags": [],
                "runConfigData": IN_ONE_PROCESS,
            }
        },
    )["launchPartitionBackfill"]
    assert backfill["__typename"] == "LaunchBackfillSuccess", backfill
    return Launched(run["run"]["runId"], backfill["backfillId"])


@pytest.fixture
def page(dagster: Dagster) -> Iterator[sync_api.Page]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000}, base_url=dagster.base)
            # the first visit to a new instance opens a "join the community" dialog over the page
            page.add_locator_handler(page.get_by_role("button", name="Skip"), lambda skip: skip.click())
            yield page
        finally:
            browser.close()


def upstream_of(settings: Settings, key: dg.AssetKey) -> list[dg.AssetKey]:
    """`key` and every asset it depends on, as the definitions the webserver loaded declare them."""
    graph = build_definitions(settings).resolve_job_def(NIGHTLY).asset_layer.asset_graph
    return sorted(dg.AssetSelection.assets(key).upstream().resolve(graph), key=lambda k: k.to_user_string())


def asset_keys(keys: list[dg.AssetKey]) -> list[dict]:
    return [{"path": k.path} for k in keys]


def tags_of(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["tags"]}


def screenshot(page: sync_api.Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


def test_asset_graph_shows_our_assets_and_a_segment_rerun_of_a_day_succeeds(
    page: sync_api.Page, dagster: Dagster, launched: Launched
) -> None:
    group_graph = f"/locations/{LOCATION}/asset-groups/segments/lineage"
    page.goto(group_graph, wait_until="domcontentloaded")
    sync_api.expect(page.get_by_text("big_spenders").first).to_be_visible(timeout=30_000)
    sync_api.expect(page.get_by_text("Asset Group in").first).to_be_visible()
    sync_api.expect(page.get_by_text("customers").first).to_be_visible()  # marts.customers, upstream

    [run] = dagster.wait_for_runs(1, RUN_S, **{PARTITION_TAG: LIVE_DAY.isoformat()})
    assert run["runId"] == launched.live_run
    assert run["status"] == "SUCCESS", f"the live run ended {run['status']}; see {dagster.base}/runs/{run['runId']}"
    assert tags_of(run)[MODE_TAG] == "live", run  # the first day run is live
    page.goto(f"/runs/{run['runId']}", wait_until="domcontentloaded")
    sync_api.expect(page.get_by_text("Success").first).to_be_visible(timeout=15_000)

    page.goto(group_graph, wait_until="domcontentloaded")
    # each partitioned asset shows the share of its days materialised: none for italians, not selected
    sync_api.expect(page.get_by_text("% filled")).to_have_count(2, timeout=30_000)
    sync_api.expect(page.get_by_text("0% filled", exact=True)).to_have_count(1)
    screenshot(page, "dagster-ui.png")


def test_a_backfill_from_the_ui_records_each_day_and_the_segment_page_plots_its_size_by_day(
    page: sync_api.Page, dagster: Dagster, launched: Launched
) -> None:
    runs = dagster.wait_for_runs(len(BACKFILL_DAYS), BACKFILL_S, **{BACKFILL_TAG: launched.backfill})
    by_day = {tags_of(run)[PARTITION_TAG]: run for run in runs}
    assert sorted(by_day) == [d.isoformat() for d in BACKFILL_DAYS], runs
    for day, run in by_day.items():
        assert run["status"] == "SUCCESS", f"{day}: ended {run['status']}; see {dagster.base}/runs/{run['runId']}"
        # days before the live day change nothing live, and the run says so
        assert tags_of(run)[MODE_TAG] == "backfill" and tags_of(run)[LATEST_TAG] == LIVE_DAY.isoformat(), run

    # Dagster's instance holds the segment's materializations keyed by day, each with its size
    found = dagster.graphql(MATERIALIZATIONS, {"assetKey": {"path": SEGMENT.path}})["assetOrError"]
    sizes = {
        m["partition"]: [e["intValue"] for e in m["metadataEntries"] if e["label"] == "size"]
        for m in found["assetMaterializations"]
    }
    assert sorted(sizes) == sorted(d.isoformat() for d in [*BACKFILL_DAYS, LIVE_DAY]), found
    assert all(len(size) == 1 and size[0] > 0 for size in sizes.values()), sizes

    # the runs list shows each run's day and mode, the backfill's runs once asked to show them
    page.goto("/runs", wait_until="domcontentloaded")
    page.get_by_text("Show runs within backfills").click(timeout=30_000)
    shown = {run["runId"]: (day, "backfill") for day, run in by_day.items()}
    for run_id, (day, mode) in {**shown, launched.live_run: (LIVE_DAY.isoformat(), "live")}.items():
        # a row of the list: the nearest box around the run's link that holds its View link too
        row = page.get_by_role("link", name=f"run {run_id[:8]}").locator(
            "xpath=ancestor::div[.//a[normalize-space()='View']][1]"
        )
        sync_api.expect(row.get_by_text(f"partition: {day}").first).to_be_visible(timeout=30_000)
        sync_api.expect(row.get_by_text(f"{MODE_TAG}: {mode}")).to_be_visible()
    screenshot(page, "dagster-ui-runs.png")

    asset_page = f"/assets/{'/'.join(SEGMENT.path)}"
    page.goto(f"{asset_page}?view=partitions", wait_until="domcontentloaded")
    sync_api.expect(page.get_by_text(f"Materialized ({len(sizes)})")).to_be_visible(timeout=30_000)
    sync_api.expect(page.get_by_text("Failed (0)")).to_be_visible()
    for day, [size] in sorted(sizes.items()):  # each day's own materialization, picked from the list
        page.get_by_placeholder("Filter by name…").fill(day)
        page.get_by_text(day, exact=True).first.click()
        mode = "live" if day == LIVE_DAY.isoformat() else "backfill"
        for label, value in (("as_of", day), ("size", size), ("mode", mode)):
            row = page.get_by_role("row").filter(has=page.get_by_text(label, exact=True))
            sync_api.expect(row.get_by_role("cell").nth(1)).to_have_text(str(value))  # label, value
    screenshot(page, "dagster-ui-partitions.png")

    # the overview's metadata, plotted with the partitions (days) along the x axis
    page.goto(f"{asset_page}?view=overview", wait_until="domcontentloaded")
    page.get_by_role("button", name="Plots").click(timeout=30_000)
    page.get_by_role("button", name="Partitions").click()
    sync_api.expect(page.get_by_text("When graphing values by partition")).to_be_visible(timeout=30_000)
    for figure in ("size", "entered", "left"):  # each title, and the chart drawn beneath it
        plot = page.get_by_text(figure, exact=True).locator("xpath=../..")
        sync_api.expect(plot.locator("canvas")).to_be_visible()
    screenshot(page, "dagster-ui-size-by-day.png")
