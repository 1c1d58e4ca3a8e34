-- blocking: every storefront event is one row, with its customer and type
select customer_id, event_type, product_id, collection_id, occurred_at, count(*) as rows
from staging.stg_storefront_events
group by all
having count(*) > 1 or customer_id is null or event_type is null
