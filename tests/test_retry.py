"""The one retry policy of every HTTP client, against a real loopback server answering a script of replies."""

import datetime as dt
import logging
import threading
from collections.abc import Iterator
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from pipeline.retry import (
    RetriesExhausted,
    RetryPolicy,
    endpoint,
    raise_if_retryable,
    retry_after_seconds,
    with_retries,
)

SIGNATURE = "sig-8c1f0e"  # a signed URL's query: never in a log line or an error


class Scripted:
    """A loopback server that answers each request with the next step of its script:
    a status (with `Retry-After` when the step says `status:value`, `date+N` for an HTTP date N s
    ahead), or `drop` (the connection closed without a reply)."""

    def __init__(self, script: list[str]):
        self.script, self.requests = list(script), 0
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                scripted.requests += 1
                step = scripted.script.pop(0) if scripted.script else "200"
                if step == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                status, _, retry_after = step.partition(":")
                self.send_response(int(status))
                if retry_after.startswith("date+"):
                    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=int(retry_after[5:]))
                    retry_after = format_datetime(later, usegmt=True)
                if retry_after:
                    self.send_header("Retry-After", retry_after)
                body = b"Service unavailable" if int(status) >= 500 else b"{}"
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/audiences/vips?sig={SIGNATURE}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "Scripted":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as c:
        yield c


def fetch(client: httpx.Client, server: Scripted, waits: list[float], policy: RetryPolicy | None = None) -> int:
    def attempt() -> int:
        response = client.get(server.url)
        raise_if_retryable(response, lambda r: r.text)
        response.raise_for_status()  # any other 4xx: not retried, the caller's to judge
        return response.status_code

    where = endpoint("GET", server.url)
    return with_retries(attempt, what="fetching vips", where=where, policy=policy or RetryPolicy(), sleep=waits.append)


def test_429_waits_retry_after_given_in_seconds_and_as_an_http_date(client):
    waits = []
    with Scripted(["429:7", "429:date+30", "200"]) as server:
        assert fetch(client, server, waits) == 200
    assert server.requests == 3
    assert waits[0] == 7.0
    assert 28.0 < waits[1] <= 30.0, "an HTTP date 30 s ahead, to the second"


def test_a_retry_after_past_the_cap_waits_the_cap_and_an_unreadable_one_backs_off(client):
    waits = []
    with Scripted(["429:3600", "503:soon", "200"]) as server:
        assert fetch(client, server, waits, RetryPolicy(max_retry_after_seconds=60, backoff_seconds=0.5)) == 200
    assert waits[0] == 60.0
    assert 0 <= waits[1] <= 1.0, "the second backoff: full jitter under 2 x 0.5 s"


def test_5xx_and_dropped_connections_back_off_with_full_jitter_under_a_doubling_capped_ceiling(client):
    waits = []
    policy = RetryPolicy(max_attempts=7, backoff_seconds=1.0, max_backoff_seconds=4.0)
    with Scripted(["503", "drop", "500", "502", "drop", "503", "200"]) as server:
        assert fetch(client, server, waits, policy) == 200
    assert server.requests == 7
    assert all(0 <= w <= cap for w, cap in zip(waits, [1, 2, 4, 4, 4, 4], strict=True)), waits
    assert len(set(waits)) > 1, "jittered, not one fixed beat"


def test_a_400_is_not_retried(client):
    waits = []
    with Scripted(["400"]) as server, pytest.raises(httpx.HTTPStatusError, match="400"):
        fetch(client, server, waits)
    assert (server.requests, waits) == (1, [])


def test_the_attempts_run_out_with_an_error_naming_the_endpoint_and_the_last_status(client, caplog):
    caplog.set_level(logging.WARNING)
    waits = []
    with Scripted(["503"] * 10) as server, pytest.raises(RetriesExhausted) as failure:
        fetch(client, server, waits, RetryPolicy(max_attempts=4))
    assert server.requests == 4 and len(waits) == 3
    assert str(failure.value) == (
        f"fetching vips: gave up after 4 attempts at GET {server.url.split('?')[0]}, last: HTTP 503 Service unavailable"
    )
    assert (failure.value.attempts, failure.value.last) == (4, "HTTP 503 Service unavailable")
    assert len([r for r in caplog.records if "retrying in" in r.getMessage()]) == 3
    assert SIGNATURE not in caplog.text, "the query string stays out of the log"


def test_a_request_gives_up_before_a_wait_that_would_pass_its_total_bound(client):
    waits = []
    policy = RetryPolicy(max_attempts=10, max_retry_after_seconds=120, max_wait_seconds=100)
    with Scripted(["429:60", "429:60", "200"]) as server, pytest.raises(RetriesExhausted) as failure:
        fetch(client, server, waits, policy)
    assert (server.requests, waits) == (2, [60.0])
    assert "gave up after 2 attempts" in str(failure.value)
    assert "would pass the 100 s one request may wait in all), last: HTTP 429" in str(failure.value)


def test_a_refused_connection_is_retried_and_named(client):
    with Scripted([]) as server:
        url = server.url
    waits = []

    def attempt() -> None:
        client.get(url)

    with pytest.raises(
        RetriesExhausted,
        match=r"gave up after 3 attempts at GET http://127\.0\.0\.1:\d+/audiences/"
        r"vips, last: ConnectError",
    ):
        with_retries(
            attempt,
            what="fetching vips",
            where=endpoint("GET", url),
            policy=RetryPolicy(max_attempts=3),
            sleep=waits.append,
        )
    assert len(waits) == 2


def test_retry_after_reads_seconds_and_http_dates_and_nothing_else():
    now = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
    assert retry_after_seconds("12", now) == 12.0
    assert retry_after_seconds("Sun, 01 Nov 2026 12:00:45 GMT", now) == 45.0
    assert retry_after_seconds("Sun, 01 Nov 2026 11:00:00 GMT", now) == 0.0, "a date past is no wait"
    assert retry_after_seconds("-5", now) == 0.0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


def test_backoff_is_full_jitter_anywhere_from_zero_to_its_ceiling():
    policy = RetryPolicy(backoff_seconds=0.5, max_backoff_seconds=30.0)
    draws = [policy.wait(3, None) for _ in range(500)]  # ceiling 0.5 x 2^2 = 2 s
    assert all(0 <= d <= 2.0 for d in draws)
    # full jitter reaches near zero (equal jitter never goes under half the ceiling); 500 draws all missing
    # the bottom or top tenth happens with a chance of 0.9^500, about 1e-23
    assert min(draws) < 0.2 and max(draws) > 1.8
    assert RetryPolicy(max_backoff_seconds=4.0).wait(20, None) <= 4.0, "capped however many attempts"
