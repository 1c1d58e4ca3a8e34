-- blocking: every Shopify Email event is one row, with its customer and type
select customer_id, event_type, activity_id, occurred_at, count(*) as rows
from staging.stg_shopify_email_events
group by all
having count(*) > 1 or customer_id is null or event_type is null
