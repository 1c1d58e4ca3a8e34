"""A loopback Klaviyo for tests and benchmarks: the operations KlaviyoGateway uses, as the published API has them.

JSON:API documents; a private key (401 without it) and a `revision` header (400 without it) on
every request; the documented page sizes, batch and payload limits; fixed-window rate limits per
operation (burst 1 s, steady 1 min, the x-klaviyo-ratelimit of each) with RateLimit-* headers and
Retry-After on 429; errors as {"errors": [{id, status, code, title, detail, source}]}; import
jobs that go queued -> processing -> complete (or cancelled) and record per-row import errors.

A job completes after `Faults.job_polls` looks at it, or at the first request `Faults.job_seconds`
after it was created, whoever asks (so a killed client's job lands, as at Klaviyo). Each import of
a phone with the list as relationship counts as an add of it to that list, so a test can prove no
number was added twice; and each 429 it answers is counted, so a test can prove clients kept the limits.

Faults are a script of steps cycled over API requests, as in the gateway emulator:
  ok, 429 (Retry-After, nothing applied), 500 (503, nothing applied), drop (connection closed,
  nothing applied), drop_after (applied, then the connection closed)
plus `fail_rows` (phone -> import error detail), `cancel_jobs` and `slow_seconds`.
"""

import base64
import datetime as dt
import itertools
import json
import math
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

from pipeline.audience.klaviyo import (
    MAX_IMPORT_BYTES,
    MAX_IMPORT_PROFILES,
    MAX_REMOVE_PROFILES,
    RATE_LIMITS,
)
from pipeline.loopback import EmulatorHandler, LoopbackServer

STEPS = ("ok", "429", "500", "drop", "drop_after")
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
REVISION_FORMAT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(\.[a-z0-9]+)?")
PROFILE_ATTRIBUTES = {
    "email",
    "phone_number",
    "external_id",
    "_kx",
    "first_name",
    "last_name",
    "organization",
    "locale",
    "title",
    "image",
    "location",
    "properties",
}
LOCATION_FIELDS = {
    "address1",
    "address2",
    "city",
    "country",
    "latitude",
    "longitude",
    "region",
    "zip",
    "timezone",
    "ip",
}
READ_ATTRIBUTES = {
    "email",
    "phone_number",
    "external_id",
    "first_name",
    "last_name",
    "organization",
    "locale",
    "title",
    "image",
    "created",
    "updated",
    "last_event_date",
    "location",
    "properties",
    "joined_group_at",
}
MAX_PAGE = {
    "get_lists": 10,
    "get_profiles_for_list": 100,
    "get_profiles": 100,
    "get_errors_for_bulk_import_profiles_job": 100,
}
MAX_PROFILE_BYTES = 100 * 1024  # "The maximum allowed payload size per-profile is 100KB"
ROUTES = [  # (method, path pattern, operation)
    ("GET", re.compile(r"/api/lists"), "get_lists"),
    ("POST", re.compile(r"/api/lists"), "create_list"),
    ("GET", re.compile(r"/api/lists/(?P<id>[^/]+)"), "get_list"),
    ("GET", re.compile(r"/api/lists/(?P<id>[^/]+)/profiles"), "get_profiles_for_list"),
    ("GET", re.compile(r"/api/profiles"), "get_profiles"),
    ("DELETE", re.compile(r"/api/lists/(?P<id>[^/]+)/relationships/profiles"), "remove_profiles_from_list"),
    ("POST", re.compile(r"/api/profile-bulk-import-jobs"), "bulk_import_profiles"),
    ("GET", re.compile(r"/api/profile-bulk-import-jobs/(?P<id>[^/]+)"), "get_bulk_import_profiles_job"),
    (
        "GET",
        re.compile(r"/api/profile-bulk-import-jobs/(?P<id>[^/]+)/import-errors"),
        "get_errors_for_bulk_import_profiles_job",
    ),
]


@dataclass
class Faults:
    script: list[str] = field(default_factory=list)  # steps cycled over API requests; empty: always ok
    retry_after: str = "1"  # the Retry-After of a scripted 429, in seconds
    fail_rows: dict[str, str] = field(default_factory=dict)  # phone -> the import error's detail
    cancel_jobs: bool = False  # every new import job is cancelled instead of run
    job_polls: int = 1  # looks at a job before it completes
    job_seconds: float = 0.0  # or, whichever first, the age at which any request completes it
    slow_seconds: float = 0.0  # every API reply waits this long after applying (a kill test's window)

    def __post_init__(self) -> None:
        unknown = [s for s in self.script if s not in STEPS]
        if unknown:
            raise ValueError(f"fault steps {unknown}: expected some of {', '.join(STEPS)}")


class ApiError(Exception):
    """A reply in Klaviyo's error format."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str,
        *,
        pointer: str | None = None,
        parameter: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(detail)
        source = {"pointer": pointer} if pointer else {"parameter": parameter} if parameter else {}
        self.status, self.headers = status, headers or {}
        self.body = {
            "errors": [
                {
                    "id": str(uuid.uuid4()),
                    "status": status,
                    "code": code,
                    "title": title,
                    "detail": detail,
                    "source": source,
                }
            ]
        }


def invalid(detail: str, **source: str) -> ApiError:
    return ApiError(400, "invalid", "Invalid input.", detail, **source)


class KlaviyoEmulator(LoopbackServer):
    """Klaviyo on 127.0.0.1 at an ephemeral port (or `port`); `rate_limits=False` lifts the documented limits."""

    def __init__(
        self,
        api_key: str,
        *,
        faults: Faults | None = None,
        port: int = 0,
        rate_limits: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.api_key = api_key
        self.rate_limits = rate_limits
        self.clock = clock  # seconds for rate windows and job ages; a test may drive its own
        self._lock = threading.Lock()
        self._faults = faults or Faults()
        self._steps = itertools.cycle(self._faults.script or ["ok"])
        self._ids = itertools.count(1)
        self.lists: dict[str, dict] = {}  # id -> {"name", "created", "members": {profile id: joined_at}}
        self.profiles: dict[str, dict] = {}  # id -> attributes
        self._by_phone: dict[str, str] = {}
        self.jobs: dict[str, dict] = {}
        self.add_counts: Counter[tuple[str, str]] = Counter()  # (list id, phone) -> imports that added it
        self.received: Counter[str] = Counter()  # operation -> API requests received, throttled ones included
        self.throttled: Counter[str] = Counter()  # operation -> 429s answered, by the rate limits or the script
        self._windows: dict[tuple[str, int], tuple[int, int]] = {}  # (operation, window seconds) -> (start, count)
        super().__init__(_handler(self), port=port, name="klaviyo-emulator")

    def set_faults(self, faults: Faults) -> None:
        with self._lock:
            self._faults = faults
            self._steps = itertools.cycle(faults.script or ["ok"])

    def list_id(self, name: str) -> str | None:
        with self._lock:
            return next((i for i, x in self.lists.items() if x["name"] == name), None)

    def members(self, name: str) -> dict[str, str]:
        """phone -> profile id of every member of the list named `name`."""
        with self._lock:
            self._settle_jobs()
            found = next((x for x in self.lists.values() if x["name"] == name), {"members": {}})
            return {self.profiles[pid]["phone_number"]: pid for pid in found["members"]}

    def adds_of(self, name: str) -> dict[str, int]:
        """phone -> how many imports added it to the list named `name`."""
        list_id = self.list_id(name)
        with self._lock:
            return {phone: n for (lid, phone), n in self.add_counts.items() if lid == list_id}

    def finish_jobs(self) -> None:
        """Runs every import job still queued or processing, as Klaviyo would in time."""
        with self._lock:
            for job in self.jobs.values():
                if job["status"] in ("queued", "processing"):
                    self._run_job(job)

    def add_profile(self, phone: str, list_name: str | None = None) -> str:
        """A profile already in the account (and on `list_name`), as a shop's earlier Klaviyo use leaves."""
        with self._lock:
            pid = self._upsert_profile({"phone_number": phone})
            if list_name:
                list_id = next(i for i, x in self.lists.items() if x["name"] == list_name)
                self.lists[list_id]["members"][pid] = _now()
            return pid

    # --- request handling, under the lock ---

    def _step(self) -> tuple[str, Faults]:
        with self._lock:
            return next(self._steps), self._faults

    def _throttle(self, operation: str) -> dict[str, str]:
        """The RateLimit-* headers of the steady window; raises the 429 when a burst or steady window is full."""
        burst, steady = RATE_LIMITS[operation]
        now = self.clock()
        state = {}
        for seconds, limit in ((1, burst), (60, steady)):
            start, count = self._windows.get((operation, seconds), (now, 0))
            if now - start >= seconds:
                start, count = now, 0
            state[seconds] = (start, count, limit)
        if self.rate_limits:
            for seconds, (start, count, limit) in state.items():
                if count >= limit:
                    self.throttled[operation] += 1
                    wait = max(1, math.ceil(start + seconds - now))
                    raise ApiError(
                        429,
                        "throttled",
                        "Request was throttled.",
                        f"Request was throttled. Expected available in {wait} seconds.",
                        headers={"Retry-After": str(wait)},
                    )
        for seconds, (start, count, _) in state.items():
            self._windows[(operation, seconds)] = (start, count + 1)
        start, count, limit = state[60]
        return {
            "RateLimit-Limit": str(limit),
            "RateLimit-Remaining": str(max(limit - count - 1, 0)),
            "RateLimit-Reset": str(max(0, math.ceil(start + 60 - now))),
        }

    def _dispatch(
        self, operation: str, ids: dict, query: dict[str, list[str]], body: dict | None, base: str, faults: Faults
    ) -> tuple[int, dict | None]:
        self._settle_jobs()
        if operation == "get_lists":
            return 200, self._get_lists(query, base)
        if operation == "create_list":
            return 201, self._create_list(body)
        if operation == "get_list":
            return 200, {"data": self._list_resource(self._list(ids["id"]))}
        if operation == "get_profiles_for_list":
            return 200, self._profiles(operation, self._list(ids["id"]), query, base)
        if operation == "get_profiles":
            return 200, self._profiles(operation, None, query, base)
        if operation == "remove_profiles_from_list":
            self._remove(self._list(ids["id"]), body)
            return 204, None
        if operation == "bulk_import_profiles":
            return 202, {"data": self._job_resource(self._create_job(body, faults))}
        job = self.jobs.get(ids["id"])
        if job is None:
            raise ApiError(404, "not_found", "Not found.", f"A job with id {ids['id']} does not exist.")
        if operation == "get_bulk_import_profiles_job":
            job["polls"] += 1
            self._settle_jobs()
            return 200, {"data": self._job_resource(job)}
        return 200, _page(job["errors"], query, operation, base, lambda e: e)

    def _get_lists(self, query: dict[str, list[str]], base: str) -> dict:
        lists = list(self.lists.values())
        if "filter" in query:
            field_name, values = _filter(query["filter"][0], {"name", "id"})
            lists = [x for x in lists if x[field_name] in values]
        return _page(lists, query, "get_lists", base, self._list_resource)

    def _create_list(self, body: dict | None) -> dict:
        data = _resource(body, "list")
        attributes = data.get("attributes") or {}
        for name in attributes:
            if name not in ("name", "opt_in_process"):
                raise invalid(
                    f"'{name}' is not a valid field for the resource 'list'.", pointer=f"/data/attributes/{name}"
                )
        if not isinstance(attributes.get("name"), str) or not attributes["name"]:
            raise invalid("'name' is a required field for the resource 'list'.", pointer="/data/attributes/name")
        list_id = f"L{next(self._ids):05d}"
        self.lists[list_id] = {"id": list_id, "name": attributes["name"], "created": _now(), "members": {}}
        return {"data": self._list_resource(self.lists[list_id])}

    def _list(self, list_id: str) -> dict:
        if list_id not in self.lists:
            raise ApiError(404, "not_found", "Not found.", f"A list with id {list_id} does not exist.")
        return self.lists[list_id]

    def _profiles(self, operation: str, found: dict | None, query: dict[str, list[str]], base: str) -> dict:
        """Get Profiles for List (`found`) or, without one, Get Profiles: sparse fields, a phone filter, pages."""
        wanted = None
        if "fields[profile]" in query:
            wanted = query["fields[profile]"][0].split(",")
            unknown = [f for f in wanted if f not in READ_ATTRIBUTES or (found is None and f == "joined_group_at")]
            if unknown:
                raise invalid(
                    f"'{unknown[0]}' is not a valid field for the resource 'profile'.", parameter="fields[profile]"
                )
        held = found["members"] if found is not None else self.profiles
        if "filter" in query:  # by the numbers, not by a scan of the list: a lookup stays cheap on a big list
            _, phones = _filter(query["filter"][0], {"phone_number"})
            pids = sorted({pid for phone in phones if (pid := self._by_phone.get(phone)) in held})
        else:
            pids = list(held)

        def resource(pid: str) -> dict:
            attributes = dict(self.profiles[pid])
            if found is not None:
                attributes["joined_group_at"] = found["members"][pid]
            if wanted is not None:
                attributes = {k: v for k, v in attributes.items() if k in wanted}
            return {
                "type": "profile",
                "id": pid,
                "attributes": attributes,
                "links": {"self": f"{base}/api/profiles/{pid}/"},
            }

        return _page(pids, query, operation, base, resource)

    def _remove(self, found: dict, body: dict | None) -> None:
        data = (body or {}).get("data")
        if not isinstance(data, list):
            raise invalid("'data' must be a list of profile identifiers.", pointer="/data")
        if len(data) > MAX_REMOVE_PROFILES:
            raise invalid(
                f"A maximum of {MAX_REMOVE_PROFILES} profiles can be removed per request; got {len(data)}.",
                pointer="/data",
            )
        for i, item in enumerate(data):
            if not isinstance(item, dict) or item.get("type") != "profile" or not isinstance(item.get("id"), str):
                raise invalid("Each item must be a profile resource identifier.", pointer=f"/data/{i}")
        for item in data:
            found["members"].pop(item["id"], None)

    def _create_job(self, body: dict | None, faults: Faults) -> dict:
        data = _resource(body, "profile-bulk-import-job")
        profiles = ((data.get("attributes") or {}).get("profiles") or {}).get("data")
        if not isinstance(profiles, list) or not profiles:
            raise invalid("'profiles' must hold at least one profile.", pointer="/data/attributes/profiles/data")
        if len(profiles) > MAX_IMPORT_PROFILES:
            raise invalid(
                f"A maximum of {MAX_IMPORT_PROFILES} profiles can be imported per job; got {len(profiles)}.",
                pointer="/data/attributes/profiles/data",
            )
        for i, profile in enumerate(profiles):
            _check_profile(profile, f"/data/attributes/profiles/data/{i}")
        lists = ((data.get("relationships") or {}).get("lists") or {}).get("data") or []
        for i, item in enumerate(lists):
            if item.get("type") != "list" or item.get("id") not in self.lists:
                raise ApiError(
                    404,
                    "not_found",
                    "Not found.",
                    f"A list with id {item.get('id')} does not exist.",
                    pointer=f"/data/relationships/lists/data/{i}",
                )
        job_id = f"J{next(self._ids):05d}"
        self.jobs[job_id] = {
            "id": job_id,
            "status": "cancelled" if faults.cancel_jobs else "queued",
            "created": self.clock(),
            "created_at": _now(),
            "polls": 0,
            "profiles": profiles,
            "lists": [x["id"] for x in lists],
            "errors": [],
            "profile_ids": [],
            "fail_rows": dict(faults.fail_rows),
            "job_polls": faults.job_polls,
            "job_seconds": faults.job_seconds,
        }
        return self.jobs[job_id]

    def _settle_jobs(self) -> None:
        """Moves jobs on: a looked-at queued job is processing; one old or looked at enough is run and complete."""
        now = self.clock()
        for job in self.jobs.values():
            if job["status"] not in ("queued", "processing"):
                continue
            if job["polls"] >= job["job_polls"] or now - job["created"] >= job["job_seconds"]:
                self._run_job(job)
            elif job["polls"]:
                job["status"] = "processing"

    def _run_job(self, job: dict) -> None:
        for i, profile in enumerate(job["profiles"]):
            attributes = profile["attributes"]
            phone = attributes.get("phone_number")
            reason = job["fail_rows"].get(phone) if phone else None
            if reason is None and phone is not None and not E164.fullmatch(phone):
                reason = f"Invalid phone number format (Example of a valid format: +13239169023): {phone}"
            if reason is None and not (phone or attributes.get("email") or attributes.get("external_id")):
                reason = "A profile requires an email, phone_number or external_id."
            if reason:
                job["errors"].append(
                    {
                        "type": "import-error",
                        "id": str(uuid.uuid4()),
                        "attributes": {
                            "code": "invalid",
                            "title": "Invalid input.",
                            "detail": reason,
                            "source": {"pointer": f"/data/attributes/profiles/data/{i}/attributes/phone_number"},
                            "original_payload": attributes,
                        },
                    }
                )
                continue
            pid = self._upsert_profile(attributes)
            job["profile_ids"].append(pid)
            for list_id in job["lists"]:
                self.lists[list_id]["members"].setdefault(pid, _now())
                self.add_counts[(list_id, phone)] += 1
        job.update(status="complete", completed_at=_now(), profiles=[])

    def _upsert_profile(self, attributes: dict) -> str:
        phone = attributes.get("phone_number")
        pid = self._by_phone.get(phone) if phone else None
        if pid is None:
            pid = f"01K{uuid.uuid4().hex[:23].upper()}"
            self.profiles[pid] = {"created": _now()}
            if phone:
                self._by_phone[phone] = pid
        profile = self.profiles[pid]
        properties = {**profile.get("properties", {}), **attributes.get("properties", {})}
        profile.update(
            {k: v for k, v in attributes.items() if k != "properties"}, properties=properties, updated=_now()
        )
        return pid

    def _list_resource(self, found: dict) -> dict:
        return {
            "type": "list",
            "id": found["id"],
            "attributes": {
                "name": found["name"],
                "created": found["created"],
                "updated": found["created"],
                "opt_in_process": "single_opt_in",
            },
            "links": {"self": f"/api/lists/{found['id']}/"},
        }

    def _job_resource(self, job: dict) -> dict:
        total = len(job["profiles"]) if job["status"] != "complete" else len(job["profile_ids"]) + len(job["errors"])
        attributes = {
            "status": job["status"],
            "created_at": job["created_at"],
            "total_count": total,
            "completed_count": len(job["profile_ids"]),
            "failed_count": len(job["errors"]),
            "completed_at": job.get("completed_at"),
            "expires_at": None,
            "started_at": job["created_at"],
        }
        return {
            "type": "profile-bulk-import-job",
            "id": job["id"],
            "attributes": attributes,
            "relationships": {"lists": {"data": [{"type": "list", "id": i} for i in job["lists"]]}},
            "links": {"self": f"/api/profile-bulk-import-jobs/{job['id']}/"},
        }


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _resource(body: dict | None, kind: str) -> dict:
    data = (body or {}).get("data")
    if not isinstance(data, dict):
        raise invalid("'data' is a required field.", pointer="/data")
    if data.get("type") != kind:
        raise ApiError(409, "conflict", "Conflict.", f"The resource type must be '{kind}'.", pointer="/data/type")
    return data


def _check_profile(profile: object, pointer: str) -> None:
    """What Klaviyo refuses in a whole import request: a malformed profile, an unknown attribute, one over 100 KB."""
    if (
        not isinstance(profile, dict)
        or profile.get("type") != "profile"
        or not isinstance(profile.get("attributes"), dict)
    ):
        raise invalid("Each profile must be a resource of type 'profile' with attributes.", pointer=pointer)
    if len(json.dumps(profile).encode()) > MAX_PROFILE_BYTES:
        raise ApiError(
            413, "request_too_large", "Request too large.", "A profile may be at most 100KB.", pointer=pointer
        )
    for name, value in profile["attributes"].items():
        if name not in PROFILE_ATTRIBUTES:
            raise invalid(
                f"'{name}' is not a valid field for the resource 'profile'.", pointer=f"{pointer}/attributes/{name}"
            )
        if name == "location" and (not isinstance(value, dict) or set(value) - LOCATION_FIELDS):
            raise invalid("'location' holds an unknown field.", pointer=f"{pointer}/attributes/location")
        if name == "properties" and not isinstance(value, dict):
            raise invalid("'properties' must be an object.", pointer=f"{pointer}/attributes/properties")
        if name in ("phone_number", "external_id", "first_name", "last_name") and not isinstance(value, str):
            raise invalid(f"'{name}' must be a string.", pointer=f"{pointer}/attributes/{name}")


def _filter(text: str, fields: set[str]) -> tuple[str, set[str]]:
    """(field, values) of equals(field,"v") or any(field,["v",...]) over one of `fields`; else the 400 Klaviyo gives."""
    match = re.fullmatch(r"(equals|any)\(([a-z_]+),(.*)\)", text)
    values = None
    if match:
        try:
            parsed = json.loads(match[3])
        except ValueError:
            parsed = None
        if match[1] == "equals" and isinstance(parsed, str):
            values = {parsed}
        elif match[1] == "any" and isinstance(parsed, list) and all(isinstance(v, str) for v in parsed):
            values = set(parsed)
    if values is None or match[2] not in fields:
        raise invalid(
            f"Invalid filter provided: {text!r}. Allowed: equals or any on {', '.join(sorted(fields))}.",
            parameter="filter",
        )
    return match[2], values


def _page(items: list, query: dict[str, list[str]], operation: str, base: str, resource: object) -> dict:
    """One page of `items` from page[cursor], page[size] long, with links.next while more remain."""
    largest = MAX_PAGE[operation]
    size_text = query.get("page[size]", [str(min(20, largest))])[0]
    if not size_text.isdigit() or not 1 <= int(size_text) <= largest:
        raise invalid(f"page[size] must be between 1 and {largest}.", parameter="page[size]")
    size = int(size_text)
    cursor = query.get("page[cursor]", [""])[0]
    try:
        start = int(base64.urlsafe_b64decode(cursor.encode()).decode() or 0)
    except ValueError:
        raise invalid("Invalid page cursor.", parameter="page[cursor]") from None
    links = {"self": base}
    if start + size < len(items):
        following = {k: v[0] for k, v in query.items()}
        following["page[cursor]"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
        links["next"] = f"{base}?{urlencode(following)}"
    return {"data": [resource(item) for item in items[start : start + size]], "links": links}


def _handler(emulator: KlaviyoEmulator) -> type[EmulatorHandler]:
    class Handler(EmulatorHandler):
        methods = frozenset({"GET", "POST", "DELETE"})
        content_type = "application/vnd.api+json"

        def _handle(self, method: str) -> None:
            raw = self._body()
            url = urlsplit(self.path)
            path = url.path.rstrip("/")
            route = next(
                ((op, m) for verb, pattern, op in ROUTES if verb == method and (m := pattern.fullmatch(path))), None
            )
            try:
                if self.headers.get("Authorization") != f"Klaviyo-API-Key {emulator.api_key}":
                    raise ApiError(
                        401,
                        "not_authenticated",
                        "Authentication credentials were not provided.",
                        "Missing or invalid private key.",
                    )
                revision = self.headers.get("revision")
                if not revision or not REVISION_FORMAT.fullmatch(revision):
                    raise invalid(
                        "The 'revision' header is required, formatted YYYY-MM-DD[.suffix].", parameter="revision"
                    )
                if route is None:
                    raise ApiError(404, "not_found", "Not found.", f"No such endpoint: {method} {path}")
                if len(raw) > MAX_IMPORT_BYTES:
                    raise ApiError(
                        413, "request_too_large", "Request too large.", "The maximum allowed payload size is 5MB."
                    )
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    raise invalid("The request body is not valid JSON.", pointer="/") from None
                operation, match = route
                step, faults = emulator._step()
                with emulator._lock:
                    emulator.received[operation] += 1
                    headers = emulator._throttle(operation)
                if step == "429":
                    with emulator._lock:
                        emulator.throttled[operation] += 1
                    raise ApiError(
                        429,
                        "throttled",
                        "Request was throttled.",
                        "Request was throttled.",
                        headers={"Retry-After": faults.retry_after},
                    )
                if step == "500":
                    raise ApiError(503, "service_unavailable", "Service unavailable.", "Please try again later.")
                if step == "drop":
                    return self._drop()
                base = f"http://{self.headers.get('Host')}{path}"
                with emulator._lock:
                    status, reply = emulator._dispatch(
                        operation, match.groupdict(), parse_qs(url.query), body, base, faults
                    )
                if step == "drop_after":
                    return self._drop()
                time.sleep(faults.slow_seconds)
                self._reply(status, reply, headers)
            except ApiError as error:
                self._reply(error.status, error.body, error.headers)

    return Handler
