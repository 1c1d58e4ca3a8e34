-- blocking: every address of a customer is one row, with its customer
select customer_id, country, province, city, zip, latitude, longitude, count(*) as rows
from staging.stg_customer_addresses
group by all
having count(*) > 1 or customer_id is null
