-- blocking: every abandoned checkout is one row, with its id
select checkout_id, count(*) as rows
from staging.stg_abandoned_checkouts
group by all
having count(*) > 1 or checkout_id is null
