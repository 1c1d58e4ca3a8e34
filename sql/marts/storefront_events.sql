-- Storefront events on or before the evaluation date.
with events as (
    select * from staging.stg_storefront_events
)

select
    customer_id,
    event_type,
    product_id,
    collection_id,
    occurred_at,
    event_date
from events
where event_date <= getvariable('as_of')
