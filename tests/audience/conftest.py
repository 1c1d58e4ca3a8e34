"""Audience fixtures: a real warehouse with a segment view and state.duckdb attached, the emulators, a killed sync."""

# Annotations stay text: see tests/segments/conftest.py (nanobind's "leaked" lines at exit).
from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

from pipeline.audience.emulator import GatewayEmulator
from pipeline.audience.gateways import AudienceGateway
from pipeline.audience.klaviyo_emulator import KlaviyoEmulator
from pipeline.settings import PROJECT_DIR
from pipeline.warehouse.build import attach_state
from tests.fixtures.processes import kill_when
from tests.fixtures.stores import Store

AS_OF = dt.date(2026, 10, 31)
TOKEN = "tok-3f9a1c7e5b2d"  # a value no log line would contain by accident
KLAVIYO_KEY = "pk_7d41e0c9a2b65f38"  # likewise, as a Klaviyo private key
SEGMENT = "all_customers"


SYNC_CHILD = textwrap.dedent("""
    import datetime as dt, importlib, sys
    from pathlib import Path
    import duckdb
    from pipeline.audience.gateways import AudienceTarget
    from pipeline.audience.sync import sync_segment
    from pipeline.warehouse.build import attach_state
    module, _, gateway_class = sys.argv[1].partition(":")
    warehouse, data_dir, segment, as_of, batch_size, list_name = sys.argv[2:]
    gateway = getattr(importlib.import_module(module), gateway_class).from_env()
    con = duckdb.connect(warehouse)
    attach_state(con, Path(data_dir))
    sync_segment(con, gateway, segment, as_of=dt.date.fromisoformat(as_of), run_id="killed",
                 batch_size=int(batch_size), target=AudienceTarget(segment, name=list_name))
""")


def mobile(n: int) -> str:
    """A valid Italian mobile number, distinct for each n."""
    return f"+39347{n:07d}"


@pytest.fixture
def audience_db(warehouse, tmp_path: Path) -> Callable[..., duckdb.DuckDBPyConnection]:
    """audience_db(store) -> a connection to a copy of its warehouse, with segments.all_customers and `state`.

    Each call rebuilds from `store` (a changed store is a new extraction batch) and reopens; the
    state file persists across calls like data/state.duckdb across runs.
    """
    connections = []

    def build(
        store: Store, as_of: dt.date = AS_OF, segment_sql: str = "select customer_id from marts.customers"
    ) -> duckdb.DuckDBPyConnection:
        for con in connections:
            con.close()
        copy = tmp_path / "segment-warehouse.duckdb"
        shutil.copyfile(warehouse(store, as_of), copy)
        con = duckdb.connect(str(copy))
        con.execute("create schema if not exists segments")
        con.execute(f"create or replace view segments.{SEGMENT} as {segment_sql}")
        attach_state(con, tmp_path / "data")
        connections.append(con)
        return con

    yield build
    for con in connections:
        con.close()


@pytest.fixture(autouse=True)
def limits_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own SMSSEG_LIMITS_DIR, inherited by its child processes: no slot of another test, or of data/."""
    folder = tmp_path / "limits"
    monkeypatch.setenv("SMSSEG_LIMITS_DIR", str(folder))
    return folder


@pytest.fixture
def emulator() -> Iterator[GatewayEmulator]:
    with GatewayEmulator(TOKEN) as gateway:
        yield gateway


@pytest.fixture
def klaviyo() -> Iterator[KlaviyoEmulator]:
    """The Klaviyo emulator without its rate limits (a test of them starts its own): tests record waits, not sleep."""
    with KlaviyoEmulator(KLAVIYO_KEY, rate_limits=False) as server:
        yield server


def kill_sync(
    gateway: type[AudienceGateway],
    env: dict[str, str],
    tmp_path: Path,
    batch_size: int,
    reached: Callable[[], bool],
    *,
    list_name: str = "",
    timeout: float = 60,
) -> None:
    """Syncs SEGMENT as of AS_OF in a child process, `gateway.from_env()` over `env`, and SIGKILLs it once `reached()`.

    `tmp_path` is where audience_db built the segment warehouse and state; `list_name` names the target's list.
    """
    child = sync_child(
        gateway, env, tmp_path / "segment-warehouse.duckdb", tmp_path / "data", SEGMENT, batch_size, list_name
    )
    kill_when(child, reached, timeout=timeout)


def sync_child(
    gateway: type[AudienceGateway],
    env: dict[str, str],
    warehouse: Path,
    data_dir: Path,
    segment: str,
    batch_size: int,
    list_name: str,
) -> subprocess.Popen:
    """A child process syncing `segment` of `warehouse` as of AS_OF to `gateway.from_env()` over `env`.

    Its state is `data_dir`'s state.duckdb; `list_name` names the target's list.
    """
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            SYNC_CHILD,
            f"{gateway.__module__}:{gateway.__name__}",
            str(warehouse),
            str(data_dir),
            segment,
            AS_OF.isoformat(),
            str(batch_size),
            list_name,
        ],
        env={**os.environ, **env},
        cwd=PROJECT_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
