"""A segment's view and the day it was made as of are one change: never the view without its stamp."""

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from pipeline.segments.catalogue import VIEW_COLUMNS
from pipeline.segments.compiler import create_segment_view, parse_checked
from pipeline.segments.definitions import SegmentDefinition
from pipeline.warehouse.build import built_as_of, open_build

DAY = dt.date(2026, 10, 31)
QUERY = "amount_spent >= 10"


def definition(name: str) -> SegmentDefinition:
    return SegmentDefinition(
        name=name, description="", query=QUERY, path=Path(f"{name}.yaml"), tree=parse_checked(QUERY)
    )


def views(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute("select view_name from duckdb_views() where schema_name = 'segments'").fetchall()]


def test_the_view_and_its_day_stamp_are_written_together(tmp_path: Path) -> None:
    with open_build(tmp_path, DAY) as con:
        columns = ", ".join(f"{n * 10} as {c}" for n, c in enumerate(VIEW_COLUMNS))
        con.execute(f"create table marts.customers as select {columns}")
        assert create_segment_view(con, definition("kept"), DAY) == 1
        assert views(con) == ["kept"] and built_as_of(con)["segments.kept"] == DAY
        # the stamp cannot be written (as when the step is killed between the two): no view either
        con.execute("drop table main.built_as_of")
        with pytest.raises(duckdb.CatalogException):
            create_segment_view(con, definition("lost"), DAY)
        assert views(con) == ["kept"]
