-- One row per product with tags or collections: what products_purchased matches a line item's
-- product on, lowercase so matching is case-insensitive. Lowered once per product, not once per
-- line item: a catalogue is far smaller than its sales.
with products as (
    select * from staging.stg_products
),

product_collections as (
    select * from staging.stg_product_collections
),

product_tags as (
    select
        product_id,
        list_sort(list_transform(tags, lambda t: lower(t))) as product_tags
    from products
),

collections_per_product as (
    select
        product_id,
        list_sort(list(distinct lower(collection_handle))) as collection_handles,
        list_sort(list(distinct collection_id)) as collection_ids
    from product_collections
    group by product_id
)

select
    product_id,
    coalesce(product_tags.product_tags, []) as product_tags,
    coalesce(collections_per_product.collection_handles, []) as collection_handles,
    coalesce(collections_per_product.collection_ids, []) as collection_ids
from product_tags
full join collections_per_product using (product_id)
