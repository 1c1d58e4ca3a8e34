"""A data directory that already holds a batch the ingest now refuses, written by an older release: staging
names the batch file and says how to remove it, rather than fail with DuckDB's anonymous conversion error."""

import datetime as dt
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.store.ingest import ingest_store
from pipeline.store.schema import resource as schema_resource
from pipeline.store.schema import resources_in
from pipeline.warehouse.build import build_all
from tests.fixtures.stores import Store, customer, line, order, redaction

AS_OF = dt.date(2026, 10, 31)
TOO_BIG = "gid://shopify/Customer/9223372036854775808"


def old_batch(raw: Path, resource: str, column: str, value: str) -> tuple[str, int]:
    """A copy of the batch of the resource's file under a later name, the first row's `column` of `resource`
    set to `value`, as an older release that did not check the range of ids would have written it; returns
    the batch name and the line of that row."""
    batch = "29991231T000000000000Z-0123456789abcdef"
    for r in resources_in(schema_resource(resource).file):
        table = pq.read_table(next((raw / r.name).glob("*.parquet")))
        table = table.set_column(0, "_batch", pa.repeat(batch, table.num_rows))
        if r.name == resource:
            index = table.schema.get_field_index(column)
            values = [value, *table[column].to_pylist()[1:]]
            table = table.set_column(index, column, pa.array(values, table.schema.field(column).type))
            line = table["_line"][0].as_py()
        pq.write_table(table, raw / r.name / f"{batch}.parquet")
    return batch, line


@pytest.mark.parametrize(
    ("resource", "column", "field", "bad"),
    [
        ("customers", "id", "id", TOO_BIG),
        ("orders", "customer_id", "customer.id", TOO_BIG),
        ("order_lines", "product_id", "product.id", "gid://shopify/Product/99999999999999999999"),
        ("redactions", "customer_id", "customer.id", TOO_BIG),
    ],
)
def test_an_id_beyond_bigint_in_an_old_batch_names_the_file_and_how_to_remove_it(
    tmp_path: Path, resource: str, column: str, field: str, bad: str
) -> None:
    data = tmp_path / "data"
    store = Store(
        customers=[customer(1), customer(2)], orders=[order(100, 1), line(10, 100, 42)], redactions=[redaction(2)]
    )
    ingest_store(store.write(tmp_path / "store"), data / "raw")
    batch, bad_line = old_batch(data / "raw", resource, column, bad)
    with pytest.raises(duckdb.InvalidInputException) as error:
        build_all(data, AS_OF)
    assert (
        f"raw/{resource}/{batch}.parquet, line {bad_line}: {field} {bad} does not fit BIGINT (an older release "
        f"ingested it unchecked). Delete raw/*/{batch}.parquet in the data directory and rerun"
    ) in str(error.value)
    for path in (data / "raw").glob(f"*/{batch}.parquet"):
        path.unlink()
    build_all(data, AS_OF)
