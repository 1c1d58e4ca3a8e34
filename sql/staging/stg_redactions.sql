-- Customers with a GDPR customers/redact request, whatever the evaluation date.
with redactions as (
    select * from raw.redactions
)

select
    coalesce(
        try_cast(split_part(customer_id, '/', 5) as bigint),
        case when customer_id is not null then error(format(
            'raw/{0}/{1}.parquet, line {2}: {3} {4} does not fit BIGINT (an older release ingested it unchecked). '
            || 'Delete raw/*/{1}.parquet in the data directory and rerun: the ingest then names the line to fix.',
            'redactions', _batch, _line, 'customer.id', customer_id
        )) end
    ) as customer_id,
    min(requested_at) as requested_at
from redactions
group by 1
