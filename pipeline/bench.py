"""`smsseg bench`: the nightly job timed at scale, cold and warm, against plain DuckDB doing the same work.

One process run: generate a demo store, run night 1 (cold) and night 2 (1% of customers changed and a
day of new orders) through the real Dagster job, then a hand-written DuckDB baseline that reads the
same JSONL and computes the same memberships, which must equal ours. Figures go to a JSON file;
BENCHMARKS.md says how to read them.
"""

import argparse
import bisect
import datetime as dt
import json
import multiprocessing
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import yaml

from pipeline.settings import DEFAULT_MEMORY_LIMIT, SettingsError, memory_limit_from
from pipeline.store.demo import (
    CUSTOMER_ID_BASE,
    LINE_ITEM_ID_BASE,
    ORDER_ID_BASE,
    ORDER_NUMBER_START,
    PRODUCT_ID_BASE,
    VARIANT_ID_BASE,
    generate_store,
)

if TYPE_CHECKING:
    import dagster as dg

NIGHT_ONE = dt.date(2026, 11, 1)  # fixed, not today, so every measurement runs over the same store
NIGHT_TWO = NIGHT_ONE + dt.timedelta(days=1)
CHANGED_SHARE = 0.01
# Files night 2 carries over unchanged: hard links, so the ingest recognises them by digest and skips them.
UNCHANGED_FILES = ("shop.jsonl", "products.jsonl", "abandoned_checkouts.jsonl", "sms_events.jsonl",
                   "redactions.jsonl")
STAGES = ("ingest_s", "phones_s", "warehouse_s", "segments_s", "export_s")


@dataclass(frozen=True)
class BenchSegment:
    """A segment definition for the benchmark and the baseline's own predicate for it.

    `baseline` is hand-written SQL over the baseline's tables (customers as c, orders, order_lines,
    sms_events, and seg_<name> for earlier segments), with $as_of the evaluation date.
    """

    name: str
    query: str
    baseline: str
    export: bool = False
    fields: tuple[str, ...] = ()


def _lowered(column: str) -> str:
    return f"list_transform({column}, lambda x: lower(x))"


# Between them they use every attribute, every function and parameter, and every operator of the language.
SEGMENTS: tuple[BenchSegment, ...] = (
    BenchSegment("vip_big_spenders", "amount_spent > 500 AND customer_tags CONTAINS 'VIP'",
                 f"c.amount_spent > 500 and list_contains({_lowered('c.customer_tags')}, 'vip')",
                 export=True, fields=("amount_spent",)),
    BenchSegment("frequent_buyers", "number_of_orders >= 5", "c.number_of_orders >= 5", export=True),
    BenchSegment("mid_baskets", "average_order_value BETWEEN 40 AND 120.50",
                 "c.average_order_value between 40 and 120.50"),
    BenchSegment("first_ordered_this_year", "first_order_date >= 2026-01-01",
                 "c.first_order_date >= date '2026-01-01'"),
    BenchSegment("lapsed_buyers", "number_of_orders >= 2 AND last_order_date < -90d",
                 "c.number_of_orders >= 2 and c.last_order_date < $as_of - 90",
                 export=True, fields=("amount_spent", "last_order_date")),
    BenchSegment("joined_last_month", "customer_added_date >= -1m",
                 "c.customer_added_date >= cast($as_of - interval 1 month as date)"),
    BenchSegment("abandoned_this_week", "abandoned_checkout_date >= -7d AND sms_subscription_status = 'SUBSCRIBED'",
                 "c.abandoned_checkout_date >= $as_of - 7 and c.sms_subscription_status = 'SUBSCRIBED'",
                 export=True, fields=("abandoned_checkout_url",)),
    BenchSegment("email_only_enabled",
                 "email_subscription_status = 'SUBSCRIBED' AND sms_subscription_status != 'SUBSCRIBED' "
                 "AND customer_account_status = 'ENABLED'",
                 "c.email_subscription_status = 'SUBSCRIBED' and c.sms_subscription_status <> 'SUBSCRIBED' "
                 "and c.customer_account_status = 'ENABLED'"),
    BenchSegment("gmail_users", "customer_email_domain = 'Gmail.com'", "lower(c.customer_email_domain) = 'gmail.com'"),
    BenchSegment("italians", "customer_language = 'IT' OR customer_countries CONTAINS 'it'",
                 f"lower(c.customer_language) = 'it' or list_contains({_lowered('c.customer_countries')}, 'it')"),
    BenchSegment("milan_or_new_york", "customer_cities CONTAINS 'IT-MI-Milano' OR customer_regions CONTAINS 'US-NY'",
                 f"list_contains({_lowered('c.customer_cities')}, 'it-mi-milano') "
                 f"or list_contains({_lowered('c.customer_regions')}, 'us-ny')"),
    BenchSegment("best_customers", "rfm_group = 'CHAMPIONS' OR rfm_group = 'LOYAL'",
                 "c.rfm_group in ('CHAMPIONS', 'LOYAL')", export=True),
    BenchSegment("prospects_not_b2b",
                 "last_order_date IS NULL AND customer_tags NOT CONTAINS 'b2b' AND customer_language IS NOT NULL",
                 f"c.last_order_date is null and not list_contains({_lowered('c.customer_tags')}, 'b2b') "
                 "and c.customer_language is not null"),
    BenchSegment("summer_last_year", "products_purchased MATCHES (collection = 'Summer', date >= -1y)",
                 "exists (select 1 from order_lines l where l.customer_id = c.customer_id "
                 "and list_contains(l.collection_handles, 'summer') "
                 "and l.order_date >= cast($as_of - interval 1 year as date))"),
    BenchSegment("bought_top_products",
                 "products_purchased MATCHES (id IN (8300000000001, 8300000000002, "
                 "'gid://shopify/Product/8300000000003'), quantity >= 2)",
                 "exists (select 1 from order_lines l where l.customer_id = c.customer_id "
                 "and l.product_id in (8300000000001, 8300000000002, 8300000000003) "
                 "having coalesce(sum(l.quantity), 0) >= 2)"),
    BenchSegment("sale_collectors",
                 "products_purchased MATCHES (tag = 'SALE', collection_id IN (450000000000, 450000000001), "
                 "count >= 2)",
                 "exists (select 1 from order_lines l where l.customer_id = c.customer_id "
                 "and list_contains(l.product_tags, 'sale') and (list_contains(l.collection_ids, 450000000000) "
                 "or list_contains(l.collection_ids, 450000000001)) having count(distinct l.order_id) >= 2)"),
    BenchSegment("recent_repeat_no_gifts",
                 "orders_placed MATCHES (date >= -3m, amount > 50, count >= 2) "
                 "AND products_purchased NOT MATCHES (tag IN ('gift', 'limited'), date BETWEEN -1y AND today)",
                 "exists (select 1 from orders o where o.customer_id = c.customer_id "
                 "and o.order_date >= cast($as_of - interval 3 month as date) and o.amount > 50 "
                 "having count(distinct o.order_id) >= 2) "
                 "and not exists (select 1 from order_lines l where l.customer_id = c.customer_id "
                 "and (list_contains(l.product_tags, 'gift') or list_contains(l.product_tags, 'limited')) "
                 "and l.order_date between cast($as_of - interval 1 year as date) and $as_of)"),
    BenchSegment("big_quarter", "orders_placed MATCHES (date BETWEEN -90d AND today, sum_amount >= 300)",
                 "exists (select 1 from orders o where o.customer_id = c.customer_id "
                 "and o.order_date between $as_of - 90 and $as_of having coalesce(sum(o.amount), 0) >= 300)",
                 export=True),
    BenchSegment("clicked_no_conversion",
                 "sms_events MATCHES (type = 'clicked', date >= -60d, count >= 1) "
                 "AND sms_events NOT MATCHES (type = 'converted', campaign = 'Back-In-Stock')",
                 "exists (select 1 from sms_events e where e.phone_e164 = c.phone_e164 "
                 "and e.event_type = 'clicked' and e.event_date >= $as_of - 60 having count(*) >= 1) "
                 "and not exists (select 1 from sms_events e where e.phone_e164 = c.phone_e164 "
                 "and e.event_type = 'converted' and lower(e.campaign) = 'back-in-stock')"),
    BenchSegment("winback_quiet", "segments CONTAINS 'lapsed_buyers' AND segments NOT CONTAINS 'clicked_no_conversion'",
                 "c.customer_id in (select customer_id from seg_lapsed_buyers) "
                 "and c.customer_id not in (select customer_id from seg_clicked_no_conversion)",
                 export=True),
)


def bench_segments(count: int) -> list[BenchSegment]:
    """`count` segments: the list above, then copies of it under new names.

    A definition only uses segments before it in the list, so any prefix is complete.
    """
    if count < 1:
        raise ValueError(f"--segments {count}: the benchmark needs at least 1 segment")
    chosen = []
    for i in range(count):
        base = SEGMENTS[i % len(SEGMENTS)]
        round_ = i // len(SEGMENTS)
        if round_ == 0:
            chosen.append(base)
            continue
        suffix = f"_{round_ + 1}"
        query, baseline = base.query, base.baseline
        for used in ("lapsed_buyers", "clicked_no_conversion"):  # copies use their own round's segments
            query = query.replace(f"'{used}'", f"'{used}{suffix}'")
            baseline = baseline.replace(f"seg_{used}", f"seg_{used}{suffix}")
        chosen.append(BenchSegment(base.name + suffix, query, baseline, base.export, base.fields))
    return chosen


def write_segment_defs(directory: Path, segments: list[BenchSegment]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for s in segments:
        definition = {"name": s.name, "description": f"benchmark segment {s.name}", "query": s.query}
        if s.export:
            definition["sms"] = {"export": True, **({"fields": list(s.fields)} if s.fields else {})}
        (directory / f"{s.name}.yaml").write_text(yaml.safe_dump(definition, sort_keys=False))


# ---------------------------------------------------------------------------------------------------------
# Night 2's store directory


def write_night_two(night_one: Path, night_two: Path, customers: int, orders: int, line_items: int,
                    seed: int = 0) -> dict[str, int]:
    """A store directory of what changed the day after night 1, as an incremental extraction holds it.

    1% of customers come again with a later updatedAt: a third with a new phone number, a third with
    their SMS consent flipped, a third with a new tag. orders.jsonl holds a day of new orders with
    their line items. The other files are night 1's, hard-linked, so the ingest skips them by digest.
    """
    night_two.mkdir(parents=True, exist_ok=True)
    for file in UNCHANGED_FILES:
        target = night_two / file
        target.unlink(missing_ok=True)
        os.link(night_one / file, target)
    rng = np.random.default_rng([seed, 8])
    changed = _changed_customers(night_one / "customers.jsonl", night_two / "customers.jsonl", rng)
    new_orders, new_lines = _new_orders(night_two / "orders.jsonl", customers, orders, line_items, rng)
    return {"changed_customers": changed, "new_orders": new_orders, "new_line_items": new_lines}


def _changed_customers(source: Path, target: Path, rng: np.random.Generator) -> int:
    modulus = round(1 / CHANGED_SHARE)
    prefix = '{"id":"gid://shopify/Customer/'
    day = dt.datetime.combine(NIGHT_TWO, dt.time(9), tzinfo=dt.UTC)
    seen: set[str] = set()
    patched = []
    with open(source, encoding="utf-8") as lines:
        for line in lines:
            # The demo writes the id first: choosing by it spares parsing the other 99% of lines.
            number = line[len(prefix):line.find('"', len(prefix))] if line.startswith(prefix) else ""
            if not number.isdigit() or int(number) % modulus or number in seen:
                continue
            seen.add(number)
            customer = json.loads(line)
            customer["updatedAt"] = (day + dt.timedelta(seconds=int(rng.integers(0, 8 * 3600)))).strftime(
                "%Y-%m-%dT%H:%M:%SZ")
            phone = customer.get("defaultPhoneNumber")
            kind = len(patched) % 3
            if kind == 0 or phone is None:
                national = f"3{rng.integers(20, 50)}{rng.integers(0, 10_000_000):07d}"
                customer["defaultPhoneNumber"] = {**(phone or {}), "phoneNumber": f"+39{national}",
                                                  "marketingState": "SUBSCRIBED"}
            elif kind == 1:
                flipped = "UNSUBSCRIBED" if phone.get("marketingState") == "SUBSCRIBED" else "SUBSCRIBED"
                customer["defaultPhoneNumber"] = {**phone, "marketingState": flipped,
                                                  "marketingUpdatedAt": customer["updatedAt"]}
            else:
                customer["tags"] = [*customer.get("tags", []), "VIP"]
            patched.append(json.dumps(customer, ensure_ascii=False, separators=(",", ":")) + "\n")
    target.write_text("".join(patched), encoding="utf-8")
    return len(patched)


def _new_orders(target: Path, customers: int, orders: int, line_items: int,
                rng: np.random.Generator) -> tuple[int, int]:
    """A day of orders: night 1's daily average over the last year (the store grows), at least one."""
    count = max(1, orders // 365)
    day = dt.datetime.combine(NIGHT_TWO, dt.time(7), tzinfo=dt.UTC)
    lines_written = 0
    with open(target, "w", encoding="utf-8") as f:
        for k in range(count):
            number = orders + k
            order_gid = f"gid://shopify/Order/{ORDER_ID_BASE + number}"
            at = (day + dt.timedelta(seconds=int(rng.integers(0, 14 * 3600)))).strftime("%Y-%m-%dT%H:%M:%SZ")
            total_cents = 0
            lines = []
            for _ in range(1 + int(rng.poisson(1.5))):
                product = int(rng.integers(0, 200))
                quantity = int(rng.geometric(0.7))
                cents = (int(rng.integers(15, 150)) * 100 + 90) * quantity
                total_cents += cents
                lines.append({
                    "id": f"gid://shopify/LineItem/{LINE_ITEM_ID_BASE + line_items + lines_written}",
                    "product": {"id": f"gid://shopify/Product/{PRODUCT_ID_BASE + product}"},
                    "variant": {"id": f"gid://shopify/ProductVariant/{VARIANT_ID_BASE + product * 10}"},
                    "sku": f"BENCH-{product:04d}", "title": f"Product {product}", "quantity": quantity,
                    "originalTotalSet": {"shopMoney": {"amount": f"{cents // 100}.{cents % 100:02d}"}},
                    "__parentId": order_gid,
                })
                lines_written += 1
            money = {"shopMoney": {"amount": f"{total_cents // 100}.{total_cents % 100:02d}", "currencyCode": "EUR"}}
            order = {
                "id": order_gid, "name": f"#{ORDER_NUMBER_START + number}",
                "customer": {"id": f"gid://shopify/Customer/{CUSTOMER_ID_BASE + int(rng.integers(0, customers))}"},
                "createdAt": at, "processedAt": at, "updatedAt": at, "cancelledAt": None, "test": False,
                "displayFinancialStatus": "PAID", "currencyCode": "EUR",
                "totalPriceSet": money, "currentTotalPriceSet": money,
            }
            for record in (order, *lines):
                f.write(json.dumps(record, separators=(",", ":")) + "\n")
    return count, lines_written


def prepare_stores(work: Path, customers: int, seed: int) -> dict[str, int]:
    """Night 1's and night 2's store directories; runs in a child process so its memory is not ours."""
    counts = generate_store(work / "night1", customers=customers, seed=seed, end_day=NIGHT_ONE)
    changes = write_night_two(work / "night1", work / "night2", customers, counts["orders"], counts["line_items"],
                              seed)
    return {**counts, **changes}


# ---------------------------------------------------------------------------------------------------------
# Measuring


class Sampler:
    """Peak resident memory of this process and its children, sampled from /proc every 20 ms, and the
    process's CPU time at each sample, so a step's CPU can be read off its start and end times.

    The kernel's own high-water mark of this process (VmHWM) is reset at `start` and read at `stop`,
    so a spike shorter than the sampling interval still counts for the process itself.
    """

    def __init__(self) -> None:
        self.peak_bytes = 0
        self.cpu_samples: list[tuple[float, float]] = []  # (time.time(), CPU seconds so far)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        _reset_high_water_mark()
        self.peak_bytes = 0
        self.cpu_samples = [(time.time(), _cpu_seconds())]
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def stop(self) -> float:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.cpu_samples.append((time.time(), _cpu_seconds()))
        self.peak_bytes = max(self.peak_bytes, _status_kb(os.getpid(), "VmHWM") * 1024)
        return round(self.peak_bytes / 2**20, 1)

    def cpu_between(self, start: float, end: float) -> float:
        """CPU seconds spent between two time.time() instants, to within a sampling interval."""
        times = [t for t, _ in self.cpu_samples]
        def at(instant: float) -> float:
            return self.cpu_samples[max(bisect.bisect_right(times, instant) - 1, 0)][1]
        return at(end) - at(start)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            total = sum(_status_kb(pid, "VmRSS") for pid in _process_tree(os.getpid())) * 1024
            self.peak_bytes = max(self.peak_bytes, total)
            self.cpu_samples.append((time.time(), _cpu_seconds()))


def _reset_high_water_mark() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # not Linux, or not allowed: sampling alone bounds the peak


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass  # the process ended between listing and reading
    return 0


def _process_tree(pid: int) -> list[int]:
    """`pid` and its descendants; any of them may end while it looks, and is then left out of what follows."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        try:
            tasks = list(Path(f"/proc/{current}/task").glob("*/children"))
        except OSError:
            continue  # the process ended meanwhile: it has no children to list
        for task in tasks:
            try:
                todo += [int(child) for child in task.read_text().split()]
            except OSError:
                pass  # the task ended meanwhile
    return tree


def _cpu_seconds() -> float:
    """User and system CPU time of this process (every DuckDB thread) and its ended children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@contextmanager
def measured(phase: dict) -> Iterator[Sampler]:
    """Fills `phase` with wall time (s), CPU time (s) and peak memory (MB) of the block.

    CPU time is the steadier figure on a shared machine: other people's work lengthens the wall
    time of a step but not the CPU it spends.
    """
    sampler = Sampler()
    sampler.start()
    started, cpu = time.perf_counter(), _cpu_seconds()
    try:
        yield sampler
    finally:
        phase["seconds"] = round(time.perf_counter() - started, 2)
        phase["cpu_s"] = round(_cpu_seconds() - cpu, 2)
        phase["peak_rss_mb"] = sampler.stop()


def stage_of(step_key: str) -> str | None:
    """Which figure of the report a Dagster step counts under (step keys are asset keys joined by __)."""
    if step_key.startswith("raw__"):
        return "ingest_s"
    if step_key == "staging__stg_phone_numbers":
        return "phones_s"
    if step_key.startswith(("staging__", "marts__")) or step_key == "warehouse":
        return "warehouse_s"
    if step_key.startswith("segments__"):
        return "segments_s"
    if step_key.startswith("exports__"):
        return "export_s"
    return None


def run_night(work: Path, store: Path, segments_dir: Path, as_of: dt.date, instance: "dg.DagsterInstance",
              memory_limit: str) -> dict:
    """One nightly job through Dagster, in this process; returns its wall and CPU time, per stage too."""
    from pipeline.definitions import NIGHTLY, build_definitions
    from pipeline.settings import Settings

    settings = Settings(source=f"jsonl:{store}", data_dir=work / "data", segments_dir=segments_dir, gateway="file",
                        memory_limit=memory_limit)
    defs = build_definitions(settings)
    run_config = {"resources": {"run": {"config": {"as_of": as_of.isoformat()}}},
                  "loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    phase: dict = {}
    with measured(phase) as sampler:
        result = defs.resolve_job_def(NIGHTLY).execute_in_process(run_config=run_config, instance=instance,
                                                                  raise_on_error=False)
    if not result.success:
        failed = [e.step_key for e in result.all_events if e.is_step_failure]
        raise RuntimeError(f"the nightly job failed as of {as_of} at {failed}; see the Dagster log above")
    started, steps, step_cpu = {}, {}, {}
    for entry in instance.all_logs(result.run_id):
        event = entry.dagster_event
        if event is None or not event.step_key:
            continue
        if event.is_step_start:
            started[event.step_key] = entry.timestamp
        elif event.is_step_success:
            steps[event.step_key] = entry.timestamp - started[event.step_key]
            step_cpu[event.step_key] = sampler.cpu_between(started[event.step_key], entry.timestamp)
    stages, stages_cpu = dict.fromkeys(STAGES, 0.0), dict.fromkeys(STAGES, 0.0)
    for step, seconds in steps.items():
        stage = stage_of(step)
        if stage:
            stages[stage] += seconds
            stages_cpu[stage] += step_cpu[step]
    return {"total_s": phase["seconds"], "cpu_s": phase["cpu_s"], "peak_rss_mb": phase["peak_rss_mb"],
            "stages": {k: round(v, 2) for k, v in stages.items()},
            "stages_cpu": {k: round(v, 2) for k, v in stages_cpu.items()},
            "steps": {k: (round(v, 2), round(step_cpu[k], 2)) for k, v in sorted(steps.items(), key=lambda kv: -kv[1])}}


# ---------------------------------------------------------------------------------------------------------
# The baseline: plain DuckDB by hand

MONEY = "decimal(18, 4)"
SHOP_MONEY = f"struct(shopMoney struct(amount {MONEY}))"
ID_REF = "struct(id varchar)"
JSON_COLUMNS = {
    "shop": {"ianaTimezone": "varchar"},
    "customers": {
        "id": "varchar", "firstName": "varchar", "lastName": "varchar", "createdAt": "timestamptz",
        "updatedAt": "timestamptz", "state": "varchar", "locale": "varchar", "tags": "varchar[]",
        "defaultEmailAddress": "struct(emailAddress varchar, marketingState varchar)",
        "defaultPhoneNumber": "struct(phoneNumber varchar, marketingState varchar)",
        "defaultAddress": "struct(countryCodeV2 varchar, provinceCode varchar, city varchar)",
        "addresses": "struct(countryCodeV2 varchar, provinceCode varchar, city varchar)[]",
    },
    "orders": {  # orders and their line items share the file; __parentId tells them apart
        "id": "varchar", "__parentId": "varchar", "customer": ID_REF, "createdAt": "timestamptz",
        "processedAt": "timestamptz", "updatedAt": "timestamptz", "cancelledAt": "timestamptz", "test": "boolean",
        "totalPriceSet": SHOP_MONEY, "currentTotalPriceSet": SHOP_MONEY, "product": ID_REF, "quantity": "integer",
    },
    "products": {"id": "varchar", "__parentId": "varchar", "handle": "varchar", "tags": "varchar[]",
                 "updatedAt": "timestamptz"},
    "abandoned_checkouts": {"id": "varchar", "createdAt": "timestamptz", "updatedAt": "timestamptz",
                            "completedAt": "timestamptz", "abandonedCheckoutUrl": "varchar", "customer": ID_REF},
    "sms_events": {"phone": "varchar", "type": "varchar", "campaign": "varchar", "occurredAt": "timestamptz"},
    "redactions": {"customer": ID_REF},
}

# The same marts.customers columns the segments read, written from the spec in one script.
BASELINE_SQL = """
create table shop as select coalesce(ianaTimezone, 'UTC') as tz from read_parquet('shop.parquet') limit 1;

create table stg_customers as
select
    cast(split_part(id, '/', 5) as bigint) as customer_id, firstName as first_name, lastName as last_name,
    cast(timezone((select tz from shop), createdAt) as date) as created_date, upper(state) as account_state,
    locale, coalesce(tags, []) as tags, nullif(trim(defaultEmailAddress.emailAddress), '') as email,
    upper(defaultEmailAddress.marketingState) as email_state,
    nullif(trim(defaultPhoneNumber.phoneNumber), '') as phone,
    upper(defaultPhoneNumber.marketingState) as sms_state,
    upper(nullif(trim(defaultAddress.countryCodeV2), '')) as country,
    upper(nullif(trim(defaultAddress.provinceCode), '')) as province,
    nullif(trim(defaultAddress.city), '') as city,
    coalesce(addresses, []) as addresses
from read_parquet('customers.parquet')
qualify row_number() over (partition by id order by updatedAt desc nulls last, filename desc) = 1;

create table orders as
with latest as (
    select * from read_parquet('orders.parquet') where __parentId is null
    qualify row_number() over (partition by id order by updatedAt desc nulls last, filename desc) = 1
)
select
    cast(split_part(id, '/', 5) as bigint) as order_id, id as order_gid,
    cast(split_part(customer.id, '/', 5) as bigint) as customer_id,
    coalesce(currentTotalPriceSet.shopMoney.amount, totalPriceSet.shopMoney.amount) as amount,
    cast(timezone((select tz from shop), coalesce(processedAt, createdAt)) as date) as order_date
from latest
where not coalesce(test, false)
    and cast(timezone((select tz from shop), coalesce(processedAt, createdAt)) as date) <= $as_of
    and (cancelledAt is null or cast(timezone((select tz from shop), cancelledAt) as date) > $as_of);

create table products as
select id, coalesce(tags, []) as tags from read_parquet('products.parquet') where __parentId is null
qualify row_number() over (partition by id order by updatedAt desc nulls last, filename desc) = 1;

create table collections as
select
    cast(split_part(__parentId, '/', 5) as bigint) as product_id,
    list_sort(list(distinct lower(handle))) as handles,
    list_sort(list(distinct cast(split_part(id, '/', 5) as bigint))) as ids
from read_parquet('products.parquet') where __parentId is not null
group by 1;

create table order_lines as
with lines as (
    select distinct on (id) __parentId, product.id as product_gid, quantity
    from read_parquet('orders.parquet') where __parentId is not null
)
select
    orders.customer_id, orders.order_id, orders.order_date,
    cast(split_part(lines.product_gid, '/', 5) as bigint) as product_id,
    coalesce(lines.quantity, 0) as quantity,
    coalesce(list_sort(list_transform(products.tags, lambda t: lower(t))), []) as product_tags,
    coalesce(collections.handles, []) as collection_handles,
    coalesce(collections.ids, []) as collection_ids
from lines
join orders on lines.__parentId = orders.order_gid
left join products on lines.product_gid = products.id
left join collections on cast(split_part(lines.product_gid, '/', 5) as bigint) = collections.product_id;

create table sms_events as
select distinct
    trim(phone) as phone_e164, lower(trim(type)) as event_type, campaign, occurredAt,
    cast(timezone((select tz from shop), occurredAt) as date) as event_date
from read_parquet('sms_events.parquet')
where cast(timezone((select tz from shop), occurredAt) as date) <= $as_of;

create table customers as
with known as (
    select * from stg_customers where created_date <= $as_of
),
stats as (
    select customer_id, sum(amount) as spent, count(*) as n, min(order_date) as first_date,
        max(order_date) as last_date
    from orders where customer_id in (select customer_id from known)
    group by 1
),
scored as (
    select customer_id,
        (5 * count(*) over (order by last_date) + count(*) over () - 1) // count(*) over () as r,
        ((5 * count(*) over (order by n) + count(*) over () - 1) // count(*) over ()
         + (5 * count(*) over (order by spent) + count(*) over () - 1) // count(*) over ()) // 2 as fm
    from stats
),
checkouts as (
    select
        cast(split_part(customer.id, '/', 5) as bigint) as customer_id,
        cast(split_part(id, '/', 5) as bigint) as checkout_id, createdAt, abandonedCheckoutUrl as url,
        cast(timezone((select tz from shop), createdAt) as date) as created_date,
        cast(timezone((select tz from shop), completedAt) as date) as completed_date
    from read_parquet('abandoned_checkouts.parquet')
    qualify row_number() over (partition by id order by updatedAt desc nulls last, filename desc) = 1
),
abandoned as (
    select customer_id, created_date, url from checkouts
    where customer_id is not null and created_date <= $as_of
        and (completed_date is null or completed_date > $as_of)
    qualify row_number() over (partition by customer_id order by createdAt desc, checkout_id desc) = 1
),
redacted as (
    select distinct cast(split_part(customer.id, '/', 5) as bigint) as customer_id
    from read_parquet('redactions.parquet')
),
places as (
    select customer_id, list_filter(
        [{'country': country, 'province': province, 'city': city}] || list_transform(addresses, lambda a: {
            'country': upper(nullif(trim(a.countryCodeV2), '')), 'province': upper(nullif(trim(a.provinceCode), '')),
            'city': nullif(trim(a.city), '')}),
        lambda p: p.country is not null) as places
    from known
),
phones as (
    select known.customer_id, phones.phone_e164
    from known join read_parquet('phones.parquet') phones
        on known.phone = phones.phone and known.country is not distinct from phones.region
)
select
    known.customer_id,
    case when redacted.customer_id is null then phones.phone_e164 end as phone_e164,
    case
        when redacted.customer_id is not null then 'REDACTED'
        when known.phone is null then 'NOT_SUBSCRIBED'
        when known.sms_state in ('SUBSCRIBED', 'NOT_SUBSCRIBED', 'PENDING', 'UNSUBSCRIBED', 'REDACTED')
            then known.sms_state
        else 'NOT_SUBSCRIBED'
    end as sms_subscription_status,
    case
        when redacted.customer_id is not null then 'REDACTED'
        when known.email is null then 'NOT_SUBSCRIBED'
        when known.email_state in ('SUBSCRIBED', 'NOT_SUBSCRIBED', 'PENDING', 'UNSUBSCRIBED', 'REDACTED')
            then known.email_state
        else 'NOT_SUBSCRIBED'
    end as email_subscription_status,
    known.account_state as customer_account_status,
    known.locale as customer_language,
    case when redacted.customer_id is null then lower(nullif(split_part(known.email, '@', -1), known.email))
    end as customer_email_domain,
    known.created_date as customer_added_date,
    coalesce(stats.spent, 0) as amount_spent,
    coalesce(stats.n, 0) as number_of_orders,
    case when stats.n > 0 then cast(cast((cast(stats.spent * 10000 as hugeint) * 2 + stats.n) // (2 * stats.n)
        as decimal(38, 0)) * 0.0001 as decimal(18, 4)) end as average_order_value,
    stats.first_date as first_order_date,
    stats.last_date as last_order_date,
    abandoned.created_date as abandoned_checkout_date,
    case when redacted.customer_id is null then known.tags else [] end as customer_tags,
    case when redacted.customer_id is null
        then list_sort(list_distinct(list_transform(places.places, lambda p: p.country))) else [] end
        as customer_countries,
    case when redacted.customer_id is null then list_sort(list_distinct(list_filter(
        list_transform(places.places, lambda p: p.country || '-' || p.province), lambda r: r is not null))) else [] end
        as customer_regions,
    case when redacted.customer_id is null then list_sort(list_distinct(list_filter(
        list_transform(places.places, lambda p: case
            when p.city is not null then concat_ws('-', p.country, p.province, replace(p.city, ' ', '')) end),
        lambda x: x is not null))) else [] end as customer_cities,
    case
        when scored.r is null then 'PROSPECTS'
        when scored.r = 5 then ['NEW', 'PROMISING', 'ACTIVE', 'LOYAL', 'CHAMPIONS'][scored.fm]
        when scored.r = 4 then ['PROMISING', 'PROMISING', 'ACTIVE', 'LOYAL', 'CHAMPIONS'][scored.fm]
        when scored.r = 3 then ['NEEDS_ATTENTION', 'NEEDS_ATTENTION', 'NEEDS_ATTENTION', 'LOYAL', 'LOYAL'][scored.fm]
        when scored.r = 2 then ['ALMOST_LOST', 'ALMOST_LOST', 'AT_RISK', 'AT_RISK', 'PREVIOUSLY_LOYAL'][scored.fm]
        else ['DORMANT', 'DORMANT', 'ALMOST_LOST', 'PREVIOUSLY_LOYAL', 'PREVIOUSLY_LOYAL'][scored.fm]
    end as rfm_group
from known
left join redacted using (customer_id)
left join stats using (customer_id)
left join scored using (customer_id)
left join abandoned using (customer_id)
left join places using (customer_id)
left join phones using (customer_id);
"""


def run_baseline(work: Path, stores: tuple[Path, Path], segments: list[BenchSegment], as_of: dt.date,
                 memory_limit: str) -> dict:
    """read_json of both nights' stores into Parquet, then the hand-written script and every segment.

    Phone normalisation is not the baseline's work: it reads the pipeline's own E.164 cache,
    written out before the clock starts. Returns wall time, peak memory and the baseline's file.
    """
    folder = work / "baseline"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with duckdb.connect(str(work / "data" / "state.duckdb"), read_only=True) as state:
        state.execute("copy (select phone, region, phone_e164 from phone_cache) to ? (format parquet)",
                      [str(folder / "phones.parquet")])
    night_one, night_two = stores
    phase: dict = {"file": str(folder / "baseline.duckdb"), "stages": {}, "stages_cpu": {}}
    with measured(phase) as sampler, duckdb.connect(phase["file"]) as con:
        con.execute("set memory_limit = ?", [memory_limit])  # the pipeline's bound, for a fair race
        con.execute("set file_search_path = ?", [str(folder)])
        started = time.time()
        for name, columns in JSON_COLUMNS.items():
            file = f"{name}.jsonl"
            files = [str(night_one / file)] + ([] if file in UNCHANGED_FILES else [str(night_two / file)])
            con.execute("copy (select * from read_json(?, columns = ?, format = 'newline_delimited', "
                        "filename = true)) to ? (format parquet)", [files, columns, str(folder / f"{name}.parquet")])
        started = _lap(phase, sampler, "ingest_s", started)
        for statement in (s for s in BASELINE_SQL.split(";\n") if s.strip()):
            con.execute(statement, {"as_of": as_of} if "$as_of" in statement else None)
        started = _lap(phase, sampler, "warehouse_s", started)
        for s in segments:
            con.execute(f"create table seg_{s.name} as select customer_id from customers c where {s.baseline}",  # noqa: S608 (our own SQL)
                        {"as_of": as_of} if "$as_of" in s.baseline else None)
        _lap(phase, sampler, "segments_s", started)
    return phase


def _lap(phase: dict, sampler: Sampler, stage: str, started: float) -> float:
    """Records the wall and CPU seconds of `stage`, which began at `started` (time.time()); returns now."""
    now = time.time()
    phase["stages"][stage] = round(now - started, 2)
    phase["stages_cpu"][stage] = round(sampler.cpu_between(started, now), 2)
    return now


def membership_mismatches(warehouse: Path, baseline: Path, segments: list[BenchSegment]) -> dict[str, int]:
    """Per segment, the customers in ours or the baseline's but not both; every figure must be 0."""
    mismatches = {}
    with duckdb.connect(str(warehouse), read_only=True) as ours, duckdb.connect(str(baseline), read_only=True) as base:
        for s in segments:
            mine = ours.sql(f"select customer_id from segments.{s.name}").to_arrow_table()  # noqa: S608
            theirs = base.sql(f"select customer_id from seg_{s.name}").to_arrow_table()  # noqa: S608
            both = duckdb.connect()
            both.register("mine", mine)
            both.register("theirs", theirs)
            mismatches[s.name] = both.execute(
                "select count(*) from ((select * from mine except select * from theirs) "
                "union all (select * from theirs except select * from mine))").fetchall()[0][0]
            both.close()
    return mismatches


def segment_sizes(warehouse: Path, segments: list[BenchSegment]) -> dict[str, int]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {s.name: con.execute(f"select count(*) from segments.{s.name}").fetchall()[0][0]  # noqa: S608
                for s in segments}


# ---------------------------------------------------------------------------------------------------------
# The command


def run_benchmark(customers: int, segment_count: int = len(SEGMENTS), *, work: Path, seed: int = 0,
                  memory_limit: str = DEFAULT_MEMORY_LIMIT) -> dict:
    """Generates the stores, times both nights and the baseline, and returns the report.

    Both nights and the baseline run under the same DuckDB memory bound."""
    import dagster as dg

    segments = bench_segments(segment_count)
    write_segment_defs(work / "segment_defs", segments)
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        counts = pool.submit(prepare_stores, work, customers, seed).result()
    generate_s = round(time.perf_counter() - started, 2)
    load = {"before": _load()}
    with dg.DagsterInstance.ephemeral() as instance:
        night_one = run_night(work, work / "night1", work / "segment_defs", NIGHT_ONE, instance, memory_limit)
        load["night1"] = _load()
        night_two = run_night(work, work / "night2", work / "segment_defs", NIGHT_TWO, instance, memory_limit)
        load["night2"] = _load()
    baseline = run_baseline(work, (work / "night1", work / "night2"), segments, NIGHT_TWO, memory_limit)
    load["baseline"] = _load()
    warehouse = work / "data" / "warehouse.duckdb"
    mismatches = membership_mismatches(warehouse, Path(baseline["file"]), segments)
    warm = night_two["total_s"]
    return {
        "customers": customers,
        "orders": counts["orders"],
        "line_items": counts["line_items"],
        "segments": len(segments),
        "exported_segments": sum(s.export for s in segments),
        "memory_limit": memory_limit,
        "stages": night_one["stages"],
        "stages_cpu": night_one["stages_cpu"],
        "total_s": night_one["total_s"],
        "warm_total_s": warm,
        "warm_stages": night_two["stages"],
        "warm_stages_cpu": night_two["stages_cpu"],
        "baseline_s": baseline["seconds"],
        "baseline_stages": baseline["stages"],
        "baseline_stages_cpu": baseline["stages_cpu"],
        "ratio": round(warm / baseline["seconds"], 2) if baseline["seconds"] else None,
        "cpu_s": {"night1": night_one["cpu_s"], "night2": night_two["cpu_s"], "baseline": baseline["cpu_s"]},
        "peak_rss_mb": max(night_one["peak_rss_mb"], night_two["peak_rss_mb"], baseline["peak_rss_mb"]),
        "peak_rss_mb_by_phase": {"night1": night_one["peak_rss_mb"], "night2": night_two["peak_rss_mb"],
                                 "baseline": baseline["peak_rss_mb"]},
        "membership_mismatches": sum(mismatches.values()),
        "mismatches_by_segment": {k: v for k, v in mismatches.items() if v},
        "segment_sizes": segment_sizes(warehouse, segments),
        "night_two_changes": {k: counts[k] for k in ("changed_customers", "new_orders", "new_line_items")},
        "generate_s": generate_s,
        "store_bytes": sum(f.stat().st_size for f in (work / "night1").iterdir()),
        "slowest_steps": {"night1": dict(list(night_one["steps"].items())[:12]),
                          "night2": dict(list(night_two["steps"].items())[:12])},
        "load_average": load,
        "cpus": os.cpu_count(),
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def _load() -> list[float]:
    """The 1, 5 and 15 minute load averages: the machine is shared, so every figure carries it."""
    return [round(x, 2) for x in os.getloadavg()]


def cmd_bench(args: argparse.Namespace) -> int:
    from pipeline.cli import console

    try:
        memory_limit = memory_limit_from(os.environ)
    except SettingsError as e:
        console.print(f"[red]bench:[/red] {e}")
        return 2
    if args.customers < 1 or args.segments < 1:
        console.print(f"[red]bench:[/red] --customers {args.customers} and --segments {args.segments}: "
                      "both need to be 1 or more")
        return 2
    out = Path(args.out)
    if args.destinations:
        return bench_destinations(args.customers, out, throttled=args.throttled)
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="smsseg-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        report = run_benchmark(args.customers, args.segments, work=work, seed=args.seed, memory_limit=memory_limit)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"{report['customers']:,} customers: night 1 {report['total_s']} s, night 2 "
                  f"{report['warm_total_s']} s, baseline {report['baseline_s']} s (ratio {report['ratio']}), "
                  f"peak {report['peak_rss_mb']} MB, membership mismatches {report['membership_mismatches']}; "
                  f"written to {out}")
    return 0 if report["membership_mismatches"] == 0 else 1


def bench_destinations(members: int, out: Path, *, throttled: bool) -> int:
    """A first night's sync of `members` numbers to the Klaviyo and Shopify emulators, against the floor
    each destination's documented rate limits allow; `throttled`: the emulators enforce those limits."""
    from dataclasses import asdict

    from pipeline.audience.klaviyo_emulator import benchmark as bench_klaviyo
    from pipeline.audience.tags_bench import bench_shopify_tags
    from pipeline.cli import console

    klaviyo = bench_klaviyo(members, rate_limits=throttled)
    tags = asdict(bench_shopify_tags(members, throttled=throttled))
    rows = {
        "klaviyo": {"seconds": klaviyo["seconds"], "requests": klaviyo["requests"],
                    "floor_seconds": klaviyo["floor_seconds"], "detail": klaviyo},
        "shopify_tags": {"seconds": tags["wall_seconds"], "requests": tags["graphql_requests"],
                         "floor_seconds": tags["floor_seconds"]["standard"], "detail": tags},
    }
    for name, row in rows.items():
        row["ratio_to_floor"] = round(row["seconds"] / row["floor_seconds"], 2) if row["floor_seconds"] else None
        console.print(f"{name}: {members:,} numbers in {row['seconds']} s, {row['requests']:,} requests; the "
                      f"documented limits allow {row['floor_seconds']} s at best (ratio {row['ratio_to_floor']}"
                      + (", emulator throttling)" if throttled else ", emulator not throttling: our own cost)"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"members": members, "throttled": throttled, "load": _load(), **rows}, indent=2) + "\n")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Adds `smsseg bench` to the command's subcommands."""
    bench = commands.add_parser("bench", help="time night 1, night 2 and a plain-DuckDB baseline on a demo store "
                                              "(under SMSSEG_MEMORY_LIMIT, as a run)")
    bench.add_argument("--customers", type=int, required=True, help="customers in the generated demo store")
    bench.add_argument("--segments", type=int, default=len(SEGMENTS),
                       help=f"segment definitions to evaluate (default {len(SEGMENTS)}, covering the whole language)")
    bench.add_argument("--out", required=True, help="the JSON report to write")
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument("--work-dir", help="where the stores and data go (default: a new directory under the "
                                          "temp dir, deleted afterwards)")
    bench.add_argument("--keep", action="store_true", help="keep the work directory for a closer look")
    bench.add_argument("--destinations", action="store_true",
                       help="instead: a first night's sync of --customers numbers to the Klaviyo and Shopify "
                            "emulators, set against the floor their documented rate limits allow")
    bench.add_argument("--throttled", action="store_true",
                       help="with --destinations: the emulators enforce those limits in real time (slow)")
    bench.set_defaults(func=cmd_bench)
