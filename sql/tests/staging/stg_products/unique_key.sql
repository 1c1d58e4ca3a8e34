-- blocking: every product is one row, with its id
select product_id, count(*) as rows
from staging.stg_products
group by all
having count(*) > 1 or product_id is null
