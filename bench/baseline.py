"""The baseline: plain DuckDB by hand, reading the same JSONL and computing the same memberships, which must
equal the pipeline's."""

import datetime as dt
import shutil
import time
from pathlib import Path

import duckdb
from sqlglot import exp

from bench.measure import Sampler, measured
from bench.segments import BenchSegment
from bench.stores import UNCHANGED_FILES

MONEY = "decimal(18, 4)"
SHOP_MONEY = f"struct(shopMoney struct(amount {MONEY}))"
ID_REF = "struct(id varchar)"
JSON_COLUMNS = {
    "shop": {"ianaTimezone": "varchar"},
    "customers": {  # customers, their metafields, store credit accounts, addresses; __parentId tells them apart
        "id": "varchar",
        "__parentId": "varchar",
        "__typename": "varchar",
        "firstName": "varchar",
        "lastName": "varchar",
        "createdAt": "timestamptz",
        "updatedAt": "timestamptz",
        "state": "varchar",
        "locale": "varchar",
        "tags": "varchar[]",
        "defaultEmailAddress": "struct(emailAddress varchar, marketingState varchar)",
        "defaultPhoneNumber": "struct(phoneNumber varchar, marketingState varchar, marketingUpdatedAt timestamptz)",
        "defaultAddress": "struct(countryCodeV2 varchar, provinceCode varchar, city varchar, latitude double, "
        "longitude double)",
        "addresses": "struct(countryCodeV2 varchar, provinceCode varchar, city varchar)[]",
        "statistics": "struct(predictedSpendTier varchar)",
        "productSubscriberStatus": "varchar",
        "companyContactProfiles": "struct(company struct(id varchar))[]",
        "namespace": "varchar",
        "key": "varchar",
        "type": "varchar",
        "value": "varchar",
        "balance": f"struct(amount {MONEY}, currencyCode varchar)",
        "countryCodeV2": "varchar",
        "provinceCode": "varchar",
        "city": "varchar",
        "latitude": "double",
        "longitude": "double",
    },
    "orders": {  # orders and their line items share the file; __parentId tells them apart
        "id": "varchar",
        "__parentId": "varchar",
        "customer": ID_REF,
        "createdAt": "timestamptz",
        "processedAt": "timestamptz",
        "updatedAt": "timestamptz",
        "cancelledAt": "timestamptz",
        "test": "boolean",
        "totalPriceSet": SHOP_MONEY,
        "currentTotalPriceSet": SHOP_MONEY,
        "product": ID_REF,
        "quantity": "integer",
    },
    "products": {
        "id": "varchar",
        "__parentId": "varchar",
        "handle": "varchar",
        "tags": "varchar[]",
        "updatedAt": "timestamptz",
    },
    "abandoned_checkouts": {
        "id": "varchar",
        "createdAt": "timestamptz",
        "updatedAt": "timestamptz",
        "completedAt": "timestamptz",
        "abandonedCheckoutUrl": "varchar",
        "customer": ID_REF,
    },
    "sms_events": {"phone": "varchar", "type": "varchar", "campaign": "varchar", "occurredAt": "timestamptz"},
    "redactions": {"customer": ID_REF},
    "shopify_email_events": {
        "customer": ID_REF,
        "type": "varchar",
        "marketingActivity": ID_REF,
        "occurredAt": "timestamptz",
    },
    "storefront_events": {
        "customer": ID_REF,
        "type": "varchar",
        "product": ID_REF,
        "collection": ID_REF,
        "occurredAt": "timestamptz",
    },
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
    coalesce(addresses, []) as addresses,
    upper(statistics.predictedSpendTier) as spend_tier, upper(productSubscriberStatus) as subscriber,
    list_sort(list_distinct(list_transform(companyContactProfiles,
        lambda p: cast(split_part(p.company.id, '/', 5) as bigint)))) as company_ids,
    defaultAddress.latitude as latitude, defaultAddress.longitude as longitude,
    cast(timezone((select tz from shop), defaultPhoneNumber.marketingUpdatedAt) as date) as consent_date,
    filename
from read_parquet('customers.parquet')
where __parentId is null
qualify row_number() over (partition by id order by updatedAt desc nulls last, filename desc) = 1;

create table customer_children as
select
    children.*, cast(split_part(children.__parentId, '/', 5) as bigint) as customer_id
from read_parquet('customers.parquet') as children
join stg_customers
    on cast(split_part(children.__parentId, '/', 5) as bigint) = stg_customers.customer_id
    and children.filename = stg_customers.filename
where children.__parentId is not null;

create table metafields as
select distinct on (customer_id, namespace, key)
    customer_id, namespace, key, type, value
from customer_children
where coalesce(__typename, split_part(id, '/', 4)) = 'Metafield'
    and customer_id not in (select cast(split_part(customer.id, '/', 5) as bigint)
                            from read_parquet('redactions.parquet'));

create table store_credit as
select distinct on (id) customer_id, balance.amount as balance, upper(trim(balance.currencyCode)) as currency
from customer_children
where coalesce(__typename, split_part(id, '/', 4)) = 'StoreCreditAccount';

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

-- every opt-out, also one after the evaluation day, suppresses its number (the demo writes them in E.164)
create table opted_out as
select distinct trim(phone) as phone from read_parquet('sms_events.parquet') where lower(trim(type)) = 'opted_out';

create table email_events as
select distinct
    cast(split_part(customer.id, '/', 5) as bigint) as customer_id, lower(trim(type)) as event_type,
    cast(split_part(marketingActivity.id, '/', 5) as bigint) as activity_id, occurredAt,
    cast(timezone((select tz from shop), occurredAt) as date) as event_date
from read_parquet('shopify_email_events.parquet')
where cast(timezone((select tz from shop), occurredAt) as date) <= $as_of;

create table storefront_events as
select distinct
    cast(split_part(customer.id, '/', 5) as bigint) as customer_id, lower(trim(type)) as event_type,
    cast(split_part(product.id, '/', 5) as bigint) as product_id,
    cast(split_part(collection.id, '/', 5) as bigint) as collection_id, occurredAt,
    cast(timezone((select tz from shop), occurredAt) as date) as event_date
from read_parquet('storefront_events.parquet')
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
listed_places as (
    select customer_id, list({'country': upper(nullif(trim(countryCodeV2), '')),
        'province': upper(nullif(trim(provinceCode), '')), 'city': nullif(trim(city), '')}) as places,
        list({'lat': latitude, 'lng': longitude}) as points
    from customer_children
    where coalesce(__typename, split_part(id, '/', 4)) = 'MailingAddress'
    group by customer_id
),
places as (
    select customer_id, list_filter(
        [{'country': country, 'province': province, 'city': city}] || list_transform(addresses, lambda a: {
            'country': upper(nullif(trim(a.countryCodeV2), '')), 'province': upper(nullif(trim(a.provinceCode), '')),
            'city': nullif(trim(a.city), '')}) || coalesce(listed_places.places, []),
        lambda p: p.country is not null) as places,
        list_filter([{'lat': latitude, 'lng': longitude}] || coalesce(listed_places.points, []),
            lambda p: p.lat between -90 and 90 and p.lng between -180 and 180) as points
    from known
    left join listed_places using (customer_id)
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
    end as rfm_group,
    case when known.spend_tier in ('HIGH', 'MEDIUM', 'LOW') then known.spend_tier end as predicted_spend_tier,
    case known.subscriber when 'ACTIVE' then 'SUBSCRIBED' when 'PAUSED' then 'PAUSED' when 'CANCELLED' then 'CANCELLED'
        when 'EXPIRED' then 'EXPIRED' when 'FAILED' then 'FAILED' when 'NEVER_SUBSCRIBED' then 'NEVER_SUBSCRIBED'
    end as product_subscription_status,
    case when redacted.customer_id is null then known.company_ids else [] end as companies,
    case when redacted.customer_id is null then known.latitude end as latitude,
    case when redacted.customer_id is null then known.longitude end as longitude,
    case when redacted.customer_id is null then places.points else [] end as points,
    case when redacted.customer_id is null and known.phone is not null then known.consent_date end
        as sms_consent_date
from known
left join redacted using (customer_id)
left join stats using (customer_id)
left join scored using (customer_id)
left join abandoned using (customer_id)
left join places using (customer_id)
left join phones using (customer_id);
"""


def run_baseline(
    work: Path, stores: tuple[Path, Path], segments: list[BenchSegment], as_of: dt.date, memory_limit: str
) -> dict:
    """read_json of both nights' stores into Parquet, then the hand-written script and every segment.

    Phone normalisation is not the baseline's work: it reads the pipeline's own E.164 cache,
    written out before the clock starts. Returns wall time, peak memory and the baseline's file.
    """
    folder = work / "baseline"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with duckdb.connect(str(work / "data" / "state.duckdb"), read_only=True) as state:
        state.execute(
            "copy (select phone, region, phone_e164 from phone_cache) to ? (format parquet)",
            [str(folder / "phones.parquet")],
        )
    night_one, night_two = stores
    phase: dict = {"file": str(folder / "baseline.duckdb"), "stages": {}, "stages_cpu": {}}
    with measured(phase) as sampler, duckdb.connect(phase["file"]) as con:
        con.execute("set memory_limit = ?", [memory_limit])  # the pipeline's bound, for a fair race
        con.execute("set file_search_path = ?", [str(folder)])
        started = time.time()
        for name, columns in JSON_COLUMNS.items():
            file = f"{name}.jsonl"
            files = [str(night_one / file)] + ([] if file in UNCHANGED_FILES else [str(night_two / file)])
            con.execute(
                "copy (select * from read_json(?, columns = ?, format = 'newline_delimited', "
                "filename = true)) to ? (format parquet)",
                [files, columns, str(folder / f"{name}.parquet")],
            )
        started = _lap(phase, sampler, "ingest_s", started)
        for statement in (s for s in BASELINE_SQL.split(";\n") if s.strip()):
            con.execute(statement, {"as_of": as_of} if "$as_of" in statement else None)
        started = _lap(phase, sampler, "warehouse_s", started)
        for s in segments:
            members = exp.select("customer_id").from_(exp.to_table("customers").as_("c"))
            members = members.where(s.baseline, dialect="duckdb")
            create = exp.Create(this=exp.to_table(f"seg_{s.name}"), kind="TABLE", expression=members)
            con.execute(create.sql(dialect="duckdb"), {"as_of": as_of} if "$as_of" in s.baseline else None)
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
            mine = ours.sql(_select(exp.to_table(f"segments.{s.name}"), "customer_id")).to_arrow_table()
            theirs = base.sql(_select(exp.to_table(f"seg_{s.name}"), "customer_id")).to_arrow_table()
            both = duckdb.connect()
            both.register("mine", mine)
            both.register("theirs", theirs)
            mismatches[s.name] = both.execute(
                "select count(*) from ((select * from mine except select * from theirs) "
                "union all (select * from theirs except select * from mine))"
            ).fetchall()[0][0]
            both.close()
    return mismatches


def segment_sizes(warehouse: Path, segments: list[BenchSegment]) -> dict[str, int]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {
            s.name: con.execute(_select(exp.to_table(f"segments.{s.name}"), "count(*)")).fetchall()[0][0]
            for s in segments
        }


def _select(table: exp.Table, column: str) -> str:
    return exp.select(column).from_(table).sql(dialect="duckdb")
