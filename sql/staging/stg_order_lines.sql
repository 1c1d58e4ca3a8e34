-- Line items of each order's winning version: the lines of the batch that version came from.
-- A line belongs to the order whose numeric id its __parentId carries, the id stg_orders keys on.
-- A view: marts.line_items reads it once, so writing its rows to the warehouse only to read them
-- back costs more than computing them where they are read.
-- materialized: view
with order_lines as not materialized (
    select
        *,
        gid_number(_parent_id, 'order_lines', _batch, _line, '__parentId') as parent_order_id
    from raw.order_lines
),

orders as not materialized (
    select order_id, source_batch from staging.stg_orders
),

-- Every batch name once, in a list: the orders below carry the position of their batch in it.
batch_names as (
    select list(distinct _batch order by _batch) as names
    from raw.orders
),

-- The hash table the lines are joined to: 12 bytes an order (numeric id, batch position), not the
-- GID and the 40-character batch name, so the join stays within the memory bound rather than spill
-- every line item with all its columns (BENCHMARKS.md, session 4, has the figures).
winning_versions as (
    select
        orders.order_id,
        cast(list_position(batch_names.names, orders.source_batch) as integer) as batch_position
    from orders
    cross join batch_names
),

-- A line item has no updatedAt of its own (its order's chose the batch): of a line id listed more
-- than once among the winning orders' lines, the later batch, then the later line, wins.
winning_lines as not materialized (
    select
        order_lines.*,
        winning_versions.order_id,
        cast(null as timestamptz) as updated_at
    from order_lines
    inner join winning_versions on order_lines.parent_order_id = winning_versions.order_id
    cross join batch_names
    where order_lines._batch = batch_names.names[winning_versions.batch_position]
),

latest as (
    select * from latest_versions('winning_lines', listed := 'order_lines')
)

select
    gid_number(id, 'order_lines', _batch, _line, 'id') as line_id,
    order_id,
    gid_number(product_id, 'order_lines', _batch, _line, 'product.id') as product_id,
    gid_number(variant_id, 'order_lines', _batch, _line, 'variant.id') as variant_id,
    sku,
    title,
    coalesce(quantity, 0) as quantity,
    original_total as line_total
from latest
