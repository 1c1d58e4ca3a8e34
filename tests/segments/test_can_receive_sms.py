"""can_receive_sms: the export's own eligibility rules over every customer, against the oracle's reading of
the spec and against what an export of the segment really sends."""

import argparse
import csv
import datetime as dt
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from sqlglot import exp

from pipeline.audience.eligibility import eligible_audience
from pipeline.segments import SegmentErrors, compile_query, create_segment_view, render
from pipeline.segments.commands import register
from pipeline.segments.compiler import parse_checked
from pipeline.segments.definitions import SegmentDefinition
from pipeline.settings import Settings
from pipeline.sqlbuild import to_sql
from pipeline.warehouse.build import built_as_of, open_build
from pipeline.warehouse.reach import REACHABLE, AudienceError
from tests.fixtures.nightly import run_nightly_job
from tests.fixtures.stores import Store, customer
from tests.segments.conftest import Built
from tests.segments.evaluator import Evaluator

NIGHT = dt.date(2026, 10, 15)


@pytest.fixture(scope="module")
def evaluator(varied: Built) -> Evaluator:
    return Evaluator(varied.oracle(), varied.as_of)


def members(con: duckdb.DuckDBPyConnection, query: str, as_of: dt.date) -> set[int]:
    return {row[0] for row in con.execute(render(compile_query(query, as_of))).fetchall()}


def test_the_store_has_every_trap(evaluator: Evaluator) -> None:
    """Consenting customers with a valid number that may not be texted: a shared number (its lowest
    consenting id keeps it), opt-outs after the evaluation date in 00 and national spellings, a line of
    suppressions.csv; and some that may."""
    consenting = {
        cid
        for cid, row in evaluator.customers.items()
        if row["sms_subscription_status"] == "SUBSCRIBED" and row["phone_e164"] and not row["is_redacted"]
    }
    numbers = {evaluator.customers[cid]["phone_e164"] for cid in consenting}
    reached = {evaluator.customers[cid]["phone_e164"] for cid in evaluator.reachable}
    assert evaluator.reachable < consenting
    assert {"+393471234568", "+393471234569"} <= numbers - reached  # suppressed by 00 spelling and the CSV
    shared = [n for n in reached if sum(evaluator.customers[c]["phone_e164"] == n for c in consenting) > 1]
    assert shared, "no number shared by consenting customers"
    assert 31 not in evaluator.reachable and 32 in evaluator.reachable  # a national opt-out, read in its region


@pytest.mark.parametrize(
    "query",
    [
        "can_receive_sms = true",
        "can_receive_sms = false",
        "can_receive_sms != true",
        "can_receive_sms != false",
        "can_receive_sms = true AND customer_countries CONTAINS 'IT'",
        "can_receive_sms = false AND sms_subscription_status = 'SUBSCRIBED'",
        "can_receive_sms = true OR amount_spent > 100",
    ],
)
def test_matches_the_oracle(varied: Built, evaluator: Evaluator, query: str) -> None:
    with varied.connect() as con:
        ours = members(con, query, varied.as_of)
    assert ours == evaluator.members(parse_checked(query)), query


@pytest.mark.parametrize(
    "query",
    [
        "number_of_orders >= 0",  # everyone
        "can_receive_sms = true",
        "customer_countries CONTAINS 'FR' AND can_receive_sms = true",
        "customer_countries NOT CONTAINS 'US' AND can_receive_sms = true",
    ],
)
def test_is_what_the_export_sends(varied: Built, tmp_path: Path, query: str) -> None:
    """An export of everyone sends exactly the customers it is true for; of a segment that asks for it,
    every member, with nobody excluded."""
    copy = tmp_path / "warehouse.duckdb"
    shutil.copyfile(varied.warehouse, copy)
    with duckdb.connect(str(copy)) as con:
        definition = definition_of(query, tmp_path)
        size = create_segment_view(con, definition, varied.as_of)
        audience = eligible_audience(con, "reach", suppressions_csv=varied.warehouse.parent / "suppressions.csv")
        sent = {row[0] for row in con.execute("select customer_id from audience_eligible").fetchall()}
        reachable = {
            row[0] for row in con.execute(to_sql(exp.select("customer_id").from_(exp.to_table(REACHABLE)))).fetchall()
        }
        segment = {row[0] for row in con.execute("select customer_id from segments.reach").fetchall()}
    assert sent and size == len(segment)
    if query == "number_of_orders >= 0":
        assert len(segment) > len(sent)
        assert sent == reachable
    else:
        assert sent == segment and sum(audience.excluded.values()) == 0


def test_built_again_for_another_day(varied: Built, tmp_path: Path) -> None:
    """A segment view of another day brings the table to that day first, reading the data directory's
    suppressions.csv (a number added there is no longer reachable)."""
    data = tmp_path / "data"
    (data / "build").mkdir(parents=True)
    shutil.copyfile(varied.warehouse, data / "build" / "warehouse.duckdb")
    with varied.connect() as con:
        reachable = con.execute(
            "select customer_id, c.phone_e164 from audience.sms_reachable join marts.customers c using (customer_id) "
            "order by 1"
        ).fetchall()
    listed = (varied.warehouse.parent / "suppressions.csv").read_text()
    (data / "suppressions.csv").write_text(f"{listed}{reachable[0][1]},added\n")
    day = varied.as_of + dt.timedelta(days=1)
    query = "can_receive_sms = true"
    definition = definition_of(query, tmp_path)
    with open_build(data, day) as con:
        create_segment_view(con, definition, day)
        assert built_as_of(con)[REACHABLE] == day
        ours = {row[0] for row in con.execute("select customer_id from segments.reach").fetchall()}
    assert ours == {r[0] for r in reachable} - {reachable[0][0]}


def test_a_segment_without_the_numbers_owner_exports_the_next_holder(varied: Built, tmp_path: Path) -> None:
    """The documented difference: customer 22 shares customer 4's number, so it cannot receive SMS (4 is
    texted on it), yet an export of Italians, which 4 is not one of, sends the number to 22."""
    copy = tmp_path / "warehouse.duckdb"
    shutil.copyfile(varied.warehouse, copy)
    with duckdb.connect(str(copy)) as con:
        create_segment_view(con, definition_of("customer_countries CONTAINS 'IT'", tmp_path), varied.as_of)
        eligible_audience(con, "reach", suppressions_csv=varied.warehouse.parent / "suppressions.csv")
        sent = {row[0] for row in con.execute("select customer_id from audience_eligible").fetchall()}
        reachable = members(con, "can_receive_sms = true", varied.as_of)
    assert 22 in sent - reachable and 4 in reachable


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("can_receive_sms IS NULL", "can_receive_sms is never NULL: it is true or false"),
        ("can_receive_sms = 1", "can_receive_sms cannot be compared with the number 1"),
        ("can_receive_sms = 'true'", "can_receive_sms cannot be compared with the string 'true'"),
        ("can_receive_sms >= true", ">= does not apply to can_receive_sms, a boolean"),
        ("can_receive_sms IN (true)", "IN does not apply to can_receive_sms, a boolean"),
        ("can_receive_sms CONTAINS true", "CONTAINS needs a list attribute; can_receive_sms is a boolean"),
    ],
)
def test_wrong_uses_say_how_to_write_it(query: str, message: str) -> None:
    with pytest.raises(SegmentErrors) as caught:
        compile_query(query, dt.date(2026, 10, 15))
    (error,) = caught.value.errors
    assert message in str(error) and "true or false" in str(error)


def definition_of(query: str, directory: Path) -> SegmentDefinition:
    return SegmentDefinition(
        name="reach", description="", query=query, path=directory / "reach.yaml", tree=parse_checked(query)
    )


def test_preview_counts_the_reachable_and_explains_an_older_warehouse(
    varied: Built, evaluator: Evaluator, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    shutil.copyfile(varied.warehouse, tmp_path / "warehouse.duckdb")
    query = "can_receive_sms = true"
    assert preview(query, tmp_path) == 0
    assert capsys.readouterr().out.startswith(f"{len(evaluator.reachable)} customer(s) match as of {varied.as_of}")
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute("drop table audience.sms_reachable")  # as published before the attribute existed
    assert preview(f"amount_spent > 0 AND {query}", tmp_path) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"<query>:1:22: the warehouse has no {REACHABLE} for can_receive_sms yet\n")
    assert "hint: run smsseg run once" in out and "Traceback" not in out


def preview(query: str, data_dir: Path) -> int:
    parser = argparse.ArgumentParser(prog="smsseg")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["segments", "preview", "--query", query, "--data-dir", str(data_dir)])
    return args.func(args)


def test_the_nightly_job_exports_exactly_who_can_receive_sms(tmp_path: Path) -> None:
    """Through Dagster as `smsseg run` does: the segment asset builds the table as of the run's day from the
    data directory's suppressions.csv, and exporting `can_receive_sms = true` excludes nobody."""
    phones = {n: f"+39347{n:07d}" for n in range(1, 7)}
    phones[5] = phones[4]  # 4 keeps it
    store = Store(
        customers=[customer(n, phone=phones[n], sms_state="PENDING" if n == 6 else "SUBSCRIBED") for n in phones]
    )
    defs = tmp_path / "defs"
    defs.mkdir()
    (defs / "reach.yaml").write_text("name: reach\nquery: can_receive_sms = true\nsms:\n  export: true\n")
    data = tmp_path / "data"
    data.mkdir()
    (data / "suppressions.csv").write_text(f"phone\n{phones[2]}\n")
    settings = Settings(source=f"jsonl:{store.write(tmp_path / 'store')}", data_dir=data, segments_dir=defs)
    result = run_nightly_job(settings, as_of=NIGHT)
    assert result.success
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("select customer_id from audience.sms_reachable order by 1").fetchall() == [(1,), (3,), (4,)]
    with open(data / "exports" / "reach" / f"{NIGHT}.csv") as f:
        assert [row["customer_id"] for row in csv.DictReader(f)] == ["1", "3", "4"]
    figures = next(
        e.event_specific_data.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["exports", "reach"])
    )
    assert figures["members"].value == figures["eligible"].value == 3


def test_an_unreadable_suppressions_csv_fails_only_what_reads_it(varied: Built, tmp_path: Path) -> None:
    """A typo in the list fails can_receive_sms naming the file and line (a number that said stop must not
    slip through); a segment that does not read it is built all the same."""
    data = tmp_path / "data"
    (data / "build").mkdir(parents=True)
    shutil.copyfile(varied.warehouse, data / "build" / "warehouse.duckdb")
    (data / "suppressions.csv").write_text("phone\n+39 347 123 4567\n347-not-a-number\n")
    day = varied.as_of + dt.timedelta(days=1)
    with open_build(data, day) as con:
        assert create_segment_view(con, definition_of("amount_spent > 0", tmp_path), day) > 0
        with pytest.raises(AudienceError, match=r"suppressions\.csv:3: '347-not-a-number' is not a valid phone"):
            create_segment_view(con, definition_of("can_receive_sms = true", tmp_path), day)
