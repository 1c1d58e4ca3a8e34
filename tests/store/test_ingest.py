"""The store-directory reader: every broken input names file, line and field, and publishes nothing."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.store.demo import generate_store
from pipeline.store.ingest import StoreError, ingest_file, ingest_store
from pipeline.store.schema import RESOURCES
from tests.fixtures.stores import (
    Store,
    customer,
    line,
    mailing_address,
    metafield,
    money,
    order,
    sms_event,
    store_credit,
)


def store_dir(tmp_path: Path) -> Path:
    return Store(
        customers=[customer(1), customer(2)],
        orders=[line(10, 100, 42), order(100, 1), order(101, 2)],
        sms_events=[
            sms_event("+393471234567", "sent", "2026-10-01T10:00:00Z"),
            sms_event("+393471234567", "Delivered ", "2026-10-01T10:01:00Z"),
        ],
    ).write(tmp_path / "store")


def raw_files(raw: Path) -> list[str]:
    return sorted(str(p.relative_to(raw)) for p in raw.rglob("*") if p.is_file())


def replace_line(path: Path, number: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("file", "line_no", "text", "message"),
    [
        ("orders.jsonl", 2, '{"id": "gid://shopify/Order/100", "name": ', "orders.jsonl:2: not valid JSON"),
        (
            "customers.jsonl",
            2,
            '{"firstName": "No Id", "updatedAt": "2026-01-01T00:00:00Z"}',
            "customers.jsonl:2: Customer without id",
        ),
        (
            "orders.jsonl",
            3,
            json.dumps({**order(101, 2), "totalPriceSet": {"shopMoney": {"amount": "12,50"}}}),
            "orders.jsonl:3: totalPriceSet.shopMoney.amount is '12,50', which is not a decimal amount such as 59.90",
        ),
        (
            "orders.jsonl",
            2,
            json.dumps({**order(100, 1), "processedAt": "yesterday"}),
            "orders.jsonl:2: processedAt is 'yesterday', which is not an ISO-8601 timestamp",
        ),
        (
            "orders.jsonl",
            1,
            json.dumps({**line(10, 100, 42), "quantity": "two"}),
            "orders.jsonl:1: quantity is 'two', which is not a whole number",
        ),
        (
            "orders.jsonl",
            2,
            json.dumps({**order(100, 1), "customer": {"id": "Customer-7"}}),
            "orders.jsonl:2: customer.id is 'Customer-7', which is not a Shopify id",
        ),
        (
            "orders.jsonl",
            1,
            json.dumps({**line(10, 100, 42), "__parentId": "Order/100"}),
            "orders.jsonl:1: __parentId is not a Shopify id",
        ),
        # staging keeps an id's number as BIGINT: a larger one would fail every later build, not this line
        (
            "customers.jsonl",
            2,
            json.dumps({**customer(2), "id": "gid://shopify/Customer/9223372036854775808"}),
            "customers.jsonl:2: id is 'gid://shopify/Customer/9223372036854775808', which is not a Shopify id whose "
            "number is from 1 to 9223372036854775807",
        ),
        (
            "orders.jsonl",
            2,
            json.dumps({**order(100, 1), "customer": {"id": "gid://shopify/Customer/0"}}),
            "orders.jsonl:2: customer.id is 'gid://shopify/Customer/0', which is not a Shopify id whose number",
        ),
        (
            "customers.jsonl",
            1,
            json.dumps({**customer(1), "createdAt": "2026-01-01T09:00:00"}),
            "customers.jsonl:1: createdAt is '2026-01-01T09:00:00', which is not an ISO-8601 timestamp with offset",
        ),
        (
            "customers.jsonl",
            2,
            json.dumps({**customer(2), "updatedAt": "2026-01-01T09:00:00+0200"}),
            "customers.jsonl:2: updatedAt is '2026-01-01T09:00:00+0200', which is not an ISO-8601 timestamp with "
            "offset",
        ),
        # nested values of another shape: DuckDB's from_json would read them as NULL, a guest order
        (
            "orders.jsonl",
            2,
            json.dumps({**order(100, 1), "customer": "gid://shopify/Customer/7"}),
            "orders.jsonl:2: customer is a string, where an object is expected",
        ),
        (
            "orders.jsonl",
            3,
            json.dumps({**order(101, 2), "totalPriceSet": 5}),
            "orders.jsonl:3: totalPriceSet is a number, where an object is expected",
        ),
        (
            "orders.jsonl",
            3,
            json.dumps({**order(101, 2), "currentTotalPriceSet": {"shopMoney": ["59.90"]}}),
            "orders.jsonl:3: currentTotalPriceSet.shopMoney is a list, where an object is expected",
        ),
        (
            "orders.jsonl",
            1,
            json.dumps({**line(10, 100, 42), "product": [{"id": "gid://shopify/Product/42"}]}),
            "orders.jsonl:1: product is a list, where an object is expected",
        ),
        (
            "customers.jsonl",
            1,
            json.dumps({**customer(1), "tags": "vip"}),
            "customers.jsonl:1: tags is a string, where a list is expected",
        ),
        (
            "customers.jsonl",
            2,
            json.dumps({**customer(2), "addresses": [None, "IT-MI"]}),
            "customers.jsonl:2: an element of addresses is a string, where an object is expected",
        ),
        (
            "customers.jsonl",
            2,
            json.dumps({**customer(2), "addresses": {"city": "Milano"}}),
            "customers.jsonl:2: addresses is an object, where a list is expected",
        ),
        (
            "customers.jsonl",
            2,
            json.dumps({**customer(2), "defaultPhoneNumber": True}),
            "customers.jsonl:2: defaultPhoneNumber is true or false, where an object is expected",
        ),
        # the Admin API's own fields for the segment language
        (
            "customers.jsonl",
            2,
            json.dumps(customer(2, coordinates=(45.46, "north"))),
            "customers.jsonl:2: defaultAddress.longitude is 'north', which is not a number such as 45.4215",
        ),
        (
            "customers.jsonl",
            1,
            json.dumps({**customer(1), "companyContactProfiles": {"company": {"id": "x"}}}),
            "customers.jsonl:1: companyContactProfiles is an object, where a list is expected",
        ),
        (
            "customers.jsonl",
            2,
            json.dumps({**customer(2), "statistics": "HIGH"}),
            "customers.jsonl:2: statistics is a string, where an object is expected",
        ),
        (
            "customers.jsonl",
            2,
            json.dumps(store_credit(1, 1, "12,50")),
            "customers.jsonl:2: balance.amount is '12,50', which is not a decimal amount such as 59.90",
        ),
        (
            "customers.jsonl",
            2,
            json.dumps({**metafield(1, 1, "custom", "vip", "boolean", "true"), "id": None}),
            "customers.jsonl:2: Metafield without id",
        ),
        (
            "customers.jsonl",
            2,
            json.dumps(mailing_address(1, 1, "IT", "MI", "Milano", (45.4642, 9.19)) | {"latitude": "45,46"}),
            "customers.jsonl:2: latitude is '45,46', which is not a number such as 45.4215",
        ),
        (
            "customers.jsonl",
            2,
            json.dumps(mailing_address(1, 1, "IT", "MI", "Milano") | {"id": None}),
            "customers.jsonl:2: MailingAddress without id",
        ),
        (
            "customers.jsonl",
            2,
            json.dumps(mailing_address(1, 1, "IT", "MI", "Milano") | {"__parentId": "Customer 1"}),
            "customers.jsonl:2: __parentId is not a Shopify id",
        ),
        (
            "customers.jsonl",
            1,
            json.dumps({**store_credit(1, 1, "1.00"), "balance": "1.00"}),
            "customers.jsonl:1: balance is a string, where an object is expected",
        ),
        # money is summed as the shop's: an amount in another currency would be added as if it were EUR
        (
            "orders.jsonl",
            3,
            json.dumps({**order(101, 2), "totalPriceSet": money("10.00", "USD")}),
            "orders.jsonl:3: Order gid://shopify/Order/101: totalPriceSet.shopMoney.currencyCode is 'USD', "
            "but the shop's currency (shop.jsonl currencyCode) is 'EUR'",
        ),
        (
            "orders.jsonl",
            1,
            json.dumps({**line(10, 100, 42), "originalTotalSet": money("10.00", "GBP")}),
            "orders.jsonl:1: LineItem gid://shopify/LineItem/10: originalTotalSet.shopMoney.currencyCode is 'GBP', "
            "but the shop's currency (shop.jsonl currencyCode) is 'EUR'",
        ),
        (
            "sms_events.jsonl",
            2,
            json.dumps(sms_event("+393471234567", "opt-out", "2026-10-01T10:00:00Z")),
            "sms_events.jsonl:2: type is 'opt-out', which is not one of sent, delivered, clicked, converted, "
            "opted_out: "
            "did you mean opted_out?",
        ),
        (
            "sms_events.jsonl",
            1,
            json.dumps({**sms_event("+393471234567", "sent", "2026-10-01T10:00:00Z"), "type": None}),
            "sms_events.jsonl:1: SmsEvent without type",
        ),
    ],
)
def test_bad_line_names_file_line_and_field_and_publishes_nothing(tmp_path, file, line_no, text, message) -> None:
    store, raw = store_dir(tmp_path), tmp_path / "raw"
    replace_line(store / file, line_no, text)
    with pytest.raises(StoreError) as error:
        ingest_file(store, file, raw)
    assert message in str(error.value)
    assert str(store / file) in str(error.value)
    assert raw_files(raw) == []  # no batch, and no temporary file left behind


def test_unknown_time_zone_is_named(tmp_path: Path) -> None:
    store = Store(timezone="Mars/Olympus_Mons").write(tmp_path / "store")
    with pytest.raises(StoreError, match=r"shop.jsonl:1: ianaTimezone 'Mars/Olympus_Mons' is not an IANA time zone"):
        ingest_file(store, "shop.jsonl", tmp_path / "raw")
    assert raw_files(tmp_path / "raw") == []


def test_not_utf8_is_named(tmp_path: Path) -> None:
    store = store_dir(tmp_path)
    with open(store / "customers.jsonl", "ab") as f:
        f.write(b'{"id": "gid://shopify/Customer/3", "firstName": "\xff"}\n')
    with pytest.raises(StoreError, match=r"customers.jsonl:3: not UTF-8"):
        ingest_file(store, "customers.jsonl", tmp_path / "raw")


def test_missing_required_file_is_named(tmp_path: Path) -> None:
    store = store_dir(tmp_path)
    (store / "orders.jsonl").unlink()
    with pytest.raises(StoreError, match=r"orders.jsonl: missing"):
        ingest_store(store, tmp_path / "raw")


def test_missing_optional_file_is_an_empty_batch(tmp_path: Path) -> None:
    store = store_dir(tmp_path)
    (store / "sms_events.jsonl").unlink()
    ingested = ingest_file(store, "sms_events.jsonl", tmp_path / "raw")
    assert ingested.rows == {"sms_events": 0}
    assert pq.read_table(next((tmp_path / "raw" / "sms_events").glob("*.parquet"))).num_rows == 0


def test_children_split_unknown_types_and_extra_fields_ignored(tmp_path: Path) -> None:
    store = store_dir(tmp_path)
    with open(store / "orders.jsonl", "a") as f:
        f.write(
            json.dumps(
                {"__typename": "Refund", "id": "gid://shopify/Refund/1", "__parentId": "gid://shopify/Order/100"}
            )
            + "\n"
        )
        f.write(json.dumps({**order(102, 1), "someNewField": {"x": 1}}) + "\n\n")
    ingested = ingest_file(store, "orders.jsonl", tmp_path / "raw")
    assert ingested.rows == {"orders": 3, "order_lines": 1}
    lines = pq.read_table(next((tmp_path / "raw" / "order_lines").glob("*.parquet"))).to_pylist()
    assert [(r["_line"], r["_parent_id"], r["quantity"]) for r in lines] == [(1, "gid://shopify/Order/100", 1)]


def test_same_content_twice_adds_no_batch(tmp_path: Path) -> None:
    store, raw = store_dir(tmp_path), tmp_path / "raw"
    first = ingest_file(store, "orders.jsonl", raw)
    again = ingest_file(store, "orders.jsonl", raw)
    assert again.skipped and again.batch == first.batch
    assert len(list((raw / "orders").glob("*.parquet"))) == 1
    with open(store / "orders.jsonl", "a") as f:
        f.write(json.dumps(order(103, 2)) + "\n")
    changed = ingest_file(store, "orders.jsonl", raw)
    assert not changed.skipped and changed.batch > first.batch
    assert len(list((raw / "orders").glob("*.parquet"))) == 2


@pytest.mark.parametrize("tail", [b"\n", b"", b"\n\n"])
def test_digest_and_line_count_span_blocks_in_order(tmp_path: Path, monkeypatch, tail: bytes) -> None:
    import blake3

    from pipeline.store import ingest

    monkeypatch.setattr(ingest, "DIGEST_BLOCK", 7)  # many blocks, each line split across two
    content = b"\n".join(f'{{"id": "gid://shopify/Order/{i}"}}'.encode() for i in range(50)) + tail
    path = tmp_path / "orders.jsonl"
    path.write_bytes(content)
    lines = content.count(b"\n") + (not content.endswith(b"\n"))
    assert ingest._digest_and_lines(path) == (blake3.blake3(content).hexdigest()[:16], lines)


def test_large_file_is_read_in_chunks(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("pipeline.store.ingest.CHUNK_LINES", 7)
    store = Store(customers=[customer(n) for n in range(1, 51)]).write(tmp_path / "store")
    (store / "customers.jsonl").write_text((store / "customers.jsonl").read_text() + '{"id": 1}\n')
    with pytest.raises(StoreError, match=r"customers.jsonl:51: id is '1', which is not a Shopify id"):
        ingest_file(store, "customers.jsonl", tmp_path / "raw")
    (store / "customers.jsonl").write_text("".join(json.dumps(customer(n)) + "\n" for n in range(1, 51)))
    ingested = ingest_file(store, "customers.jsonl", tmp_path / "raw")
    table = pq.read_table(next((tmp_path / "raw" / "customers").glob("*.parquet")))
    assert ingested.rows == {
        "customers": 50,
        "customer_metafields": 0,
        "store_credit_accounts": 0,
        "customer_addresses": 0,
    }
    assert table["_line"].to_pylist() == list(range(1, 51))


def test_whole_file_and_chunked_readers_give_the_same_rows(tmp_path: Path, monkeypatch) -> None:
    """The fast path (one typing pass of DuckDB's JSON reader) and the chunked fallback read every
    line with the same SQL: a demo store, revisions and children before parents included, comes out
    the same from both, line numbers too. Small streamed batches and row groups, so that line numbers
    and rows carry across both."""
    monkeypatch.setattr("pipeline.store.ingest.STREAM_ROWS", 64)
    monkeypatch.setattr("pipeline.store.ingest.ROW_GROUP_ROWS", 100)
    store = tmp_path / "store"
    generate_store(store, 300, seed=3)
    fast, chunked = tmp_path / "fast", tmp_path / "chunked"
    ingest_store(store, fast)
    assert pq.ParquetFile(next((fast / "order_lines").glob("*.parquet"))).metadata.num_row_groups > 2
    monkeypatch.setattr("pipeline.store.ingest._write_whole_file", lambda *args: None)
    ingest_store(store, chunked)
    for resource in RESOURCES:
        tables = [
            pq.read_table(next((raw / resource.name).glob("*.parquet"))).drop_columns("_batch")
            for raw in (fast, chunked)
        ]
        # shop is one line; the demo has no deletion webhooks nor a Shopify id sweep
        assert tables[0].num_rows > 0 or resource.name == "shop" or not (store / resource.file).exists()
        assert tables[0].schema == tables[1].schema, resource.name
        assert tables[0].to_pylist() == tables[1].to_pylist(), resource.name


def test_bad_line_after_the_first_streamed_batch_is_named(tmp_path: Path, monkeypatch) -> None:
    """The JSON reader's error arrives mid-stream, after rows were written: nothing is published."""
    monkeypatch.setattr("pipeline.store.ingest.STREAM_ROWS", 64)
    store = tmp_path / "store"
    generate_store(store, 300, seed=3)
    lines = (store / "orders.jsonl").read_text().count("\n")
    replace_line(store / "orders.jsonl", lines - 5, '{"id": "gid://shopify/Order/1", "name": ')
    with pytest.raises(StoreError, match=rf"orders.jsonl:{lines - 5}: not valid JSON"):
        ingest_file(store, "orders.jsonl", tmp_path / "raw")
    assert raw_files(tmp_path / "raw") == []


def test_blank_lines_keep_line_numbers(tmp_path: Path) -> None:
    store = store_dir(tmp_path)
    lines = (store / "orders.jsonl").read_text().splitlines()
    (store / "orders.jsonl").write_text(lines[0] + "\n\n  \n" + "\n".join(lines[1:]) + "\n")
    ingest_file(store, "orders.jsonl", tmp_path / "raw")
    orders = pq.read_table(next((tmp_path / "raw" / "orders").glob("*.parquet")))
    assert orders["_line"].to_pylist() == [4, 5]


def test_errors_that_arrive_mid_stream_are_duckdbs_own_again() -> None:
    """Arrow hands a streamed query's error over as OSError; the ingest asks for DuckDB's, so that running
    out of SMSSEG_MEMORY_LIMIT is still reported as such."""
    import duckdb

    from pipeline.store.ingest import _batches_of

    con = duckdb.connect()
    con.execute("set memory_limit = '64MB'")
    con.execute("set threads = 1")
    rows = 0
    with pytest.raises(duckdb.OutOfMemoryException):  # 1 MB a row from row 1,000,000 on
        for batch in _batches_of(con.sql("select repeat('x', 1000000 * (i // 1000000)::int) from range(1001000) t(i)")):
            rows += batch.num_rows
    assert rows > 0  # some rows came first: the error arrived mid-stream


def test_shopify_enum_values_we_do_not_know_are_kept_counted_and_warned_about(tmp_path: Path, monkeypatch) -> None:
    """Shopify adds enum values over API versions: one new value must not stop every night, so it is kept
    and warned about (how many lines, the first one), from the fast reader and the chunked one alike."""
    store = Store(
        customers=[
            customer(1),
            customer(2, state="ZOMBIE", sms_state="MAYBE_LATER"),
            customer(3, sms_state="maybe_later", email_state="INVALID"),
            customer(4, email_state="subscribed", phone=None),
        ]
    ).write(tmp_path / "store")
    expected = (
        "customers.jsonl: 1 Customer line(s) have a state that Shopify's reference does not list, "
        "the first at line 2: 'ZOMBIE'.",
        "customers.jsonl: 2 Customer line(s) have a defaultPhoneNumber.marketingState that Shopify's reference "
        "does not list, the first at line 2: 'MAYBE_LATER'.",
    )
    fast = ingest_file(store, "customers.jsonl", tmp_path / "fast")
    monkeypatch.setattr("pipeline.store.ingest._write_whole_file", lambda *args: None)
    chunked = ingest_file(store, "customers.jsonl", tmp_path / "chunked")
    for ingested in (fast, chunked):
        assert ingested.rows == {
            "customers": 4,
            "customer_metafields": 0,
            "store_credit_accounts": 0,
            "customer_addresses": 0,
        }
        assert [w.split(" Kept as it is")[0] for w in ingested.warnings] == list(expected)
        assert all("never read as consent" in w for w in ingested.warnings)


def test_a_file_of_known_values_has_no_warnings(tmp_path: Path) -> None:
    store = tmp_path / "store"
    generate_store(store, 300, seed=3)
    assert [w for f in ingest_store(store, tmp_path / "raw") for w in f.warnings] == []


def test_an_amount_in_the_shops_currency_passes_whatever_the_shop(tmp_path: Path) -> None:
    store = store_dir(tmp_path)
    shop = json.loads((store / "shop.jsonl").read_text())
    (store / "shop.jsonl").write_text(json.dumps({**shop, "currencyCode": "USD"}) + "\n")
    with pytest.raises(
        StoreError,
        match=r"orders.jsonl:2: Order gid://shopify/Order/100: .* is 'EUR', "
        r"but the shop's currency \(shop.jsonl currencyCode\) is 'USD'",
    ):
        ingest_file(store, "orders.jsonl", tmp_path / "raw")
    (store / "orders.jsonl").write_text((store / "orders.jsonl").read_text().replace('"EUR"', '"USD"'))
    assert ingest_file(store, "orders.jsonl", tmp_path / "raw").rows == {"orders": 2, "order_lines": 1}


def test_money_without_a_readable_shop_is_refused(tmp_path: Path) -> None:
    store = store_dir(tmp_path)
    (store / "shop.jsonl").write_text("")
    with pytest.raises(
        StoreError,
        match=r"shop.jsonl: needs exactly one shop line, with its currencyCode: "
        r"every amount of orders.jsonl is checked against it",
    ):
        ingest_file(store, "orders.jsonl", tmp_path / "raw")
    assert raw_files(tmp_path / "raw") == []
