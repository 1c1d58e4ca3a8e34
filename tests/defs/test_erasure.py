"""GDPR erasure end to end: after the night that applies a redaction, no file under data/ holds the person.

The customer was exported by the file gateway on earlier nights and has SMS events on their number;
the store directory itself lives under data/source/. Every file under data/ is then read byte by
byte (DuckDB files, Parquet, CSV, JSONL, Dagster's own storage and logs), and every Parquet and
DuckDB table is read again through DuckDB, since compression can hide bytes from a plain search.
"""

import datetime as dt
import json
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipeline.defs.resources import ShopifyResource
from pipeline.settings import Settings
from pipeline.shopify.emulator import ShopifyEmulator
from tests.fixtures.nightly import run_nightly_job
from tests.fixtures.stores import Store, customer, order, redaction, sms_event

FIRST_NIGHT = dt.date(2026, 10, 30)
REDACTED = 2
# Every form of the person the input holds: the number as written, in E.164 (the events', the
# audience's), its digits, the names and the email
WRITTEN, E164 = "347 987 6543", "+393479876543"
TRACES = (WRITTEN, E164, "393479876543", "Zelmira", "Quaglietti", "zelmira.q@example.org")
SEGMENT = "name: everyone\nquery: amount_spent >= 0\nsms:\n  export: true\n"


def shop() -> Store:
    customers = [customer(n, phone=f"+39347111000{n}") for n in (1, 3, 4)]
    customers.insert(
        1,
        customer(
            REDACTED, first="Zelmira", last="Quaglietti", email="zelmira.q@example.org", phone=WRITTEN, country="IT"
        ),
    )
    return Store(
        customers=customers,
        orders=[order(100 + n, n, total=f"{n}.50") for n in range(1, 5)],
        sms_events=[
            sms_event(E164, "delivered", "2026-10-02T10:00:00Z"),
            sms_event(E164, "clicked", "2026-10-02T11:00:00Z"),
            sms_event("+393471110001", "clicked", "2026-10-02T11:00:00Z"),
        ],
    )


def night(
    data: Path, as_of: dt.date, shopify: ShopifyResource | None = None, **run_options: object
) -> dg.ExecuteInProcessResult:
    """One night of `smsseg run`, recorded in data/dagster as the CLI does: on the store under
    data/source/, or on the shop `shopify` serves."""
    source = "shopify" if shopify else f"jsonl:{data / 'source' / 'shop'}"
    settings = Settings(source=source, data_dir=data, segments_dir=data.parent / "defs")
    (data / "dagster").mkdir(parents=True, exist_ok=True)
    with dg.DagsterInstance.local_temp(str(data / "dagster")) as instance:
        result = run_nightly_job(
            settings, as_of=as_of, instance=instance, resources={"shopify": shopify} if shopify else None, **run_options
        )
    assert result.success, [e.event_specific_data.error.message for e in result.all_events if e.is_step_failure]
    return result


def traces_in_bytes(data: Path) -> set[tuple[str, str]]:
    """(file under data/, trace) for every trace a file's bytes hold."""
    found = set()
    for path in (p for p in data.rglob("*") if p.is_file()):
        content = path.read_bytes()
        found |= {(str(path.relative_to(data)), t) for t in TRACES if t.encode() in content}
    return found


def traces_in_tables(data: Path) -> set[tuple[str, str]]:
    """(file and table, trace) for every trace a Parquet file or a DuckDB table holds, read through DuckDB."""
    found = set()
    with duckdb.connect() as con:
        for path in data.rglob("*.parquet"):
            text = str(con.execute("select * from read_parquet(?)", [str(path)]).fetchall())
            found |= {(str(path.relative_to(data)), t) for t in TRACES if t in text}
    for path in data.rglob("*.duckdb"):
        with duckdb.connect(str(path), read_only=True) as con:
            tables = con.execute(
                "select schema_name, table_name from duckdb_tables() where database_name = current_database()"
            ).fetchall()
            for schema, table in tables:
                text = str(con.table(f'"{schema}"."{table}"').fetchall())
                found |= {(f"{path.relative_to(data)}:{schema}.{table}", t) for t in TRACES if t in text}
    return found


def export_rows(path: Path) -> list[list[str]]:
    return [line.split(",") for line in path.read_text().splitlines()[1:]]


@pytest.fixture(scope="module")
def erased_night(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two nights exporting the person, then the night that applies their redaction; the data folder.

    Tests that run more nights on it work on a copy.
    """
    tmp_path = tmp_path_factory.mktemp("erasure")
    data, store = tmp_path / "data", shop()
    (tmp_path / "defs").mkdir()
    (tmp_path / "defs" / "everyone.yaml").write_text(SEGMENT)
    store.write(data / "source" / "shop")
    night(data, FIRST_NIGHT)
    night(data, FIRST_NIGHT + dt.timedelta(days=1))
    # the traces are there to be found, in the DuckDB files and the exports too, before the redaction
    before = {where.split("/")[0].split(":")[0] for where, _ in traces_in_bytes(data) | traces_in_tables(data)}
    assert {"warehouse.duckdb", "state.duckdb", "build", "exports", "raw", "source"} <= before
    assert any(E164 in line for line in (data / "exports" / "everyone" / "2026-10-30.csv").read_text().splitlines())

    store.redactions.append(redaction(REDACTED))
    store.write(data / "source" / "shop")
    night(data, FIRST_NIGHT + dt.timedelta(days=2))
    return data


def test_after_the_redaction_night_no_file_under_data_holds_the_person(erased_night: Path) -> None:
    assert traces_in_bytes(erased_night) == set()
    assert traces_in_tables(erased_night) == set()


def test_the_redaction_night_records_the_removal_by_customer_id_with_the_phone_blank(erased_night: Path) -> None:
    exports = erased_night / "exports" / "everyone"
    assert ["remove", "", str(REDACTED)] in export_rows(exports / "2026-11-01.changes.csv")
    assert ["add", "", str(REDACTED)] in export_rows(exports / "2026-10-30.changes.csv")  # history by id only
    for audience in ("2026-10-30.csv", "2026-10-31.csv", "2026-11-01.csv"):
        ids = {row[1].strip('"') for row in export_rows(exports / audience)}
        assert ids == {"1", "3", "4"}, audience  # the others are all still there
    with duckdb.connect(str(erased_night / "warehouse.duckdb"), read_only=True) as con:
        assert con.sql("select count(*) from marts.sms_events").fetchall() == [(1,)]  # the others' events stay
        assert con.sql(
            "select customer_id, is_redacted, amount_spent from marts.customers where customer_id = 2"
        ).fetchall()[0][:2] == (2, True)
        assert con.sql("select count(*) from audience.changes where customer_id = 2 and phone is null").fetchall() == [
            (2,)
        ]


def test_a_later_event_on_an_erased_number_never_lands(erased_night: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(erased_night, data)
    (tmp_path / "defs").mkdir()
    (tmp_path / "defs" / "everyone.yaml").write_text(SEGMENT)
    store = data / "source" / "shop"
    with open(store / "sms_events.jsonl", "a") as f:  # the gateway still reports on the number
        f.write(json.dumps(sms_event("+39 347 987 6543", "opted_out", "2026-11-02T08:00:00Z")) + "\n")
    night(data, FIRST_NIGHT + dt.timedelta(days=3))
    assert traces_in_bytes(data) == set()
    assert traces_in_tables(data) == set()


def test_a_dry_run_leaves_no_number_in_dagsters_event_log(tmp_path: Path) -> None:
    data, store = tmp_path / "data", shop()
    (tmp_path / "defs").mkdir()
    (tmp_path / "defs" / "everyone.yaml").write_text(SEGMENT)
    store.write(data / "source" / "shop")
    night(data, FIRST_NIGHT, dry_run=True)
    night(data, FIRST_NIGHT)
    store.redactions.append(redaction(REDACTED))
    store.write(data / "source" / "shop")
    night(data, FIRST_NIGHT + dt.timedelta(days=1))
    assert traces_in_bytes(data) == set()


def test_with_a_shopify_source_the_downloads_and_the_inbox_are_scrubbed_too(tmp_path: Path) -> None:
    data, store = tmp_path / "data", shop()
    (tmp_path / "defs").mkdir()
    (tmp_path / "defs" / "everyone.yaml").write_text(SEGMENT)
    served = Store(customers=store.customers, orders=store.orders).write(tmp_path / "shop")
    Store(sms_events=store.sms_events).write(data / "inbox")
    with ShopifyEmulator(served, token="shpat_erasure") as emulator:
        shopify = ShopifyResource(store=emulator.url, access_token="shpat_erasure", poll_interval_s=0.01)
        night(data, FIRST_NIGHT, shopify)
        assert {where.split("/")[0] for where, _ in traces_in_bytes(data)} >= {"downloads", "inbox"}
        # the GDPR webhook receiver drops the request off
        (data / "inbox" / "redactions.jsonl").write_text(json.dumps(redaction(REDACTED)) + "\n")
        night(data, FIRST_NIGHT + dt.timedelta(days=1), shopify)
    assert traces_in_bytes(data) == set()
    assert traces_in_tables(data) == set()
