"""Extraction memory does not grow with the shop: downloads stream to disk (measured, with a generous bound)."""

import json
import subprocess
import sys
from pathlib import Path

from pipeline.shopify.emulator import ShopifyEmulator
from pipeline.store.demo import generate_store

TOKEN = "shpat_memory_test"
EXTRACT = """
import json, resource, sys
from pathlib import Path
from pipeline.shopify.client import ShopifyClient
with ShopifyClient(sys.argv[1], sys.argv[2], poll_interval_s=0.01) as client:
    result = client.extract(Path(sys.argv[3]))
print(json.dumps({"rows": dict(result.rows), "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def extract_in_a_process(store: Path, out: Path) -> dict:
    with ShopifyEmulator(store, token=TOKEN) as emulator:
        done = subprocess.run(
            [sys.executable, "-c", EXTRACT, emulator.url, TOKEN, str(out)],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
    return json.loads(done.stdout.splitlines()[-1])


def test_ten_times_the_shop_costs_no_more_memory(tmp_path: Path) -> None:
    generate_store(tmp_path / "small", customers=300, seed=1)
    generate_store(tmp_path / "large", customers=3000, seed=1)
    small = extract_in_a_process(tmp_path / "small", tmp_path / "out-small")
    large = extract_in_a_process(tmp_path / "large", tmp_path / "out-large")
    size = sum(f.stat().st_size for f in (tmp_path / "out-large").glob("*.jsonl"))
    assert large["rows"]["orders.jsonl"] > 9 * small["rows"]["orders.jsonl"]
    grown_mb = (large["peak_kb"] - small["peak_kb"]) / 1024
    print(
        f"peak RSS {small['peak_kb'] / 1024:.0f} MB for 300 customers, {large['peak_kb'] / 1024:.0f} MB for "
        f"3000 ({size / 2**20:.0f} MB of JSONL downloaded)"
    )
    # a client holding the download in memory would grow by about its size; streaming stays flat
    assert grown_mb < min(20, size / 2**20 / 2), f"peak memory grew by {grown_mb:.0f} MB for 10x the shop"
