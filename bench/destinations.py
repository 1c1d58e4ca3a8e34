"""A first night's sync to each destination's emulator, set against the floor its documented rate limits allow.

Every destination is benched one way: the same members, sent as adds batch by batch as a first
night's sync sends them, through the real gateway to its loopback emulator; then how many the
emulator holds (all of them, or the command fails), and the wall time beside `floor_seconds`, the
least time the destination's published limits allow for the requests it took. The emulators do
not throttle unless `throttled`: then the wall time is ours alone; throttled, seconds / floor is
how close the gateway comes to the fastest the destination allows.
"""

import json
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.measure import load_average
from pipeline.audience.gateways import AudienceGateway, AudienceTarget
from pipeline.audience.klaviyo import RATE_LIMITS, KlaviyoGateway
from pipeline.audience.klaviyo_emulator import KlaviyoEmulator
from pipeline.audience.shopify_tags import BULK_THRESHOLD, LIST_PAGE_COST, ShopifyTagsGateway
from pipeline.settings import DEFAULT_BATCH_SIZE
from pipeline.shopify.emulator import ShopifyEmulator
from pipeline.shopify.emulator_schema import MUTATION_COST

TARGET = AudienceTarget("bench", name="smsseg bench")
KEY = "bench-key"  # the emulators' own credential, on 127.0.0.1
# Shopify's GraphQL Admin API: its documented restore rates (points/second) by plan, and a bucket's size
RESTORE_RATES = {"standard": 100.0, "advanced": 200.0, "plus": 1000.0}
STANDARD_BUCKET = 1000.0  # the points a shop can spend at once (the bench counts every plan's as this)


@dataclass(frozen=True)
class DestinationRun:
    """One destination's first night: time, requests, and the floor its limits put under those requests."""

    held: int  # the numbers the emulator holds afterwards: every one sent
    seconds: float
    requests: int
    floor_seconds: float
    detail: dict = field(default_factory=dict)  # the destination's own figures

    @property
    def ratio_to_floor(self) -> float | None:
        return round(self.seconds / self.floor_seconds, 2) if self.floor_seconds else None


def members(count: int) -> list[dict]:
    """`count` members with distinct mobiles, customer ids 1..count."""
    return [
        {"phone": phone(i), "customer_id": i, "first_name": "Bench", "last_name": str(i), "country": "IT"}
        for i in range(1, count + 1)
    ]


def phone(i: int) -> str:
    return f"+39347{i:07d}"


def first_night(gateway: AudienceGateway, people: list[dict], batch_size: int) -> float:
    """Sends `people` as adds, `batch_size` a batch, as a first night's sync does; returns the seconds it took."""
    started = time.perf_counter()
    gateway.upsert_audience(TARGET)
    for number, start in enumerate(range(0, len(people), batch_size), 1):
        gateway.send_batch(TARGET, people[start : start + batch_size], [], f"bench:{TARGET.segment}:{number}")
    return round(time.perf_counter() - started, 2)


# --- Klaviyo


def rate_limit_floor(requests: dict[str, int]) -> tuple[str, float]:
    """The operation whose documented steady limit holds `requests` (operation -> count) back longest, and how
    long: n requests at a limit per minute need the whole minutes after the first that n fills."""
    floors = {op: max(0, math.ceil(n / RATE_LIMITS[op][1]) - 1) * 60.0 for op, n in requests.items()}
    slowest = max(floors, key=floors.get)
    return slowest, floors[slowest]


def bench_klaviyo(count: int, batch_size: int, throttled: bool) -> DestinationRun:
    """Klaviyo's floor: each operation in its own steady window (the busiest one's whole minutes beyond its first)."""
    with KlaviyoEmulator(KEY, rate_limits=throttled) as server:
        gateway = KlaviyoGateway(url=server.url, api_key=KEY)
        seconds = first_night(gateway, members(count), batch_size)
        gateway.close()
        held = len(server.members(TARGET.list_name))
        by_operation = dict(server.received)
    slowest, floor = rate_limit_floor(by_operation)
    return DestinationRun(
        held=held,
        seconds=seconds,
        requests=sum(by_operation.values()),
        floor_seconds=floor,
        detail={"by_operation": by_operation, "floor_operation": slowest},
    )


# --- Shopify customer tags


def floor_points(count: int, batch_size: int, bulk_threshold: int = BULK_THRESHOLD) -> int:
    """The query cost of tagging `count` new customers in batches of `batch_size`, as the gateway does it.

    Until the first big batch lists who carries the tag (one page: a first night finds no one), each
    batch asks about its own customers (1 point each). Then either a tagsAdd per customer (10 points
    each) or, past the threshold, one bulk mutation: stagedUploadsCreate and bulkOperationRunMutation
    (10 each) and at least one poll (1); its lines cost no points.
    """
    points, listed = 0, False
    for start in range(0, count, batch_size):
        size = min(batch_size, count - start)
        if not listed:
            listed = size > bulk_threshold
            points += LIST_PAGE_COST if listed else size
        points += 2 * MUTATION_COST + 1 if size > bulk_threshold else MUTATION_COST * size
    return points


def bench_shopify_tags(count: int, batch_size: int, throttled: bool) -> DestinationRun:
    """Shopify's floor: the points beyond a full bucket over the restore rate, by plan (the row's is Standard's).

    Throttled, the emulator keeps a Standard plan's bucket (1,000 points, restoring 100 a second).
    """
    with tempfile.TemporaryDirectory(prefix="tags-bench-") as folder:
        store = Path(folder)
        with (store / "customers.jsonl").open("w", encoding="utf-8") as fh:
            for i in range(1, count + 1):
                fh.write(
                    json.dumps(
                        {
                            "id": f"gid://shopify/Customer/{i}",
                            "tags": [],
                            "defaultPhoneNumber": {"phoneNumber": phone(i)},
                        }
                    )
                    + "\n"
                )
        (store / "shop.jsonl").write_text('{"name": "Bench"}\n', encoding="utf-8")
        bucket, restore = (STANDARD_BUCKET, RESTORE_RATES["standard"]) if throttled else (1e15, 1e15)
        with ShopifyEmulator(store, KEY, bucket_size=bucket, restore_rate=restore) as emulator:
            gateway = ShopifyTagsGateway(store=emulator.url, token=KEY, poll_interval_seconds=0.01)
            seconds = first_night(gateway, members(count), batch_size)
            requests = gateway.requests
            gateway.close()
            held = len(emulator.customer_tags.tagged(TARGET.tag_name))
            uploads = sum(r.method == "POST" and r.path == "/staged-uploads" for r in emulator.requests)
            downloads = sum(r.method == "GET" for r in emulator.requests)
    points = floor_points(count, batch_size)
    floors = {plan: round(max(0.0, points - STANDARD_BUCKET) / rate, 1) for plan, rate in RESTORE_RATES.items()}
    return DestinationRun(
        held=held,
        seconds=seconds,
        requests=requests,
        floor_seconds=floors["standard"],
        detail={"uploads": uploads, "downloads": downloads, "points": points, "floor_seconds_by_plan": floors},
    )


DESTINATIONS: dict[str, Callable[[int, int, bool], DestinationRun]] = {
    "klaviyo": bench_klaviyo,
    "shopify_tags": bench_shopify_tags,
}


def bench_destinations(count: int, *, throttled: bool, batch_size: int = DEFAULT_BATCH_SIZE) -> dict:
    """The report: every destination's first night of `count` numbers, by name."""
    report: dict = {"members": count, "batch_size": batch_size, "throttled": throttled, "load": load_average()}
    for name, bench in DESTINATIONS.items():
        run = bench(count, batch_size, throttled)
        report[name] = {**asdict(run), "ratio_to_floor": run.ratio_to_floor}
    return report
