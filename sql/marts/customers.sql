-- One row per customer known on the evaluation date, with every attribute of the segment
-- language. Redacted customers stay as anonymous rows: id, orders and money, no PII. Customers
-- deleted in Shopify are not here (their orders stay in marts.orders, as Shopify keeps them).
with customers as not materialized (
    -- read twice (order_stats, located_customers): rescanning the table costs less than a copy of it
    select * from staging.stg_customers
),

orders as (
    select * from marts.orders
),

checkouts as (
    select * from staging.stg_abandoned_checkouts
),

phone_numbers as (
    select * from staging.stg_phone_numbers
),

redactions as (
    select * from staging.stg_redactions
),

deletions as (
    select * from staging.stg_deletions
),

addresses as (
    select * from marts.customer_addresses
),

known_customers as not materialized (
    select * from customers
    where
        created_date <= getvariable('as_of')
        and customer_id not in (select customer_id from deletions)
),

order_stats as (
    select
        customer_id,
        sum(amount) as amount_spent,
        count(*) as number_of_orders,
        min(order_date) as first_order_date,
        max(order_date) as last_order_date
    from orders
    where customer_id in (select customer_id from known_customers)
    group by customer_id
),

-- The latest checkout created by the evaluation date and still not completed at its end.
abandoned as (
    select
        customer_id,
        created_date as abandoned_checkout_date,
        abandoned_checkout_url
    from checkouts
    where
        customer_id is not null
        and created_date <= getvariable('as_of')
        and (completed_date is null or completed_date > getvariable('as_of'))
    qualify row_number() over (
        partition by customer_id order by created_at desc, checkout_id desc
    ) = 1
),

-- RFM: R from the last order date, FM from the mean of the frequency and monetary scores.
-- Each score is ceil(5 * share of customers with a value at or below this one), in integers,
-- over the customers with counted orders, so ties share a score.
rfm_scores as (
    select
        customer_id,
        (5 * count(*) over (order by last_order_date) + count(*) over () - 1) // count(*) over () as r_score,
        (5 * count(*) over (order by number_of_orders) + count(*) over () - 1) // count(*) over () as f_score,
        (5 * count(*) over (order by amount_spent) + count(*) over () - 1) // count(*) over () as m_score
    from order_stats
),

-- The documented R x FM grid (README, "RFM groups"): rows are R 5..1, columns FM 1..5.
rfm_grid as (
    select * from (values
        (5, 1, 'NEW'), (5, 2, 'PROMISING'), (5, 3, 'ACTIVE'), (5, 4, 'LOYAL'), (5, 5, 'CHAMPIONS'),
        (4, 1, 'PROMISING'), (4, 2, 'PROMISING'), (4, 3, 'ACTIVE'), (4, 4, 'LOYAL'), (4, 5, 'CHAMPIONS'),
        (3, 1, 'NEEDS_ATTENTION'), (3, 2, 'NEEDS_ATTENTION'), (3, 3, 'NEEDS_ATTENTION'), (3, 4, 'LOYAL'),
        (3, 5, 'LOYAL'),
        (2, 1, 'ALMOST_LOST'), (2, 2, 'ALMOST_LOST'), (2, 3, 'AT_RISK'), (2, 4, 'AT_RISK'),
        (2, 5, 'PREVIOUSLY_LOYAL'),
        (1, 1, 'DORMANT'), (1, 2, 'DORMANT'), (1, 3, 'ALMOST_LOST'), (1, 4, 'PREVIOUSLY_LOYAL'),
        (1, 5, 'PREVIOUSLY_LOYAL')
    ) as grid (r_score, fm_score, rfm_group)
),

rfm as (
    select
        rfm_scores.customer_id,
        rfm_grid.rfm_group
    from rfm_scores
    inner join rfm_grid
        on rfm_scores.r_score = rfm_grid.r_score
        and (rfm_scores.f_score + rfm_scores.m_score) // 2 = rfm_grid.fm_score
),

-- Where each customer has an address (marts.customer_addresses: the default and every other), kept when
-- it names a country.
places as (
    select
        customer_id,
        list({'country': country, 'province': province, 'city': city}) filter (where country is not null) as places
    from addresses
    group by customer_id
),

located_customers as (
    select
        known_customers.*,
        places.places
    from known_customers
    left join places on known_customers.customer_id = places.customer_id
),

joined as (
    select
        customers.*,
        redactions.customer_id is not null as is_redacted,
        coalesce(order_stats.amount_spent, 0) as amount_spent,
        coalesce(order_stats.number_of_orders, 0) as number_of_orders,
        order_stats.first_order_date,
        order_stats.last_order_date,
        abandoned.abandoned_checkout_date,
        abandoned.abandoned_checkout_url,
        list_sort(list_distinct(list_transform(customers.places, lambda p: p.country))) as customer_countries,
        list_sort(list_distinct(list_filter(
            list_transform(customers.places, lambda p: p.country || '-' || p.province), lambda r: r is not null
        ))) as customer_regions,
        list_sort(list_distinct(list_filter(
            list_transform(customers.places, lambda p: case
                when p.city is not null then concat_ws('-', p.country, p.province, replace(p.city, ' ', ''))
            end),
            lambda c: c is not null
        ))) as customer_cities,
        phone_numbers.phone_e164,
        coalesce(rfm.rfm_group, 'PROSPECTS') as rfm_group
    from located_customers as customers
    left join redactions on customers.customer_id = redactions.customer_id
    left join order_stats on customers.customer_id = order_stats.customer_id
    left join abandoned on customers.customer_id = abandoned.customer_id
    -- A number with no + is read in the customer's default address country.
    left join phone_numbers
        on customers.phone = phone_numbers.phone
        and customers.default_country is not distinct from phone_numbers.region
    left join rfm on customers.customer_id = rfm.customer_id
)

select
    customer_id,
    case when not is_redacted then first_name end as first_name,
    case when not is_redacted then last_name end as last_name,
    case when not is_redacted then email end as email,
    case when not is_redacted then phone end as phone,
    case when not is_redacted then phone_e164 end as phone_e164,
    -- Consent is only a state Shopify documents (read in upper case, as staging does): any other value,
    -- email's INVALID or one a newer API version adds (the ingest warns about it), is NOT_SUBSCRIBED, so
    -- it can never be exported as consent.
    case
        when is_redacted then 'REDACTED'
        when phone is null then 'NOT_SUBSCRIBED'
        when sms_marketing_state in ('SUBSCRIBED', 'NOT_SUBSCRIBED', 'PENDING', 'UNSUBSCRIBED', 'REDACTED')
            then sms_marketing_state
        else 'NOT_SUBSCRIBED'
    end as sms_subscription_status,
    case
        when is_redacted then 'REDACTED'
        when email is null then 'NOT_SUBSCRIBED'
        when email_marketing_state in ('SUBSCRIBED', 'NOT_SUBSCRIBED', 'PENDING', 'UNSUBSCRIBED', 'REDACTED')
            then email_marketing_state
        else 'NOT_SUBSCRIBED'
    end as email_subscription_status,
    account_state as customer_account_status,
    locale as customer_language,
    case when not is_redacted then lower(nullif(split_part(email, '@', -1), email)) end as customer_email_domain,
    created_date as customer_added_date,
    amount_spent,
    number_of_orders,
    -- exact: integer units of 1/10000, rounded half up, never through a float
    case
        when number_of_orders > 0 then cast(
            cast((cast(amount_spent * 10000 as hugeint) * 2 + number_of_orders) // (2 * number_of_orders)
                as decimal(38, 0)) * 0.0001 as decimal(18, 4))
    end as average_order_value,
    first_order_date,
    last_order_date,
    abandoned_checkout_date,
    case when not is_redacted then abandoned_checkout_url end as abandoned_checkout_url,
    case when is_redacted then [] else tags end as customer_tags,
    case when is_redacted then [] else coalesce(customer_countries, []) end as customer_countries,
    case when is_redacted then [] else coalesce(customer_regions, []) end as customer_regions,
    case when is_redacted then [] else coalesce(customer_cities, []) end as customer_cities,
    rfm_group,
    -- Shopify's own figures; a value its reference does not list (the ingest warns) is no value
    case when predicted_spend_tier in ('HIGH', 'MEDIUM', 'LOW') then predicted_spend_tier end as predicted_spend_tier,
    -- the segment language says SUBSCRIBED where the Admin API says ACTIVE
    case
        when product_subscriber_status = 'ACTIVE' then 'SUBSCRIBED'
        when product_subscriber_status in ('CANCELLED', 'EXPIRED', 'FAILED', 'NEVER_SUBSCRIBED', 'PAUSED')
            then product_subscriber_status
    end as product_subscription_status,
    case when is_redacted then [] else coalesce(company_ids, []) end as companies,
    case when not is_redacted then default_latitude end as latitude,
    case when not is_redacted then default_longitude end as longitude,
    -- the day SMS consent last changed, in the shop's time zone (latest known, as consent itself)
    case
        when not is_redacted and phone is not null
            then sms_marketing_updated_date
    end as sms_consent_date,
    is_redacted,
    getvariable('as_of') as as_of
from joined
