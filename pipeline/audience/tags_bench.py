"""Benchmark hook for the shopify-tags gateway: tag N customers in the emulator, batch by batch as the
sync sends them, and set the time against the floor Shopify's documented limits allow.

    .venv/bin/python -m pipeline.audience.tags_bench 100000 [--batch-size 500]
"""

import argparse
import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.audience.gateways import AudienceTarget
from pipeline.audience.shopify_tags import BULK_THRESHOLD, LIST_PAGE_COST, ShopifyTagsGateway
from pipeline.settings import DEFAULT_BATCH_SIZE
from pipeline.shopify.emulator import ShopifyEmulator
from pipeline.shopify.emulator_schema import MUTATION_COST

# The GraphQL Admin API's documented restore rates (points/second) by plan.
RESTORE_RATES = {"standard": 100.0, "advanced": 200.0, "plus": 1000.0}
STANDARD_BUCKET = 1000.0  # the points a shop can spend at once (the bench counts every plan's as this)
_TOKEN = "bench-token"  # noqa: S105 - the emulator's own, on 127.0.0.1


@dataclass(frozen=True)
class TagsBenchmark:
    members: int
    batch_size: int
    wall_seconds: float
    graphql_requests: int
    uploads: int  # staged variables files (one per bulk mutation)
    downloads: int  # bulk mutation result files
    points: int  # what the requests cost under Shopify's calculated query cost
    # by plan: the points beyond a full bucket over the restore rate, the least time the throttle allows
    floor_seconds: dict[str, float]


def floor_points(members: int, batch_size: int, bulk_threshold: int = BULK_THRESHOLD) -> int:
    """The query cost of tagging `members` new customers in batches of `batch_size`, as the gateway does it.

    Until the first big batch lists who carries the tag (one page: a first night finds no one), each
    batch asks about its own customers (1 point each). Then either a tagsAdd per customer (10 points
    each) or, past the threshold, one bulk mutation: stagedUploadsCreate and bulkOperationRunMutation
    (10 each) and at least one poll (1); its lines cost no points.
    """
    points, listed = 0, False
    for start in range(0, members, batch_size):
        size = min(batch_size, members - start)
        if not listed:
            listed = size > bulk_threshold
            points += LIST_PAGE_COST if listed else size
        points += 2 * MUTATION_COST + 1 if size > bulk_threshold else MUTATION_COST * size
    return points


def bench_shopify_tags(members: int, batch_size: int = DEFAULT_BATCH_SIZE, *, throttled: bool = False) -> TagsBenchmark:
    """Tags `members` customers, as new adds, in the emulator.

    Its throttle is off unless `throttled`: then we measure our own side. Throttled, the emulator
    keeps a Standard plan's bucket (1,000 points, restoring 100 a second), so the wall time set
    against the Standard floor is how close the gateway comes to the fastest Shopify allows.
    """
    with tempfile.TemporaryDirectory(prefix="tags-bench-") as folder:
        store = Path(folder)
        with (store / "customers.jsonl").open("w", encoding="utf-8") as fh:
            for i in range(1, members + 1):
                fh.write(json.dumps({"id": f"gid://shopify/Customer/{i}", "tags": [],
                                     "defaultPhoneNumber": {"phoneNumber": f"+39347{i:07d}"}}) + "\n")
        (store / "shop.jsonl").write_text('{"name": "Bench"}\n', encoding="utf-8")
        bucket, restore = (STANDARD_BUCKET, RESTORE_RATES["standard"]) if throttled else (1e15, 1e15)
        with ShopifyEmulator(store, _TOKEN, bucket_size=bucket, restore_rate=restore) as emulator:
            gateway = ShopifyTagsGateway(store=emulator.url, token=_TOKEN, poll_interval_seconds=0.01)
            target = AudienceTarget("bench")
            started = time.perf_counter()
            for number, start in enumerate(range(0, members, batch_size), 1):
                adds = [{"phone": f"+39347{i:07d}", "customer_id": i}
                        for i in range(start + 1, min(start + batch_size, members) + 1)]
                gateway.send_batch(target, adds, [], f"bench:bench:{number}")
            wall = time.perf_counter() - started
            requests = gateway.requests
            gateway.close()
            tagged = len(emulator.customer_tags.tagged("smsseg:bench"))
            uploads = sum(r.method == "POST" and r.path == "/staged-uploads" for r in emulator.requests)
            downloads = sum(r.method == "GET" for r in emulator.requests)
    if tagged != members:
        raise RuntimeError(f"the benchmark tagged {tagged} of {members} customers")
    points = floor_points(members, batch_size)
    return TagsBenchmark(members=members, batch_size=batch_size, wall_seconds=round(wall, 2),
                         graphql_requests=requests, uploads=uploads, downloads=downloads, points=points,
                         floor_seconds={plan: round(max(0.0, points - STANDARD_BUCKET) / rate, 1)
                                        for plan, rate in RESTORE_RATES.items()})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Tag N customers in the Shopify emulator and time it.")
    parser.add_argument("members", type=int)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    args = parser.parse_args(argv)
    print(json.dumps(asdict(bench_shopify_tags(args.members, args.batch_size)), indent=2))


if __name__ == "__main__":
    main()
