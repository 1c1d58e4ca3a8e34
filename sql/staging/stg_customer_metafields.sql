-- Metafields of each customer's winning version (the lines of the batch that version came from),
-- one row per (customer, namespace, key): Shopify keeps one; were a line repeated, the last one wins.
with metafields as (
    select
        *,
        gid_number(_parent_id, 'customer_metafields', _batch, _line, '__parentId') as parent_customer_id
    from raw.customer_metafields
),

customers as (
    select customer_id, source_batch from staging.stg_customers
),

winning as (
    select metafields.*
    from metafields
    inner join customers
        on metafields.parent_customer_id = customers.customer_id
        and metafields._batch = customers.source_batch
    qualify row_number() over (
        partition by metafields.parent_customer_id, metafields.namespace, metafields.key
        order by metafields._line desc
    ) = 1
)

select
    parent_customer_id as customer_id,
    gid_number(id, 'customer_metafields', _batch, _line, 'id') as metafield_id,
    namespace,
    key,
    type,
    value
from winning
