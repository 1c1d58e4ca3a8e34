-- The shop: the time zone every local date is taken in (the spec's default is UTC).
with shop as (
    select * from raw.shop
)

select
    name as shop_name,
    coalesce(iana_timezone, 'UTC') as shop_timezone,
    currency_code
from shop
order by _batch desc, _line desc
limit 1
