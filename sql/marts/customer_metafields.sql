-- Each customer's metafields, the value read as its declared type (Shopify's metafield types) in the
-- column the segment language compares: a value that does not read as its type is no value. Redacted
-- customers have none (a metafield may hold a birth date).
with metafields as (
    select * from staging.stg_customer_metafields
),

redactions as (
    select * from staging.stg_redactions
),

shop as (
    select shop_timezone from staging.stg_shop
)

select
    metafields.customer_id,
    metafields.namespace,
    metafields.key,
    metafields.type,
    metafields.value,
    case when metafields.type in ('single_line_text_field', 'multi_line_text_field') then lower(metafields.value) end
        as value_text,
    case when metafields.type in ('number_integer', 'number_decimal') then try_cast(metafields.value as decimal(38, 9))
    end as value_number,
    case when metafields.type = 'boolean' then try_cast(metafields.value as boolean) end as value_boolean,
    -- a date_time is the day it falls on in the shop's time zone, as every date of the warehouse
    case
        when metafields.type = 'date' then try_cast(metafields.value as date)
        when metafields.type = 'date_time'
            then cast(timezone(shop.shop_timezone, try_cast(metafields.value as timestamptz)) as date)
    end as value_date,
    -- a list is a JSON array in the value's text
    case when metafields.type = 'list.single_line_text_field' and json_valid(metafields.value) then list_transform(
        from_json(metafields.value, '["VARCHAR"]'), lambda item: lower(item)
    ) end as value_texts,
    case when metafields.type in ('list.number_integer', 'list.number_decimal') and json_valid(metafields.value)
        then from_json(metafields.value, '["DECIMAL(38,9)"]')
    end as value_numbers
from metafields
cross join shop
where metafields.customer_id not in (select customer_id from redactions)
