-- Customers with a GDPR customers/redact request, whatever the evaluation date.
with redactions as (
    select * from raw.redactions
)

select
    gid_number(customer_id, 'redactions', _batch, _line, 'customer.id') as customer_id,
    min(requested_at) as requested_at
from redactions
group by 1
