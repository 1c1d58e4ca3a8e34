-- Line items of each order's winning version: the lines of the batch that version came from.
with order_lines as (
    select * from raw.order_lines
),

orders as (
    select order_id, order_gid, source_batch from staging.stg_orders
),

winning as (
    select
        order_lines.*,
        orders.order_id
    from order_lines
    inner join orders
        on order_lines._parent_id = orders.order_gid
        and order_lines._batch = orders.source_batch
    -- hash(id) first: ids share a long 'gid://shopify/LineItem/' prefix, which makes sorting on the id
    -- alone slow; the groups are the same.
    qualify row_number() over (
        partition by hash(order_lines.id), order_lines.id order by order_lines._line desc
    ) = 1
)

select
    cast(split_part(id, '/', 5) as bigint) as line_id,
    order_id,
    cast(split_part(product_id, '/', 5) as bigint) as product_id,
    cast(split_part(variant_id, '/', 5) as bigint) as variant_id,
    sku,
    title,
    coalesce(quantity, 0) as quantity,
    original_total as line_total
from winning
