-- Temp table audience_classified: one row per member of the segment (temp view
-- audience_segment_members), with the one reason it may not be texted (null: eligible). Each member
-- gets the first reason that applies, so the counts add up to the segment size; a redaction comes
-- first, as it also sets the consent to REDACTED and "redacted" is the reason an operator looks for.
-- The duplicate check ranks only members that passed every other one, so a shared number goes to the
-- lowest eligible customer_id.
create or replace temp table audience_classified as
with members as (
    select distinct customer_id from audience_segment_members
),

candidates as (
    select
        customers.customer_id,
        customers.first_name,
        customers.last_name,
        customers.phone_e164 as phone,
        customers.sms_subscription_status,
        customers.is_redacted,
        profiles.default_country as phone_region,  -- where a number without + was read
        -- the default address's country; else another address's; else the number's
        coalesce(profiles.default_country, customers.customer_countries[1], c2.region, c3.region, c4.region)
            as country
    from members
    inner join marts.customers as customers on members.customer_id = customers.customer_id
    left join staging.stg_customers as profiles on members.customer_id = profiles.customer_id
    left join audience_calling_codes as c2 on c2.prefix = left(customers.phone_e164, 2)
    left join audience_calling_codes as c3 on c3.prefix = left(customers.phone_e164, 3)
    left join audience_calling_codes as c4 on c4.prefix = left(customers.phone_e164, 4)
),

reasoned as (
    select
        *,
        case
            when is_redacted then 'redacted'
            when sms_subscription_status is distinct from 'SUBSCRIBED' then 'no_consent'
            when phone is null then 'bad_phone'
            when audience_suppressed_number(phone, phone_region) then 'suppressed'
        end as reason
    from candidates
)

select
    * exclude (reason),
    case
        when reason is not null then reason
        when row_number() over (partition by phone, reason is null order by customer_id) > 1
            then 'duplicate'
    end as reason
from reasoned
