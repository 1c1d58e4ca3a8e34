-- Shopify Email events on or before the evaluation date.
with events as (
    select * from staging.stg_shopify_email_events
)

select
    customer_id,
    event_type,
    activity_id,
    occurred_at,
    event_date
from events
where event_date <= getvariable('as_of')
