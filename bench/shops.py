"""`smsseg bench --shops N --customers-per-shop C`: many small shops, on the Dask engine and one after another.

Three figures, measured in one go on the same generated shops:
- the engine: `smsseg run --shops FILE` (a local cluster of SMSSEG_WORKERS, or SMSSEG_DASK_SCHEDULER's), its
  wall time and shops per hour;
- one after another: `smsseg run --source jsonl:...` for each shop, as a merchant without the engine would
  (or for the first `--alone-sample` shops, their time scaled to all: the shops are alike);
- the fixed cost of a shop: the night of a 10-customer shop in a warm process (imports done), which is
  what every shop pays however small.
"""

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

from pipeline.fleet.definitions import run_shop_night
from pipeline.fleet.shops import Shop
from pipeline.settings import Settings
from pipeline.store.demo import generate_store

TINY = 10  # customers of the shop whose night measures the fixed cost
SMSSEG = Path(sys.executable).parent / "smsseg"


def bench_shops(shops: int, customers: int, work: Path, day: dt.date, sample: int | None = None) -> dict:
    names = [f"shop-{n:04d}" for n in range(shops)]
    for n, name in enumerate(names):
        generate_store(work / "stores" / name, customers=customers, seed=n, end_day=day)
    shops_file = work / "shops.yaml"
    shops_file.write_text(
        "shops:\n" + "".join(f"  - name: {name}\n    source: jsonl:stores/{name}\n" for name in names)
    )
    env = {**os.environ, "DAGSTER_HOME": "", "SMSSEG_SHOPS": ""}  # each run its own instance, under its data dir
    started = time.monotonic()
    fleet = subprocess.run(
        [SMSSEG, "run", "--shops", shops_file, "--data-dir", work / "fleet", "--as-of", day.isoformat()],
        env=env,
        capture_output=True,
        text=True,
    )
    engine_s = time.monotonic() - started
    started = time.monotonic()
    alone_failed, sampled = 0, names[: sample or shops]
    for name in sampled:
        alone = subprocess.run(
            [SMSSEG, "run", "--source", f"jsonl:{work / 'stores' / name}", "--data-dir", work / "alone" / name]
            + ["--as-of", day.isoformat()],
            env=env,
            capture_output=True,
            text=True,
        )
        alone_failed += alone.returncode != 0
    alone_s = (time.monotonic() - started) * shops / len(sampled)
    return {
        "shops": shops,
        "customers_per_shop": customers,
        "workers": os.environ.get("SMSSEG_DASK_SCHEDULER") or int(os.environ.get("SMSSEG_WORKERS") or 2),
        "engine_s": round(engine_s, 2),
        "engine_failed": fleet.returncode != 0,
        "engine_shops_per_hour": round(shops / engine_s * 3600),
        "alone_s": round(alone_s, 2),
        "alone_sampled_shops": len(sampled),
        "alone_failed_shops": alone_failed,
        "alone_shops_per_hour": round(shops / alone_s * 3600),
        "speedup": round(alone_s / engine_s, 2),
        **fixed_cost(work / "tiny", day),
    }


def fixed_cost(work: Path, day: dt.date) -> dict:
    """A 10-customer shop's night in a warm process (the second night of two): what every shop pays however
    small, on a worker that has imported everything. A fresh `smsseg run` adds the process's start-up to it:
    the one-after-another figure above is made of those."""
    generate_store(work / "store", customers=TINY, seed=0, end_day=day)
    shop = Shop(name="tiny", source=f"jsonl:{work / 'store'}")
    fleet = Settings(data_dir=work / "data", as_of=day)
    run_shop_night(shop, fleet, os.environ, day)  # imports, the first extraction
    started = time.monotonic()
    warm = run_shop_night(shop, fleet, os.environ, day)
    return {"fixed_cost_warm_s": round(time.monotonic() - started, 2), "fixed_cost_warm_ok": not warm.problems}


def shops_summary(report: dict) -> list[str]:
    return [
        f"{report['shops']} shops of {report['customers_per_shop']:,} customers, workers {report['workers']}",
        f"engine: {report['engine_s']:.1f} s, {report['engine_shops_per_hour']:,} shops/hour"
        + (" (SOME SHOPS FAILED)" if report["engine_failed"] else ""),
        f"one after another: {report['alone_s']:.1f} s, {report['alone_shops_per_hour']:,} shops/hour"
        + (
            f" (scaled from {report['alone_sampled_shops']} shops)"
            if report["alone_sampled_shops"] < report["shops"]
            else ""
        )
        + (f" ({report['alone_failed_shops']} FAILED)" if report["alone_failed_shops"] else ""),
        f"speed-up: {report['speedup']:.2f}x",
        f"fixed cost of a {TINY}-customer shop: {report['fixed_cost_warm_s']:.2f} s in a warm worker; "
        f"{report['alone_s'] / report['shops']:.2f} s a shop as a fresh smsseg run each",
    ]
