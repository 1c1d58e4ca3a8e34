"""`held_open`: a run's steps share the open build warehouse, which is whole between steps and closed after."""

import datetime as dt
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from pipeline.warehouse import state
from pipeline.warehouse.build import (
    WarehouseError,
    attach_state,
    build_path,
    built_as_of,
    held_open,
    live_path,
    open_build,
    publish,
    state_path,
)
from pipeline.warehouse.state import state_version as real_state_version

AS_OF = dt.date(2026, 10, 31)


def is_open_here(path: Path) -> bool:
    """True when this process holds `path` open: DuckDB refuses to open it again with other settings."""
    try:
        duckdb.connect(str(path), read_only=True).close()
    except duckdb.ConnectionException:
        return True
    return False


def test_without_a_hold_each_step_closes_the_warehouse(tmp_path: Path) -> None:
    with open_build(tmp_path, AS_OF) as con:
        con.execute("create table marts.t as select 1 as x")
        assert is_open_here(build_path(tmp_path))
    assert not is_open_here(build_path(tmp_path))


def test_held_steps_share_the_open_warehouse_which_is_whole_between_them(tmp_path: Path) -> None:
    with held_open(tmp_path):
        with open_build(tmp_path, AS_OF) as con:
            attach_state(con, tmp_path)
            con.execute("create table marts.t as select 1 as x")
            con.execute("create table state.s as select 2 as y")
        assert is_open_here(build_path(tmp_path))
        with open_build(tmp_path, AS_OF) as con:  # the next step sees the first one's work, and its own as_of
            assert con.execute("select x, getvariable('as_of') from marts.t").fetchall() == [(1, AS_OF)]
        publish(tmp_path)  # a copy taken between steps is a whole warehouse
        with duckdb.connect(str(live_path(tmp_path)), read_only=True) as live:
            assert live.execute("select x from marts.t").fetchall() == [(1,)]
    assert not is_open_here(build_path(tmp_path))
    assert not state_path(tmp_path).with_name("state.duckdb.wal").exists()  # checkpointed as it closed
    with duckdb.connect(str(state_path(tmp_path)), read_only=True) as state:
        assert state.execute("select y from s").fetchall() == [(2,)]


def test_a_held_step_that_writes_nothing_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    """The schemas, macros and day stamps are made once per opening of the file, not by every step: a step
    that recreated them made its checkpoint write the catalog again (~15 ms each of a night's ~70 steps)."""
    with held_open(tmp_path):
        with open_build(tmp_path, AS_OF) as con:
            con.execute("create table marts.t as select 1 as x")
        before = build_path(tmp_path).read_bytes()
        for _ in range(2):
            with open_build(tmp_path, AS_OF) as con:
                assert con.execute("select x from marts.t").fetchall() == [(1,)]
                assert con.execute("select count(*) from main.built_as_of").fetchall() == [(0,)]
        assert build_path(tmp_path).read_bytes() == before


def test_a_build_from_before_day_stamps_gets_them_when_opened(tmp_path: Path) -> None:
    with open_build(tmp_path, AS_OF) as con:
        con.execute("drop table if exists main.built_as_of")
        con.execute("drop macro gid_number")
    with held_open(tmp_path), open_build(tmp_path, AS_OF) as con:
        assert built_as_of(con) == {}
        assert con.execute("select gid_number('gid://shopify/Customer/7', 'customers', 'b', 1, 'id')").fetchall() == [
            (7,)
        ]


def test_a_hold_inside_a_hold_leaves_the_closing_to_the_outer_one(tmp_path: Path) -> None:
    with held_open(tmp_path):
        with held_open(tmp_path), open_build(tmp_path, AS_OF):
            pass
        assert is_open_here(build_path(tmp_path))
    assert not is_open_here(build_path(tmp_path))


def test_a_step_that_fails_leaves_the_held_warehouse_as_it_was(tmp_path: Path) -> None:
    with held_open(tmp_path):
        with open_build(tmp_path, AS_OF) as con:
            con.execute("create table marts.t as select 1 as x")
        with pytest.raises(duckdb.CatalogException), open_build(tmp_path, AS_OF) as con:
            con.execute("begin transaction")
            con.execute("insert into marts.t values (2)")
            con.execute("select * from marts.missing")
        with open_build(tmp_path, AS_OF) as con:
            assert con.execute("select x from marts.t").fetchall() == [(1,)]


@contextmanager
def held_by_another_process(path: Path) -> Iterator[int]:
    """Another process with `path` open read-write, as another run holds it; yields its pid."""
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('open', flush=True); sys.stdin.read()",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        yield holder.pid
    finally:
        holder.communicate("", timeout=30)  # end of its stdin: it closes the file and exits


def test_a_build_another_process_holds_is_an_error_that_says_to_wait_for_it(tmp_path: Path) -> None:
    with held_by_another_process(build_path(tmp_path)) as pid:
        with pytest.raises(WarehouseError, match=rf"build warehouse is open in another process.*PID {pid}") as err:
            with held_open(tmp_path), open_build(tmp_path, AS_OF):
                pass
        assert "let it finish, then rerun" in str(err.value)
    with held_open(tmp_path), open_build(tmp_path, AS_OF) as con:  # once it is gone, the same call works
        assert con.execute("select getvariable('as_of')").fetchall() == [(AS_OF,)]


def test_a_state_file_another_process_holds_is_the_same_error(tmp_path: Path) -> None:
    with held_by_another_process(state_path(tmp_path)) as pid, open_build(tmp_path, AS_OF) as con:
        with pytest.raises(WarehouseError, match=rf"state.duckdb is open in another process.*PID {pid}"):
            attach_state(con, tmp_path)


def test_a_held_build_reads_the_state_version_once_per_opening(tmp_path: Path, monkeypatch) -> None:
    read = []
    monkeypatch.setattr(state, "state_version", lambda con: read.append(1) or real_state_version(con))
    with held_open(tmp_path):
        for _ in range(3):  # three steps, each calling migrate as a module that writes state does
            with open_build(tmp_path, AS_OF) as con:
                attach_state(con, tmp_path)
                assert state.migrate(con) in (0, state.VERSION)
    assert len(read) == 1
    # a newer release wrote the file meanwhile: the next opening reads the version again and refuses it
    with duckdb.connect(str(state_path(tmp_path))) as con:
        con.execute("insert into schema_version values (?, now())", [state.VERSION + 1])
    with held_open(tmp_path), open_build(tmp_path, AS_OF) as con:
        attach_state(con, tmp_path)
        with pytest.raises(state.StateVersionError):
            state.migrate(con)
    assert len(read) == 2
