-- Shopify Email events (inbox), each once however many batches repeat it, with the local date.
with events as (
    select * from raw.shopify_email_events
),

shop as (
    select shop_timezone from staging.stg_shop
)

select distinct
    gid_number(events.customer_id, 'shopify_email_events', events._batch, events._line, 'customer.id')
        as customer_id,
    lower(trim(events.type)) as event_type,
    gid_number(events.activity_id, 'shopify_email_events', events._batch, events._line, 'marketingActivity.id')
        as activity_id,
    events.occurred_at,
    cast(timezone(shop.shop_timezone, events.occurred_at) as date) as event_date
from events
cross join shop
