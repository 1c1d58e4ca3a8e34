-- One row per address of each customer's winning version: the default address, the addressesV2 lines
-- of the batch that version came from, and the inline addresses (Shopify's deprecated Customer.addresses)
-- of a store directory written before. The same address listed twice (the default is among addressesV2
-- too) is one row, the default one.
with customers as (
    select * from staging.stg_customers
),

lines as (
    select
        *,
        gid_number(_parent_id, 'customer_addresses', _batch, _line, '__parentId') as parent_customer_id
    from raw.customer_addresses
),

listed as (
    select
        lines.parent_customer_id as customer_id,
        false as is_default,
        lines.country,
        lines.province,
        lines.city,
        lines.zip,
        lines.latitude,
        lines.longitude
    from lines
    inner join customers
        on lines.parent_customer_id = customers.customer_id
        and lines._batch = customers.source_batch
),

inline as (
    select
        customer_id,
        false as is_default,
        address.countryCodeV2 as country,
        address.provinceCode as province,
        address.city,
        address.zip,
        cast(null as double) as latitude,
        cast(null as double) as longitude
    from (
        select customer_id, default_country, default_province, default_city, default_zip, unnest(addresses) as address
        from customers
    )
    -- the default address is among them too, there without its coordinates: it is the default one
    where not (
        upper(nullif(trim(address.countryCodeV2), '')) is not distinct from default_country
        and upper(nullif(trim(address.provinceCode), '')) is not distinct from default_province
        and nullif(trim(address.city), '') is not distinct from default_city
        and nullif(trim(address.zip), '') is not distinct from nullif(trim(default_zip), '')
    )
),

defaults as (
    select
        customer_id,
        true as is_default,
        default_country as country,
        default_province as province,
        default_city as city,
        default_zip as zip,
        default_latitude as latitude,
        default_longitude as longitude
    from customers
),

addresses as (
    select
        customer_id,
        is_default,
        upper(nullif(trim(country), '')) as country,
        upper(nullif(trim(province), '')) as province,
        nullif(trim(city), '') as city,
        nullif(trim(zip), '') as zip,
        -- coordinates off the globe are no coordinates
        latitude between -90 and 90 and longitude between -180 and 180 as on_globe,
        latitude,
        longitude
    from (select * from defaults union all select * from listed union all select * from inline)
)

select
    customer_id,
    is_default,
    country,
    province,
    city,
    zip,
    case when on_globe then latitude end as latitude,
    case when on_globe then longitude end as longitude
from addresses
-- a customer without a default address has a default of nothing: no address
where coalesce(country, province, city, zip) is not null or on_globe
qualify row_number() over (
    partition by
        customer_id, country, province, city, zip,
        case when on_globe then latitude end, case when on_globe then longitude end
    order by is_default desc
) = 1
