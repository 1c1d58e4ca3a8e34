"""`smsseg ui` (make dev) serves Dagster on loopback, on the instance `smsseg run` uses, telemetry off."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.fixtures.processes import stop_process_group


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ui_serves_our_assets_on_the_shared_instance(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    server = subprocess.Popen(
        [Path(sys.executable).parent / "smsseg", "ui", "--port", str(port), "--data-dir", str(tmp_path / "data")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        query = json.dumps({"query": "{ assetNodes { assetKey { path } } }"}).encode()
        deadline, keys = time.monotonic() + 120, None
        while time.monotonic() < deadline and keys is None:
            time.sleep(1)
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/graphql", data=query, headers={"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(request, timeout=5) as reply:
                    nodes = json.load(reply)["data"]["assetNodes"]
                    keys = {"/".join(n["assetKey"]["path"]) for n in nodes} or None
            except (OSError, KeyError, TypeError):
                continue
        assert keys is not None, "the UI did not answer within 120 s"
        assert {"marts/customers", "warehouse", "segments/winback_90d", "exports/winback_90d"} <= keys
        config = (tmp_path / "data" / "dagster" / "dagster.yaml").read_text()
        assert "enabled: false" in config and "default_limit: 1" in config
    finally:
        stop_process_group(server)
