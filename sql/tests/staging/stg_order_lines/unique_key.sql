-- blocking: every line item is one row, with its id
select line_id, count(*) as rows
from staging.stg_order_lines
group by all
having count(*) > 1 or line_id is null
