-- blocking: every deleted customer is one row, with its id
select customer_id, count(*) as rows
from staging.stg_deletions
group by all
having count(*) > 1 or customer_id is null
