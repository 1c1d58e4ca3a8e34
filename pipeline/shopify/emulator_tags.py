"""The emulator's write side for customer tags: tagsAdd/tagsRemove, the customers and nodes queries that
read tags back, staged uploads and bulk mutations, as the pinned Admin API version documents them.

The emulator executes requests with graphql-core against its one schema (emulator_schema), calling
the resolvers here for these fields, and so does a bulk mutation for each of its lines. Tag changes live in
memory (the store files are not rewritten); `additions` counts every tag a tagsAdd asked for, even
one the customer already carried, so a test can tell a replayed batch from an applied-once one.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any

from graphql import GraphQLError, OperationDefinitionNode, execute

from pipeline.shopify.emulator_schema import SCHEMA, check, root_fields, shopify_errors

# Shopify's documented limit for one staged bulk mutation variables file since 2026-01.
UPLOAD_LIMIT_BYTES = 100 * 10**6
STAGED_UPLOAD_PATH = "/staged-uploads"
MISSING_CUSTOMER = "Customer does not exist"

_BULK_MUTABLE = ("tagsAdd", "tagsRemove")  # what a bulk mutation here may run
_TAG_SEARCH = re.compile(r"""\s*tag:(?:'(?P<single>(?:[^'\\]|\\.)*)'|"(?P<double>(?:[^"\\]|\\.)*)"|(?P<bare>\S+))\s*""")
_MAX_PAGE = 250  # Shopify's most items a connection page or a nodes() call returns


class CustomerTags:
    """The shop's customers as tag mutations see them, read once from customers.jsonl."""

    def __init__(self, store_dir: Path) -> None:
        self._store_dir = store_dir
        self._customers: dict[str, dict[str, Any]] | None = None
        self._lock = threading.Lock()
        self.additions: Counter[tuple[str, str]] = Counter()  # (customer gid, tag) -> tags asked to be added
        self.refusals: dict[str, str] = {}  # a fault: customer gid -> the userError its tag changes get

    def _all(self) -> dict[str, dict[str, Any]]:
        if self._customers is None:
            self._customers = {}
            path = self._store_dir / "customers.jsonl"
            if path.exists():
                with path.open(encoding="utf-8") as fh:
                    for line in fh:
                        record = json.loads(line) if line.strip() else {}
                        if record.get("id") and "__parentId" not in record:
                            self._customers[record["id"]] = {**record, "tags": list(record.get("tags") or [])}
        return self._customers

    def get(self, gid: str) -> dict[str, Any] | None:
        with self._lock:
            record = self._all().get(gid)
            return None if record is None else {**record, "tags": list(record["tags"]), "__typename": "Customer"}

    def delete(self, gid: str) -> None:
        """The customer is deleted or redacted: from now on it does not exist."""
        with self._lock:
            self._all().pop(gid, None)

    def tagged(self, tag: str | None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {**c, "__typename": "Customer"}
                for c in sorted(self._all().values(), key=_id_order)
                if tag is None or tag.lower() in (t.lower() for t in c["tags"])
            ]

    def change(self, gid: str, tags: list[str], *, add: bool) -> dict[str, Any]:
        """A tagsAdd/tagsRemove payload: Shopify trims tags and compares them case-insensitively."""
        with self._lock:
            record = self._all().get(gid)
            if record is None:
                return {"node": None, "userErrors": [{"field": ["id"], "message": MISSING_CUSTOMER}]}
            if gid in self.refusals:
                return {"node": None, "userErrors": [{"field": ["tags"], "message": self.refusals[gid]}]}
            wanted = [t.strip() for t in tags if t.strip()]
            held = {t.lower() for t in record["tags"]}
            if add:
                for tag in wanted:
                    self.additions[(gid, tag)] += 1
                    if tag.lower() not in held:
                        record["tags"].append(tag)
                        held.add(tag.lower())
            else:
                gone = {t.lower() for t in wanted}
                record["tags"] = [t for t in record["tags"] if t.lower() not in gone]
            return {"node": {"__typename": "Customer", "id": gid}, "userErrors": []}


class StagedUploads:
    """Signed upload forms handed out by stagedUploadsCreate, and the files posted with them."""

    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self._signatures: dict[str, str] = {}
        self._files: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def form(self, filename: str) -> list[dict[str, str]]:
        key = f"tmp/emulator/bulk/{secrets.token_hex(8)}/{filename}"
        signature = secrets.token_hex(32)
        with self._lock:
            self._signatures[key] = signature
        policy = base64.b64encode(
            json.dumps({"conditions": [["content-length-range", 1, self.limit_bytes]]}).encode()
        ).decode()
        return [
            {"name": "Content-Type", "value": "text/jsonl"},
            {"name": "success_action_status", "value": "201"},
            {"name": "acl", "value": "private"},
            {"name": "key", "value": key},
            {"name": "x-goog-date", "value": "20261206T000000Z"},
            {"name": "x-goog-credential", "value": "emulator/20261206/auto/storage/goog4_request"},
            {"name": "x-goog-algorithm", "value": "GOOG4-RSA-SHA256"},
            {"name": "x-goog-signature", "value": signature},
            {"name": "policy", "value": policy},
        ]

    def receive(self, fields: dict[str, str], file: bytes | None, size: int) -> tuple[int, str]:
        """An upload POST: (HTTP status, Google Cloud Storage's XML answer)."""
        if size > self.limit_bytes:
            return 400, _storage_error(
                "EntityTooLarge",
                "Your proposed upload is larger than the maximum object size specified in your Policy Document.",
            )
        key = fields.get("key", "")
        with self._lock:
            expected = self._signatures.get(key)
        if expected is None or not secrets.compare_digest(expected, fields.get("x-goog-signature", "")):
            return 403, _storage_error("AccessDenied", "Invalid argument: the signed form does not match.")
        if file is None:
            return 400, _storage_error("InvalidArgument", "Bucket POST must contain a file field.")
        with self._lock:
            self._files[key] = file
        return 201, f"<?xml version='1.0' encoding='UTF-8'?><PostResponse><Key>{key}</Key></PostResponse>"

    def file(self, key: str) -> bytes | None:
        with self._lock:
            return self._files.get(key)


# start(write_results) -> the new bulk operation, described; None when no slot is free. write_results(path)
# applies the mutations, writes their result lines to path and returns how many.
StartBulkMutation = Callable[[Callable[[Path], int]], dict[str, Any] | None]


class TagsApi:
    """The resolvers of the schema's fields served here, by field name (graphql-core calls them with their
    arguments)."""

    def __init__(
        self,
        tags: CustomerTags,
        uploads: StagedUploads,
        upload_url: Callable[[], str],
        start_bulk_mutation: StartBulkMutation,
        missing_scope: Callable[[], str | None],
    ) -> None:
        self._tags = tags
        self._uploads = uploads
        self._upload_url = upload_url
        self._start = start_bulk_mutation
        self._missing_scope = missing_scope  # the token lacks this scope (a fault)

    FIELDS = ("customers", "nodes", "tagsAdd", "tagsRemove", "stagedUploadsCreate", "bulkOperationRunMutation")

    def resolvers(self) -> dict[str, Callable[..., Any]]:
        return {name: getattr(self, name) for name in self.FIELDS}

    # --- QueryRoot ---

    def customers(
        self,
        info: Any,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        query: str | None = None,
        reverse: bool = False,
    ) -> dict[str, Any]:
        if first is None:
            raise GraphQLError(
                "you must provide one of first or last"
                if last is None
                else "the emulator pages forward only: use first and after"
            )
        if not 0 < first <= _MAX_PAGE:
            raise GraphQLError(f"The maximum number of items that can be requested is {_MAX_PAGE}")
        tag = None
        if query and query.strip():
            match = _TAG_SEARCH.fullmatch(query)
            if match is None:
                raise GraphQLError(f"the emulator answers only tag:'<tag>' searches, not {query!r}")
            raw = match["single"] if match["single"] is not None else match["double"] or match["bare"]
            tag = re.sub(r"\\(.)", r"\1", raw)
        matching = self._tags.tagged(tag)
        start = _cursor_position(after) + 1 if after else 0
        page = matching[start : start + first]
        edges = [{"cursor": _cursor(start + i), "node": c} for i, c in enumerate(page)]
        return {
            "edges": edges,
            "nodes": page,
            "pageInfo": {
                "hasNextPage": start + first < len(matching),
                "hasPreviousPage": start > 0,
                "startCursor": edges[0]["cursor"] if edges else None,
                "endCursor": edges[-1]["cursor"] if edges else None,
            },
        }

    def nodes(self, info: Any, ids: list[str]) -> list[dict[str, Any] | None]:
        if len(ids) > _MAX_PAGE:
            raise GraphQLError(f"The ids argument can hold at most {_MAX_PAGE} ids")
        return [self._tags.get(i) for i in ids]

    # --- Mutation ---

    def tagsAdd(self, info: Any, id: str, tags: list[str]) -> dict[str, Any]:  # noqa: A002, N802 - the API's names
        self._require_write_customers(info)
        return self._tags.change(id, tags, add=True)

    def tagsRemove(self, info: Any, id: str, tags: list[str]) -> dict[str, Any]:  # noqa: A002, N802
        self._require_write_customers(info)
        return self._tags.change(id, tags, add=False)

    def _require_write_customers(self, info: Any) -> None:
        if self._missing_scope() == "write_customers":
            scope = "`write_customers` access scope."
            raise GraphQLError(
                f"Access denied for {info.field_name} field. Required access: {scope}",
                extensions={"code": "ACCESS_DENIED", "requiredAccess": scope},
            )

    def stagedUploadsCreate(self, info: Any, input: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: A002, N802
        targets = []
        for item in input:
            if item["resource"] != "BULK_MUTATION_VARIABLES" or item.get("httpMethod") != "POST":
                return {
                    "stagedTargets": None,
                    "userErrors": [
                        {"field": ["input"], "message": "the emulator stages only BULK_MUTATION_VARIABLES by POST"}
                    ],
                }
            targets.append(
                {"url": self._upload_url(), "resourceUrl": None, "parameters": self._uploads.form(item["filename"])}
            )
        return {"stagedTargets": targets, "userErrors": []}

    def bulkOperationRunMutation(
        self,
        info: Any,
        mutation: str,
        stagedUploadPath: str,  # noqa: N802, N803
        clientIdentifier: str | None = None,
        groupObjects: bool = False,
    ) -> dict[str, Any]:
        def refused(code: str, message: str) -> dict[str, Any]:
            return {"bulkOperation": None, "userErrors": [{"field": None, "message": message, "code": code}]}

        document, problems = check(mutation)
        if document is None:
            return refused("INVALID_MUTATION", f"Failed to parse the mutation - {problems[0]['message']}")
        if problems:
            return refused("INVALID_MUTATION", "; ".join(p["message"] for p in problems))
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if len(operations) != 1 or operations[0].operation.value != "mutation":
            return refused("INVALID_MUTATION", "Invalid operation type. Only `mutation` operations are supported.")
        fields = [f.name.value for f in root_fields(operations[0])]
        if len(fields) != 1 or fields[0] not in _BULK_MUTABLE:
            return refused("INVALID_MUTATION", "the emulator runs one tagsAdd or tagsRemove per line in bulk")
        content = self._uploads.file(stagedUploadPath)
        if content is None:
            return refused("NO_SUCH_FILE", f"The JSONL file could not be found: {stagedUploadPath}")
        try:
            lines = [json.loads(line) for line in content.decode("utf-8").splitlines() if line.strip()]
        except ValueError:
            lines = None
        if lines is None or not all(isinstance(v, dict) for v in lines):
            return refused("INVALID_STAGED_UPLOAD_FILE", "Unexpected file structure - expected JSONL")

        def run(out: Path) -> int:
            with out.open("w", encoding="utf-8") as fh:
                for number, variables in enumerate(lines):
                    # parsed and validated once above: each line only binds its variables
                    result = execute(SCHEMA, document, root_value=self.resolvers(), variable_values=variables)
                    line: dict[str, Any] = {"data": result.data}
                    if result.errors:
                        line["errors"] = shopify_errors(result.errors)
                    fh.write(json.dumps({**line, "__lineNumber": number}) + "\n")
            return len(lines)

        started = self._start(run)
        if started is None:
            return refused("LIMIT_REACHED", "Bulk operations limit reached. Please try again later.")
        return {"bulkOperation": started, "userErrors": []}


def _storage_error(code: str, message: str) -> str:
    return f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message></Error>"


def _id_order(record: dict[str, Any]) -> tuple[int, str]:
    number = str(record["id"]).rsplit("/", 1)[-1]
    return (int(number), "") if number.isdigit() else (0, number)


def _cursor(position: int) -> str:
    return base64.b64encode(json.dumps({"last": position}).encode()).decode()


def _cursor_position(cursor: str) -> int:
    try:
        return int(json.loads(base64.b64decode(cursor))["last"])
    except (ValueError, KeyError, TypeError):
        raise GraphQLError(f"Invalid cursor for current pagination sort: {cursor!r}") from None


def iter_form(content_type: str, body: bytes) -> Iterator[tuple[str, bytes, bool]]:
    """The parts of a multipart/form-data body: (name, value, is a file)."""
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    if not message.is_multipart():
        return
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            yield str(name), part.get_payload(decode=True) or b"", part.get_filename() is not None
