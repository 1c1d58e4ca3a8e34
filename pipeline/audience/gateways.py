"""Where audiences go: one narrow interface, a file gateway (the default, no network) and the HTTP API.

The sync calls `upsert_audience`, `send_batch`, `list_members` and `finish`; a gateway confirms a
batch by returning from `send_batch` and refuses it by raising GatewayError. Every destination
(file, http, klaviyo, shopify-tags) implements the same methods, and the sync keeps one ledger per
`destination`, so switching destinations starts a fresh audience there rather than assuming it holds
what the last one did.
"""

import csv
import datetime as dt
import io
import os
import re
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

from pipeline.retry import RetriesExhausted, RetryPolicy, endpoint, raise_if_retryable, with_retries

CHANGE_COLUMNS = ("action", "phone", "customer_id")
AUDIENCE_FILE = re.compile(r"\d{4}-\d{2}-\d{2}\.csv")  # <as_of>.csv, not <as_of>.changes.csv
# pages of GET /audiences/{segment}/members: a gateway whose cursor never ends fails the sync
MEMBERS_PAGE = 1000
MAX_MEMBER_PAGES = 10_000


class GatewayError(RuntimeError):
    """A batch the gateway did not accept. `retryable` is False when resending it cannot help."""

    def __init__(self, message: str, *, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class AudienceTarget:
    """One segment's audience at a destination, named as its definition says (sms.list, sms.tag)."""

    segment: str
    name: str = ""  # the list's name (Klaviyo, the http gateway); empty: the segment's name
    tag: str = ""  # the customer tag (Shopify); empty: smsseg:<segment>
    description: str = ""

    @property
    def list_name(self) -> str:
        return self.name or self.segment

    @property
    def tag_name(self) -> str:
        return self.tag or f"smsseg:{self.segment}"


@dataclass(frozen=True)
class BatchResult:
    added: int
    removed: int
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (phone, reason): not in the audience
    # phone -> the destination's own id for the member (a Klaviyo profile id), for destinations that
    # remove by that id: the sync keeps it with the member and hands it back in the remove
    ids: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HeldMember:
    """A member as the destination reports holding it."""

    phone: str  # E.164
    customer_id: int | None = None
    destination_id: str | None = None


class AudienceGateway(ConfigurableResource):
    """The interface every gateway implements; assets ask for this type and get whichever is configured."""

    @property
    def destination(self) -> str:
        """The name the ledger keeps this destination's audiences under: file, http, klaviyo, shopify-tags."""
        raise NotImplementedError

    def same_audience(self, before: AudienceTarget, after: AudienceTarget) -> bool:
        """Whether `after` names the audience `before` did (a rename) rather than another one (a move).

        The file and http gateways key an audience by its segment, so a new name is a rename there;
        a destination keyed by the list or tag overrides this. On a move the sync empties `before`.
        """
        return True

    def upsert_audience(self, target: AudienceTarget, known_id: str | None = None) -> str | None:
        """Creates the audience or updates its name; returns the destination's id for it, if it has one.

        `known_id` is what an earlier run returned (kept in state.duckdb), so a destination can skip
        looking the audience up by name.
        """
        raise NotImplementedError

    def send_batch(
        self, target: AudienceTarget, adds: list[dict], removes: list[dict], idempotency_key: str
    ) -> BatchResult:
        """Adds (or updates) the `adds` members and removes the `removes`, as one request or job.

        A remove is {"phone", "customer_id", "destination_id"} (the id a BatchResult gave, or None).
        Sending the same idempotency_key again must not apply the batch twice: a destination with no
        Idempotency-Key of its own checks what it already holds before it adds.
        """
        raise NotImplementedError

    def list_members(self, target: AudienceTarget) -> list[HeldMember]:
        """Every member the destination holds in the audience now (empty when there is no audience).

        The sync reads it back when its own record is gone (a lost or new state.duckdb), so it sends
        nothing twice and leaves nothing behind.
        """
        raise NotImplementedError

    def finish(self, target: AudienceTarget, as_of: dt.date, members: pa.Table) -> None:
        """Called once a sync of `segment` confirmed every batch, with the full eligible audience."""
        raise NotImplementedError


class FileGateway(AudienceGateway):
    """Writes data/exports/<segment>/<as_of>.csv (the audience) and <as_of>.changes.csv (this run's diff).

    Every batch is confirmed at once. Each is first kept under its Idempotency-Key in .pending/,
    so a replayed batch overwrites itself and `finish` gathers a killed run's batches too.
    """

    data_dir: str

    @property
    def destination(self) -> str:
        return "file"

    def upsert_audience(self, target: AudienceTarget, known_id: str | None = None) -> str | None:
        self._pending(target.segment).mkdir(parents=True, exist_ok=True)
        return None

    def list_members(self, target: AudienceTarget) -> list[HeldMember]:
        """The members of the latest <as_of>.csv: the audience the last finished sync wrote."""
        audiences = sorted(
            p
            for p in (Path(self.data_dir) / "exports" / target.segment).glob("*.csv")
            if AUDIENCE_FILE.fullmatch(p.name)
        )
        if not audiences:
            return []
        with open(audiences[-1], newline="", encoding="utf-8") as f:
            return [
                HeldMember(row["phone"], int(row["customer_id"]) if row["customer_id"] else None)
                for row in csv.DictReader(f)
            ]

    def send_batch(
        self, target: AudienceTarget, adds: list[dict], removes: list[dict], idempotency_key: str
    ) -> BatchResult:
        segment = target.segment
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerows(("add", m["phone"], m["customer_id"]) for m in adds)
        writer.writerows(("remove", r["phone"], r["customer_id"]) for r in removes)
        pending = self._pending(segment)
        pending.mkdir(parents=True, exist_ok=True)
        _write_atomically(pending / (idempotency_key.replace(":", "_") + ".csv"), out.getvalue())
        return BatchResult(added=len(adds), removed=len(removes))

    def finish(self, target: AudienceTarget, as_of: dt.date, members: pa.Table) -> None:
        segment = target.segment
        folder = Path(self.data_dir) / "exports" / segment
        folder.mkdir(parents=True, exist_ok=True)
        audience = folder / f"{as_of.isoformat()}.csv"
        tmp = audience.with_name(f".{audience.name}.tmp")
        pa_csv.write_csv(members.sort_by("phone"), tmp)
        os.replace(tmp, audience)
        pending = sorted(self._pending(segment).glob("*.csv"))
        changes = _read_changes(pending)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CHANGE_COLUMNS)
        writer.writerows(zip(*(changes[c].to_pylist() for c in CHANGE_COLUMNS), strict=True))
        _write_atomically(folder / f"{as_of.isoformat()}.changes.csv", out.getvalue())
        for p in pending:
            p.unlink()

    def _pending(self, segment: str) -> Path:
        return Path(self.data_dir) / "exports" / segment / ".pending"


def erase_from_exports(data_dir: Path, customer_ids: Collection[int]) -> int:
    """Rewrites the file gateway's exports of every night without these (redacted) customers; returns files rewritten.

    An audience file loses their rows. A changes file keeps their adds and removes by customer id
    with the phone blank, as the ledger does: who left an audience stays known, not their number.
    Whatever the gateway is now, a file written while it was the file gateway is rewritten. Each
    file is only read (its customer_id column, at C speed) until it is found to hold one of them.
    """
    wanted = pa.array(sorted({str(i) for i in customer_ids}), pa.string())
    rewritten = 0
    for path in sorted((Path(data_dir) / "exports").glob("*/*.csv")):
        with open(path, newline="", encoding="utf-8") as f:
            header = next(csv.reader(f), [])
        if "customer_id" not in header or not len(wanted):
            continue
        ids = pa_csv.read_csv(
            path,
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()), include_columns=["customer_id"]
            ),
        )["customer_id"]
        if not pc.any(pc.is_in(ids, wanted)).as_py():
            continue
        key, blank = header.index("customer_id"), header.index("phone") if path.name.endswith(".changes.csv") else None
        erased, out = set(wanted.to_pylist()), io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        with open(path, newline="", encoding="utf-8") as f:
            rows = csv.reader(f)
            writer.writerow(next(rows))
            for row in rows:
                if row[key] not in erased:
                    writer.writerow(row)
                elif blank is not None:
                    writer.writerow([*row[:blank], "", *row[blank + 1 :]])
        _write_atomically(path, out.getvalue())
        rewritten += 1
    return rewritten


def required_env(env: dict[str, str], names: tuple[str, ...], why: str) -> None:
    """Raises GatewayError naming whichever of `names` the environment lacks, and `why` the gateway needs them."""
    missing = [name for name in names if not env.get(name)]
    if missing:
        raise GatewayError(f"{' and '.join(missing)} not set: {why}", retryable=False)


class ClientGateway(AudienceGateway):
    """A destination reached through one client kept for the gateway's life (its connections and TLS
    sessions are reused), retrying as every HTTP client does (pipeline.retry), with every wait going
    through `_sleep`, which tests replace with a recorder."""

    timeout_seconds: float = 10.0
    max_attempts: int = 8
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0
    max_retry_after_seconds: float = 120.0
    max_wait_seconds: float = 600.0
    _sleep: Callable[[float], None] = PrivateAttr(default=time.sleep)
    _client: Any = PrivateAttr(default=None)

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.max_attempts,
            backoff_seconds=self.backoff_seconds,
            max_backoff_seconds=self.max_backoff_seconds,
            max_retry_after_seconds=self.max_retry_after_seconds,
            max_wait_seconds=self.max_wait_seconds,
        )

    def with_sleep(self, sleep: Callable[[float], None]) -> Self:
        """Uses `sleep` for every wait (tests pass a recorder instead of waiting)."""
        self._sleep = sleep
        return self

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class RetryingGateway(ClientGateway):
    """An HTTP destination reached with one httpx client at `url`.

    A request that runs out of retries fails with a retryable GatewayError: the next run replays it.
    """

    url: str

    def _send(
        self,
        what: str,
        method: str,
        path: str,
        describe: Callable[[httpx.Response], str],
        pace: Callable[[], None] | None = None,
        **request: object,
    ) -> httpx.Response:
        """Sends until a reply that is neither 429 nor 5xx and returns it; the caller judges any other status.

        `describe` turns a 5xx reply into the few words a retry's log line and the final error carry.
        `pace`, if given, is called before every attempt: a destination with rate limits of its own
        waits there for a slot, which a retry needs as much as the first attempt.
        """
        if self._client is None:
            # one client for the gateway's life: batches reuse its connections (and TLS sessions)
            self._client = httpx.Client(base_url=self.url, timeout=self.timeout_seconds)

        def attempt() -> httpx.Response:
            if pace is not None:
                pace()
            response = self._client.request(method, path, **request)
            raise_if_retryable(response, describe)
            return response

        try:
            where = endpoint(method, self._client.build_request(method, path).url)
            return with_retries(attempt, what=what, where=where, policy=self.retry_policy, sleep=self._sleep)
        except RetriesExhausted as exc:
            raise GatewayError(str(exc), retryable=True) from None


class HttpGateway(RetryingGateway):
    """The gateway's JSON API (sms-export.md, "Gateways").

    Retries as every HTTP gateway does (RetryingGateway), resending under the same Idempotency-Key;
    any other 4xx fails the batch at once. The token never reaches a log line, an error message or a repr.
    """

    token: str = Field(repr=False, description="Bearer token; pass EnvVar('SMS_GATEWAY_TOKEN')")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **options: float) -> "HttpGateway":
        """A gateway from SMS_GATEWAY_URL and SMS_GATEWAY_TOKEN, outside Dagster (CLI tools, demos)."""
        env = os.environ if env is None else env
        required_env(
            env,
            ("SMS_GATEWAY_URL", "SMS_GATEWAY_TOKEN"),
            "the http gateway needs the gateway's URL and token in the environment",
        )
        return cls(url=env["SMS_GATEWAY_URL"], token=env["SMS_GATEWAY_TOKEN"], **options)

    @property
    def destination(self) -> str:
        return "http"

    def upsert_audience(self, target: AudienceTarget, known_id: str | None = None) -> str | None:
        self._request(
            "PUT", f"/audiences/{target.segment}", {"name": target.list_name, "description": target.description}, None
        )
        return None

    def list_members(self, target: AudienceTarget) -> list[HeldMember]:
        """GET /audiences/{segment}/members page by page, at most MAX_MEMBER_PAGES of them."""
        path = f"/audiences/{target.segment}/members"
        members: list[HeldMember] = []
        cursor = ""
        for _ in range(MAX_MEMBER_PAGES):
            body = self._request("GET", path, None, None, params={"cursor": cursor, "limit": MEMBERS_PAGE})
            try:
                members.extend(HeldMember(m["phone"], m.get("customer_id")) for m in body["members"])
                cursor = body.get("next_cursor")
            except (KeyError, TypeError, AttributeError):
                shape = sorted(body) if isinstance(body, dict) else type(body).__name__
                raise GatewayError(f"GET {path}: unexpected reply with {shape}", retryable=False) from None
            if not cursor:
                return members
        raise GatewayError(
            f"GET {path}: still more after {MAX_MEMBER_PAGES} pages of {MEMBERS_PAGE}; "
            "the gateway's next_cursor does not end",
            retryable=False,
        )

    def send_batch(
        self, target: AudienceTarget, adds: list[dict], removes: list[dict], idempotency_key: str
    ) -> BatchResult:
        body = self._request(
            "POST",
            f"/audiences/{target.segment}/members",
            {"add": adds, "remove": [r["phone"] for r in removes]},
            idempotency_key,
        )
        try:
            rejected = [(r["phone"], r.get("reason") or "") for r in body.get("rejected", [])]
            return BatchResult(added=int(body["added"]), removed=int(body["removed"]), rejected=rejected)
        except (KeyError, TypeError, ValueError, AttributeError):
            # its keys, not its values: a reply names members, and the error reaches the event log
            shape = sorted(body) if isinstance(body, dict) else type(body).__name__
            raise GatewayError(f"batch {idempotency_key}: unexpected reply with {shape}", retryable=False) from None

    def finish(self, target: AudienceTarget, as_of: dt.date, members: pa.Table) -> None:
        """Nothing to do: the gateway already holds the audience."""

    def _request(
        self, method: str, path: str, payload: dict | None, idempotency_key: str | None, params: dict | None = None
    ) -> dict:
        headers = {"Authorization": f"Bearer {self.token}"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        what = f"{method} {path}" + (f" (batch {idempotency_key})" if idempotency_key else "")
        response = self._send(what, method, path, self._describe, json=payload, params=params, headers=headers)
        if response.status_code < 300:
            try:
                return response.json()
            except ValueError:  # a 2xx that is not JSON: it may have landed, so only a replay is safe
                raise GatewayError(
                    f"{what}: the gateway replied {response.status_code} without JSON", retryable=True
                ) from None
        message = self._describe(response)
        if response.status_code == 413:
            message += " (send smaller batches: lower SMSSEG_BATCH_SIZE)"
        raise GatewayError(f"{what}: the gateway refused it with {response.status_code}: {message}", retryable=False)

    def _describe(self, response: httpx.Response) -> str:
        """The gateway's own words, minus the token should it ever echo a header back."""
        return _message(response).replace(self.token, "***")


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
        text = body.get("error") or body.get("message") or str(body)
    except (ValueError, AttributeError):
        text = response.text
    return str(text)[:300] or response.reason_phrase


def _read_changes(paths: list[Path]) -> pa.Table:
    """The rows of batch files, as the text they were written, sorted; Arrow reads and sorts a night's at C speed."""
    options = {
        "read_options": pa_csv.ReadOptions(column_names=CHANGE_COLUMNS),
        "parse_options": pa_csv.ParseOptions(newlines_in_values=True),
        "convert_options": pa_csv.ConvertOptions(column_types=dict.fromkeys(CHANGE_COLUMNS, pa.string())),
    }
    none = pa.table({c: pa.array([], pa.string()) for c in CHANGE_COLUMNS})
    batches = [pa_csv.read_csv(p, **options) for p in paths if p.stat().st_size]
    return pa.concat_tables([none, *batches]).sort_by([(c, "ascending") for c in CHANGE_COLUMNS])


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
