"""The one reader of store directories: JSONL files into typed, append-only raw Parquet batches.

DuckDB's own JSON reader parses the whole file in parallel into a scratch database on disk, so
memory does not grow with the shop; where it cannot (a line that is not JSON or not UTF-8, blank
lines that would shift the line numbers) the file is read again in chunks of lines, which finds
the line at fault. Every value that does not fit its column is an error naming file, line and
field. A batch is written under a temporary name and renamed only when the whole file is good,
so a bad line leaves every published batch as it was.
"""

import hashlib
import json
import os
import shutil
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.store.schema import GID, OPTIONAL_FILES, STORE_FILES, Column, Resource, resources_in

CHUNK_LINES = 200_000
# The scratch database spills to its file beyond this; the parsed orders of a big shop are gigabytes.
SCRATCH_MEMORY = "1GB"
GID_PATTERN = r"gid://shopify/[A-Za-z]+/[0-9]+"


class StoreError(ValueError):
    """A store directory that breaks the contract; the message says where and what to fix."""


@dataclass(frozen=True)
class IngestedFile:
    file: str
    batch: str
    rows: dict[str, int]  # resource name -> rows in this batch
    skipped: bool  # the same content was ingested before: nothing new was written


def ingest_store(store_dir: Path, raw_dir: Path, files: tuple[str, ...] = STORE_FILES) -> list[IngestedFile]:
    """Ingests every file of a store directory; stops at the first bad file."""
    return [ingest_file(store_dir, file, raw_dir) for file in files]


def ingest_file(store_dir: Path, file: str, raw_dir: Path) -> IngestedFile:
    """Reads one JSONL file of the store directory into one Parquet batch per resource it holds.

    The batch name starts with the ingest time, so batches sort in arrival order, and ends with
    a digest of the content, so ingesting the same file twice adds nothing.
    """
    path = Path(store_dir) / file
    resources = resources_in(file)
    if not path.is_file():
        if file not in OPTIONAL_FILES:
            raise StoreError(f"{path}: missing. A store directory needs {file}; "
                             "check the --source directory or the extraction that wrote it.")
        digest = "absent"
        lines = 0
    else:
        digest, lines = _digest_and_lines(path)
    existing = _batch_with_digest(raw_dir, resources, digest)
    if existing:
        return IngestedFile(file, existing, {r.name: 0 for r in resources}, skipped=True)

    batch = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{digest}"
    tmp_paths = {r.name: raw_dir / r.name / f".{batch}.parquet.tmp" for r in resources}
    try:
        rows = _write_batch(path if path.is_file() else None, lines, resources, batch, tmp_paths)
        if file == "shop.jsonl":
            _check_shop(tmp_paths["shop"])
        for r in resources:
            os.replace(tmp_paths[r.name], raw_dir / r.name / f"{batch}.parquet")
    finally:
        for tmp in tmp_paths.values():
            tmp.unlink(missing_ok=True)
    return IngestedFile(file, batch, rows, skipped=False)


def _digest_and_lines(path: Path) -> tuple[str, int]:
    """The content digest and the number of lines (a last line without a newline counts too)."""
    h = hashlib.sha256()
    lines, last = 0, b"\n"
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
            lines += block.count(b"\n")
            last = block[-1:]
    return h.hexdigest()[:16], lines + (last != b"\n")


def _batch_with_digest(raw_dir: Path, resources: tuple[Resource, ...], digest: str) -> str | None:
    """The batch already holding this exact content, if every one of its resources was published."""
    first = raw_dir / resources[0].name
    for candidate in sorted(first.glob(f"*-{digest}.parquet")):
        batch = candidate.name.removesuffix(".parquet")
        if all((raw_dir / r.name / f"{batch}.parquet").exists() for r in resources):
            return batch
    return None


def _write_batch(path: Path | None, lines: int, resources: tuple[Resource, ...], batch: str,
                 tmp_paths: dict[str, Path]) -> dict[str, int]:
    if path is not None and lines:
        rows = _write_whole_file(path, lines, resources, batch, tmp_paths)
        if rows is not None:
            return rows
    return _write_chunks(path, resources, batch, tmp_paths)


def _write_whole_file(path: Path, lines: int, resources: tuple[Resource, ...], batch: str,
                      tmp_paths: dict[str, Path]) -> dict[str, int] | None:
    """Parses the file with DuckDB's JSON reader and copies each resource to its Parquet file.

    Returns None when the reader refuses the file or skipped blank lines: row numbers are line
    numbers only when every line is one record, and only the chunked reader can say which line is bad.
    """
    scratch = tmp_paths[resources[0].name].parent.parent / f".{batch}.ingest.duckdb"
    shape = _json_shape(resources)
    scratch.parent.mkdir(parents=True, exist_ok=True)
    try:
        with duckdb.connect(str(scratch)) as con:
            con.execute("set memory_limit = ?", [SCRATCH_MEMORY])
            try:
                con.execute("create table lines as select * from read_json(?, columns = ?, records = true, "
                            "format = 'newline_delimited')",
                            [str(path), {key: _duckdb_type(value) for key, value in shape.items()}])
            except duckdb.InvalidInputException:  # not JSON, not UTF-8, not an object: the chunks name the line
                return None
            if con.execute("select count(*) from lines").fetchall()[0][0] != lines:
                return None
            # rowid is the insertion order, which is the file's order: one more is the line number.
            fields = ", ".join(f"{_quoted(key)} := {_quoted(key)}" for key in shape)
            con.execute(f"create temp view parsed as select rowid + 1 as line_no, struct_pack({fields}) as r "  # noqa: S608 (names from schema.py)
                        "from lines")
            rows = {}
            for r in resources:
                _typed_rows(con, path, r)
                tmp_paths[r.name].parent.mkdir(parents=True, exist_ok=True)
                rows[r.name] = con.execute(f"copy (select ?::varchar as _batch, {_output_columns(r)} from typed) "  # noqa: S608
                                           "to ? (format parquet)", [batch, str(tmp_paths[r.name])]).fetchall()[0][0]
            return rows
    finally:
        scratch.unlink(missing_ok=True)
        scratch.with_name(scratch.name + ".wal").unlink(missing_ok=True)
        shutil.rmtree(scratch.with_name(scratch.name + ".tmp"), ignore_errors=True)  # where DuckDB spilled


def _duckdb_type(node: str | list | dict) -> str:
    """A from_json shape node as the type name read_json's `columns` takes."""
    if isinstance(node, str):
        return node
    if isinstance(node, list):
        return _duckdb_type(node[0]) + "[]"
    return "STRUCT(" + ", ".join(f"{_quoted(key)} {_duckdb_type(value)}" for key, value in node.items()) + ")"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _write_chunks(path: Path | None, resources: tuple[Resource, ...], batch: str,
                  tmp_paths: dict[str, Path]) -> dict[str, int]:
    con = duckdb.connect()
    shape = json.dumps(_json_shape(resources))
    writers: dict[str, pq.ParquetWriter] = {}
    rows = {r.name: 0 for r in resources}
    try:
        for chunk in _line_chunks(path):
            con.register("chunk", chunk)
            con.execute(
                "create or replace temp table parsed as "
                "select line_no, json_valid(line) as ok, "
                "from_json(case when json_valid(line) then line end, ?) as r "
                "from (select line_no, trim(line, chr(32) || chr(9) || chr(13) || chr(10)) as line from chunk) "
                "where line <> ''", [shape])
            bad = con.execute("select min(line_no) from parsed where not ok").fetchall()[0][0]
            if bad is not None:
                raise StoreError(f"{path}:{bad}: not valid JSON. Each line must be one JSON object; "
                                 "fix or remove that line.")
            for r in resources:
                _typed_rows(con, path, r)
                table = con.sql(f"select ?::varchar as _batch, {_output_columns(r)} from typed order by _line",  # noqa: S608
                                params=[batch]).to_arrow_table()
                rows[r.name] += table.num_rows
                writer = writers.get(r.name)
                if writer is None:
                    tmp_paths[r.name].parent.mkdir(parents=True, exist_ok=True)
                    writer = writers[r.name] = pq.ParquetWriter(tmp_paths[r.name], table.schema)
                writer.write_table(table)
            con.unregister("chunk")
    finally:
        for writer in writers.values():
            writer.close()
        con.close()
    return rows


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


def _raw_expr(c: Column) -> str:
    return "r" + "".join(f"['{key}']" for key in c.path)


def _typed_expr(c: Column) -> str:
    raw = _raw_expr(c)
    if isinstance(c.type, list | dict) or c.type == "VARCHAR":
        return raw
    if c.type == GID:
        return f"case when regexp_full_match({raw}, '{GID_PATTERN}') then {raw} end"
    return f"try_cast({raw} as {c.type})"


def _typed_rows(con: duckdb.DuckDBPyConnection, path: Path | None, r: Resource) -> None:
    """Temp table `typed`: this resource's lines of `parsed`, typed; raises StoreError at the first value
    that doesn't fit."""
    is_child = "r['__parentId'] is not null" if r.child_of else "r['__parentId'] is null"
    of_type = f"coalesce(r['__typename'], '{r.typename}') = '{r.typename}'"
    columns = [f"{_typed_expr(c)} as {c.name}" for c in r.columns]
    parent = [f"{_typed_expr(Column('_parent_id', ('__parentId',), GID))} as _parent_id"] if r.child_of else []
    checked = [c for c in r.columns if not isinstance(c.type, list | dict) and c.type != "VARCHAR"]
    raws = [f"{_raw_expr(c)} as {c.name}__raw" for c in checked + [c for c in r.columns if c.required]]
    con.execute(
        f"create or replace temp table typed as select line_no as _line, {', '.join(parent + columns + raws)} "  # noqa: S608 (names from schema.py)
        f"from parsed where {is_child} and {of_type}")
    problems = [f"({c.name}__raw is not null and {c.name} is null)" for c in checked]
    problems += [f"{c.name}__raw is null" for c in r.columns if c.required]
    if r.child_of:
        problems.append("_parent_id is null")
    where = " or ".join(problems) or "false"
    result = con.execute(f"select * from typed where {where} order by _line limit 1")  # noqa: S608
    names, bad = [d[0] for d in result.description], result.fetchall()
    if bad:
        raise StoreError(_describe(path, r, dict(zip(names, bad[0], strict=True))))


def _output_columns(r: Resource) -> str:
    """The raw table's columns after _batch, in order."""
    return ", ".join(["_line"] + (["_parent_id"] if r.child_of else []) + [c.name for c in r.columns])


def _describe(path: Path | None, r: Resource, row: dict) -> str:
    where = f"{path}:{row['_line']}"
    for c in r.columns:
        if c.required and row.get(f"{c.name}__raw") is None:
            return f"{where}: {r.typename} without {'.'.join(c.path)}. Every {r.typename} line needs one."
    if r.child_of and row.get("_parent_id") is None:
        return f"{where}: __parentId is not a Shopify id such as gid://shopify/Order/1001."
    for c in r.columns:
        raw = row.get(f"{c.name}__raw")
        if raw is not None and row.get(c.name) is None:
            field = ".".join(c.path)
            return f"{where}: {field} is {raw!r}, which is not {_expected(c)}. Fix the value or the export."
    return f"{where}: bad {r.typename} line"


def _expected(c: Column) -> str:
    return {
        GID: "a Shopify id such as gid://shopify/Customer/123",
        "TIMESTAMPTZ": "an ISO-8601 timestamp with offset such as 2026-10-01T21:30:00Z",
        "BOOLEAN": "true or false",
        "INTEGER": "a whole number",
    }.get(c.type, "a decimal amount such as 59.90")


def _check_shop(batch_file: Path) -> None:
    """One shop line with a time zone DuckDB and Python both know: every local date depends on it."""
    shops = pq.read_table(batch_file).to_pylist()
    if len(shops) != 1:
        raise StoreError(f"shop.jsonl: {len(shops)} shop lines. It needs exactly one, "
                         "with ianaTimezone, currencyCode and name.")
    tz = shops[0]["iana_timezone"]
    if tz is None:
        return  # the spec's default, UTC, applies
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise StoreError(f"shop.jsonl:{shops[0]['_line']}: ianaTimezone {tz!r} is not an IANA time zone "
                         "such as Europe/Rome or America/New_York.") from None
