-- blocking: no order has a negative total (money that cannot be right must not reach a segment)
select order_id, order_name, order_total
from staging.stg_orders
where order_total < 0
