-- Each customer's store credit accounts, with their balance in the account's own currency.
with accounts as (
    select * from staging.stg_store_credit_accounts
)

select
    customer_id,
    account_id,
    balance,
    currency_code
from accounts
