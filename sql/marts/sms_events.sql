-- Gateway events on or before the evaluation date.
with events as (
    select * from staging.stg_sms_events
)

select
    phone as phone_e164,
    event_type,
    campaign,
    occurred_at,
    event_date
from events
where event_date <= getvariable('as_of')
