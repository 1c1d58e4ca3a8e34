"""The emulator's write side for customer tags: tagsAdd/tagsRemove, the customers and nodes queries that
read tags back, staged uploads and bulk mutations, as the pinned Admin API version documents them.

Requests that use these fields are parsed, validated and executed by graphql-core against a small
schema of exactly the types served here, so a misspelt field or argument is refused with a GraphQL
error in Shopify's words, as the real API does, rather than answered with null. Tag changes live in
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

from graphql import GraphQLError, build_schema, execute, graphql_sync, parse, validate
from graphql.language import OperationDefinitionNode

from pipeline.shopify.graphql_subset import Operation

# Shopify's documented limit for one staged bulk mutation variables file since 2026-01.
UPLOAD_LIMIT_BYTES = 100 * 10**6
STAGED_UPLOAD_PATH = "/staged-uploads"
MUTATION_COST = 10  # Shopify's cost of a mutation field
MISSING_CUSTOMER = "Customer does not exist"

SCHEMA = build_schema('''
scalar URL
scalar DateTime
scalar UnsignedInt64

interface Node { id: ID! }

type CustomerPhoneNumber { phoneNumber: String! }

type Customer implements Node {
  id: ID!
  firstName: String
  lastName: String
  tags: [String!]!
  defaultPhoneNumber: CustomerPhoneNumber
}

type PageInfo { hasNextPage: Boolean! hasPreviousPage: Boolean! startCursor: String endCursor: String }
type CustomerEdge { cursor: String! node: Customer! }
type CustomerConnection { edges: [CustomerEdge!]! nodes: [Customer!]! pageInfo: PageInfo! }

type UserError { field: [String!] message: String! }
type TagsAddPayload { node: Node userErrors: [UserError!]! }
type TagsRemovePayload { node: Node userErrors: [UserError!]! }

enum StagedUploadTargetGenerateUploadResource {
  BULK_MUTATION_VARIABLES COLLECTION_IMAGE FILE IMAGE MODEL_3D PRODUCT_IMAGE SHOP_IMAGE VIDEO
  RETURN_LABEL URL_REDIRECT_IMPORT DISPUTE_FILE_UPLOAD
}
enum StagedUploadHttpMethodType { POST PUT }
input StagedUploadInput {
  resource: StagedUploadTargetGenerateUploadResource!
  filename: String!
  mimeType: String!
  httpMethod: StagedUploadHttpMethodType = PUT
  fileSize: UnsignedInt64
}
type StagedUploadParameter { name: String! value: String! }
type StagedMediaUploadTarget { url: URL resourceUrl: URL parameters: [StagedUploadParameter!]! }
type StagedUploadsCreatePayload { stagedTargets: [StagedMediaUploadTarget!] userErrors: [UserError!]! }

enum BulkOperationType { QUERY MUTATION }
enum BulkOperationStatus { CANCELED CANCELING COMPLETED CREATED EXPIRED FAILED RUNNING }
enum BulkOperationErrorCode { ACCESS_DENIED INTERNAL_SERVER_ERROR TIMEOUT }
enum BulkMutationErrorCode {
  INTERNAL_FILE_SERVER_ERROR INVALID_MUTATION INVALID_STAGED_UPLOAD_FILE LIMIT_REACHED NO_SUCH_FILE
  OPERATION_IN_PROGRESS
}
type BulkOperation implements Node {
  id: ID!
  type: BulkOperationType!
  status: BulkOperationStatus!
  errorCode: BulkOperationErrorCode
  createdAt: DateTime!
  completedAt: DateTime
  objectCount: UnsignedInt64!
  rootObjectCount: UnsignedInt64!
  fileSize: UnsignedInt64
  url: URL
  partialDataUrl: URL
}
type BulkMutationUserError { field: [String!] message: String! code: BulkMutationErrorCode }
type BulkOperationRunMutationPayload { bulkOperation: BulkOperation userErrors: [BulkMutationUserError!]! }

type QueryRoot {
  customers(first: Int, after: String, last: Int, before: String, query: String, reverse: Boolean = false):
    CustomerConnection!
  nodes(ids: [ID!]!): [Node]!
}

type Mutation {
  tagsAdd(id: ID!, tags: [String!]!): TagsAddPayload
  tagsRemove(id: ID!, tags: [String!]!): TagsRemovePayload
  stagedUploadsCreate(input: [StagedUploadInput!]!): StagedUploadsCreatePayload
  bulkOperationRunMutation(mutation: String!, stagedUploadPath: String!, clientIdentifier: String,
                           groupObjects: Boolean = false): BulkOperationRunMutationPayload
}

schema { query: QueryRoot mutation: Mutation }
''')

# The root fields answered here; a request naming any of them is executed by graphql-core.
FIELDS = frozenset({"customers", "nodes", "tagsAdd", "tagsRemove", "stagedUploadsCreate", "bulkOperationRunMutation"})
_BULK_MUTABLE = ("tagsAdd", "tagsRemove")  # what a bulk mutation here may run
_TAG_SEARCH = re.compile(r"""\s*tag:(?:'(?P<single>(?:[^'\\]|\\.)*)'|"(?P<double>(?:[^"\\]|\\.)*)"|(?P<bare>\S+))\s*""")
_MAX_PAGE = 250  # Shopify's most items a connection page or a nodes() call returns


def uses(operation: Operation) -> bool:
    return any(f.name in FIELDS for f in operation.selections)


def cost(operation: Operation) -> int:
    """Shopify's requested cost, near enough: 10 a mutation; a connection 2 + 2 a node (the customer
    and its phone); nodes() one an id."""
    total = 0
    for f in operation.selections:
        if operation.kind == "mutation":
            total += MUTATION_COST
        elif f.name == "customers":
            total += 2 + 2 * int(f.arguments.get("first") or f.arguments.get("last") or 0)
        elif f.name == "nodes":
            total += len(f.arguments.get("ids") or [])
        else:
            total += 1
    return total


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
            return [{**c, "__typename": "Customer"} for c in sorted(self._all().values(), key=_id_order)
                    if tag is None or tag.lower() in (t.lower() for t in c["tags"])]

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
        policy = base64.b64encode(json.dumps({"conditions": [["content-length-range", 1, self.limit_bytes]]})
                                  .encode()).decode()
        return [{"name": "Content-Type", "value": "text/jsonl"}, {"name": "success_action_status", "value": "201"},
                {"name": "acl", "value": "private"}, {"name": "key", "value": key},
                {"name": "x-goog-date", "value": "20261206T000000Z"},
                {"name": "x-goog-credential", "value": "emulator/20261206/auto/storage/goog4_request"},
                {"name": "x-goog-algorithm", "value": "GOOG4-RSA-SHA256"},
                {"name": "x-goog-signature", "value": signature}, {"name": "policy", "value": policy}]

    def receive(self, fields: dict[str, str], file: bytes | None, size: int) -> tuple[int, str]:
        """An upload POST: (HTTP status, Google Cloud Storage's XML answer)."""
        if size > self.limit_bytes:
            return 400, _storage_error("EntityTooLarge", "Your proposed upload is larger than the maximum object "
                                       "size specified in your Policy Document.")
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
    """The resolvers of SCHEMA's root fields (graphql-core calls a root value's methods by field name)."""

    def __init__(self, tags: CustomerTags, uploads: StagedUploads, upload_url: Callable[[], str],
                 start_bulk_mutation: StartBulkMutation, missing_scope: Callable[[], str | None]) -> None:
        self._tags = tags
        self._uploads = uploads
        self._upload_url = upload_url
        self._start = start_bulk_mutation
        self._missing_scope = missing_scope  # the token lacks this scope (a fault)

    def execute(self, body: dict[str, Any]) -> dict[str, Any]:
        """One GraphQL request: Shopify's error wording for an invalid document; data otherwise."""
        try:
            document = parse(str(body.get("query") or ""))
        except GraphQLError as exc:
            return {"errors": [_shopify_error(exc)]}
        errors = validate(SCHEMA, document)
        if errors:
            return {"errors": [_shopify_error(e) for e in errors]}
        if self._missing_scope() == "write_customers":
            denied = [s.name.value for d in document.definitions if isinstance(d, OperationDefinitionNode)
                      for s in d.selection_set.selections if s.name.value in _BULK_MUTABLE]
            if denied:
                return {"errors": [{
                    "message": f"Access denied for {denied[0]} field. Required access: `write_customers` access "
                               "scope.",
                    "path": [denied[0]],
                    "extensions": {"code": "ACCESS_DENIED", "requiredAccess": "`write_customers` access scope."}}]}
        result = graphql_sync(SCHEMA, body.get("query"), root_value=self,
                              variable_values=body.get("variables") or {})
        reply: dict[str, Any] = {"data": result.data}
        if result.errors:
            reply["errors"] = [_shopify_error(e) for e in result.errors]
        return reply

    # --- QueryRoot ---

    def customers(self, info: Any, first: int | None = None, after: str | None = None, last: int | None = None,
                  before: str | None = None, query: str | None = None, reverse: bool = False) -> dict[str, Any]:
        if first is None:
            raise GraphQLError("you must provide one of first or last" if last is None else
                               "the emulator pages forward only: use first and after")
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
        page = matching[start:start + first]
        edges = [{"cursor": _cursor(start + i), "node": c} for i, c in enumerate(page)]
        return {"edges": edges, "nodes": page,
                "pageInfo": {"hasNextPage": start + first < len(matching), "hasPreviousPage": start > 0,
                             "startCursor": edges[0]["cursor"] if edges else None,
                             "endCursor": edges[-1]["cursor"] if edges else None}}

    def nodes(self, info: Any, ids: list[str]) -> list[dict[str, Any] | None]:
        if len(ids) > _MAX_PAGE:
            raise GraphQLError(f"The ids argument can hold at most {_MAX_PAGE} ids")
        return [self._tags.get(i) for i in ids]

    # --- Mutation ---

    def tagsAdd(self, info: Any, id: str, tags: list[str]) -> dict[str, Any]:  # noqa: A002, N802 - the API's names
        return self._tags.change(id, tags, add=True)

    def tagsRemove(self, info: Any, id: str, tags: list[str]) -> dict[str, Any]:  # noqa: A002, N802
        return self._tags.change(id, tags, add=False)

    def stagedUploadsCreate(self, info: Any, input: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: A002, N802
        targets = []
        for item in input:
            if item["resource"] != "BULK_MUTATION_VARIABLES" or item.get("httpMethod") != "POST":
                return {"stagedTargets": None, "userErrors": [
                    {"field": ["input"], "message": "the emulator stages only BULK_MUTATION_VARIABLES by POST"}]}
            targets.append({"url": self._upload_url(), "resourceUrl": None, "parameters": self._uploads.form(
                item["filename"])})
        return {"stagedTargets": targets, "userErrors": []}

    def bulkOperationRunMutation(self, info: Any, mutation: str, stagedUploadPath: str,  # noqa: N802, N803
                                 clientIdentifier: str | None = None, groupObjects: bool = False) -> dict[str, Any]:
        def refused(code: str, message: str) -> dict[str, Any]:
            return {"bulkOperation": None, "userErrors": [{"field": None, "message": message, "code": code}]}

        try:
            document = parse(mutation)
        except GraphQLError as exc:
            return refused("INVALID_MUTATION", f"Failed to parse the mutation - {exc.message}")
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        problems = validate(SCHEMA, document)
        if problems:
            return refused("INVALID_MUTATION", "; ".join(_shopify_error(e)["message"] for e in problems))
        fields = [s.name.value for s in operations[0].selection_set.selections] if len(operations) == 1 else []
        if operations[0].operation.value != "mutation" or len(fields) != 1 or fields[0] not in _BULK_MUTABLE:
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
                    result = execute(SCHEMA, document, root_value=self, variable_values=variables)
                    line: dict[str, Any] = {"data": result.data}
                    if result.errors:
                        line["errors"] = [_shopify_error(e) for e in result.errors]
                    fh.write(json.dumps({**line, "__lineNumber": number}) + "\n")
            return len(lines)

        started = self._start(run)
        if started is None:
            return refused("LIMIT_REACHED", "Bulk operations limit reached. Please try again later.")
        return {"bulkOperation": started, "userErrors": []}


def _shopify_error(error: GraphQLError) -> dict[str, Any]:
    """graphql-core's error, in the words and codes Shopify uses for the same mistakes."""
    message = error.message
    extensions: dict[str, Any] = {}
    if match := re.match(r"Cannot query field '(\w+)' on type '(\w+)'", message):
        message = f"Field '{match[1]}' doesn't exist on type '{match[2]}'"
        extensions = {"code": "undefinedField", "typeName": match[2], "fieldName": match[1]}
    elif match := re.match(r"Unknown argument '(\w+)' on field '\w+\.(\w+)'", message):
        message = f"Field '{match[2]}' doesn't accept argument '{match[1]}'"
        extensions = {"code": "argumentNotAccepted", "name": match[2], "typeName": "Field", "argumentName": match[1]}
    out: dict[str, Any] = {"message": message}
    if error.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if error.path:
        out["path"] = list(error.path)
    if extensions:
        out["extensions"] = extensions
    return out


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
