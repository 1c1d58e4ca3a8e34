-- blocking: every order is one row, with its id
select order_id, count(*) as rows
from staging.stg_orders
group by all
having count(*) > 1 or order_id is null
