-- Collections of each product's winning version, one row per (product, collection).
with product_collections as (
    select * from raw.product_collections
),

products as (
    select product_id, product_gid, source_batch from staging.stg_products
)

select distinct
    products.product_id,
    gid_number(
        product_collections.id, 'product_collections', product_collections._batch, product_collections._line, 'id'
    ) as collection_id,
    product_collections.handle as collection_handle,
    product_collections.title as collection_title
from product_collections
inner join products
    on product_collections._parent_id = products.product_gid
    and product_collections._batch = products.source_batch
