-- Store credit accounts of each customer's winning version (the lines of the batch that version
-- came from); were an account listed twice, its last line wins.
with accounts as (
    select
        *,
        gid_number(_parent_id, 'store_credit_accounts', _batch, _line, '__parentId') as parent_customer_id
    from raw.store_credit_accounts
),

customers as (
    select customer_id, source_batch from staging.stg_customers
),

winning as (
    select accounts.*
    from accounts
    inner join customers
        on accounts.parent_customer_id = customers.customer_id
        and accounts._batch = customers.source_batch
    qualify row_number() over (partition by accounts.id order by accounts._line desc) = 1
)

select
    parent_customer_id as customer_id,
    gid_number(id, 'store_credit_accounts', _batch, _line, 'id') as account_id,
    balance,
    upper(trim(currency_code)) as currency_code
from winning
