-- Collections of each product's winning version, one row per (product, collection).
with product_collections as (
    select * from raw.product_collections
),

products as (
    select product_id, product_gid, source_batch from staging.stg_products
)

select distinct
    products.product_id,
    coalesce(
        try_cast(split_part(product_collections.id, '/', 5) as bigint),
        case when product_collections.id is not null then error(format(
            'raw/{0}/{1}.parquet, line {2}: {3} {4} does not fit BIGINT (an older release ingested it unchecked). '
            || 'Delete raw/*/{1}.parquet in the data directory and rerun: the ingest then names the line to fix.',
            'product_collections', product_collections._batch, product_collections._line, 'id', product_collections.id
        )) end
    ) as collection_id,
    product_collections.handle as collection_handle,
    product_collections.title as collection_title
from product_collections
inner join products
    on product_collections._parent_id = products.product_gid
    and product_collections._batch = products.source_batch
