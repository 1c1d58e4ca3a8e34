"""The Dagster UI in a real browser: the webserver on loopback, Debian's headless chromium driven by Playwright.

The browser loads the asset graph and finds our assets; a run of one segment and everything upstream
of it is launched through the GraphQL API the UI itself calls; the run page shows it succeed and the
graph shows the segment materialised. That screenshot is kept in test-artifacts/ for a person to look at.

`dagster-webserver` with the DefaultRunCoordinator rather than `dagster dev`: the run launches at once
without the daemon, which would load the code a third time on a small CI machine for nothing here.
The run executes in one process (run config), as `smsseg run` does, instead of one process per step.
"""

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
from pipeline.settings import PROJECT_DIR, Settings
from pipeline.store.demo import generate_store
from tests.fixtures.processes import stop_process_group

CHROMIUM = Path(os.environ.get("SMSSEG_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = PROJECT_DIR / "test-artifacts"
SEGMENT = dg.AssetKey(["segments", "big_spenders"])
SEGMENT_DEFS = {
    "big_spenders.yaml": "name: big_spenders\ndescription: Spent more than 100\nquery: amount_spent > 100\n",
    "italians.yaml": "name: italians\ndescription: Has an address in Italy\nquery: customer_countries CONTAINS 'IT'\n",
}
AS_OF = "2026-10-31"
LOCATION = "smsseg"
SERVER_START_S = 60
RUN_S = 60
# telemetry off, as in every smsseg instance; runs launch as they are submitted, no daemon needed
INSTANCE_YAML = """\
telemetry:
  enabled: false
run_coordinator:
  module: dagster.core.run_coordinator
  class: DefaultRunCoordinator
"""

if not CHROMIUM.exists():
    MISSING = (f"{CHROMIUM} is missing: `make test` installs it when run as root with apt-get; "
               "otherwise run `sudo apt-get install chromium`")
    if os.environ.get("CI"):  # CI runs as root on a fresh machine: a skip there would hide a broken install
        pytest.fail(MISSING, pytrace=False)
    pytest.skip(MISSING, allow_module_level=True)

pytestmark = pytest.mark.timeout(120)

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

RUN_STATUS = """
query Status($runId: ID!) {
  runOrError(runId: $runId) { __typename ... on Run { status } ... on PythonError { message } }
}"""


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


@pytest.fixture(scope="module")
def dagster_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings]]:
    """The Dagster webserver on 127.0.0.1 over a small demo store and two segments; yields (base URL, settings)."""
    root = tmp_path_factory.mktemp("dagster-ui")
    home, segments, store = root / "dagster_home", root / "segments", root / "store"
    for folder in (home, segments):
        folder.mkdir()
    (home / "dagster.yaml").write_text(INSTANCE_YAML)
    workspace = root / "workspace.yaml"
    workspace.write_text(f"load_from:\n  - python_module:\n      module_name: pipeline.definitions\n"
                         f"      location_name: {LOCATION}\n      working_directory: {PROJECT_DIR}\n")
    for name, text in SEGMENT_DEFS.items():
        (segments / name).write_text(text)
    generate_store(store, customers=200, end_day=dt.date.fromisoformat(AS_OF) + dt.timedelta(days=5))
    settings = Settings(source=f"jsonl:{store}", data_dir=root / "data", segments_dir=segments)

    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "SMSSEG_SOURCE": settings.source,
           "SMSSEG_DATA_DIR": str(settings.data_dir), "SMSSEG_SEGMENTS_DIR": str(segments)}
    log = root / "dagster-dev.log"
    with open(log, "wb") as out:
        server = subprocess.Popen([str(Path(sys.executable).with_name("dagster-webserver")), "-h", "127.0.0.1",
                                   "-p", str(port), "-w", str(workspace)], cwd=PROJECT_DIR, env=env, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        def serving() -> bool:
            if server.poll() is not None:
                pytest.fail(f"dagster-webserver exited with {server.returncode}:\n{server_log(log)}")
            try:
                return httpx.get(f"{base}/server_info", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(serving, SERVER_START_S, f"dagster-webserver serving on {base}")
        yield base, settings
    finally:
        stop_process_group(server)


@pytest.fixture
def page(dagster_dev: tuple[str, Settings]) -> Iterator[sync_api.Page]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000}, base_url=dagster_dev[0])
            # the first visit to a new instance opens a "join the community" dialog over the page
            page.add_locator_handler(page.get_by_role("button", name="Skip"), lambda skip: skip.click())
            yield page
        finally:
            browser.close()


def upstream_of(settings: Settings, key: dg.AssetKey) -> list[dg.AssetKey]:
    """`key` and every asset it depends on, as the definitions the webserver loaded declare them."""
    graph = build_definitions(settings).resolve_job_def(NIGHTLY).asset_layer.asset_graph
    return sorted(dg.AssetSelection.assets(key).upstream().resolve(graph), key=lambda k: k.to_user_string())


def graphql(page: sync_api.Page, query: str, variables: dict) -> dict:
    """One call to /graphql from the page, as the UI makes it."""
    response = page.request.post("/graphql", data={"query": query, "variables": variables}, timeout=30_000)
    assert response.ok, f"/graphql answered {response.status}: {response.text()[:2000]}"
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def test_asset_graph_shows_our_assets_and_a_segment_rerun_succeeds(page: sync_api.Page,
                                                                    dagster_dev: tuple[str, Settings]) -> None:
    base, settings = dagster_dev
    group_graph = f"/locations/{LOCATION}/asset-groups/segments/lineage"
    page.goto(group_graph, wait_until="domcontentloaded")
    sync_api.expect(page.get_by_text("big_spenders").first).to_be_visible(timeout=30_000)
    sync_api.expect(page.get_by_text("Asset Group in").first).to_be_visible()
    sync_api.expect(page.get_by_text("customers").first).to_be_visible()  # marts.customers, upstream

    selection = upstream_of(settings, SEGMENT)
    assert dg.AssetKey(["marts", "customers"]) in selection and dg.AssetKey("warehouse") not in selection
    launched = graphql(page, LAUNCH_RUN, {"executionParams": {
        "selector": {"repositoryLocationName": LOCATION, "repositoryName": "__repository__",
                     "jobName": "__ASSET_JOB", "assetSelection": [{"path": k.path} for k in selection]},
        "runConfigData": {"resources": {"run": {"config": {"as_of": AS_OF}}},
                          "execution": {"config": {"in_process": {}}}},
        "mode": "default",
    }})["launchPipelineExecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    def finished() -> str | None:
        status = graphql(page, RUN_STATUS, {"runId": run_id})["runOrError"]
        assert status["__typename"] == "Run", status
        return status["status"] if status["status"] in ("SUCCESS", "FAILURE", "CANCELED") else None

    status = wait_until(finished, RUN_S, f"run {run_id} finishing", interval_s=1)
    assert status == "SUCCESS", f"run {run_id} ended {status}; see {base}/runs/{run_id}"

    page.goto(f"/runs/{run_id}", wait_until="domcontentloaded")
    sync_api.expect(page.get_by_text("Success").first).to_be_visible(timeout=15_000)

    page.goto(group_graph, wait_until="domcontentloaded")
    sync_api.expect(page.get_by_text("Materialized", exact=True).first).to_be_visible(timeout=30_000)
    sync_api.expect(page.get_by_text("Never materialized").first).to_be_visible()  # italians was not selected
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dagster-ui.png"))
