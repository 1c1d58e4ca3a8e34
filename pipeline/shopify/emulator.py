"""A local stand-in for a shop's Admin GraphQL API that serves any store directory through the bulk
operation protocol, with faults on demand, so the real client is tested over real HTTP.

Requests are validated against the schema of what it serves (emulator_schema) and executed by graphql-core,
so a field Shopify does not have is refused as Shopify refuses it; a bulk query is validated when it is
submitted, and its result file is the store's records cut to the fields the query selects."""

from __future__ import annotations

import argparse
import json
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from graphql import FieldNode, FragmentDefinitionNode, GraphQLError, SelectionSetNode, execute_sync, get_operation_ast
from graphql.utilities import value_from_ast_untyped

from pipeline.loopback import EmulatorHandler, LoopbackServer
from pipeline.shopify import emulator_tags
from pipeline.shopify.emulator_schema import (
    SCHEMA,
    check,
    fields_of,
    fragments_of,
    requested_cost,
    root_fields,
    shopify_errors,
)
from pipeline.shopify.emulator_tags import STAGED_UPLOAD_PATH, UPLOAD_LIMIT_BYTES, CustomerTags, StagedUploads, TagsApi

# Shopify answers a request for a version it no longer supports with the oldest supported one
# and says so in X-Shopify-Api-Version; the emulator does the same with this list.
SUPPORTED_API_VERSIONS = ("2026-01", "2026-04", "2026-07", "2026-10")

Fragments = Mapping[str, FragmentDefinitionNode]

_GRAPHQL_PATH = re.compile(r"/admin/api/(?P<version>[^/]+)/graphql\.json")
_DOWNLOAD_PATH = re.compile(r"/downloads/(?P<op>\d+)\.jsonl")
_SINCE = re.compile(r"updated_at:(?P<op>>=?)'?(?P<at>[^'\s]+)'?")
_RATE_LIMIT_DOCS = "https://shopify.dev/api/usage/rate-limits"
_SCOPE_DOCS = "https://shopify.dev/api/usage/access-scopes"
_READ_ALL_ORDERS_WINDOW = timedelta(days=60)
# Since 2026-01 a shop runs up to five bulk mutations at once; the sixth is refused with LIMIT_REACHED.
BULK_MUTATION_SLOTS = 5


@dataclass(frozen=True)
class _Resource:
    file: str
    typename: str  # the GraphQL type of its records
    scope: str
    children: dict[str, str]  # nested connection name -> GID type of its child lines


# What each bulk-queryable root connection serves, and the scope Shopify demands for it.
_RESOURCES = {
    "customers": _Resource(
        "customers.jsonl",
        "Customer",
        "read_customers",
        {"metafields": "Metafield", "storeCreditAccounts": "StoreCreditAccount", "addressesV2": "MailingAddress"},
    ),
    "orders": _Resource("orders.jsonl", "Order", "read_orders", {"lineItems": "LineItem"}),
    "products": _Resource("products.jsonl", "Product", "read_products", {"collections": "Collection"}),
    "abandonedCheckouts": _Resource("abandoned_checkouts.jsonl", "AbandonedCheckout", "read_orders", {}),
}


@dataclass
class Faults:
    """Faults injected on demand. Counters apply to the next N GraphQL requests and count down;
    the other settings stay until changed."""

    throttled: int = 0  # answer with a THROTTLED error (HTTP 200, as Shopify does)
    server_errors: int = 0  # answer HTTP 502/503
    drop_connections: int = 0  # close the connection without answering
    stalls: int = 0  # answer only after stall_seconds, to trip client timeouts
    stall_seconds: float = 2.0
    fail_operation: str | None = None  # bulk operations end FAILED with this errorCode
    cut_download: bool = False  # download bodies stop half way and the connection closes
    expired_url: bool = False  # downloads answer 403, like an expired signed storage URL
    missing_scope: str | None = None  # the token lacks this scope: "read_orders", "read_all_orders", ...


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    status: int  # 0 when the connection was dropped
    carried_token: bool  # whether X-Shopify-Access-Token was sent (downloads must not send it)
    throttled: bool = False


@dataclass
class _BulkOperation:
    number: int
    file: Path
    signature: str
    created_at: str
    object_count: int
    root_object_count: int
    fail_with: str | None
    type: str = "QUERY"
    status: str = "CREATED"
    polls: int = 0
    completed_at: str | None = None

    @property
    def gid(self) -> str:
        return f"gid://shopify/BulkOperation/{self.number}"


class ShopifyEmulator(LoopbackServer):
    """Serve `store_dir` as a shop on 127.0.0.1. Files are read at each bulk query, so a test can
    rewrite them between extractions."""

    def __init__(
        self,
        store_dir: Path,
        token: str,
        *,
        port: int = 0,
        api_versions: tuple[str, ...] = SUPPORTED_API_VERSIONS,
        polls_until_complete: int = 2,
        bucket_size: float = 1000.0,
        restore_rate: float = 50.0,
        upload_limit_bytes: int = UPLOAD_LIMIT_BYTES,
        bulk_mutation_slots: int = BULK_MUTATION_SLOTS,
    ) -> None:
        self.store_dir = Path(store_dir)
        self.faults = Faults()
        self.requests: list[RecordedRequest] = []
        self._token = token
        self._api_versions = api_versions
        self._polls_until_complete = polls_until_complete
        self._bucket_size = bucket_size
        self._restore_rate = restore_rate
        self._available = bucket_size
        self._refilled_at = time.monotonic()
        self._operations: dict[int, _BulkOperation] = {}
        self._lock = threading.Lock()
        self._workdir = tempfile.TemporaryDirectory(prefix="shopify-emulator-")
        self._bulk_mutation_slots = bulk_mutation_slots
        self.customer_tags = CustomerTags(self.store_dir)
        self.staged_uploads = StagedUploads(upload_limit_bytes)
        self._tags_api = TagsApi(
            self.customer_tags,
            self.staged_uploads,
            lambda: self.url + STAGED_UPLOAD_PATH,
            self._start_bulk_mutation,
            lambda: self.faults.missing_scope,
        )
        # graphql-core calls a root value's callables by field name
        self._resolvers = {
            "shop": self._shop,
            "node": self._node,
            "currentBulkOperation": self._current_bulk_operation,
            "bulkOperationRunQuery": self._bulk_operation_run_query,
            **{name: self._bulk_only for name in _RESOURCES if name != "customers"},
            **self._tags_api.resolvers(),
        }
        super().__init__(_handler_for(self), port=port, name="shopify-emulator")

    def stop(self) -> None:
        super().stop()
        self._workdir.cleanup()

    def __repr__(self) -> str:
        return f"ShopifyEmulator(store_dir={str(self.store_dir)!r}, url={self.url!r})"

    # --- request handling (called from server threads) ---

    def _take_fault(self, name: str) -> bool:
        with self._lock:
            remaining = getattr(self.faults, name)
            if remaining > 0:
                setattr(self.faults, name, remaining - 1)
                return True
            return False

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _spend(self, cost: int) -> tuple[bool, dict[str, Any]]:
        """Take `cost` points from the leaky bucket; False when it does not hold that many."""
        with self._lock:
            now = time.monotonic()
            self._available = min(self._bucket_size, self._available + (now - self._refilled_at) * self._restore_rate)
            self._refilled_at = now
            granted = self._available >= cost
            if granted:
                self._available -= cost
            status = {
                "maximumAvailable": self._bucket_size,
                "currentlyAvailable": int(self._available),
                "restoreRate": self._restore_rate,
            }
        return granted, status

    def _execute(self, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Answer one GraphQL request body; the flag says whether it was throttled. A document that does
        not fit the schema is refused before it costs anything, as Shopify does."""
        document, errors = check(str(body.get("query") or ""))
        if document is None or errors:
            return {"errors": errors}, False
        variables = body.get("variables") or {}
        if not isinstance(variables, dict):
            refusal = f"variables must be a JSON object of values by name, not {variables!r}"
            return {"errors": [{"message": refusal}]}, False
        operation_name = body.get("operationName")
        cost = requested_cost(document, operation_name, variables)
        granted, throttle = self._spend(cost)
        if not granted or self._take_fault("throttled"):
            return {
                "errors": [
                    {
                        "message": "Throttled",
                        "extensions": {"code": "THROTTLED", "documentation": _RATE_LIMIT_DOCS},
                    }
                ],
                "extensions": _cost(cost, None, throttle),
            }, True
        result = execute_sync(
            SCHEMA, document, root_value=self._resolvers, variable_values=variables, operation_name=operation_name
        )
        reply: dict[str, Any] = {"data": result.data}
        if result.errors:
            reply["errors"] = shopify_errors(result.errors, document)
        reply["extensions"] = _cost(cost, cost, throttle)
        return reply, False

    # --- resolvers of the root fields served here (the tags API serves the others) ---

    def _shop(self, info: Any) -> dict[str, Any]:
        return next(_read_jsonl(self.store_dir / "shop.jsonl"), {})

    def _node(self, info: Any, id: str) -> dict[str, Any] | None:  # noqa: A002 - the API's name
        number = _gid_number(id)
        if number is None:
            return self.customer_tags.get(id)
        with self._lock:
            op = self._operations.get(number)
            return None if op is None else self._poll(op)

    def _current_bulk_operation(self, info: Any, type: str = "QUERY") -> dict[str, Any] | None:  # noqa: A002
        with self._lock:
            op = max((o for o in self._operations.values() if o.type == type), key=lambda o: o.number, default=None)
            return None if op is None else self._poll(op)

    def _bulk_only(self, info: Any, **arguments: Any) -> None:
        resource = _RESOURCES[info.field_name]
        if resource.scope == self.faults.missing_scope:
            raise _access_denied(info.field_name, resource.scope)
        raise GraphQLError(f"Field '{info.field_name}' is not served by the emulator outside bulkOperationRunQuery")

    def _bulk_operation_run_query(self, info: Any, query: str, groupObjects: bool = False) -> dict[str, Any]:  # noqa: N803
        """Shopify validates the bulk query against the schema when the mutation runs: a bad one is a
        userError, and no operation starts."""
        bulk, errors = check(query)
        if bulk is None or errors:
            return _user_errors(*(f"Invalid bulk query: {e['message']}" for e in errors))
        operation = get_operation_ast(bulk)
        if operation is None or operation.operation.value != "query":
            return _user_errors("Invalid bulk query: the emulator runs one query operation")
        roots, fragments = root_fields(operation), fragments_of(bulk)
        if not any(r.name.value in _RESOURCES for r in roots):
            return _user_errors("Bulk queries must contain at least one connection.")
        node = _connection_node(roots[0], fragments) if len(roots) == 1 else None
        if node is None:
            return _user_errors("the emulator runs bulk queries of one root connection with edges { node } or nodes")
        op = self._run_bulk_query(roots[0], node, fragments)
        return {"bulkOperation": _describe(op, self.url), "userErrors": []}

    def _run_bulk_query(self, root: FieldNode, node: SelectionSetNode, fragments: Fragments) -> _BulkOperation:
        resource = _RESOURCES[root.name.value]
        created_after = None
        if self.faults.missing_scope == "read_all_orders" and root.name.value == "orders":
            # Without read_all_orders Shopify silently serves only the last 60 days of orders.
            created_after = datetime.now(UTC) - _READ_ALL_ORDERS_WINDOW
        arguments = {a.name.value: value_from_ast_untyped(a.value) for a in root.arguments}
        keep = _record_filter(str(arguments.get("query") or ""), created_after)
        if root.name.value == "customers":
            # the store directory's deletions.jsonl: customers deleted in the shop, which it no longer serves
            deleted = {(r.get("customer") or {}).get("id") for r in _read_jsonl(self.store_dir / "deletions.jsonl")}
            keep = _without(deleted, keep)
        with self._lock:
            number = max(self._operations, default=0) + 1
            fail_with = self.faults.fail_operation
            if self.faults.missing_scope == resource.scope:
                fail_with = "ACCESS_DENIED"
        out = Path(self._workdir.name) / f"{number}.jsonl"
        objects, roots = _write_bulk_output(self.store_dir / resource.file, resource, node, fragments, keep, out)
        op = _BulkOperation(
            number=number,
            file=out,
            signature=secrets.token_hex(16),
            created_at=_now(),
            object_count=objects,
            root_object_count=roots,
            fail_with=fail_with,
        )
        with self._lock:
            self._operations[number] = op
        return op

    def _start_bulk_mutation(self, write_results: Callable[[Path], int]) -> dict[str, Any] | None:
        """A bulk mutation, if a slot is free: it applies at once and then reports RUNNING until polled
        to its end, so a test decides when its slot frees up. One with a fault set applies nothing."""
        with self._lock:
            running = sum(
                o.type == "MUTATION" and o.status in ("CREATED", "RUNNING") for o in self._operations.values()
            )
            if running >= self._bulk_mutation_slots:
                return None
            number = max(self._operations, default=0) + 1
            out = Path(self._workdir.name) / f"{number}.jsonl"
            out.touch()
            op = _BulkOperation(
                number=number,
                file=out,
                signature=secrets.token_hex(16),
                created_at=_now(),
                object_count=0,
                root_object_count=0,
                fail_with=self.faults.fail_operation,
                type="MUTATION",
            )
            self._operations[number] = op
        if op.fail_with is None:
            op.object_count = op.root_object_count = write_results(out)
        return _describe(op, self.url)

    def _poll(self, op: _BulkOperation) -> dict[str, Any]:
        """Each poll moves a bulk operation one step along CREATED -> RUNNING -> COMPLETED/FAILED."""
        if op.status in ("CREATED", "RUNNING"):
            op.polls += 1
            if op.polls >= self._polls_until_complete:
                op.status = "FAILED" if op.fail_with else "COMPLETED"
                op.completed_at = _now()
            else:
                op.status = "RUNNING"
        return _describe(op, self.url)

    def _download(self, number: int, signature: str) -> _BulkOperation | None:
        with self._lock:
            op = self._operations.get(number)
        if op is None or op.status != "COMPLETED" or not secrets.compare_digest(op.signature, signature):
            return None
        return op


def _handler_for(emulator: ShopifyEmulator) -> type[EmulatorHandler]:
    class Handler(EmulatorHandler):
        server_version = "ShopifyEmulator"

        def _handle(self, method: str) -> None:
            return self._post() if method == "POST" else self._get()

        def _post(self) -> None:
            raw = self._body()
            path = urlsplit(self.path).path
            carried = "X-Shopify-Access-Token" in self.headers
            if path == STAGED_UPLOAD_PATH:
                return self._staged_upload(path, raw, carried)
            match = _GRAPHQL_PATH.fullmatch(path)
            if match is None:
                return self._finish(path, HTTPStatus.NOT_FOUND, {"errors": "Not Found"}, carried)
            if not secrets.compare_digest(self.headers.get("X-Shopify-Access-Token", ""), emulator._token):
                invalid = "[API] Invalid API key or access token (unrecognized login or wrong password)"
                return self._finish(path, HTTPStatus.UNAUTHORIZED, {"errors": invalid}, carried)
            if emulator._take_fault("drop_connections"):
                emulator._record(RecordedRequest("POST", path, 0, carried))
                return self._drop()
            if emulator._take_fault("stalls"):
                time.sleep(emulator.faults.stall_seconds)
            if emulator._take_fault("server_errors"):
                status = HTTPStatus.BAD_GATEWAY if emulator.faults.server_errors % 2 else HTTPStatus.SERVICE_UNAVAILABLE
                return self._finish(path, status, {"errors": "Service unavailable, try again later"}, carried)
            version = match["version"]
            served = version if version in emulator._api_versions else emulator._api_versions[0]
            try:
                body = json.loads(raw)
            except ValueError:
                missing = {"errors": {"query": "Required parameter missing or invalid"}}
                return self._finish(path, HTTPStatus.BAD_REQUEST, missing, carried, served)
            reply, throttled = emulator._execute(body if isinstance(body, dict) else {})
            return self._finish(path, HTTPStatus.OK, reply, carried, served, throttled)

        def _staged_upload(self, path: str, raw: bytes, carried: bool) -> None:
            """The storage side of stagedUploadsCreate: a signed multipart form POST, as Google Cloud Storage takes."""
            fields: dict[str, str] = {}
            file = None
            for name, value, is_file in emulator_tags.iter_form(self.headers.get("Content-Type", ""), raw):
                if is_file and name == "file":
                    file = value
                else:
                    fields[name] = value.decode("utf-8", "replace")
            status, xml = emulator.staged_uploads.receive(fields, file, len(file or b""))
            emulator._record(RecordedRequest("POST", path, status, carried))
            return self._send(status, xml.encode(), "application/xml")

        def _get(self) -> None:
            parts = urlsplit(self.path)
            carried = "X-Shopify-Access-Token" in self.headers
            match = _DOWNLOAD_PATH.fullmatch(parts.path)
            signature = parse_qs(parts.query).get("X-Goog-Signature", [""])[0]
            op = emulator._download(int(match["op"]), signature) if match else None
            if op is None or emulator.faults.expired_url:
                # Shaped like Google Cloud Storage's answer to a signed URL past its expiry.
                code, details = ("AccessDenied", "Request has expired") if op else ("NoSuchKey", "No such object")
                xml = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
                xml += f"<Details>{details}</Details></Error>"
                status = HTTPStatus.FORBIDDEN if op else HTTPStatus.NOT_FOUND
                emulator._record(RecordedRequest("GET", parts.path, status, carried))
                return self._send(status, xml.encode(), "application/xml")
            size = op.file.stat().st_size
            emulator._record(RecordedRequest("GET", parts.path, HTTPStatus.OK, carried))
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "application/jsonl")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            with op.file.open("rb") as body:
                if emulator.faults.cut_download:
                    self.wfile.write(body.read(size // 2))
                    self.wfile.flush()
                    self.close_connection = True
                else:
                    shutil.copyfileobj(body, self.wfile)
            return None

        def _finish(
            self,
            path: str,
            status: HTTPStatus,
            payload: dict[str, Any],
            carried: bool,
            served_version: str | None = None,
            throttled: bool = False,
        ) -> None:
            emulator._record(RecordedRequest("POST", path, status, carried, throttled))
            self._reply(status, payload, {"X-Shopify-Api-Version": served_version} if served_version else {})

    return Handler


def _write_bulk_output(
    source: Path,
    resource: _Resource,
    node: SelectionSetNode,
    fragments: Fragments,
    keep: Callable[[dict[str, Any]], bool],
    out: Path,
) -> tuple[int, int]:
    """Write the bulk JSONL for one root connection: each kept record projected on the query's
    fields, followed by its children (one line each, with `__parentId`). Returns (objects, roots)."""
    fields = fields_of(node, fragments, resource.typename)
    nested = {f.name.value: _connection_node(f, fragments) for f in fields if f.name.value in resource.children}
    own_fields = [f for f in fields if f.name.value not in nested]
    child_fields = {
        name: fields_of(selection, fragments, resource.children[name])
        for name, selection in nested.items()
        if selection is not None
    }
    children: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in _read_jsonl(source):
        if "__parentId" in record:
            children[record["__parentId"]].append(record)
    objects = roots = 0
    with out.open("w", encoding="utf-8") as fh:
        for record in _read_jsonl(source):
            if "__parentId" in record or not keep(record):
                continue
            fh.write(json.dumps(_project_fields(record, own_fields, fragments)) + "\n")
            objects += 1
            roots += 1
            for connection, wanted in child_fields.items():
                child_type = resource.children[connection]
                for child in children.get(record.get("id"), []):
                    if _gid_type(child.get("id")) == child_type:
                        line = {**_project_fields(child, wanted, fragments), "__parentId": record["id"]}
                        fh.write(json.dumps(line) + "\n")
                        objects += 1
    return objects, roots


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def _record_filter(search: str, created_after: datetime | None) -> Callable[[dict[str, Any]], bool]:
    """The part of Shopify's search syntax the pipeline uses: `updated_at:>'<ISO time>'`."""
    match = _SINCE.search(search)
    since = _timestamp(match["at"]) if match else None
    inclusive = bool(match) and match["op"] == ">="

    def keep(record: dict[str, Any]) -> bool:
        if created_after is not None and _timestamp(record.get("createdAt")) <= created_after:
            return False
        if since is None:
            return True
        updated = _timestamp(record.get("updatedAt"))
        return updated >= since if inclusive else updated > since

    return keep


def _without(ids: set[Any], keep: Callable[[dict[str, Any]], bool]) -> Callable[[dict[str, Any]], bool]:
    return lambda record: record.get("id") not in ids and keep(record)


def _timestamp(value: Any) -> datetime:
    if not value:
        return datetime.min.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _connection_node(connection: FieldNode, fragments: Fragments) -> SelectionSetNode | None:
    """The node selection of `conn { edges { node { ... } } }` or `conn { nodes { ... } }`."""
    selected = {f.name.value: f for f in fields_of(connection.selection_set, fragments, None)}
    if "edges" in selected:
        selected = {f.name.value: f for f in fields_of(selected["edges"].selection_set, fragments, None)}
        node = selected.get("node")
    else:
        node = selected.get("nodes")
    return node.selection_set if node else None


def _project(value: Any, selection_set: SelectionSetNode | None, fragments: Fragments) -> Any:
    """Keep only the requested fields, as a GraphQL server answers; absent fields are null."""
    if selection_set is None or value is None:
        return value
    if isinstance(value, list):
        return [_project(item, selection_set, fragments) for item in value]
    if not isinstance(value, dict):
        return value
    return _project_fields(value, fields_of(selection_set, fragments, _gid_type(value.get("id"))), fragments)


def _project_fields(record: dict[str, Any], fields: list[FieldNode], fragments: Fragments) -> dict[str, Any]:
    out = {}
    for f in fields:
        key = (f.alias or f.name).value
        if f.name.value == "__typename":
            out[key] = _gid_type(record.get("id"))
        else:
            out[key] = _project(record.get(f.name.value), f.selection_set, fragments)
    return out


def _describe(op: _BulkOperation, base_url: str) -> dict[str, Any]:
    completed = op.status == "COMPLETED"
    url = None
    if completed and op.object_count:
        url = f"{base_url}/downloads/{op.number}.jsonl?X-Goog-Expires=604800&X-Goog-Signature={op.signature}"
    return {
        "__typename": "BulkOperation",  # how graphql-core tells which Node this is
        "id": op.gid,
        "type": op.type,
        "status": op.status,
        "errorCode": op.fail_with if op.status == "FAILED" else None,
        "createdAt": op.created_at,
        "completedAt": op.completed_at,
        # UnsignedInt64 values travel as strings in Shopify's API.
        "objectCount": str(op.object_count if completed else 0),
        "rootObjectCount": str(op.root_object_count if completed else 0),
        "fileSize": str(op.file.stat().st_size) if url else None,
        "url": url,
        "partialDataUrl": None,
    }


def _user_errors(*messages: str) -> dict[str, Any]:
    return {
        "bulkOperation": None,
        "userErrors": [{"field": ["query"], "message": message, "code": "INVALID"} for message in messages],
    }


def _access_denied(field_name: str, scope: str) -> GraphQLError:
    required = f"`{scope}` access scope."
    return GraphQLError(
        f"Access denied for {field_name} field. Required access: {required}",
        extensions={"code": "ACCESS_DENIED", "documentation": _SCOPE_DOCS, "requiredAccess": required},
    )


def _cost(requested: int, actual: int | None, throttle: dict[str, Any]) -> dict[str, Any]:
    return {"cost": {"requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus": throttle}}


def _gid_type(gid: Any) -> str | None:
    parts = str(gid or "").split("/")
    return parts[3] if len(parts) > 4 and parts[:3] == ["gid:", "", "shopify"] else None


def _gid_number(gid: str) -> int | None:
    number = gid.rsplit("/", 1)[-1]
    return int(number) if gid.startswith("gid://shopify/BulkOperation/") and number.isdigit() else None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a store directory as a Shopify Admin GraphQL API.")
    parser.add_argument("store_dir", type=Path)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token", required=True, help="the access token clients must send")
    args = parser.parse_args(argv)
    if not args.store_dir.is_dir():
        parser.error(f"store directory {args.store_dir} does not exist")
    with ShopifyEmulator(args.store_dir, args.token, port=args.port) as emulator:
        print(emulator.url, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
