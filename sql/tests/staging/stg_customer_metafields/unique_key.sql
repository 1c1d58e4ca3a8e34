-- blocking: every metafield of a customer is one row, with its customer, namespace and key
select customer_id, namespace, key, count(*) as rows
from staging.stg_customer_metafields
group by all
having count(*) > 1 or customer_id is null or namespace is null or key is null
