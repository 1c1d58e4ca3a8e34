"""The shopify-tags gateway: a segment's audience is the shop's customers carrying one tag (smsseg:<segment>).

Yotpo SMS, Postscript and Attentive sync Shopify customer tags into their own segments, so tagging
the customers reaches all three without an API of theirs. It speaks Admin GraphQL through our
ShopifyClient (throttle, retries, bulk polling) with a token holding `write_customers`:

- a small diff: one tagsAdd/tagsRemove per customer, several to a request;
- past BULK_THRESHOLD changes in a direction: one bulk mutation, its variables uploaded as a staged
  JSONL file, its per-line result read back for each customer's userErrors.

Exactly once: Shopify's tags are idempotent, but a batch replayed after a killed run must not tag
anyone twice, and a replay looks like any batch (its key names the run that planned it, not this
one), so every batch first learns which of its customers already carry the tag and tags only the
others. A small batch asks about its own customers (`nodes`, 1 point a customer against the 10 a
tagsAdd costs). A big one would pay more for that than for its bulk mutation, so the first big
batch of a run lists who carries the tag instead (2 points a listed customer; a first night lists
no one), while that is the cheaper of the two, and the gateway keeps the list up to date with its
own changes for the rest of the run. A customer that no longer exists (deleted, or redacted on
request) is skipped and counted, never a failed batch.
"""

import datetime as dt
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
from dagster import get_dagster_logger
from pydantic import Field, PrivateAttr

from pipeline.audience.gateways import (
    AudienceTarget,
    BatchResult,
    ClientGateway,
    GatewayError,
    HeldMember,
    required_env,
)
from pipeline.shopify.client import (
    API_VERSION,
    BulkOperationFailed,
    DownloadError,
    ShopifyClient,
    ShopifyError,
    ShopifyRetriesExhausted,
)

log = get_dagster_logger(__name__)

SCOPES = ("write_customers",)
# Past this many changes in one direction a batch goes as one bulk mutation. 250 tagsAdd cost
# 2,500 points: 25 s of a Standard shop's 100 points/s restore rate, and they hold the bucket for
# every other app call meanwhile. A bulk mutation costs ~30 points (stage, run, a few polls) and runs
# in Shopify's background, but waits for its polls: below this, per-customer calls finish sooner.
BULK_THRESHOLD = 250
MUTATIONS_PER_REQUEST = 25  # aliased mutations in one request: 250 points, well under Shopify's 1,000 a query
PAGE = 250  # Shopify's most ids a nodes() call takes and customers a connection page returns
LIST_PAGE_COST = 2 + 2 * PAGE  # a page of customers with their phones: the connection, each customer and phone
MAX_LIST_PAGES = 40_000  # list_members reads at most 10M tagged customers
MISSING = "does not exist"  # Shopify's userError for a customer id it no longer has


@dataclass(frozen=True)
class _Direction:
    field: str  # tagsAdd | tagsRemove
    verb: str  # for messages


_ADD = _Direction("tagsAdd", "tagging")
_REMOVE = _Direction("tagsRemove", "untagging")

_CARRYING = """query Carrying($ids: [ID!]!) {
  nodes(ids: $ids) { ... on Customer { id tags } }
}"""
_LIST = """query Tagged($query: String!, $after: String) {
  customers(first: 250, after: $after, query: $query) {
    pageInfo { hasNextPage endCursor }
    nodes { id defaultPhoneNumber { phoneNumber } }
  }
}"""


class ShopifyTagsGateway(ClientGateway):
    """Tags the audience's customers in the shop; SHOPIFY_STORE, SHOPIFY_ACCESS_TOKEN, SHOPIFY_API_VERSION."""

    store: str
    token: str = Field(repr=False, description="Admin API token (write_customers); EnvVar('SHOPIFY_ACCESS_TOKEN')")
    api_version: str = API_VERSION
    bulk_threshold: int = BULK_THRESHOLD
    timeout_seconds: float = 30.0
    poll_interval_seconds: float = 1.0
    poll_timeout_seconds: float = 6 * 3600.0  # Shopify stops a bulk mutation at 24 h; a night's sync cannot wait that
    slot_timeout_seconds: float = 1800.0  # waiting for one of the shop's bulk mutation slots
    _client: ShopifyClient | None = PrivateAttr(default=None)
    _missing: int = PrivateAttr(default=0)
    # tag -> the gids carrying it, once listed in this gateway's life: kept up to date with its own changes
    _carriers: dict[str, set[str]] = PrivateAttr(default_factory=dict)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **options: float) -> "ShopifyTagsGateway":
        """A gateway from SHOPIFY_STORE, SHOPIFY_ACCESS_TOKEN and SHOPIFY_API_VERSION, outside Dagster."""
        env = os.environ if env is None else env
        required_env(
            env,
            ("SHOPIFY_STORE", "SHOPIFY_ACCESS_TOKEN"),
            "the shopify-tags gateway needs the shop and an Admin API token with write_customers in the environment",
        )
        return cls(
            store=env["SHOPIFY_STORE"],
            token=env["SHOPIFY_ACCESS_TOKEN"],
            api_version=env.get("SHOPIFY_API_VERSION") or API_VERSION,
            **options,
        )

    @property
    def missing_customers(self) -> int:
        """Customers skipped because the shop no longer has them, since this gateway was made."""
        return self._missing

    @property
    def requests(self) -> int:
        """GraphQL requests made so far (retries included), for benchmarks."""
        return self._shopify().requests

    @property
    def destination(self) -> str:
        return "shopify-tags"

    def same_audience(self, before: AudienceTarget, after: AudienceTarget) -> bool:
        """The audience is who carries the tag, which Shopify compares without case."""
        return before.tag_name.lower() == after.tag_name.lower()

    def upsert_audience(self, target: AudienceTarget, known_id: str | None = None) -> str | None:
        """Nothing to create: a tag exists while a customer carries it."""
        return None

    def send_batch(
        self, target: AudienceTarget, adds: list[dict], removes: list[dict], idempotency_key: str
    ) -> BatchResult:
        tag = target.tag_name
        phones = {_gid(m["customer_id"]): m["phone"] for m in adds}
        rejected: list[tuple[str, str]] = []
        with self._gateway_errors(idempotency_key):
            carrying, gone = self._carrying(tag, list(phones))
            fresh = [g for g in phones if g not in carrying and g not in gone]
            errors = self._change(_ADD, tag, fresh, idempotency_key)
            removed_errors = self._change(_REMOVE, tag, [_gid(r["customer_id"]) for r in removes], idempotency_key)
        carriers = self._carriers.get(tag)
        if carriers is not None:
            carriers.update(g for g in fresh if g not in errors)
            carriers.difference_update(_gid(r["customer_id"]) for r in removes)
        for gid, message in errors.items():
            if MISSING in message:
                gone.add(gid)
            else:
                rejected.append((phones[gid], f"Shopify refused tagging customer {_number(gid)}: {message}"))
        rejected.extend(
            (phones[g], f"customer {_number(g)} no longer exists at Shopify (deleted or redacted)")
            for g in sorted(gone)
        )
        refused_removes = {g: m for g, m in removed_errors.items() if MISSING not in m}
        if refused_removes:
            gid, message = next(iter(refused_removes.items()))
            raise GatewayError(
                f"batch {idempotency_key}: Shopify refused untagging {len(refused_removes)} customers, "
                f"e.g. {_number(gid)}: {message}",
                retryable=False,
            )
        missing = len(gone) + len(removed_errors)
        self._missing += missing
        log.info(
            "batch %s: %d tagged, %d already carried %s, %d untagged, %d customers no longer exist, %d refused",
            idempotency_key,
            len(fresh) - len(errors),
            len(carrying),
            tag,
            len(removes) - len(removed_errors),
            missing,
            len(rejected) - len(gone),
        )
        return BatchResult(added=len(adds) - len(rejected), removed=len(removes), rejected=rejected)

    def list_members(self, target: AudienceTarget) -> list[HeldMember]:
        """The customers carrying the tag, page by page (250 a page, at most MAX_LIST_PAGES pages)."""
        with self._gateway_errors(f"listing {target.tag_name}"):
            carriers = self._list(target.tag_name, MAX_LIST_PAGES)
        if carriers is None:
            raise GatewayError(
                f"listing {target.tag_name}: more than {MAX_LIST_PAGES * PAGE} customers carry it", retryable=False
            )
        return [
            HeldMember(
                phone=c["defaultPhoneNumber"]["phoneNumber"], customer_id=_number(c["id"]), destination_id=c["id"]
            )
            for c in carriers
            if (c.get("defaultPhoneNumber") or {}).get("phoneNumber")
        ]

    def finish(self, target: AudienceTarget, as_of: dt.date, members: pa.Table) -> None:
        """Nothing to do: the shop's tags are the audience."""

    # --- steps ---

    def _list(self, tag: str, most_pages: int) -> list[dict] | None:
        """The customers carrying `tag` (id and phone); None when there are more than `most_pages` pages."""
        carriers, after = [], None
        for _ in range(most_pages):
            page = self._shopify().graphql(
                _LIST,
                {"query": _tag_search(tag), "after": after},
                purpose=f"listing the customers tagged {tag}",
                scopes=("read_customers",),
            )["customers"]
            carriers.extend(page["nodes"])
            if not page["pageInfo"]["hasNextPage"]:
                return carriers
            after = page["pageInfo"]["endCursor"]
        return None

    def _carrying(self, tag: str, gids: list[str]) -> tuple[set[str], set[str]]:
        """Of `gids`: those that carry `tag` already, and those the shop no longer has (when asked one by one)."""
        if tag not in self._carriers and len(gids) > self.bulk_threshold:
            # a page lists 250 customers for 502 points; asking about this batch costs 1 point a customer
            listed = self._list(tag, max(1, len(gids) // LIST_PAGE_COST))
            if listed is not None:
                self._carriers[tag] = {c["id"] for c in listed}
        if tag in self._carriers:
            # whoever the shop has lost since shows up as a userError of the change itself
            return {g for g in gids if g in self._carriers[tag]}, set()
        carrying, gone = set(), set()
        for chunk in _chunks(gids, PAGE):
            nodes = self._shopify().graphql(
                _CARRYING, {"ids": chunk}, purpose=f"checking who carries {tag}", scopes=("read_customers",)
            )["nodes"]
            for gid, node in zip(chunk, nodes, strict=True):
                if not node:
                    gone.add(gid)
                elif tag.lower() in (t.lower() for t in node.get("tags") or []):
                    carrying.add(gid)
        return carrying, gone

    def _change(self, direction: _Direction, tag: str, gids: list[str], key: str) -> dict[str, str]:
        """Adds or removes `tag` on `gids`; returns the userErrors by customer gid."""
        if not gids:
            return {}
        if len(gids) > self.bulk_threshold:
            return self._change_in_bulk(direction, tag, gids, key)
        errors = {}
        for chunk in _chunks(gids, MUTATIONS_PER_REQUEST):
            declared = ", ".join(f"$id{i}: ID!" for i in range(len(chunk)))
            fields = " ".join(
                f"m{i}: {direction.field}(id: $id{i}, tags: $tags) {{ userErrors {{ field message }} }}"
                for i in range(len(chunk))
            )
            data = self._shopify().graphql(
                f"mutation Tags($tags: [String!]!, {declared}) {{ {fields} }}",
                {"tags": [tag], **{f"id{i}": gid for i, gid in enumerate(chunk)}},
                purpose=f"{direction.verb} {len(chunk)} customers (batch {key})",
                scopes=SCOPES,
            )
            for i, gid in enumerate(chunk):
                if data[f"m{i}"]["userErrors"]:
                    errors[gid] = "; ".join(e["message"] for e in data[f"m{i}"]["userErrors"])
        return errors

    def _change_in_bulk(self, direction: _Direction, tag: str, gids: list[str], key: str) -> dict[str, str]:
        client = self._shopify()
        purpose = f"the bulk {direction.field} of {len(gids)} customers (batch {key})"
        variables = "".join(json.dumps({"id": gid, "tags": [tag]}) + "\n" for gid in gids).encode()
        path = client.stage_upload("smsseg-tags.jsonl", variables, purpose=purpose, scopes=SCOPES)
        mutation = (
            f"mutation call($id: ID!, $tags: [String!]!) {{ {direction.field}(id: $id, tags: $tags) "
            "{ node { id } userErrors { field message } } }"
        )
        operation = client.run_bulk_mutation(
            mutation, path, purpose=purpose, scopes=SCOPES, slot_timeout_s=self.slot_timeout_seconds
        )
        if operation["status"] != "COMPLETED":
            # some lines may have landed: the batch stays pending and its replay skips who carries the tag
            raise BulkOperationFailed(
                f"{purpose} ({operation['id']}) ended {operation['status']} with errorCode "
                f"{operation.get('errorCode')}",
                operation["status"],
                operation.get("errorCode"),
            )
        seen, errors = set(), {}
        for line in self._result_lines(client, operation.get("url"), purpose):
            gid = gids[int(line["__lineNumber"])]
            seen.add(gid)
            payload = (line.get("data") or {}).get(direction.field) or {}
            problems = [e["message"] for e in payload.get("userErrors") or []]
            problems += [e["message"] for e in line.get("errors") or []]
            if problems:
                errors[gid] = "; ".join(problems)
        if len(seen) != len(gids):
            raise DownloadError(f"{purpose}: its result answers {len(seen)} of {len(gids)} customers")
        return errors

    def _result_lines(self, client: ShopifyClient, url: str | None, purpose: str) -> Iterator[dict]:
        if url is None:
            return
        with tempfile.TemporaryDirectory(prefix="smsseg-tags-") as folder:
            part = Path(folder) / "result.jsonl"
            client.download(url, part, purpose, rerun="rerun the export")
            with part.open(encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        yield json.loads(line)

    def _shopify(self) -> ShopifyClient:
        if self._client is None:
            self._client = ShopifyClient(
                self.store,
                self.token,
                self.api_version,
                timeout=self.timeout_seconds,
                retry=self.retry_policy,
                poll_interval_s=self.poll_interval_seconds,
                poll_timeout_s=self.poll_timeout_seconds,
                sleep=self._sleep,
            )
        return self._client

    @contextmanager
    def _gateway_errors(self, what: str) -> Iterator[None]:
        """Shopify's failures as the sync understands them: retryable when resending may still land."""
        try:
            yield
        except (ShopifyRetriesExhausted, BulkOperationFailed, DownloadError) as exc:
            raise GatewayError(f"{what}: {exc}", retryable=True) from None
        except ShopifyError as exc:  # the token, its scopes, the store's address, a refused request
            raise GatewayError(f"{what}: {exc}", retryable=False) from None


def _gid(customer_id: int | str) -> str:
    return f"gid://shopify/Customer/{int(customer_id)}"


def _number(gid: str) -> int:
    return int(gid.rsplit("/", 1)[-1])


def _tag_search(tag: str) -> str:
    """Shopify's search syntax for customers carrying `tag`, quoted so a colon or space stays in the tag."""
    return "tag:'" + tag.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
