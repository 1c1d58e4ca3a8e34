-- Line items of each order's winning version: the lines of the batch that version came from.
-- A line belongs to the order whose numeric id its __parentId carries, the id stg_orders keys on.
-- A view: marts.line_items reads it once, so writing its 10M rows (at 1M customers) to the
-- warehouse only to read them back cost more than computing them where they are read.
-- materialized: view
with order_lines as not materialized (
    -- read three times below: rereading the Parquet costs less than a copy of 10M lines
    select
        *,
        gid_number(_parent_id, 'order_lines', _batch, _line, '__parentId') as parent_order_id
    from raw.order_lines
),

orders as not materialized (
    select order_id, source_batch from staging.stg_orders
),

-- Line ids listed more than once (by hash: a collision only adds a candidate). Only these need
-- ranking, usually none: sorting every line item to find them is what made this model slow.
repeated_ids as (
    select hash(id) as id_hash
    from order_lines
    group by id_hash
    having count(*) > 1
),

-- Winning lines of a repeated id other than its last (by line, then batch): the ones to drop.
superseded as (
    select order_lines._batch, order_lines._line
    from order_lines
    inner join orders
        on order_lines.parent_order_id = orders.order_id
        and order_lines._batch = orders.source_batch
    where hash(order_lines.id) in (select id_hash from repeated_ids)
    qualify row_number() over (
        partition by order_lines.id order by order_lines._line desc, order_lines._batch desc
    ) > 1
),

-- Every batch name once, in a list: the orders below carry the position of their batch in it.
batch_names as (
    select list(distinct _batch order by _batch) as names
    from raw.orders
),

-- The hash table the lines are joined to: 12 bytes an order (numeric id, batch position), not the
-- GID and the 40-character batch name. With a million customers' 4M orders the join then runs
-- within a 400 MB memory bound; keyed on the strings it spilled even at 600 MB. Past the bound
-- the join spills every line item with all its columns: that made this model 3.5x slower a
-- customer at 5M customers than at 1M.
winning_versions as (
    select
        orders.order_id,
        cast(list_position(batch_names.names, orders.source_batch) as integer) as batch_position
    from orders
    cross join batch_names
),

winning as (
    select
        order_lines.*,
        winning_versions.order_id
    from order_lines
    inner join winning_versions on order_lines.parent_order_id = winning_versions.order_id
    cross join batch_names
    anti join superseded
        on order_lines._batch = superseded._batch
        and order_lines._line = superseded._line
    where order_lines._batch = batch_names.names[winning_versions.batch_position]
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
from winning
