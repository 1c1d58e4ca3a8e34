"""The one retry policy of every HTTP client: what is retried, how long each wait is, and when to give up.

Retried: dropped or refused connections and timeouts (httpx.TransportError), 429 and 5xx, and whatever
an attempt itself raises as Retryable (a GraphQL THROTTLED inside a 200). Never another status: a 4xx
says the request is wrong, and sending it again cannot help. A `Retry-After` (seconds or an HTTP date)
is waited, at most `max_retry_after_seconds`; otherwise the wait is exponential backoff with full
jitter. A request gives up after `max_attempts`, or sooner when the next wait would take its waits past
`max_wait_seconds`, with RetriesExhausted naming the endpoint and the last failure.
"""

import datetime as dt
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TypeVar

import httpx
from dagster import get_dagster_logger

log = get_dagster_logger(__name__)  # inside a step, its retries reach the run log

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    backoff_seconds: float = 0.5  # the first backoff is at most this; each next one at most twice the last
    max_backoff_seconds: float = 30.0
    max_retry_after_seconds: float = 120.0  # a server asking for longer is waited this long, then asked again
    max_wait_seconds: float = 600.0  # all the waits of one request together: a run never hangs on one server

    def wait(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1 for the first)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after_seconds)
        # full jitter: spreads the retries of many clients instead of bunching them on the same beat
        ceiling = min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (attempt - 1))
        return random.uniform(0, ceiling)


class Retryable(Exception):
    """A failed attempt worth another: `problem` in a few words, and the wait the server asked for, if any."""

    def __init__(self, problem: str, retry_after: float | None = None):
        super().__init__(problem)
        self.problem = problem
        self.retry_after = retry_after


class RetriesExhausted(Exception):
    """Retrying gave up; the message names what was asked, the endpoint, and the last failure."""

    def __init__(self, message: str, attempts: int, last: str):
        super().__init__(message)
        self.attempts = attempts
        self.last = last


def retry_after_seconds(value: str | None, now: dt.datetime | None = None) -> float | None:
    """A Retry-After header's wait in seconds, from delay-seconds or an HTTP date (RFC 9110, 10.2.3).

    None when it is absent or unreadable: the policy's own backoff then decides."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - (now or dt.datetime.now(dt.UTC))).total_seconds(), 0.0)


def raise_if_retryable(response: httpx.Response, describe: Callable[[httpx.Response], str]) -> None:
    """Raises Retryable for a 429 or 5xx reply, with the server's Retry-After; `describe` gives its few words."""
    if response.status_code == 429 or response.status_code >= 500:
        detail = describe(response)
        raise Retryable(
            f"HTTP {response.status_code}" + (f" {detail}" if detail else ""),
            retry_after_seconds(response.headers.get("Retry-After")),
        )


def endpoint(method: str, url: str | httpx.URL) -> str:
    """`METHOD scheme://host[:port]/path`: never the query, which can carry a signature or phone numbers."""
    url = httpx.URL(url)
    port = f":{url.port}" if url.port else ""
    return f"{method} {url.scheme}://{url.host}{port}{url.path}"


def with_retries(
    attempt: Callable[[], T], *, what: str, where: str, policy: RetryPolicy, sleep: Callable[[float], None] = time.sleep
) -> T:
    """Calls `attempt` until it returns, retrying as the policy says; `where` is its endpoint (see `endpoint`)."""
    waited = 0.0
    number = 0
    while True:
        number += 1
        try:
            return attempt()
        except httpx.TransportError as exc:  # timeouts, refused and dropped connections
            failure = Retryable(f"{type(exc).__name__}" + (f": {exc}" if str(exc) else ""))
        except Retryable as exc:
            failure = exc
        last = failure.problem
        gave_up = f"{what}: gave up after {number} attempts at {where}"
        if number >= policy.max_attempts:
            raise RetriesExhausted(f"{gave_up}, last: {last}", number, last)
        wait = policy.wait(number, failure.retry_after)
        if waited + wait > policy.max_wait_seconds:
            budget = policy.max_wait_seconds
            raise RetriesExhausted(
                f"{gave_up} (waiting {wait:.0f} s more would pass the {budget:.0f} s one request"
                f" may wait in all), last: {last}",
                number,
                last,
            )
        log.warning(
            "%s: %s at %s; attempt %d of %d, retrying in %.2f s", what, last, where, number, policy.max_attempts, wait
        )
        sleep(wait)
        waited += wait
