-- blocking: the shop is one row, with its time zone (every local date is taken in it)
select count(*) as rows, count(shop_timezone) as with_timezone
from staging.stg_shop
having count(*) <> 1 or count(shop_timezone) <> 1
