-- blocking: every event is one row, with its number and type
select phone, event_type, campaign, occurred_at, count(*) as rows
from staging.stg_sms_events
group by all
having count(*) > 1 or phone is null or event_type is null
