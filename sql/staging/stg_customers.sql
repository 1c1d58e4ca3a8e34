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
    coalesce(latest.addresses, []) as addresses,
    cast(timezone(shop.shop_timezone, latest.sms_marketing_updated_at) as date) as sms_marketing_updated_date,
    upper(latest.predicted_spend_tier) as predicted_spend_tier,
    upper(latest.product_subscriber_status) as product_subscriber_status,
    -- the numbers of the companies' GIDs; an id that is not a company GID is no company
    list_sort(list_distinct(list_filter(
        list_transform(latest.company_contacts, lambda c: try_cast(
            regexp_extract(c.company.id, '^gid://shopify/Company/([0-9]{1,18})$', 1) as bigint
        )),
        lambda n: n is not null
    ))) as company_ids,
    -- coordinates off the globe are no coordinates
    case
        when latest.default_latitude between -90 and 90 and latest.default_longitude between -180 and 180
            then latest.default_latitude
    end as default_latitude,
    case
        when latest.default_latitude between -90 and 90 and latest.default_longitude between -180 and 180
            then latest.default_longitude
    end as default_longitude,
    -- the batch of the winning version: its metafields and store credit accounts are those of that batch
    latest._batch as source_batch
from latest
cross join shop
