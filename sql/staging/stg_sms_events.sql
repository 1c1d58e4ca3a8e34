-- Gateway events, each once however many batches repeat it, with the local date.
with events as (
    select * from raw.sms_events
),

shop as (
    select shop_timezone from staging.stg_shop
)

select distinct
    trim(events.phone) as phone,
    lower(trim(events.type)) as event_type,
    events.campaign,
    events.occurred_at,
    cast(timezone(shop.shop_timezone, events.occurred_at) as date) as event_date
from events
cross join shop
