-- Counted orders as of the evaluation date: not a test, processed on or before it, and not
-- cancelled by the end of it (a later cancellation does not rewrite an earlier day).
with orders as (
    select * from staging.stg_orders
)

select
    order_id,
    customer_id,
    order_name,
    processed_at,
    order_date,
    order_total as amount,
    currency_code
from orders
where
    not is_test
    and order_date <= getvariable('as_of')
    and (cancelled_date is null or cancelled_date > getvariable('as_of'))
