-- Line items of counted orders, one row each, with their order's customer and date: the table
-- behind marts.order_lines, which adds each product's tags and collections. Those three lists on
-- every line item (10M at a million customers) were half the cost of writing this table.
with orders as (
    select * from marts.orders
),

order_lines as (
    select * from staging.stg_order_lines
)

select
    order_lines.line_id,
    order_lines.order_id,
    orders.customer_id,
    orders.order_date,
    order_lines.product_id,
    order_lines.variant_id,
    order_lines.sku,
    order_lines.title,
    order_lines.quantity,
    order_lines.line_total
from order_lines
inner join orders on order_lines.order_id = orders.order_id
