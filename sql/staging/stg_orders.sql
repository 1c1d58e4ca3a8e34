-- One row per order: the version with the latest updatedAt. Its batch is kept so that its line
-- items are taken from the same extraction.
with orders as not materialized (
    -- read three times below: rereading the Parquet costs less than a copy of 4M orders
    select * from raw.orders
),

shop as (
    select shop_timezone from staging.stg_shop
),

-- Ids listed more than once (by hash: a collision only adds a candidate). Only these need ranking,
-- a few percent of the rows: sorting every order to find them is what made this model slow.
repeated_ids as (
    select hash(id) as id_hash
    from orders
    group by id_hash
    having count(*) > 1
),

-- Every version but the winner: latest updatedAt, then the later batch, then the later line.
superseded as (
    select _batch, _line
    from orders
    where hash(id) in (select id_hash from repeated_ids)
    qualify row_number() over (
        partition by id order by updated_at desc nulls last, _batch desc, _line desc
    ) > 1
),

latest as (
    select orders.*
    from orders
    anti join superseded
        on orders._batch = superseded._batch
        and orders._line = superseded._line
)

select
    gid_number(latest.id, 'orders', latest._batch, latest._line, 'id') as order_id,
    latest.id as order_gid,
    latest._batch as source_batch,
    latest.name as order_name,
    gid_number(latest.customer_id, 'orders', latest._batch, latest._line, 'customer.id') as customer_id,
    coalesce(latest.processed_at, latest.created_at) as processed_at,
    latest.cancelled_at,
    coalesce(latest.test, false) as is_test,
    latest.financial_status,
    latest.currency_code,
    coalesce(latest.current_total_price, latest.total_price) as order_total,
    cast(timezone(shop.shop_timezone, coalesce(latest.processed_at, latest.created_at)) as date) as order_date,
    cast(timezone(shop.shop_timezone, latest.cancelled_at) as date) as cancelled_date
from latest
cross join shop
