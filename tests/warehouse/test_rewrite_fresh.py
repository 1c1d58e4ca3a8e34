"""`rewrite_fresh`: the build warehouse and state.duckdb copied into new files, so no freed page keeps erased data."""

import datetime as dt
from pathlib import Path

import duckdb

from pipeline.warehouse.build import attach_state, build_path, held_open, open_build, rewrite_fresh, state_path

AS_OF = dt.date(2026, 10, 31)
SECRET = "Zelmira Quaglietti +393479876543"


def holding(path: Path) -> bytes:
    wal = path.with_name(f"{path.name}.wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def test_deleted_rows_leave_no_bytes_and_everything_else_stays(tmp_path: Path) -> None:
    with held_open(tmp_path):
        with open_build(tmp_path, AS_OF) as con:
            attach_state(con, tmp_path)
            con.execute(
                "create table marts.people as select i, case when i = 7 then ? else 'someone ' || i end "
                "as who from range(2000) t(i)",
                [SECRET],
            )
            con.execute("create table state.people as from marts.people")
            con.execute("create view marts.few as select * from marts.people where i < 3")
        with open_build(tmp_path, AS_OF) as con:
            con.execute("delete from marts.people where i = 7")
            con.execute("delete from state.people where i = 7")
        # DuckDB frees the block but does not zero it: the deleted row is still in the files (or the
        # WAL of state.duckdb, checkpointed only when the run lets go of the build)
        assert [SECRET.encode() in holding(path) for path in (build_path(tmp_path), state_path(tmp_path))] == [True] * 2

        sizes = rewrite_fresh(tmp_path)

        assert set(sizes) == {"warehouse.duckdb", "state.duckdb"}
        assert not any(SECRET.encode() in holding(path) for path in (build_path(tmp_path), state_path(tmp_path)))
        assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["state.duckdb", "warehouse.duckdb"]
        # the run's next step, still within the held block, opens the new file
        with open_build(tmp_path, AS_OF) as con:
            attach_state(con, tmp_path)
            assert con.execute("select count(*), count(distinct who) from marts.people").fetchall() == [(1999, 1999)]
            assert con.execute("select count(*) from state.people").fetchall() == [(1999,)]
            assert con.execute("select count(*) from marts.few").fetchall() == [(3,)]
            con.execute("insert into marts.people values (7, 'someone else')")
    with duckdb.connect(str(build_path(tmp_path)), read_only=True) as con:
        assert con.execute("select who from marts.people where i = 7").fetchall() == [("someone else",)]
