-- One row per customer: the version with the latest updatedAt (then the latest batch and line).
with customers as not materialized (
    select * from raw.customers
),

shop as (
    select shop_timezone from staging.stg_shop
),

latest as (
    select * from latest_versions('customers')
)

select
    gid_number(latest.id, 'customers', latest._batch, latest._line, 'id') as customer_id,
    latest.first_name,
    latest.last_name,
    latest.created_at,
    latest.updated_at,
    cast(timezone(shop.shop_timezone, latest.created_at) as date) as created_date,
    upper(latest.state) as account_state,
    latest.locale,
    coalesce(latest.tags, []) as tags,
    nullif(trim(latest.email), '') as email,
    -- marketing states as Shopify sent them, in upper case: marts.customers reads any state it does not
    -- list (a value a newer API version adds, email's INVALID) as NOT_SUBSCRIBED, never as consent
    upper(latest.email_marketing_state) as email_marketing_state,
    nullif(trim(latest.phone), '') as phone,
    upper(latest.sms_marketing_state) as sms_marketing_state,
    latest.sms_marketing_opt_in_level,
    latest.sms_marketing_updated_at,
    upper(nullif(trim(latest.default_country), '')) as default_country,
    upper(nullif(trim(latest.default_province), '')) as default_province,
    nullif(trim(latest.default_city), '') as default_city,
    latest.default_zip,
    coalesce(latest.addresses, []) as addresses
from latest
cross join shop
