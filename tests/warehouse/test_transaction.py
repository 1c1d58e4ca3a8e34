"""`transaction`, the one way the pipeline groups writes to state.duckdb: all of a block or none of it."""

import duckdb
import pytest

from pipeline.warehouse.build import transaction


@pytest.fixture
def con():
    with duckdb.connect() as con:
        con.execute("create table t (x integer)")
        yield con


def test_a_block_that_ends_is_committed(con: duckdb.DuckDBPyConnection) -> None:
    with transaction(con):
        con.execute("insert into t values (1), (2)")
    assert con.execute("select count(*) from t").fetchall() == [(2,)]


# exception types, not instances: an instance raised here would keep its traceback, and with it the test's
# frame and its DuckDB connection, alive in pytest's parameters until the interpreter exits
@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_a_block_that_raises_leaves_nothing_and_the_connection_usable(
    con: duckdb.DuckDBPyConnection, error: type[BaseException]
) -> None:
    with pytest.raises(error), transaction(con):
        con.execute("insert into t values (1)")
        raise error("boom")
    assert con.execute("select count(*) from t").fetchall() == [(0,)]
    with transaction(con):  # no transaction was left open
        con.execute("insert into t values (3)")
    assert con.execute("select x from t").fetchall() == [(3,)]
