"""The one reader of store directories: JSONL files into typed, append-only raw Parquet batches.

DuckDB's own JSON reader parses and types the whole file in one parallel pass, streamed in Arrow
batches into each resource's Parquet file, so memory does not grow with the shop; where it cannot
(a line that is not JSON or not UTF-8, blank lines that would shift the line numbers, a value that
does not fit) the file is read again in chunks of lines, which finds the line at fault. Both read a
line with the same SQL (`_typed_columns`, `_problems`) and write through the same `_BatchWriter`,
so they accept and produce the same rows. Every value that does not fit its column is an error
naming file, line and field: a type, an id beyond BIGINT, a time without offset, a nested value of
another shape, an amount not in the shop's currency, a value outside our own closed lists. A Shopify
enum value Shopify's reference does not list is kept, and counted into the warnings returned. A
batch is written under a temporary name and renamed only when the whole file is good, so a bad
line leaves every published batch as it was.
"""

import difflib
import json
import os
import re
import shutil
import zoneinfo
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import blake3
import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlglot import exp

from pipeline.settings import DEFAULT_MEMORY_LIMIT
from pipeline.sqlbuild import call, column, identifier, table, temp, to_sql
from pipeline.store.schema import (
    GID,
    OPTIONAL_FILES,
    RESOURCES,
    SHOP_CURRENCY,
    STORE_FILES,
    Column,
    Resource,
    resources_in,
)

CHUNK_LINES = 200_000
STREAM_ROWS = 1 << 19  # rows asked of DuckDB per Arrow batch
ROW_GROUP_ROWS = 122_880  # DuckDB's own Parquet row group size
# A column's dictionary is given up past this (Arrow's default is 1 MB): columns that repeat (statuses,
# products, titles) fit well within it, while ids, names and timestamps, nearly all distinct, stop
# paying for a dictionary sooner. A million customers' orders.jsonl: 1.2 s less writing, 442 -> 411 MB.
DICTIONARY_PAGE_BYTES = 64 << 10
DIGEST_BLOCK = 4 << 20
NEWLINE = ord("\n")
GID_PATTERN = r"gid://shopify/[A-Za-z]+/[0-9]+"
# An offset at the end (Z or +hh:mm): DuckDB would read a time without one in its session zone, UTC,
# which is a guess, hours off for a shop elsewhere.
OFFSET_PATTERN = r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"


class StoreError(ValueError):
    """A store directory that breaks the contract; the message says where and what to fix."""


@dataclass(frozen=True)
class IngestedFile:
    file: str
    batch: str
    rows: dict[str, int]  # resource name -> rows in this batch
    skipped: bool  # the same content was ingested before: nothing new was written
    warnings: tuple[str, ...] = ()  # values kept but worth a look, such as a Shopify enum value we do not know


@dataclass
class _Unknown:
    """The lines whose value of an enum column is not one Shopify documents."""

    count: int = 0
    first_line: int = 0
    first_value: str = ""


def ingest_store(store_dir: Path, raw_dir: Path, files: tuple[str, ...] = STORE_FILES) -> list[IngestedFile]:
    """Ingests every file of a store directory; stops at the first bad file."""
    return [ingest_file(store_dir, file, raw_dir) for file in files]


def ingest_file(store_dir: Path, file: str, raw_dir: Path, memory_limit: str = DEFAULT_MEMORY_LIMIT) -> IngestedFile:
    """Reads one JSONL file of the store directory into one Parquet batch per resource it holds.

    The batch name starts with the ingest time, so batches sort in arrival order, and ends with
    a digest of the content, so ingesting the same file twice adds nothing. The typing pass
    spills to a scratch folder beyond `memory_limit`, so a big shop's orders stay within it.
    """
    path = Path(store_dir) / file
    resources = resources_in(file)
    if not path.is_file():
        if file not in OPTIONAL_FILES:
            raise StoreError(
                f"{path}: missing. A store directory needs {file}; "
                "check the --source directory or the extraction that wrote it."
            )
        digest = "absent"
        lines = 0
    else:
        digest, lines = _digest_and_lines(path)
    existing = _batch_with_digest(raw_dir, resources, digest)
    if existing:
        return IngestedFile(file, existing, {r.name: 0 for r in resources}, skipped=True)
    currency = _shop_currency(Path(store_dir), resources)

    batch = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{digest}"
    tmp_paths = {r.name: raw_dir / r.name / f".{batch}.parquet.tmp" for r in resources}
    try:
        rows, warnings = _write_batch(
            path if path.is_file() else None, lines, resources, batch, tmp_paths, memory_limit, currency
        )
        if file == "shop.jsonl":
            _check_shop(tmp_paths["shop"])
        for r in resources:
            os.replace(tmp_paths[r.name], raw_dir / r.name / f"{batch}.parquet")
    finally:
        for tmp in tmp_paths.values():
            tmp.unlink(missing_ok=True)
    return IngestedFile(file, batch, rows, skipped=False, warnings=warnings)


def _shop_currency(store_dir: Path, resources: tuple[Resource, ...]) -> str | None:
    """The shop's currencyCode from the store directory's shop.jsonl, when these resources carry money.

    Read from the same directory as the file, not from raw: the extract assets of one run may ingest
    orders before the shop. The shop's own ingest checks its file thoroughly; this only needs the code.
    """
    if not any(c.type == SHOP_CURRENCY for r in resources for c in r.columns):
        return None
    path = store_dir / "shop.jsonl"
    try:
        shops = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError):
        shops = []
    if len(shops) != 1 or not isinstance(shops[0], dict):
        raise StoreError(
            f"{path}: needs exactly one shop line, with its currencyCode: every amount of "
            f"{resources[0].file} is checked against it. Fix shop.jsonl (its ingest names the line)."
        )
    return shops[0].get("currencyCode")


def _digest_and_lines(path: Path) -> tuple[str, int]:
    """The content digest and the number of lines (a last line without a newline counts too).

    Each block is hashed in a second thread (blake3 lets go of the GIL) while this one counts its
    lines and reads the next, so the two take the time of the slower rather than of both. BLAKE3
    rather than SHA-256: as collision-resistant, and a million customers' 5.4 GB of orders hash in
    1.3 s rather than 3.4 s on one core here. (A data directory last run with SHA-256 digests
    ingests each store file once more, as a new batch: its rows are the same, so nothing changes.)
    """
    h = blake3.blake3()
    lines, last = 0, b"\n"
    with open(path, "rb") as f, ThreadPoolExecutor(max_workers=1) as hasher:
        hashing = hasher.submit(h.update, b"")
        for block in iter(lambda: f.read(DIGEST_BLOCK), b""):
            hashing.result()  # blocks are hashed one at a time, in order
            hashing = hasher.submit(h.update, block)
            lines += int(np.count_nonzero(np.frombuffer(block, np.uint8) == NEWLINE))  # 3x bytes.count
            last = block[-1:]
        hashing.result()
    return h.hexdigest()[:16], lines + (last != b"\n")


def _batch_with_digest(raw_dir: Path, resources: tuple[Resource, ...], digest: str) -> str | None:
    """The batch already holding this exact content, if every one of its resources was published."""
    first = raw_dir / resources[0].name
    for candidate in sorted(first.glob(f"*-{digest}.parquet")):
        batch = candidate.name.removesuffix(".parquet")
        if all((raw_dir / r.name / f"{batch}.parquet").exists() for r in resources):
            return batch
    return None


def _write_batch(
    path: Path | None,
    lines: int,
    resources: tuple[Resource, ...],
    batch: str,
    tmp_paths: dict[str, Path],
    memory_limit: str,
    currency: str | None,
) -> tuple[dict[str, int], tuple[str, ...]]:
    """Each resource's row count and the warnings about values kept (see `_BatchWriter.finish`)."""
    if path is not None and lines:
        written = _write_whole_file(path, lines, resources, batch, tmp_paths, memory_limit, currency)
        if written is not None:
            return written
    return _write_chunks(path, resources, batch, tmp_paths, currency)


def _write_whole_file(
    path: Path,
    lines: int,
    resources: tuple[Resource, ...],
    batch: str,
    tmp_paths: dict[str, Path],
    memory_limit: str,
    currency: str | None,
) -> tuple[dict[str, int], tuple[str, ...]] | None:
    """Types the file in one pass of DuckDB's JSON reader, streamed into each resource's Parquet file.

    Every line comes out typed and marked with its resource and whether it fits, in the file's
    order, so counting rows as they arrive gives each its line. Returns None when the reader refuses
    the file (not JSON, or a nested value of another shape than `columns` says), skipped blank lines
    or a value does not fit: the chunked reader then names the line at fault, and rewrites the
    temporary files.
    """
    folder = tmp_paths[resources[0].name].parent.parent
    folder.mkdir(parents=True, exist_ok=True)
    shape = _json_shape(resources)
    with bounded_connection(folder / f".{batch}.spill", memory_limit) as con:
        con.execute("set variable shop_currency = ?", [currency])
        try:
            typed_lines = con.sql(
                to_sql(_whole_file_query(resources, shape)),
                params=[str(path), {key: _duckdb_type(value) for key, value in shape.items()}],
            )
            outputs = [(i, r.name, [name for name, _ in _typed_columns(r)]) for i, r in enumerate(resources)]
            with _BatchWriter(batch, tmp_paths, resources) as writer:
                read = 0
                for chunk in _batches_of(typed_lines):
                    if pc.any(chunk["_bad"]).as_py():
                        return None
                    chunk = chunk.append_column("_line", pa.array(np.arange(read + 1, read + 1 + chunk.num_rows)))
                    read += chunk.num_rows
                    for i, name, columns in outputs:
                        mine = chunk.select(["_line"] + [f"{i}.{c}" for c in columns])
                        mine = mine.filter(pc.equal(chunk["_resource"], i))
                        writer.add(name, mine.rename_columns(["_line", *columns]))
                return writer.finish() if read == lines else None
        except duckdb.InvalidInputException:  # not JSON, not UTF-8, not an object: the chunks name the line
            return None


def _whole_file_query(resources: tuple[Resource, ...], shape: dict) -> exp.Select:
    """Every line of the file (the query's first parameter) as its resource's position, whether it fits, and
    the typed columns of every resource, prefixed with its position: both resources' lines share the query."""

    def prefixed(i: int) -> Callable[[str], exp.Column]:
        return lambda name: column(f"{i}.{name}")

    read = call(
        "read_json",
        exp.Placeholder(),
        exp.EQ(this=exp.var("columns"), expression=exp.Placeholder()),
        exp.EQ(this=exp.var("records"), expression=exp.true()),
        exp.EQ(this=exp.var("format"), expression=exp.Literal.string("newline_delimited")),
    )
    record = call("struct_pack", *(exp.PropertyEQ(this=identifier(key), expression=column(key)) for key in shape))
    which = exp.Case(ifs=[exp.If(this=_selects(r), true=exp.Literal.number(i)) for i, r in enumerate(resources)])
    values = [
        exp.alias_(expr, identifier(f"{i}.{name}"))
        for i, r in enumerate(resources)
        for name, expr in _typed_columns(r) + _raw_columns(r)
    ]
    bad = exp.Case(
        this=column("_resource"),
        ifs=[exp.If(this=exp.Literal.number(i), true=_problems(r, prefixed(i))) for i, r in enumerate(resources)],
    )
    typed = [prefixed(i)(name) for i, r in enumerate(resources) for name, _ in _typed_columns(r)]
    lines = exp.select(exp.alias_(record, identifier("r"))).from_(read)
    return exp.select(
        column("_resource"), exp.alias_(exp.func("coalesce", bad, exp.false()), identifier("_bad")), *typed
    ).from_(exp.select(exp.alias_(which, identifier("_resource")), *values).from_(lines.subquery()).subquery())


@contextmanager
def bounded_connection(spill: Path, memory_limit: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """A scratch connection that stays within `memory_limit` and spills beyond it to the folder `spill`.

    DuckDB's default spill folder is `.tmp` in the working directory, outside data/: the readers
    and the GDPR scrub spill beside the data they hold instead, and the folder goes when they are done.
    """
    con = _connect()
    try:
        con.execute("set memory_limit = ?", [memory_limit])
        con.execute("set temp_directory = ?", [str(spill)])
        yield con
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)


def _connect() -> duckdb.DuckDBPyConnection:
    """A connection whose Arrow timestamps say UTC, as DuckDB's own Parquet files do, whatever the machine's zone."""
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    return con


def _batches_of(relation: duckdb.DuckDBPyRelation) -> Iterator[pa.RecordBatch]:
    """A query's rows as Arrow batches, as DuckDB streams them.

    The Arrow stream hands DuckDB's errors over as OSError: the two the readers act on, a file the
    JSON reader refuses and a query beyond the memory bound, become DuckDB's own exceptions again.
    """
    try:
        yield from relation.to_arrow_reader(STREAM_ROWS)
    except OSError as error:
        for prefix, exception in (
            ("Invalid Input Error", duckdb.InvalidInputException),
            ("Out of Memory Error", duckdb.OutOfMemoryException),
        ):
            if str(error).startswith(prefix):
                raise exception(str(error)) from error
        raise


class _BatchWriter:
    """One batch's rows into each resource's temporary Parquet file, in row groups of ROW_GROUP_ROWS.

    Both readers write through it, so their files have the same layout and the same warnings. `add`
    takes the rows in line order, as `_line` and the resource's typed columns; every file gets the
    `_batch` column.
    """

    def __init__(self, batch: str, tmp_paths: dict[str, Path], resources: tuple[Resource, ...]) -> None:
        self.batch, self.tmp_paths = batch, tmp_paths
        self.rows = dict.fromkeys(tmp_paths, 0)
        self._pending: dict[str, list[pa.Table]] = {name: [] for name in tmp_paths}
        self._writers: dict[str, pq.ParquetWriter] = {}
        self._enums = {r.name: (r, [c for c in r.columns if c.known]) for r in resources}
        self._unknown: dict[tuple[str, str], _Unknown] = {}

    def add(self, name: str, rows: pa.Table | pa.RecordBatch) -> None:
        self._count_unknown(name, rows)
        self._pending[name].append(rows if isinstance(rows, pa.Table) else pa.Table.from_batches([rows]))
        self.rows[name] += rows.num_rows
        if sum(table.num_rows for table in self._pending[name]) >= ROW_GROUP_ROWS:
            self._flush(name)

    def finish(self) -> tuple[dict[str, int], tuple[str, ...]]:
        """Writes what is left; returns each resource's row count and a warning per enum column that
        holds values Shopify does not document (how many lines, the first one and its value)."""
        for name, pending in self._pending.items():
            if pending:
                self._flush(name)
        warnings = []
        for (name, field), unknown in self._unknown.items():
            r = self._enums[name][0]
            warnings.append(
                f"{r.file}: {unknown.count} {r.typename} line(s) have a {field} that Shopify's reference does "
                f"not list, the first at line {unknown.first_line}: {unknown.first_value!r}. Kept as it is and "
                "never read as consent (an unknown marketing state counts as NOT_SUBSCRIBED, an unknown "
                "spend tier or subscription status as none); "
                "a newer Shopify API version may have added it."
            )
        return self.rows, tuple(warnings)

    def _count_unknown(self, name: str, rows: pa.Table | pa.RecordBatch) -> None:
        """Counts the values of Shopify's enums that are not among those its reference lists, compared
        in upper case as staging reads them; NULL is no value, so never unknown."""
        r, columns = self._enums[name]
        for c in columns:
            values = rows[c.name]
            unknown = pc.and_(pc.is_valid(values), pc.invert(pc.is_in(pc.utf8_upper(values), pa.array(c.known))))
            count = pc.sum(unknown).as_py() or 0
            if not count:
                continue
            seen = self._unknown.setdefault((name, ".".join(c.path)), _Unknown())
            if not seen.count:
                first = pc.index(unknown, True).as_py()
                seen.first_line, seen.first_value = rows["_line"][first].as_py(), values[first].as_py()
            seen.count += count

    def _flush(self, name: str) -> None:
        table = pa.concat_tables(self._pending[name])
        self._pending[name] = []
        table = table.add_column(0, "_batch", pa.repeat(self.batch, table.num_rows))
        writer = self._writers.get(name)
        if writer is None:
            self.tmp_paths[name].parent.mkdir(parents=True, exist_ok=True)
            writer = self._writers[name] = pq.ParquetWriter(
                self.tmp_paths[name], table.schema, dictionary_pagesize_limit=DICTIONARY_PAGE_BYTES
            )
        writer.write_table(table, row_group_size=ROW_GROUP_ROWS)

    def __enter__(self) -> "_BatchWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        for writer in self._writers.values():
            writer.close()


def _duckdb_type(node: str | list | dict) -> str:
    """A from_json shape node as the type name read_json's `columns` takes."""
    if isinstance(node, str):
        return node
    if isinstance(node, list):
        return _duckdb_type(node[0]) + "[]"
    fields = (f"{to_sql(identifier(key))} {_duckdb_type(value)}" for key, value in node.items())
    return "STRUCT(" + ", ".join(fields) + ")"


def _write_chunks(
    path: Path | None, resources: tuple[Resource, ...], batch: str, tmp_paths: dict[str, Path], currency: str | None
) -> tuple[dict[str, int], tuple[str, ...]]:
    con = _connect()
    con.execute("set variable shop_currency = ?", [currency])
    shape = json.dumps(_json_shape(resources))
    # built once: each chunk runs the same statements
    statements = {r.name: (to_sql(temp("typed", _typed_rows(r))), to_sql(_output_rows(r))) for r in resources}
    try:
        with _BatchWriter(batch, tmp_paths, resources) as writer:
            for chunk in _line_chunks(path):
                con.register("chunk", chunk)
                con.execute(
                    "create or replace temp table parsed as "
                    "select line_no, line, json_valid(line) as ok, "
                    "from_json(case when json_valid(line) then line end, ?) as r "
                    "from (select line_no, trim(line, chr(32) || chr(9) || chr(13) || chr(10)) as line from chunk) "
                    "where line <> ''",
                    [shape],
                )
                bad = con.execute("select min(line_no) from parsed where not ok").fetchall()[0][0]
                if bad is not None:
                    raise StoreError(
                        f"{path}:{bad}: not valid JSON. Each line must be one JSON object; fix or remove that line."
                    )
                for r in resources:
                    typed, output = statements[r.name]
                    con.execute(typed)
                    result = con.execute("select * from typed where _bad order by _line limit 1")
                    names, bad_rows = [d[0] for d in result.description], result.fetchall()
                    if bad_rows:
                        raise StoreError(_describe(path, r, dict(zip(names, bad_rows[0], strict=True)), currency))
                    writer.add(r.name, con.sql(output).to_arrow_table())
                con.unregister("chunk")
            return writer.finish()
    finally:
        con.close()


def _line_chunks(path: Path | None) -> Iterator[pa.Table]:
    """(line_no, line) tables of CHUNK_LINES lines; one empty table for an absent file."""
    schema = pa.schema([("line_no", pa.int64()), ("line", pa.string())])
    if path is None:
        yield schema.empty_table()
        return
    yielded = False
    with open(path, "rb") as f:
        start, lines = 1, []
        for line in f:
            lines.append(line)
            if len(lines) == CHUNK_LINES:
                yield _chunk(path, start, lines, schema)
                yielded = True
                start, lines = start + len(lines), []
        if lines or not yielded:
            yield _chunk(path, start, lines, schema)


def _chunk(path: Path, start: int, lines: list[bytes], schema: pa.Schema) -> pa.Table:
    try:
        text = pa.array(lines, pa.binary()).cast(pa.string())
    except pa.ArrowInvalid:
        bad = next(i for i, line in enumerate(lines) if not _is_utf8(line))
        raise StoreError(f"{path}:{start + bad}: not UTF-8 text. Re-export the file as UTF-8.") from None
    return pa.table([pa.array(range(start, start + len(lines)), pa.int64()), text], schema=schema)


def _is_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _json_shape(resources: tuple[Resource, ...]) -> dict:
    """The from_json structure that reads every column of these resources from one line."""
    shape: dict = {"__parentId": "VARCHAR", "__typename": "VARCHAR"}
    for r in resources:
        for c in r.columns:
            node = shape
            for key in c.path[:-1]:
                node = node.setdefault(key, {})
            node[c.path[-1]] = c.type if isinstance(c.type, list | dict) else "VARCHAR"
    return shape


def _raw_expr(c: Column) -> exp.Expression:
    """The value at c's path in `r`, the parsed line."""
    value: exp.Expression = column("r")
    for key in c.path:
        value = exp.Bracket(this=value, expressions=[exp.Literal.string(key)])
    return value


def _typed_expr(c: Column) -> exp.Expression:
    raw = _raw_expr(c)
    if not c.checked:
        return raw
    if c.type == GID:
        # regexp_matches anchored rather than regexp_full_match: the same test (RE2's $ is the end
        # of the text), a quarter faster, on every id of every line. The number must be a positive
        # BIGINT, as staging casts it: a larger one would fail every later build, not this line.
        # Up to 18 digits always fit, so only longer numbers pay for the cast.
        short = _matches(raw, f"^{GID_PATTERN.removesuffix('[0-9]+')}0*[1-9][0-9]{{0,17}}$")
        long = exp.and_(
            _matches(raw, f"^{GID_PATTERN}$"),
            exp.TryCast(
                this=call("split_part", raw, exp.Literal.string("/"), exp.Literal.number(5)),
                to=exp.DataType.build("BIGINT"),
            )
            > 0,
        )
        return exp.case().when(short, raw).when(long, raw)
    if c.type == SHOP_CURRENCY:
        shop = exp.func("coalesce", call("getvariable", exp.Literal.string("shop_currency")), raw)
        return exp.case().when(raw.eq(shop), raw)
    if c.values:
        return exp.case().when(call("lower", call("trim", raw)).isin(*c.values), raw)
    if c.type == "TIMESTAMPTZ":
        # Shopify's own times end in Z: the suffix test, a third of the regex's cost, spares them the regex
        offset = exp.or_(call("suffix", raw, exp.Literal.string("Z")), _matches(raw, OFFSET_PATTERN))
        return exp.case().when(offset, exp.TryCast(this=raw, to=exp.DataType.build("TIMESTAMPTZ")))
    return exp.TryCast(this=raw, to=exp.DataType.build(c.type, dialect="duckdb"))


def _matches(value: exp.Expression, pattern: str) -> exp.Anonymous:
    return call("regexp_matches", value, exp.Literal.string(pattern))


PARENT = Column("_parent_id", ("__parentId",), GID)


def _selects(r: Resource) -> exp.Expression:
    """True over `r` (a parsed line) when the line is one of resource r's."""
    field = lambda name: exp.Bracket(this=column("r"), expressions=[exp.Literal.string(name)])  # noqa: E731
    parent = field("__parentId").is_(exp.null())
    # Children of two kinds in one file (a customer's metafields and store credit accounts) are told
    # apart by their id's type when a line has no __typename; a file of one kind of child takes any.
    siblings = r.child_of is not None and sum(o.child_of == r.child_of and o.file == r.file for o in RESOURCES) > 1
    fallback = (
        call("split_part", field("id"), exp.Literal.string("/"), exp.Literal.number(4))
        if siblings
        else exp.Literal.string(r.typename)
    )
    named = exp.func("coalesce", field("__typename"), fallback).eq(exp.Literal.string(r.typename))
    return exp.and_(parent.not_() if r.child_of else parent, named)


def _typed_columns(r: Resource) -> list[tuple[str, exp.Expression]]:
    """(name, expression over `r`) of the raw table's columns after _batch and _line, in order."""
    return [(c.name, _typed_expr(c)) for c in ((PARENT,) if r.child_of else ()) + r.columns]


def _checked(r: Resource) -> list[Column]:
    """The columns whose values are tested, so a value may not fit."""
    return [c for c in r.columns if c.checked]


def _shapes(r: Resource) -> dict[str, str]:
    """Field -> the JSON type it must have where present: every object and list r's columns sit in or are."""
    shapes: dict[str, str] = {}
    for c in r.columns:
        for depth in range(1, len(c.path)):
            shapes.setdefault(".".join(c.path[:depth]), "OBJECT")
        if isinstance(c.type, list | dict):
            shapes[".".join(c.path)] = "ARRAY" if isinstance(c.type, list) else "OBJECT"
            if isinstance(c.type, list) and isinstance(c.type[0], dict):
                shapes[".".join(c.path) + "[*]"] = "OBJECT"
    return shapes


def _shape_problem(r: Resource) -> exp.Expression:
    """An expression over `line` (the line's text): 'field|JSON type found' for the first nested value of
    another shape than `_shapes` says, else NULL.

    DuckDB's JSON reader refuses such a line, which sends the file to the chunked reader, but
    from_json reads it as NULL: a guest order where the line said `"customer": "gid://..."`.
    """
    tests = exp.case()
    for field, kind in _shapes(r).items():
        found: exp.Expression = call("json_type", column("line"), exp.Literal.string(f"$.{field}"))
        if field.endswith("[*]"):  # a list of objects: the first element that is not one
            other = exp.Lambda(this=column("t").isin(kind, "NULL").not_(), expressions=[identifier("t")])
            found = call("list_extract", call("list_filter", found, other), exp.Literal.number(1))
        tests = tests.when(
            found.isin(kind, "NULL").not_(), exp.DPipe(this=exp.Literal.string(f"{field}|"), expression=found)
        )
    return tests if tests.args.get("ifs") else exp.null()


def _raw_columns(r: Resource) -> list[tuple[str, exp.Expression]]:
    """(name, expression over `r`) of the values as the line has them, for the columns `_problems` checks."""
    checked = _checked(r)
    return [(f"{c.name}__raw", _raw_expr(c)) for c in r.columns if c in checked or c.required]


def _problems(r: Resource, name: Callable[[str], exp.Expression] = column) -> exp.Expression:
    """True when a line of resource r does not fit its columns.

    It reads the line's typed columns and `_raw_columns`, each called `name(column)`: each value
    is cast once, for the table and for this test.
    """
    problems = [
        exp.and_(name(f"{c.name}__raw").is_(exp.null()).not_(), name(c.name).is_(exp.null())) for c in _checked(r)
    ]
    problems += [name(f"{c.name}__raw").is_(exp.null()) for c in r.columns if c.required]
    if r.child_of:
        problems.append(name(PARENT.name).is_(exp.null()))
    return exp.paren(exp.or_(*problems)) if problems else exp.false()


def _typed_rows(r: Resource) -> exp.Select:
    """This resource's lines of temp table `parsed`, typed, and `_bad`: whether a value doesn't fit or a
    nested value has another shape."""
    lines = exp.select(
        exp.alias_(column("line_no"), identifier("_line")),
        exp.alias_(_shape_problem(r), identifier("_shape")),
        *(exp.alias_(expr, identifier(name)) for name, expr in _typed_columns(r) + _raw_columns(r)),
    )
    bad = exp.or_(_problems(r), column("_shape").is_(exp.null()).not_())
    return exp.select("*", exp.alias_(exp.paren(bad), identifier("_bad"))).from_(
        lines.from_(table("parsed")).where(_selects(r)).subquery()
    )


def _output_rows(r: Resource) -> exp.Select:
    """The raw table's columns after _batch, in order, from temp table `typed`."""
    names = ["_line"] + [name for name, _ in _typed_columns(r)]
    return exp.select(*(column(name) for name in names)).from_(table("typed")).order_by(column("_line"))


JSON_KINDS = {"OBJECT": "an object", "ARRAY": "a list", "VARCHAR": "a string", "BOOLEAN": "true or false"}


def _describe(path: Path | None, r: Resource, row: dict, currency: str | None) -> str:
    where = f"{path}:{row['_line']}"
    if row.get("_shape") is not None:
        field, found = row["_shape"].split("|")
        what = f"an element of {field.removesuffix('[*]')}" if field.endswith("[*]") else field
        return (
            f"{where}: {what} is {JSON_KINDS.get(found, 'a number')}, where {JSON_KINDS[_shapes(r)[field]]} is "
            f"expected (Shopify's bulk output nests it so). Fix the line or the export."
        )
    for c in r.columns:
        if c.required and row.get(f"{c.name}__raw") is None:
            return f"{where}: {r.typename} without {'.'.join(c.path)}. Every {r.typename} line needs one."
    if r.child_of and row.get("_parent_id") is None:
        return f"{where}: __parentId is not a Shopify id such as gid://shopify/Order/1001."
    for c in r.columns:
        raw = row.get(f"{c.name}__raw")
        if raw is not None and row.get(c.name) is None:
            field = ".".join(c.path)
            if c.type == SHOP_CURRENCY:
                return (
                    f"{where}: {r.typename} {row.get('id')}: {field} is {raw!r}, but the shop's currency "
                    f"(shop.jsonl currencyCode) is {currency!r}. Amounts are summed as the shop's money: "
                    "export shopMoney, which Shopify gives in the shop's currency."
                )
            if c.values:
                closest = difflib.get_close_matches(raw.strip().lower(), c.values, n=1, cutoff=0.5)
                hint = f": did you mean {closest[0]}?" if closest else "."
                return f"{where}: {field} is {raw!r}, which is not one of {', '.join(c.values)}{hint}"
            return f"{where}: {field} is {raw!r}, which is not {_expected(c, raw)}. Fix the value or the export."
    return f"{where}: bad {r.typename} line"


def _expected(c: Column, raw: str) -> str:
    if c.type == GID and re.fullmatch(GID_PATTERN, raw):
        return "a Shopify id whose number is from 1 to 9223372036854775807 (a 64-bit integer)"
    return {
        GID: "a Shopify id such as gid://shopify/Customer/123",
        "TIMESTAMPTZ": "an ISO-8601 timestamp with offset (Z or +hh:mm) such as 2026-10-01T21:30:00Z",
        "BOOLEAN": "true or false",
        "INTEGER": "a whole number",
        "DOUBLE": "a number such as 45.4215",
    }.get(c.type, "a decimal amount such as 59.90")


def _check_shop(batch_file: Path) -> None:
    """One shop line with a time zone DuckDB and Python both know: every local date depends on it."""
    shops = pq.read_table(batch_file).to_pylist()
    if len(shops) != 1:
        raise StoreError(
            f"shop.jsonl: {len(shops)} shop lines. It needs exactly one, with ianaTimezone, currencyCode and name."
        )
    tz = shops[0]["iana_timezone"]
    if tz is None:
        return  # the spec's default, UTC, applies
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise StoreError(
            f"shop.jsonl:{shops[0]['_line']}: ianaTimezone {tz!r} is not an IANA time zone "
            "such as Europe/Rome or America/New_York."
        ) from None
