-- blocking: every customer is one row of marts.customers
select customer_id, count(*) as rows
from marts.customers
group by customer_id
having count(*) > 1
