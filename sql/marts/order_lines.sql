-- Line items of counted orders, with what products_purchased matches on: product tags and
-- collections, lowercase so matching is case-insensitive.
with orders as (
    select * from marts.orders
),

order_lines as (
    select * from staging.stg_order_lines
),

products as (
    select * from staging.stg_products
),

product_collections as (
    select * from staging.stg_product_collections
),

-- Tags lowered once per product, not once per line item: a catalogue is far smaller than its sales.
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
    order_lines.line_id,
    order_lines.order_id,
    orders.customer_id,
    orders.order_date,
    order_lines.product_id,
    order_lines.variant_id,
    order_lines.sku,
    order_lines.title,
    order_lines.quantity,
    order_lines.line_total,
    coalesce(product_tags.product_tags, []) as product_tags,
    coalesce(collections_per_product.collection_handles, []) as collection_handles,
    coalesce(collections_per_product.collection_ids, []) as collection_ids
from order_lines
inner join orders on order_lines.order_id = orders.order_id
left join product_tags on order_lines.product_id = product_tags.product_id
left join collections_per_product on order_lines.product_id = collections_per_product.product_id
