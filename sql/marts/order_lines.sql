-- Line items of counted orders, with what products_purchased matches on: product tags and
-- collections, lowercase so matching is case-insensitive. A view joining the two tables: a
-- segment's filter on tags or collections is tested once per product, then joined to its lines.
-- materialized: view
with line_items as (
    select * from marts.line_items
),

products as (
    select * from marts.products
)

select
    line_items.line_id,
    line_items.order_id,
    line_items.customer_id,
    line_items.order_date,
    line_items.product_id,
    line_items.variant_id,
    line_items.sku,
    line_items.title,
    line_items.quantity,
    line_items.line_total,
    coalesce(products.product_tags, []) as product_tags,
    coalesce(products.collection_handles, []) as collection_handles,
    coalesce(products.collection_ids, []) as collection_ids
from line_items
left join products on line_items.product_id = products.product_id
