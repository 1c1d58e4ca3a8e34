"""A local stand-in for a shop's Admin GraphQL API that serves any store directory through the bulk
operation protocol, with faults on demand, so the real client is tested over real HTTP."""

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pipeline.loopback import EmulatorHandler, LoopbackServer
from pipeline.shopify import emulator_tags
from pipeline.shopify.emulator_tags import STAGED_UPLOAD_PATH, UPLOAD_LIMIT_BYTES, CustomerTags, StagedUploads, TagsApi
from pipeline.shopify.graphql_subset import Field, GraphQLSyntaxError, parse

# Shopify answers a request for a version it no longer supports with the oldest supported one
# and says so in X-Shopify-Api-Version; the emulator does the same with this list.
SUPPORTED_API_VERSIONS = ("2026-01", "2026-04", "2026-07", "2026-10")

_GRAPHQL_PATH = re.compile(r"/admin/api/(?P<version>[^/]+)/graphql\.json")
_DOWNLOAD_PATH = re.compile(r"/downloads/(?P<op>\d+)\.jsonl")
_SINCE = re.compile(r"updated_at:(?P<op>>=?)'?(?P<at>[^'\s]+)'?")
_RATE_LIMIT_DOCS = "https://shopify.dev/api/usage/rate-limits"
_SCOPE_DOCS = "https://shopify.dev/api/usage/access-scopes"
_BULK_MUTATION_COST = 10
_READ_ALL_ORDERS_WINDOW = timedelta(days=60)
# Since 2026-01 a shop runs up to five bulk mutations at once; the sixth is refused with LIMIT_REACHED.
BULK_MUTATION_SLOTS = 5


@dataclass(frozen=True)
class _Resource:
    file: str
    scope: str
    children: dict[str, str]  # nested connection name -> GID type of its child lines


# What each bulk-queryable root connection serves, and the scope Shopify demands for it.
_RESOURCES = {
    "customers": _Resource("customers.jsonl", "read_customers", {}),
    "orders": _Resource("orders.jsonl", "read_orders", {"lineItems": "LineItem"}),
    "products": _Resource("products.jsonl", "read_products", {"collections": "Collection"}),
    "abandonedCheckouts": _Resource("abandoned_checkouts.jsonl", "read_orders", {}),
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
        self._tags_api = TagsApi(self.customer_tags, self.staged_uploads, lambda: self.url + STAGED_UPLOAD_PATH,
                                 self._start_bulk_mutation, lambda: self.faults.missing_scope)
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
            self._available = min(
                self._bucket_size, self._available + (now - self._refilled_at) * self._restore_rate
            )
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
        """Answer one GraphQL request body; the flag says whether it was throttled."""
        try:
            operation = parse(str(body.get("query") or ""), body.get("variables") or {})
        except GraphQLSyntaxError as exc:
            return {"errors": [{"message": f"Parse error: {exc}"}]}, False
        typed = emulator_tags.uses(operation)
        if typed:
            cost = emulator_tags.cost(operation)
        else:
            cost = (
                _BULK_MUTATION_COST * len(operation.selections)
                if operation.kind == "mutation"
                else len(operation.selections)
            )
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
        if typed:
            return {**self._tags_api.execute(body), "extensions": _cost(cost, cost, throttle)}, False
        data: dict[str, Any] = {}
        errors: list[dict[str, Any]] = []
        for top in operation.selections:
            resolve = self._mutation_field if operation.kind == "mutation" else self._query_field
            data[top.key] = resolve(top, errors)
        reply: dict[str, Any] = {"data": data}
        if errors:
            reply["errors"] = errors
        reply["extensions"] = _cost(cost, cost, throttle)
        return reply, False

    def _query_field(self, top: Field, errors: list[dict[str, Any]]) -> Any:
        if top.name == "shop":
            shop = next(_read_jsonl(self.store_dir / "shop.jsonl"), {})
            return _project(shop, top.selections)
        if top.name in ("currentBulkOperation", "node"):
            with self._lock:
                if top.name == "node":
                    number = _gid_number(str(top.arguments.get("id", "")))
                    op = self._operations.get(number) if number is not None else None
                else:
                    kind = top.arguments.get("type") or "QUERY"
                    op = max((o for o in self._operations.values() if o.type == kind),
                             key=lambda o: o.number, default=None)
                return None if op is None else _project(self._poll(op), top.selections)
        resource = _RESOURCES.get(top.name)
        if resource is not None and resource.scope == self.faults.missing_scope:
            errors.append(_access_denied(top.name, resource.scope))
            return None
        errors.append(
            {
                "message": f"Field '{top.name}' is not served by the emulator outside bulkOperationRunQuery",
                "path": [top.key],
            }
        )
        return None

    def _mutation_field(self, top: Field, errors: list[dict[str, Any]]) -> Any:
        if top.name != "bulkOperationRunQuery":
            errors.append(
                {"message": f"Field '{top.name}' doesn't exist on type 'Mutation'", "path": [top.key]}
            )
            return None
        try:
            bulk = parse(str(top.arguments.get("query") or ""))
        except GraphQLSyntaxError as exc:
            return _project(_user_errors(f"Invalid bulk query: {exc}"), top.selections)
        roots = [f for f in bulk.selections if f.name in _RESOURCES]
        node = _connection_node(roots[0]) if len(roots) == 1 and len(bulk.selections) == 1 else None
        if node is None:
            return _project(
                _user_errors("Bulk queries must contain exactly one root connection with edges { node }"),
                top.selections,
            )
        op = self._run_bulk_query(roots[0], node)
        reply = {"bulkOperation": _describe(op, self.url), "userErrors": []}
        return _project(reply, top.selections)

    def _run_bulk_query(self, root: Field, node: tuple[Field, ...]) -> _BulkOperation:
        resource = _RESOURCES[root.name]
        created_after = None
        if self.faults.missing_scope == "read_all_orders" and root.name == "orders":
            # Without read_all_orders Shopify silently serves only the last 60 days of orders.
            created_after = datetime.now(UTC) - _READ_ALL_ORDERS_WINDOW
        keep = _record_filter(str(root.arguments.get("query") or ""), created_after)
        if root.name == "customers":
            # the store directory's deletions.jsonl: customers deleted in the shop, which it no longer serves
            deleted = {(r.get("customer") or {}).get("id") for r in _read_jsonl(self.store_dir / "deletions.jsonl")}
            keep = _without(deleted, keep)
        with self._lock:
            number = max(self._operations, default=0) + 1
            fail_with = self.faults.fail_operation
            if self.faults.missing_scope == resource.scope:
                fail_with = "ACCESS_DENIED"
        out = Path(self._workdir.name) / f"{number}.jsonl"
        objects, roots = _write_bulk_output(self.store_dir / resource.file, resource, node, keep, out)
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
            running = sum(o.type == "MUTATION" and o.status in ("CREATED", "RUNNING")
                          for o in self._operations.values())
            if running >= self._bulk_mutation_slots:
                return None
            number = max(self._operations, default=0) + 1
            out = Path(self._workdir.name) / f"{number}.jsonl"
            out.touch()
            op = _BulkOperation(number=number, file=out, signature=secrets.token_hex(16), created_at=_now(),
                                object_count=0, root_object_count=0, fail_with=self.faults.fail_operation,
                                type="MUTATION")
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
                status = (
                    HTTPStatus.BAD_GATEWAY
                    if emulator.faults.server_errors % 2
                    else HTTPStatus.SERVICE_UNAVAILABLE
                )
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
                code, details = (
                    ("AccessDenied", "Request has expired") if op else ("NoSuchKey", "No such object")
                )
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
    node: tuple[Field, ...],
    keep: Callable[[dict[str, Any]], bool],
    out: Path,
) -> tuple[int, int]:
    """Write the bulk JSONL for one root connection: each kept record projected on the query's
    fields, followed by its children (one line each, with `__parentId`). Returns (objects, roots)."""
    nested = {f.name: _connection_node(f) for f in node if f.name in resource.children}
    own_fields = tuple(f for f in node if f.name not in nested)
    children: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in _read_jsonl(source):
        if "__parentId" in record:
            children[record["__parentId"]].append(record)
    objects = roots = 0
    with out.open("w", encoding="utf-8") as fh:
        for record in _read_jsonl(source):
            if "__parentId" in record or not keep(record):
                continue
            fh.write(json.dumps(_project(record, own_fields)) + "\n")
            objects += 1
            roots += 1
            for connection, child_node in nested.items():
                child_type = resource.children[connection]
                for child in children.get(record.get("id"), []):
                    if _gid_type(child.get("id")) == child_type and child_node is not None:
                        fh.write(
                            json.dumps({**_project(child, child_node), "__parentId": record["id"]}) + "\n"
                        )
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


def _connection_node(connection: Field) -> tuple[Field, ...] | None:
    """The node selection of `conn { edges { node { ... } } }` or `conn { nodes { ... } }`."""
    edges = connection.child("edges")
    node = edges.child("node") if edges else connection.child("nodes")
    return node.selections if node else None


def _project(value: Any, selections: tuple[Field, ...]) -> Any:
    """Keep only the requested fields, as a GraphQL server answers; absent fields are null."""
    if not selections or value is None:
        return value
    if isinstance(value, list):
        return [_project(item, selections) for item in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for f in selections:
        if f.name == "__typename":
            out[f.key] = _gid_type(value.get("id"))
        else:
            out[f.key] = _project(value.get(f.name), f.selections)
    return out


def _describe(op: _BulkOperation, base_url: str) -> dict[str, Any]:
    completed = op.status == "COMPLETED"
    url = None
    if completed and op.object_count:
        url = f"{base_url}/downloads/{op.number}.jsonl?X-Goog-Expires=604800&X-Goog-Signature={op.signature}"
    return {
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


def _user_errors(message: str) -> dict[str, Any]:
    return {
        "bulkOperation": None,
        "userErrors": [{"field": ["query"], "message": message, "code": "INVALID"}],
    }


def _access_denied(field_name: str, scope: str) -> dict[str, Any]:
    return {
        "message": f"Access denied for {field_name} field. Required access: `{scope}` access scope.",
        "path": [field_name],
        "extensions": {
            "code": "ACCESS_DENIED",
            "documentation": _SCOPE_DOCS,
            "requiredAccess": f"`{scope}` access scope.",
        },
    }


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
