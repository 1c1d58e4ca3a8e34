"""Audience fixtures: a real warehouse with a segment view and state.duckdb attached, and the emulator."""

import datetime as dt
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

from pipeline.audience.emulator import GatewayEmulator
from pipeline.audience.klaviyo_emulator import KlaviyoEmulator
from pipeline.warehouse.build import attach_state
from tests.fixtures.stores import Store

AS_OF = dt.date(2026, 10, 31)
TOKEN = "tok-3f9a1c7e5b2d"  # a value no log line would contain by accident
KLAVIYO_KEY = "pk_7d41e0c9a2b65f38"  # likewise, as a Klaviyo private key
SEGMENT = "all_customers"


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

    def build(store: Store, as_of: dt.date = AS_OF,
              segment_sql: str = "select customer_id from marts.customers") -> duckdb.DuckDBPyConnection:
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


@pytest.fixture
def emulator() -> Iterator[GatewayEmulator]:
    with GatewayEmulator(TOKEN) as gateway:
        yield gateway


@pytest.fixture
def klaviyo() -> Iterator[KlaviyoEmulator]:
    """The Klaviyo emulator without its rate limits (a test of them starts its own): tests record waits, not sleep."""
    with KlaviyoEmulator(KLAVIYO_KEY, rate_limits=False) as server:
        yield server
