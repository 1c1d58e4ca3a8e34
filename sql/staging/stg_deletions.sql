-- Customers deleted in Shopify, whatever the evaluation date: a customers/delete webhook, or missing
-- from the latest full sweep of customer ids (--source shopify; other sources have no sweep).
with webhooks as (
    select * from raw.deletions
),

sweeps as (
    select * from raw.customer_ids
),

customers as (
    select customer_id from staging.stg_customers
),

latest_sweep as (
    select cast(split_part(id, '/', 5) as bigint) as customer_id
    from sweeps
    where _batch = (select max(_batch) from sweeps)
),

swept_out as (
    select
        customer_id,
        cast(null as timestamptz) as deleted_at
    from customers
    where
        exists (select 1 from latest_sweep)
        and customer_id not in (select customer_id from latest_sweep)
),

deleted as (
    select
        cast(split_part(customer_id, '/', 5) as bigint) as customer_id,
        deleted_at
    from webhooks
    union all
    select * from swept_out
)

select
    customer_id,
    min(deleted_at) as deleted_at
from deleted
group by 1
