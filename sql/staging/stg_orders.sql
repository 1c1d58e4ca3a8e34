-- One row per order: the version with the latest updatedAt. Its batch is kept so that its line
-- items are taken from the same extraction.
with orders as not materialized (
    select * from raw.orders
),

shop as (
    select shop_timezone from staging.stg_shop
),

latest as (
    select * from latest_versions('orders')
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
