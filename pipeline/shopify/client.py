"""Extract a shop into a store directory through Admin GraphQL bulk operations."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from dagster import get_dagster_logger

from pipeline.retry import RetriesExhausted, Retryable, RetryPolicy, endpoint, raise_if_retryable, with_retries

# a Dagster logger: inside a step its lines (a changed API version, a low query budget) reach the run log
log = get_dagster_logger(__name__)

API_VERSION = "2026-10"
ALL_SCOPES = ("read_customers", "read_orders", "read_all_orders", "read_products")


class ShopifyError(Exception):
    """Extraction from Shopify failed; the message says what happened and what to do."""


class ShopifyConfigError(ShopifyError):
    """The store address or token given to the client cannot be used."""


class ShopifyAuthError(ShopifyError):
    """Shopify rejected the access token (HTTP 401)."""


class ShopifyAccessDenied(ShopifyError):
    """The token is valid but lacks an access scope (HTTP 403, ACCESS_DENIED)."""

    def __init__(self, message: str, scopes: tuple[str, ...]) -> None:
        super().__init__(message)
        self.scopes = scopes


class ShopifyQueryError(ShopifyError):
    """Shopify refused a query or mutation (GraphQL errors or userErrors)."""


class ShopifyRetriesExhausted(ShopifyError):
    """Throttling, server errors or network failures outlasted the retry budget."""


class BulkOperationFailed(ShopifyError):
    """A bulk operation ended FAILED, CANCELED or EXPIRED, or did not finish in time."""

    def __init__(self, message: str, status: str, error_code: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


class DownloadError(ShopifyError):
    """The result file of a completed bulk operation could not be downloaded whole."""


@dataclass(frozen=True)
class BulkResource:
    """One store-directory file filled by one bulk query."""

    file: str
    connection: str  # the root connection of the bulk query
    scopes: tuple[str, ...]  # what the token needs to read it
    node: str  # the GraphQL selection of each node: exactly the fields of the store-directory contract
    full: bool = False  # asked for in full every time, never only what changed since the bookmark


_MONEY = "shopMoney { amount currencyCode }"
_ADDRESS = "countryCodeV2 provinceCode city zip latitude longitude"

RESOURCES: tuple[BulkResource, ...] = (
    BulkResource(
        "customers.jsonl",
        "customers",
        ("read_customers",),
        "id firstName lastName createdAt updatedAt state locale tags"
        " defaultEmailAddress { emailAddress marketingState }"
        " defaultPhoneNumber { phoneNumber marketingState marketingOptInLevel marketingUpdatedAt }"
        f" defaultAddress {{ {_ADDRESS} }}"
        " statistics { predictedSpendTier } productSubscriberStatus companyContactProfiles { company { id } }"
        # nested connections: each metafield, store credit account and address is a line of its own after the
        # customer. addressesV2 (every address, with its coordinates), not addresses, which Shopify deprecated for it.
        " metafields { edges { node { __typename id namespace key type value } } }"
        f" storeCreditAccounts {{ edges {{ node {{ __typename id balance {{ amount currencyCode }} }} }} }}"
        f" addressesV2 {{ edges {{ node {{ __typename id {_ADDRESS} }} }} }}",
    ),
    BulkResource(
        "orders.jsonl",
        "orders",
        # Order.customer needs read_customers; without read_all_orders Shopify silently limits
        # orders to the last 60 days.
        ("read_orders", "read_all_orders", "read_customers"),
        "id name customer { id } createdAt processedAt updatedAt cancelledAt test displayFinancialStatus"
        f" currencyCode totalPriceSet {{ {_MONEY} }} currentTotalPriceSet {{ {_MONEY} }}"
        " lineItems { edges { node { id product { id } variant { id } sku title quantity"
        f" originalTotalSet {{ {_MONEY} }} }} }} }}",
    ),
    BulkResource(
        "products.jsonl",
        "products",
        ("read_products",),
        "id title handle productType vendor tags updatedAt collections { edges { node { id handle title } } }",
    ),
    BulkResource(
        "abandoned_checkouts.jsonl",
        "abandonedCheckouts",
        ("read_orders", "read_customers"),
        f"id createdAt updatedAt completedAt abandonedCheckoutUrl customer {{ id }} totalPriceSet {{ {_MONEY} }}",
    ),
    # Every customer id the shop still has: bulk queries report changes, never deletions, so a
    # customer missing from this sweep was deleted. Asked after the customers themselves, so a
    # customer created in between is in neither rather than wrongly missing from the sweep.
    BulkResource("customer_ids.jsonl", "customers", ("read_customers",), "id", full=True),
)

SHOP_QUERY = "query { shop { name ianaTimezone currencyCode } }"
_RUN_BULK = """mutation RunBulk($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { id status }
    userErrors { field message }
  }
}"""
_POLL_BULK = """query PollBulk($id: ID!) {
  node(id: $id) { ... on BulkOperation { id status errorCode objectCount url } }
}"""

# Shopify's documented bulk mutation limits since 2026-01: five at a time per shop, variables files up to 100 MB.
BULK_MUTATION_SLOTS = 5
STAGED_UPLOAD_LIMIT_BYTES = 100 * 10**6
_NO_SLOT = {"LIMIT_REACHED", "OPERATION_IN_PROGRESS"}  # the codes of "no bulk mutation slot free"
_STAGE_UPLOAD = """mutation StageUpload($input: [StagedUploadInput!]!) {
  stagedUploadsCreate(input: $input) {
    stagedTargets { url resourceUrl parameters { name value } }
    userErrors { field message }
  }
}"""
_RUN_BULK_MUTATION = """mutation RunBulkMutation($mutation: String!, $path: String!) {
  bulkOperationRunMutation(mutation: $mutation, stagedUploadPath: $path) {
    bulkOperation { id status }
    userErrors { field message code }
  }
}"""

_TERMINAL_ADVICE = {
    "INTERNAL_SERVER_ERROR": "Shopify had internal errors, often intermittent: rerun the extraction",
    "TIMEOUT": "the query timed out inside Shopify: rerun later, when the shop is quieter",
    "CANCELED": "someone cancelled it (bulkOperationCancel): rerun the extraction",
    "EXPIRED": "Shopify expires bulk operations that run longer than 10 days: rerun the extraction",
}


def bulk_query(resource: BulkResource, since: datetime | None = None) -> str:
    """The bulk query text for one resource; `since` keeps records updated after it."""
    arguments = ""
    if since is not None:
        arguments = f"(query: \"updated_at:>'{_search_time(since)}'\")"
    return f"{{ {resource.connection}{arguments} {{ edges {{ node {{ {resource.node} }} }} }} }}"


@dataclass(frozen=True)
class ExtractResult:
    out_dir: Path
    started_at: datetime  # taken before the first query: the next bookmark once the batch is published
    since: datetime | None
    rows: Mapping[str, int]  # lines written per file (children such as line items included)


class ShopifyClient:
    """Admin GraphQL client that writes a store directory. Retries (`retry`, pipeline.retry's policy),
    throttling and polling are bounded; `sleep` is injectable so tests do not wait."""

    def __init__(
        self,
        store: str,
        token: str,
        api_version: str = API_VERSION,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        poll_interval_s: float = 1.0,
        poll_timeout_s: float = 6 * 3600.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not token:
            raise ShopifyConfigError("no Shopify access token: set SHOPIFY_ACCESS_TOKEN to the app's Admin API token")
        self.base_url = _base_url(store)
        self.api_version = api_version
        self._endpoint = f"{self.base_url}/admin/api/{api_version}/graphql.json"
        self._retry = retry or RetryPolicy()
        self._poll_interval_s = poll_interval_s
        self._poll_timeout_s = poll_timeout_s
        self._sleep = sleep
        self._warned_versions: set[str] = set()
        # The leaky bucket as Shopify last reported it, and when.
        self._bucket_available: float | None = None
        self._bucket_rate = 0.0
        self._bucket_at = 0.0
        self._largest_cost = 10.0
        self.requests = 0  # GraphQL requests sent, retries included: what a benchmark counts
        self._api = httpx.Client(
            timeout=timeout,
            headers={"X-Shopify-Access-Token": token, "Accept": "application/json"},
        )
        # Result URLs are signed storage links on another host: they must never receive the token.
        self._storage = httpx.Client(timeout=timeout, follow_redirects=True)

    def __repr__(self) -> str:
        return f"ShopifyClient(store={self.base_url!r}, api_version={self.api_version!r})"

    def close(self) -> None:
        self._api.close()
        self._storage.close()

    def __enter__(self) -> ShopifyClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def extract(self, out_dir: Path, since: datetime | None = None) -> ExtractResult:
        """Write shop.jsonl and one bulk-output JSONL per resource into `out_dir`.

        Every file is downloaded to a hidden temporary name and renamed only once all of them are
        complete, so a failed extraction adds nothing to `out_dir`."""
        if since is not None and since.tzinfo is None:
            raise ValueError(f"since must carry a time zone (got {since.isoformat()}); use UTC")
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        started_at = datetime.now(UTC)
        staged: list[tuple[Path, Path]] = []
        rows: dict[str, int] = {}
        try:
            staged.append((self._write_shop(out_dir), out_dir / "shop.jsonl"))
            rows["shop.jsonl"] = 1
            for resource in RESOURCES:
                url = self._run_bulk(resource, None if resource.full else since)
                part, rows[resource.file] = self._download(url, out_dir, resource)
                staged.append((part, out_dir / resource.file))
            for part, final in staged:
                os.replace(part, final)
        finally:
            for part, _ in staged:
                part.unlink(missing_ok=True)
        _fsync_dir(out_dir)
        log.info("extracted %s into %s: %s", self.base_url, out_dir, rows)
        return ExtractResult(out_dir=out_dir, started_at=started_at, since=since, rows=rows)

    # --- steps ---

    def _write_shop(self, out_dir: Path) -> Path:
        shop = self.graphql(SHOP_QUERY, purpose="reading the shop")["shop"]
        part = _temp_path(out_dir, "shop.jsonl")
        try:
            part.write_text(_json_line(shop), encoding="utf-8")
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        return part

    def _run_bulk(self, resource: BulkResource, since: datetime | None) -> str | None:
        """Start the bulk query for `resource`, wait for it, and return its result URL (None: no rows)."""
        purpose = f"the {resource.connection} bulk query"
        started = self.graphql(
            _RUN_BULK, {"query": bulk_query(resource, since)}, purpose=purpose, scopes=resource.scopes
        )["bulkOperationRunQuery"]
        if started["userErrors"] or not started["bulkOperation"]:
            problems = "; ".join(e.get("message", "?") for e in started["userErrors"]) or "no operation returned"
            # the usual cause: a field the pinned API version renamed or removed, which the message names
            raise ShopifyQueryError(
                f"Shopify refused {purpose}: {problems} (asked of Admin API {self.api_version}; smsseg's queries"
                f" are written for {API_VERSION}: set SHOPIFY_API_VERSION to it, or report this error)"
            )
        operation_id = started["bulkOperation"]["id"]
        log.info("%s started as %s", purpose, operation_id)
        operation = self.wait_for_bulk_operation(operation_id, purpose)
        status = operation["status"]
        if status != "COMPLETED":
            raise self._terminal_error(resource, purpose, operation_id, status, operation.get("errorCode"))
        log.info("%s completed: %s objects", purpose, operation.get("objectCount"))
        return operation.get("url")

    def wait_for_bulk_operation(self, operation_id: str, purpose: str) -> dict[str, Any]:
        """Poll a bulk operation, backing off, until it ends; returns it as last polled (any final status).

        Raises BulkOperationFailed when it vanished or is still running after the poll timeout."""
        interval, waited = self._poll_interval_s, 0.0
        while True:
            operation = self.graphql(_POLL_BULK, {"id": operation_id}, purpose=f"polling {purpose}")["node"]
            if operation is None:
                raise BulkOperationFailed(f"{purpose} ({operation_id}) vanished on Shopify's side", "UNKNOWN", None)
            status = operation["status"]
            if status in ("COMPLETED", "FAILED", "CANCELED", "EXPIRED"):
                return operation
            if waited >= self._poll_timeout_s:
                raise BulkOperationFailed(
                    f"{purpose} ({operation_id}) is still {status} after {waited:.0f}s: it keeps running on"
                    " Shopify; rerun later (it must finish or be cancelled before the next one can start)",
                    status,
                    None,
                )
            self._sleep(interval)
            waited += interval
            interval = min(interval * 2, 30.0)

    def stage_upload(self, filename: str, content: bytes, *, purpose: str, scopes: tuple[str, ...]) -> str:
        """Upload a JSONL file of bulk mutation variables as Shopify documents; returns its stagedUploadPath.

        stagedUploadsCreate hands out a signed form: its parameters go first, in order, and the file
        last, posted to the storage URL without our token."""
        created = self.graphql(
            _STAGE_UPLOAD,
            {
                "input": [
                    {
                        "resource": "BULK_MUTATION_VARIABLES",
                        "filename": filename,
                        "mimeType": "text/jsonl",
                        "httpMethod": "POST",
                    }
                ]
            },
            purpose=f"staging {purpose}",
            scopes=scopes,
        )["stagedUploadsCreate"]
        if created["userErrors"] or not created["stagedTargets"]:
            problems = "; ".join(e.get("message", "?") for e in created["userErrors"]) or "no upload target"
            raise ShopifyQueryError(f"Shopify refused to stage {purpose}: {problems}")
        target = created["stagedTargets"][0]
        form = {p["name"]: p["value"] for p in target["parameters"]}

        def upload() -> str:
            response = self._storage.post(target["url"], data=form, files={"file": (filename, content, "text/jsonl")})
            raise_if_retryable(response, _storage_detail)
            if response.status_code >= 300:
                raise ShopifyQueryError(
                    f"uploading {purpose} ({len(content)} bytes) was refused: storage answered HTTP"
                    f" {response.status_code} ({_storage_detail(response)}); a file over Shopify's"
                    f" {STAGED_UPLOAD_LIMIT_BYTES // 10**6} MB limit must be split: lower SMSSEG_BATCH_SIZE"
                )
            return form["key"]

        return self._retrying(
            upload, f"uploading {purpose}", endpoint("POST", target["url"]), ShopifyRetriesExhausted, "rerun later"
        )

    def run_bulk_mutation(
        self, mutation: str, staged_path: str, *, purpose: str, scopes: tuple[str, ...], slot_timeout_s: float = 600.0
    ) -> dict[str, Any]:
        """Start a bulk mutation over an uploaded variables file and wait for it to end; returns the operation.

        A shop runs at most BULK_MUTATION_SLOTS bulk mutations at once (any app's of ours): while all are
        taken Shopify refuses with LIMIT_REACHED, so this waits for a slot, backing off, for at most
        `slot_timeout_s`."""
        interval, waited = self._poll_interval_s, 0.0
        while True:
            started = self.graphql(
                _RUN_BULK_MUTATION, {"mutation": mutation, "path": staged_path}, purpose=purpose, scopes=scopes
            )["bulkOperationRunMutation"]
            codes = {e.get("code") for e in started["userErrors"]}
            if not codes & _NO_SLOT:
                break
            if waited >= slot_timeout_s:
                raise BulkOperationFailed(
                    f"{purpose}: every bulk mutation slot of the shop stayed taken for {waited:.0f}s (at most"
                    f" {BULK_MUTATION_SLOTS} run at once); rerun when the shop's other bulk imports have finished",
                    "LIMIT_REACHED",
                    None,
                )
            log.info("%s: the shop's bulk mutation slots are all taken; waiting %.1fs for one", purpose, interval)
            self._sleep(interval)
            waited += interval
            interval = min(interval * 2, 30.0)
        if started["userErrors"] or not started["bulkOperation"]:
            problems = "; ".join(e.get("message", "?") for e in started["userErrors"]) or "no operation returned"
            raise ShopifyQueryError(f"Shopify refused {purpose}: {problems}")
        operation_id = started["bulkOperation"]["id"]
        log.info("%s started as %s", purpose, operation_id)
        return self.wait_for_bulk_operation(operation_id, purpose)

    def _terminal_error(
        self, resource: BulkResource, purpose: str, operation_id: str, status: str, error_code: str | None
    ) -> ShopifyError:
        what = f"{purpose} ({operation_id}) ended {status} with errorCode {error_code}"
        if error_code == "ACCESS_DENIED":
            return ShopifyAccessDenied(f"{what}: {_scope_advice(resource.scopes)}", resource.scopes)
        advice = _TERMINAL_ADVICE.get(error_code or status, "rerun the extraction")
        return BulkOperationFailed(f"{what}: {advice}", status, error_code)

    def _download(self, url: str | None, out_dir: Path, resource: BulkResource) -> tuple[Path, int]:
        """Stream a bulk result to a temporary file in `out_dir`; returns it and its line count."""
        part = _temp_path(out_dir, resource.file)
        if url is None:  # Shopify gives no URL when the query matched nothing
            return part, 0
        return part, self.download(url, part, f"the {resource.connection} bulk query")

    def download(self, url: str, part: Path, what: str, rerun: str = "rerun the extraction") -> int:
        """Stream the result file of bulk operation `what` into `part`; returns its line count.

        The URL is a signed storage link: it goes out without our token, and its query (the signature)
        never reaches a log line or an error. On failure `part` is removed."""

        def attempt() -> int:
            with part.open("wb") as fh, self._storage.stream("GET", url) as response:
                raise_if_retryable(response, _storage_detail)
                if response.status_code >= 400:
                    raise DownloadError(
                        f"the result of {what} could not be downloaded:"
                        f" storage answered HTTP {response.status_code} ({_storage_detail(response)});"
                        f" its signed URL has expired or was refused: {rerun} for a fresh one"
                    )
                lines = _stream_lines(response, fh)
                fh.flush()
                os.fsync(fh.fileno())
                return lines

        try:
            return self._retrying(
                attempt,
                f"downloading the result of {what}",
                endpoint("GET", url),
                DownloadError,
                f"the download was cut off or refused each time; nothing was written: check the network and {rerun}",
            )
        except BaseException:
            part.unlink(missing_ok=True)
            raise

    # --- GraphQL with retries and throttling ---

    def graphql(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        *,
        purpose: str = "a query",
        scopes: tuple[str, ...] = ALL_SCOPES,
    ) -> dict[str, Any]:
        """Run one GraphQL request and return its `data`, retrying what is worth retrying."""

        def attempt() -> dict[str, Any]:
            self._wait_for_bucket()
            self.requests += 1
            response = self._api.post(self._endpoint, json={"query": query, "variables": dict(variables or {})})
            self._check_version(response)
            if response.status_code == 401:
                raise ShopifyAuthError(
                    f"Shopify rejected the access token for {self.base_url} (HTTP 401) during {purpose}: set"
                    " SHOPIFY_ACCESS_TOKEN to a current Admin API token of an app installed on this store"
                    f" with the scopes {', '.join(ALL_SCOPES)}"
                )
            if response.status_code == 403:
                detail = _error_text(response)
                raise ShopifyAccessDenied(
                    f"Shopify refused {purpose} (HTTP 403: {detail}): {_scope_advice(scopes)}", scopes
                )
            raise_if_retryable(response, _error_text)
            if response.status_code != 200:
                raise ShopifyQueryError(
                    f"Shopify answered HTTP {response.status_code} to {purpose}: {_error_text(response)}"
                )
            payload = response.json()
            self._note_cost(payload.get("extensions"))
            errors = payload.get("errors") or []
            codes = {(e.get("extensions") or {}).get("code") for e in errors}
            if "THROTTLED" in codes:  # the query budget ran dry: wait for it to refill, when we know how long
                raise Retryable("THROTTLED", self._refill_wait() or None)
            if "ACCESS_DENIED" in codes:
                needed = tuple(sorted(set(re.findall(r"\b((?:read|write)_\w+)", str(errors))))) or scopes
                raise ShopifyAccessDenied(f"Shopify denied {purpose}: {_scope_advice(needed)}", needed)
            if errors:
                messages = "; ".join(str(e.get("message")) for e in errors)
                raise ShopifyQueryError(f"Shopify rejected {purpose}: {messages}")
            return payload["data"]

        return self._retrying(
            attempt,
            purpose,
            endpoint("POST", self._endpoint),
            ShopifyRetriesExhausted,
            "Shopify or the network is struggling: rerun later",
        )

    def _retrying(
        self, attempt: Callable[[], Any], what: str, where: str, error: type[ShopifyError], advice: str
    ) -> Any:
        """`attempt` under the retry policy; when it runs out, `error` with the policy's message and `advice`."""
        try:
            return with_retries(attempt, what=what, where=where, policy=self._retry, sleep=self._sleep)
        except RetriesExhausted as exc:
            raise error(f"{exc}; {advice}") from None

    def _note_cost(self, extensions: Mapping[str, Any] | None) -> None:
        cost = (extensions or {}).get("cost") or {}
        status = cost.get("throttleStatus")
        if status:
            self._bucket_available = float(status["currentlyAvailable"])
            self._bucket_rate = float(status["restoreRate"])
            self._bucket_at = time.monotonic()
        if cost.get("requestedQueryCost"):
            self._largest_cost = max(self._largest_cost, float(cost["requestedQueryCost"]))

    def _refill_wait(self) -> float:
        """Seconds until the bucket holds enough points for the costliest request seen so far."""
        if self._bucket_available is None or self._bucket_rate <= 0:
            return 0.0
        available = self._bucket_available + (time.monotonic() - self._bucket_at) * self._bucket_rate
        return max(0.0, (self._largest_cost - available) / self._bucket_rate)

    def _wait_for_bucket(self) -> None:
        wait = self._refill_wait()
        if wait > 0:
            log.info("Shopify query budget low: waiting %.1fs for it to refill", wait)
            self._sleep(wait)
            # The bucket refilled while we slept, whatever the sleep function really did.
            self._bucket_available = self._largest_cost
            self._bucket_at = time.monotonic()

    def _check_version(self, response: httpx.Response) -> None:
        served = response.headers.get("X-Shopify-Api-Version")
        if served and served != self.api_version and served not in self._warned_versions:
            self._warned_versions.add(served)
            log.warning(
                "Shopify answered with API version %s, not the pinned %s: the pinned version is no longer"
                " supported; update SHOPIFY_API_VERSION after checking the changelog",
                served,
                self.api_version,
            )


def _base_url(store: str) -> str:
    store = store.strip().rstrip("/")
    if "://" not in store:
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*(\.[a-z0-9-]+)+", store.lower()):
            raise ShopifyConfigError(
                f"SHOPIFY_STORE {store!r} is neither a shop domain like my-shop.myshopify.com nor a URL"
            )
        return f"https://{store}"
    parts = urlsplit(store)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ShopifyConfigError(f"SHOPIFY_STORE {store!r} must be an http(s) URL or a shop domain")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        # Plain HTTP would send the access token in clear text: only a local emulator may use it.
        raise ShopifyConfigError(f"SHOPIFY_STORE {store!r} uses http://; use https:// for a remote shop")
    return store


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _search_time(moment: datetime) -> str:
    # Truncating to whole seconds moves the bound earlier, so nothing updated after `since` is missed.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _scope_advice(scopes: tuple[str, ...]) -> str:
    return (
        f"the app's access token lacks a scope it needs ({', '.join(scopes)}); grant it in the app's Admin"
        " API access scopes, reinstall or approve the app on the store, and update SHOPIFY_ACCESS_TOKEN"
    )


def _error_text(response: httpx.Response) -> str:
    try:
        errors = response.json().get("errors")
    except ValueError:
        errors = None
    return str(errors or response.text)[:300]


def _storage_detail(response: httpx.Response) -> str:
    response.read()
    match = re.search(r"<Code>(.*?)</Code>", response.text)
    return match.group(1) if match else response.text[:200] or "no detail"


def _stream_lines(response: httpx.Response, fh: Any) -> int:
    """Copy the body chunk by chunk, so memory stays flat whatever the shop's size; count lines."""
    lines = 0
    last = b"\n"
    for chunk in response.iter_bytes(1 << 20):
        fh.write(chunk)
        lines += chunk.count(b"\n")
        last = chunk[-1:]
    return lines if last == b"\n" else lines + 1


def _temp_path(out_dir: Path, file: str) -> Path:
    # Hidden and not ending in .jsonl, so no reader of the directory mistakes it for data.
    fd, name = tempfile.mkstemp(dir=out_dir, prefix=f".{file}.", suffix=".part")
    os.close(fd)
    return Path(name)


def _json_line(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) + "\n"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
