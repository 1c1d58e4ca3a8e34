-- blocking: every store credit account is one row, with its customer
select account_id, count(*) as rows, count(customer_id) as owners
from staging.stg_store_credit_accounts
group by all
having count(*) > 1 or account_id is null or count(customer_id) < count(*)
