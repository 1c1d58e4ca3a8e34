-- One row per product: the version with the latest updatedAt.
with products as not materialized (
    select * from raw.products
),

latest as (
    select * from latest_versions('products')
)

select
    gid_number(id, 'products', _batch, _line, 'id') as product_id,
    id as product_gid,
    _batch as source_batch,
    title,
    handle,
    product_type,
    vendor,
    coalesce(tags, []) as tags
from latest
