"""Klaviyo as an audience destination: a segment's numbers become the profiles of a Klaviyo list.

Follows the published API at the pinned revision (github.com/klaviyo/openapi, openapi/stable.json):
  list      Get Lists (filter=equals(name,"...")), Get List, Create List
  adds      Bulk Import Profiles (POST /api/profile-bulk-import-jobs, the list as its relationship),
            polled with Get Bulk Import Profiles Job, its rows' failures from Get Import Errors
  removes   Remove Profiles from List (DELETE /api/lists/{id}/relationships/profiles), by profile id
  members   Get Profiles for List, filtered by phone_number or paged through
  ids       Get Profiles, filtered by phone_number, for the profiles an import made

Klaviyo has no Idempotency-Key, so every batch first asks the list which of its numbers it already
holds (and their profile ids): those are imported without the list relationship (their properties
still update) and only the others join the list, so a replayed batch adds nobody twice. Membership
never touches consent: no subscriptions field is ever sent, and removing from a list leaves a
profile's SMS consent as it was (the API says so of Remove Profiles from List).
"""

import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow as pa
from dagster import get_dagster_logger
from pydantic import Field, PrivateAttr

from pipeline.audience.gateways import (
    AudienceTarget,
    BatchResult,
    GatewayError,
    HeldMember,
    RetryingGateway,
    required_env,
)
from pipeline.audience.limits import Limit, SharedLimits
from pipeline.settings import SettingsError, data_dir_from, limits_dir_from, usable_limits_dir

log = get_dagster_logger(__name__)  # inside a step, its lines reach the run log

DEFAULT_URL = "https://a.klaviyo.com"
REVISION = "2026-07-15"  # the GA revision of klaviyo/openapi's main branch (info.version of stable.json)
MEDIA_TYPE = "application/vnd.api+json"
# the documented limits of the operations used
MAX_IMPORT_PROFILES = 10_000  # Bulk Import Profiles: "up to 10,000 profiles per request"
MAX_IMPORT_BYTES = 5 * 1024 * 1024  # "The maximum allowed payload size is 5MB"
MAX_REMOVE_PROFILES = 1000  # Remove Profiles from List: "a maximum of 1000 profiles per call"
PAGE_SIZE = 100  # page[size] max of Get Profiles for List and Get Import Errors
# operation -> (burst per second, steady per minute), x-klaviyo-ratelimit of each operation; they are
# the account's, shared by every process using its key (pipeline/audience/limits.py)
RATE_LIMITS = {
    "get_lists": (75, 750),
    "get_list": (75, 750),
    "create_list": (10, 150),
    "get_profiles_for_list": (75, 750),
    "get_profiles": (75, 750),
    "remove_profiles_from_list": (10, 150),
    "bulk_import_profiles": (10, 150),
    "get_bulk_import_profiles_job": (10, 150),
    "get_errors_for_bulk_import_profiles_job": (10, 150),
}
SCOPES = ("lists:read", "lists:write", "profiles:read", "profiles:write")  # what the operations used need
# a member's columns that become profile attributes; every other column is a custom property
ATTRIBUTES = {
    "phone": "phone_number",
    "customer_id": "external_id",
    "first_name": "first_name",
    "last_name": "last_name",
}


class KlaviyoGateway(RetryingGateway):
    """A Klaviyo account, through its private API key (`Authorization: Klaviyo-API-Key ...`).

    Every request first takes its slot under the account's rate limits, from a log shared by every
    process using the key (SharedLimits in `limits_dir`), so shops on one account together stay
    within them; a 429 all the same (another app using the key) is retried as every HTTP gateway
    does (RetryingGateway). Any other 4xx fails at once with Klaviyo's own error details. The key
    never reaches a log line, an error message, a repr or a file name.
    """

    url: str = DEFAULT_URL
    api_key: str = Field(repr=False, description="private API key; pass EnvVar('KLAVIYO_API_KEY')")
    revision: str = REVISION
    poll_seconds: float = 1.0  # between two looks at an import job still queued or processing
    poll_attempts: int = 120  # looks at one job before the batch fails (and the next run replays it)
    max_pages: int = 1_000_000  # pages of list members read at most: 100M members, so the loop is bounded
    limits_dir: str = Field(
        default="",
        description="where the account's rate limits are shared; empty: SMSSEG_LIMITS_DIR, else "
        "<SMSSEG_DATA_DIR or data>/limits",
    )
    _limits: SharedLimits | None = PrivateAttr(default=None)
    _lists: dict[str, str] = PrivateAttr(default_factory=dict)  # list name -> id, found or created this process
    _jobs: dict[str, list[str]] = PrivateAttr(default_factory=dict)  # idempotency key -> import jobs it started

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **options: float) -> "KlaviyoGateway":
        """A gateway from KLAVIYO_API_KEY, KLAVIYO_API_URL, KLAVIYO_REVISION and SMSSEG_LIMITS_DIR, outside Dagster."""
        env = os.environ if env is None else env
        required_env(env, ("KLAVIYO_API_KEY",), "the klaviyo gateway needs a private API key in the environment")
        return cls(
            api_key=env["KLAVIYO_API_KEY"],
            url=env.get("KLAVIYO_API_URL") or DEFAULT_URL,
            revision=env.get("KLAVIYO_REVISION") or REVISION,
            limits_dir=str(limits_dir_from(data_dir_from(None, env), env)),
            **options,
        )

    @property
    def destination(self) -> str:
        return "klaviyo"

    def same_audience(self, before: AudienceTarget, after: AudienceTarget) -> bool:
        """A list is found by its name: another name is another list."""
        return before.list_name == after.list_name

    def upsert_audience(self, target: AudienceTarget, known_id: str | None = None) -> str | None:
        """The id of the list named `target.list_name`: `known_id` while it has that name, else found or created."""
        name = target.list_name
        if known_id:
            known = self._call(
                "get_list", "GET", f"/api/lists/{known_id}", params={"fields[list]": "name"}, missing_ok=True
            )
            if known is not None and known["data"]["attributes"].get("name") == name:
                self._lists[name] = known_id
                return known_id
        list_id = self._find_list(name)
        if list_id is None:
            body = {"data": {"type": "list", "attributes": {"name": name}}}
            list_id = self._call("create_list", "POST", "/api/lists", body=body)["data"]["id"]
            log.info("klaviyo: created list %s for segment %s", list_id, target.segment)
        self._lists[name] = list_id
        return list_id

    def send_batch(
        self, target: AudienceTarget, adds: list[dict], removes: list[dict], idempotency_key: str
    ) -> BatchResult:
        list_id = self._list_id(target)
        # a batch resent in this process: its earlier jobs must finish before the list says who it holds
        for job_id in self._jobs.get(idempotency_key, []):
            self._await_job(job_id, idempotency_key)
        held = self._held(list_id, [m["phone"] for m in adds])
        joining = [m for m in adds if m["phone"] not in held]
        # every job's body first, so a batch too big for Klaviyo is refused before any of it is sent
        jobs = []
        for members, to_list in ((joining, list_id), ([m for m in adds if m["phone"] in held], None)):
            for start in range(0, len(members), MAX_IMPORT_PROFILES):
                chunk = members[start : start + MAX_IMPORT_PROFILES]
                jobs.append((chunk, _job_body(chunk, to_list, idempotency_key)))
        rejected: dict[str, str] = {}
        for chunk, body in jobs:
            rejected.update(self._import(chunk, body, idempotency_key))
        # a number Get Profiles does not find goes without an id: its remove will look it up on the list
        ids = {**held, **self._profile_ids([m["phone"] for m in joining if m["phone"] not in rejected])}
        self._remove(list_id, removes, idempotency_key)
        return BatchResult(
            added=len(adds) - len(rejected),
            removed=len(removes),
            rejected=sorted(rejected.items()),
            ids={phone: pid for phone, pid in ids.items() if phone not in rejected},
        )

    def list_members(self, target: AudienceTarget) -> list[HeldMember]:
        list_id = self._lists.get(target.list_name) or self._find_list(target.list_name)
        if list_id is None:
            return []
        params = {"fields[profile]": "phone_number,external_id", "page[size]": str(PAGE_SIZE)}
        members = []
        for profile in self._pages("get_profiles_for_list", f"/api/lists/{list_id}/profiles", params):
            attributes = profile["attributes"]
            external = attributes.get("external_id") or ""
            members.append(
                HeldMember(
                    phone=attributes.get("phone_number") or "",
                    customer_id=int(external) if external.isdigit() else None,
                    destination_id=profile["id"],
                )
            )
        return members

    def finish(self, target: AudienceTarget, as_of: dt.date, members: pa.Table) -> None:
        """Nothing to do: the list already holds the audience."""

    def _list_id(self, target: AudienceTarget) -> str:
        return self._lists.get(target.list_name) or self.upsert_audience(target)

    def _find_list(self, name: str) -> str | None:
        if '"' in name or "\\" in name:
            raise GatewayError(
                f"list name {name!r} (sms.list): Klaviyo's filter syntax cannot look up a name "
                "with a double quote or backslash; rename the list",
                retryable=False,
            )
        found = self._call(
            "get_lists", "GET", "/api/lists", params={"filter": f'equals(name,"{name}")', "fields[list]": "name"}
        )["data"]
        if len(found) > 1:
            raise GatewayError(
                f"Klaviyo holds {len(found)} lists named {name!r} ({', '.join(x['id'] for x in found)}):"
                " rename or delete all but one, or give the segment another sms.list",
                retryable=False,
            )
        return found[0]["id"] if found else None

    def _held(self, list_id: str, phones: list[str]) -> dict[str, str]:
        """phone -> profile id of those of `phones` the list holds (Get Profiles for List)."""
        return self._lookup("get_profiles_for_list", f"/api/lists/{list_id}/profiles", phones)

    def _profile_ids(self, phones: list[str]) -> dict[str, str]:
        """phone -> profile id of those of `phones` the account holds (Get Profiles).

        After an import every number has its profile, so any profile lookup will do: this one has a
        rate limit of its own, beside the list lookup's, and halves the time the limits allow a night.
        """
        return self._lookup("get_profiles", "/api/profiles", phones)

    def _lookup(self, operation: str, path: str, phones: list[str]) -> dict[str, str]:
        """phone -> profile id from `path` filtered on `phones`, PAGE_SIZE numbers (one full page) a request."""
        found = {}
        for start in range(0, len(phones), PAGE_SIZE):
            chunk = phones[start : start + PAGE_SIZE]
            params = {
                "filter": f"any(phone_number,{json.dumps(chunk, separators=(',', ':'))})",
                "fields[profile]": "phone_number",
                "page[size]": str(PAGE_SIZE),
            }
            for profile in self._pages(operation, path, params):
                found[profile["attributes"]["phone_number"]] = profile["id"]
        return found

    def _import(self, members: list[dict], body: bytes, key: str) -> dict[str, str]:
        """Runs one import job of `members` and waits for it; returns phone -> why its row failed."""
        job = self._call("bulk_import_profiles", "POST", "/api/profile-bulk-import-jobs", content=body, batch=key)
        job_id = job["data"]["id"]
        self._jobs.setdefault(key, []).append(job_id)
        if not self._await_job(job_id, key).get("failed_count"):
            return {}
        rejected = {}
        errors = f"/api/profile-bulk-import-jobs/{job_id}/import-errors"
        for error in self._pages("get_errors_for_bulk_import_profiles_job", errors, {"page[size]": str(PAGE_SIZE)}):
            attributes = error["attributes"]
            phone = (attributes.get("original_payload") or {}).get("phone_number") or _row_phone(
                members, (attributes.get("source") or {}).get("pointer") or ""
            )
            if phone:
                rejected[phone] = f"{attributes.get('title')}: {attributes.get('detail')}"
            else:
                log.warning("klaviyo: batch %s: an import error names no row: %s", key, attributes.get("code"))
        return rejected

    def _await_job(self, job_id: str, key: str) -> dict:
        """The job's attributes once complete; a cancelled job, or one running after poll_attempts, fails the batch."""
        for poll in range(1, self.poll_attempts + 1):
            attributes = self._call(
                "get_bulk_import_profiles_job", "GET", f"/api/profile-bulk-import-jobs/{job_id}", batch=key
            )["data"]["attributes"]
            if attributes["status"] == "complete":
                return attributes
            if attributes["status"] == "cancelled":
                raise GatewayError(f"batch {key}: Klaviyo cancelled import job {job_id}", retryable=True)
            if poll < self.poll_attempts:
                self._sleep(self.poll_seconds)
        raise GatewayError(
            f"batch {key}: import job {job_id} still {attributes['status']} after {self.poll_attempts} "
            "looks; the next run checks the list before importing again",
            retryable=True,
        )

    def _remove(self, list_id: str, removes: list[dict], key: str) -> None:
        ids = [r["destination_id"] for r in removes if r.get("destination_id")]
        unknown = [r["phone"] for r in removes if not r.get("destination_id")]
        ids.extend(self._held(list_id, unknown).values())  # one not on the list is already removed
        for start in range(0, len(ids), MAX_REMOVE_PROFILES):
            body = {"data": [{"type": "profile", "id": pid} for pid in ids[start : start + MAX_REMOVE_PROFILES]]}
            self._call(
                "remove_profiles_from_list",
                "DELETE",
                f"/api/lists/{list_id}/relationships/profiles",
                body=body,
                batch=key,
            )

    def _pages(self, operation: str, path: str, params: dict[str, str]) -> Iterator[dict]:
        """The `data` of every page, following links.next, at most max_pages pages."""
        reply = self._call(operation, "GET", path, params=params)
        for _ in range(self.max_pages):
            yield from reply["data"]
            following = (reply.get("links") or {}).get("next")
            if not following:
                return
            reply = self._call(operation, "GET", following)
        raise GatewayError(f"{operation} {path}: still more after {self.max_pages} pages", retryable=True)

    def _call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        body: dict | None = None,
        content: bytes | None = None,
        batch: str | None = None,
        missing_ok: bool = False,
    ) -> dict | None:
        """One API request, retried as RetryingGateway does: its JSON reply, None for 204 (or a 404 when missing_ok)."""
        headers = {"Authorization": f"Klaviyo-API-Key {self.api_key}", "revision": self.revision, "accept": MEDIA_TYPE}
        request = {"params": params, "headers": headers}
        if body is not None or content is not None:
            headers["content-type"] = MEDIA_TYPE
            request["content"] = content if content is not None else json.dumps(body).encode()
        what = f"klaviyo {operation}" + (f" (batch {batch})" if batch else "")
        response = self._send(what, method, path, self._describe, pace=lambda: self._pace(operation), **request)
        if response.status_code == 404 and missing_ok:
            return None
        if response.status_code >= 300:
            message = self._describe(response)
            if response.status_code in (401, 403):
                message += f" (check KLAVIYO_API_KEY and its scopes: {', '.join(SCOPES)})"
            elif response.status_code == 413:
                message += " (send smaller batches: lower SMSSEG_BATCH_SIZE)"
            raise GatewayError(f"{what}: Klaviyo refused it with {response.status_code}: {message}", retryable=False)
        if response.status_code == 204:
            return None
        try:
            return response.json()
        except ValueError:  # a 2xx that is not JSON: it may have landed, so only a replay is safe
            raise GatewayError(f"{what}: Klaviyo replied {response.status_code} without JSON", retryable=True) from None

    def _pace(self, operation: str) -> None:
        """Waits for the operation's next slot under the account's limits, taken for this attempt."""
        wait = self._shared_limits().take(operation, self.max_wait_seconds)
        if wait >= 1:  # burst pacing waits under a second thousands of times a night: only longer waits are news
            log.info(
                "klaviyo %s: waiting %.1f s for its turn under the account's limits (%s), shared by every "
                "process using this key",
                operation,
                wait,
                self._shared_limits().describe(operation),
            )
        if wait > 0:
            self._sleep(wait)

    def _shared_limits(self) -> SharedLimits:
        """The account's limits log: <limits dir>/klaviyo-<sha256 of the key, 16 hex>.sqlite, never the key itself."""
        if self._limits is None:
            folder = Path(self.limits_dir) if self.limits_dir else limits_dir_from(data_dir_from(None))
            try:
                usable_limits_dir(folder)
            except SettingsError as exc:
                raise GatewayError(str(exc), retryable=False) from None
            account = hashlib.sha256(self.api_key.encode()).hexdigest()[:16]
            limits = {op: (Limit(burst, 1.0), Limit(steady, 60.0)) for op, (burst, steady) in RATE_LIMITS.items()}
            self._limits = SharedLimits(folder / f"klaviyo-{account}.sqlite", limits)
        return self._limits

    def _describe(self, response: httpx.Response) -> str:
        """Klaviyo's JSON:API errors in a line, minus the key should a reply ever echo it."""
        try:
            errors = response.json()["errors"]
            text = "; ".join(
                f"{e.get('title')} {e.get('detail')}" + (f" at {_where(e)}" if _where(e) else "") for e in errors
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            text = response.text
        return (str(text)[:500] or response.reason_phrase).replace(self.api_key, "***")


def _job_body(members: list[dict], list_id: str | None, key: str) -> bytes:
    """A Bulk Import Profiles request of `members`, to the list when `list_id`; refused here when over 5 MB."""
    body = {
        "data": {
            "type": "profile-bulk-import-job",
            "attributes": {"profiles": {"data": [_profile(m) for m in members]}},
        }
    }
    if list_id:
        body["data"]["relationships"] = {"lists": {"data": [{"type": "list", "id": list_id}]}}
    content = json.dumps(body).encode()
    if len(content) > MAX_IMPORT_BYTES:
        raise GatewayError(
            f"batch {key}: {len(members)} profiles make {len(content)} bytes, over Klaviyo's 5 MB a "
            "bulk import; lower SMSSEG_BATCH_SIZE (or export fewer fields)",
            retryable=False,
        )
    return content


def _profile(member: dict) -> dict:
    """A profile resource of the bulk import: E.164 phone, Shopify customer id, names, and the rest as properties.

    No subscriptions: list membership is not consent, and consent is Shopify's to record.
    """
    attributes: dict = {}
    properties = {}
    for column, value in member.items():
        if value is None:
            continue
        if column in ATTRIBUTES:
            attributes[ATTRIBUTES[column]] = str(value)
        elif column == "country":
            attributes["location"] = {"country": value}
        else:
            properties[column] = value
    if properties:
        attributes["properties"] = properties
    return {"type": "profile", "attributes": attributes}


def _row_phone(members: list[dict], pointer: str) -> str | None:
    """The phone of the row an import error's pointer names (/data/attributes/profiles/data/<row>/...)."""
    parts = pointer.split("/")
    if len(parts) > 5 and parts[:5] == ["", "data", "attributes", "profiles", "data"] and parts[5].isdigit():
        row = int(parts[5])
        return members[row]["phone"] if row < len(members) else None
    return None


def _where(error: dict) -> str:
    source = error.get("source") or {}
    return source.get("pointer") or source.get("parameter") or ""
