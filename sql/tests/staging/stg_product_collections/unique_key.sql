-- blocking: every collection of a product is one row, with both ids
select product_id, collection_id, count(*) as rows
from staging.stg_product_collections
group by all
having count(*) > 1 or product_id is null or collection_id is null
