-- warning: every counted order belongs to a known customer or is a guest order (no customer)
select order_id, customer_id
from marts.orders
where customer_id is not null
    and customer_id not in (select customer_id from staging.stg_customers)
