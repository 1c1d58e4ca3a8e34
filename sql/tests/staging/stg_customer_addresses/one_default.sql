-- blocking: a customer has at most one default address
select customer_id, count(*) as defaults
from staging.stg_customer_addresses
where is_default
group by all
having count(*) > 1
