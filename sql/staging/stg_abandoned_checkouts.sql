-- One row per checkout: the version with the latest updatedAt, with local dates.
with checkouts as not materialized (
    select * from raw.abandoned_checkouts
),

shop as (
    select shop_timezone from staging.stg_shop
),

latest as (
    select * from latest_versions('checkouts')
)

select
    gid_number(latest.id, 'abandoned_checkouts', latest._batch, latest._line, 'id') as checkout_id,
    gid_number(latest.customer_id, 'abandoned_checkouts', latest._batch, latest._line, 'customer.id') as customer_id,
    latest.created_at,
    latest.completed_at,
    cast(timezone(shop.shop_timezone, latest.created_at) as date) as created_date,
    cast(timezone(shop.shop_timezone, latest.completed_at) as date) as completed_date,
    latest.abandoned_checkout_url,
    latest.total_price
from latest
cross join shop
