-- blocking: every (number, region) a customer has is one row, with its number
select phone, region, count(*) as rows
from staging.stg_phone_numbers
group by all
having count(*) > 1 or phone is null
