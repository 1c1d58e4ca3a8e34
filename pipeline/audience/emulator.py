"""A loopback SMS gateway for tests and demos: the sms-export.md API, audiences in memory, faults on demand.

It honours Idempotency-Key (a replay gets the stored reply and changes nothing) and counts
every add it applies per (audience, phone), so a test can prove no number was added twice.
Like the API it refuses a batch of more than `max_batch` numbers (500) with 413.

Faults are a script of steps cycled over successive API requests:
  ok          apply and reply 200
  429         reply 429 with Retry-After, apply nothing
  500         reply 503, apply nothing
  500_after   apply, then reply 500 (the client cannot know it landed)
  drop        close the connection without a reply, apply nothing
  drop_after  apply, then close the connection without a reply
  slow        apply, then wait `slow_step_seconds` before replying (longer than a client timeout)

GET /audiences/{segment}/members?cursor=&limit= pages through an audience's members by phone
(at most MAX_PAGE a page; `next_cursor` is null on the last), with the same auth and faults.

    python -m pipeline.audience.emulator --port 0 --token T [--script 429,ok,500] [--slow 0.05] [--max-batch 500]
"""

import argparse
import hashlib
import itertools
import json
import re
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from urllib.parse import parse_qsl, urlsplit

from pipeline.loopback import EmulatorHandler, LoopbackServer

STEPS = ("ok", "429", "500", "500_after", "drop", "drop_after", "slow")
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
AUDIENCE_PATH = re.compile(r"/audiences/([A-Za-z0-9_-]+)")
MEMBERS_PATH = re.compile(r"/audiences/([A-Za-z0-9_-]+)/members")
MAX_BATCH = 500  # numbers (adds and removes) one members request may carry, as sms-export.md says
MAX_PAGE = 1000  # members one GET of an audience's members returns at most


@dataclass
class Faults:
    script: list[str] = field(default_factory=list)  # steps cycled over API requests; empty: always ok
    retry_after: str = "0"  # the Retry-After header of a 429, in seconds
    slow_seconds: float = 0.0  # every API reply waits this long after applying
    slow_step_seconds: float = 0.5
    reject: dict[str, str] = field(default_factory=dict)  # phone -> reason the gateway gives

    def __post_init__(self) -> None:
        unknown = [s for s in self.script if s not in STEPS]
        if unknown:
            raise ValueError(f"fault steps {unknown}: expected some of {', '.join(STEPS)}")


class GatewayEmulator(LoopbackServer):
    """The emulator on 127.0.0.1 at an ephemeral port (or `port`), serving from a daemon thread."""

    def __init__(self, token: str, *, faults: Faults | None = None, port: int = 0, max_batch: int = MAX_BATCH):
        self.token = token
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._idle = threading.Condition()  # notified whenever a request is done
        self._in_flight = 0
        self._faults = faults or Faults()
        self._steps = itertools.cycle(self._faults.script or ["ok"])
        self.audiences: dict[str, dict] = {}  # segment -> {"name", "description", "members": {phone: member}}
        self.add_counts: Counter[tuple[str, str]] = Counter()
        self.received: Counter[str] = Counter()  # "PUT" / "POST" -> API requests received, replays included
        self._replies: dict[str, tuple[str, int, dict]] = {}  # Idempotency-Key -> (body digest, status, reply)
        super().__init__(_handler(self), port=port, name="gateway-emulator")

    def wait_idle(self, timeout_s: float = 10.0) -> None:
        """Returns once no request is being handled, such as one whose client was killed mid-request
        (its change is applied, and its reply written to a closed socket); TimeoutError after `timeout_s`."""
        with self._idle:
            if not self._idle.wait_for(lambda: self._in_flight == 0, timeout=timeout_s):
                raise TimeoutError(
                    f"the gateway emulator still handles {self._in_flight} request(s) after {timeout_s} s"
                )

    def set_faults(self, faults: Faults) -> None:
        with self._lock:
            self._faults = faults
            self._steps = itertools.cycle(faults.script or ["ok"])

    def members(self, segment: str) -> dict[str, dict]:
        with self._lock:
            return dict(self.audiences.get(segment, {}).get("members", {}))

    def adds_of(self, segment: str) -> dict[str, int]:
        """phone -> how many times an add of it was applied to `segment`."""
        with self._lock:
            return {phone: n for (seg, phone), n in self.add_counts.items() if seg == segment}

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "audiences": json.loads(json.dumps(self.audiences)),
                "add_counts": [[seg, phone, n] for (seg, phone), n in sorted(self.add_counts.items())],
                "received": dict(self.received),
                "faults": asdict(self._faults),
            }

    def _next_step(self) -> tuple[str, Faults]:
        with self._lock:
            return next(self._steps), self._faults

    def _apply(self, method: str, path: str, key: str | None, body: dict, faults: Faults) -> tuple[int, dict]:
        """Applies one API request once per Idempotency-Key; returns (status, reply)."""
        digest = hashlib.sha256(json.dumps([method, path, body], sort_keys=True).encode()).hexdigest()
        with self._lock:
            if key and key in self._replies:
                seen, status, reply = self._replies[key]
                if seen != digest:
                    return 422, {"error": f"Idempotency-Key {key} was used with a different request"}
                return status, reply
            status, reply = self._execute(method, path, body, faults)
            if key and status < 500:
                self._replies[key] = (digest, status, reply)
            return status, reply

    def _execute(self, method: str, path: str, body: dict, faults: Faults) -> tuple[int, dict]:
        if method == "GET" and (match := MEMBERS_PATH.fullmatch(path)):
            return self._page(match[1], body)
        if method == "PUT" and (match := AUDIENCE_PATH.fullmatch(path)):
            audience = self.audiences.setdefault(match[1], {"members": {}})
            audience.update(name=body.get("name"), description=body.get("description"))
            return 200, {"id": match[1], "members": len(audience["members"])}
        if method == "POST" and (match := MEMBERS_PATH.fullmatch(path)):
            audience = self.audiences.get(match[1])
            if audience is None:
                return 404, {"error": f"no audience {match[1]}; PUT /audiences/{match[1]} first"}
            adds, removes = body.get("add", []), body.get("remove", [])
            if not isinstance(adds, list) or not isinstance(removes, list):
                return 400, {"error": "add and remove must be lists"}
            if len(adds) + len(removes) > self.max_batch:
                return 413, {"error": f"{len(adds) + len(removes)} numbers in one request; at most {self.max_batch}"}
            rejected, added, removed = [], 0, 0
            for member in adds:
                phone = member.get("phone") if isinstance(member, dict) else None
                reason = faults.reject.get(phone) if phone else "missing phone"
                if reason is None and not E164.fullmatch(phone):
                    reason = "not an E.164 number"
                if reason:
                    rejected.append({"phone": phone, "reason": reason})
                    continue
                audience["members"][phone] = member
                self.add_counts[(match[1], phone)] += 1
                added += 1
            for phone in removes:
                removed += audience["members"].pop(phone, None) is not None
            return 200, {"added": added, "removed": removed, "rejected": rejected}
        return 404, {"error": f"no such endpoint: {method} {path}"}

    def _page(self, segment: str, query: dict) -> tuple[int, dict]:
        """One page of an audience's members, by phone; an audience never created holds none."""
        try:
            start = int(query.get("cursor") or 0)
            limit = int(query.get("limit") or MAX_PAGE)
        except ValueError:
            return 400, {"error": "cursor and limit must be whole numbers"}
        if start < 0 or not 1 <= limit <= MAX_PAGE:
            return 400, {"error": f"cursor must be at least 0 and limit between 1 and {MAX_PAGE}"}
        members = self.audiences.get(segment, {}).get("members", {})
        phones = sorted(members)[start : start + limit]
        more = start + limit < len(members)
        return 200, {
            "members": [{"phone": p, "customer_id": members[p].get("customer_id")} for p in phones],
            "next_cursor": str(start + limit) if more else None,
        }


def _handler(emulator: GatewayEmulator) -> type[EmulatorHandler]:
    class Handler(EmulatorHandler):
        methods = frozenset({"GET", "PUT", "POST"})

        def _handle(self, method: str) -> None:
            with emulator._idle:
                emulator._in_flight += 1
            try:
                self._serve(method)
            finally:
                with emulator._idle:
                    emulator._in_flight -= 1
                    emulator._idle.notify_all()

        def _serve(self, method: str) -> None:
            raw = self._body()
            if self.headers.get("Authorization") != f"Bearer {emulator.token}":
                return self._reply(401, {"error": "missing or wrong bearer token"})
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                return self._reply(400, {"error": "body is not JSON"})
            if self.path == "/_admin/faults" and method == "POST":
                try:
                    emulator.set_faults(Faults(**body))
                except (TypeError, ValueError) as exc:
                    return self._reply(400, {"error": str(exc)})
                return self._reply(200, {"ok": True})
            if self.path == "/_admin/state" and method == "GET":
                return self._reply(200, emulator.snapshot())
            with emulator._lock:
                emulator.received[method] += 1
            url = urlsplit(self.path)
            if method == "GET":  # its parameters are in the query, not a body
                body = dict(parse_qsl(url.query))
            step, faults = emulator._next_step()
            if step == "429":
                return self._reply(429, {"error": "slow down"}, {"Retry-After": faults.retry_after})
            if step == "500":
                return self._reply(503, {"error": "temporarily unavailable"})
            if step == "drop":
                return self._drop()
            status, reply = emulator._apply(method, url.path, self.headers.get("Idempotency-Key"), body, faults)
            if step == "drop_after":
                return self._drop()
            time.sleep(faults.slow_seconds + (faults.slow_step_seconds if step == "slow" else 0))
            if step == "500_after":
                return self._reply(500, {"error": "internal error"})
            return self._reply(status, reply)

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A loopback SMS gateway emulator (sms-export.md API).")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token", required=True, help="the bearer token clients must send")
    parser.add_argument("--script", default="", help=f"comma-separated fault steps cycled: {','.join(STEPS)}")
    parser.add_argument("--slow", type=float, default=0.0, help="seconds every reply waits")
    parser.add_argument("--max-batch", type=int, default=MAX_BATCH, help="numbers a members request may carry")
    parser.add_argument(
        "--reject",
        action="append",
        default=[],
        metavar="PHONE=REASON",
        help="reject this number with this reason (repeatable)",
    )
    args = parser.parse_args(argv)
    faults = Faults(
        script=[s for s in args.script.split(",") if s],
        slow_seconds=args.slow,
        reject=dict(r.split("=", 1) for r in args.reject),
    )
    emulator = GatewayEmulator(args.token, faults=faults, port=args.port, max_batch=args.max_batch).start()
    print(emulator.url, flush=True)  # noqa: T201 - the one line a demo script reads
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        emulator.stop()


if __name__ == "__main__":
    main()
