-- One row per address of a customer in marts.customers, the default one marked, as Shopify geocoded
-- it. A redacted customer has none.
with addresses as (
    select * from staging.stg_customer_addresses
),

customers as (
    select customer_id, created_date from staging.stg_customers
),

redactions as (
    select * from staging.stg_redactions
),

deletions as (
    select * from staging.stg_deletions
)

select
    addresses.customer_id,
    addresses.is_default,
    addresses.country,
    addresses.province,
    addresses.city,
    addresses.zip,
    addresses.latitude,
    addresses.longitude
from addresses
inner join customers on addresses.customer_id = customers.customer_id
where
    customers.created_date <= getvariable('as_of')
    and addresses.customer_id not in (select customer_id from redactions)
    and addresses.customer_id not in (select customer_id from deletions)
