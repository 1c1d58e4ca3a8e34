-- Customers with a GDPR customers/redact request, whatever the evaluation date.
with redactions as (
    select * from raw.redactions
)

select
    cast(split_part(customer_id, '/', 5) as bigint) as customer_id,
    min(requested_at) as requested_at
from redactions
group by 1
