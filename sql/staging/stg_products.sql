-- One row per product: the version with the latest updatedAt.
with products as (
    select * from raw.products
),

latest as (
    select *
    from products
    qualify row_number() over (
        partition by id order by updated_at desc nulls last, _batch desc, _line desc
    ) = 1
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
