-- One row per checkout: the version with the latest updatedAt, with local dates.
with checkouts as (
    select * from raw.abandoned_checkouts
),

shop as (
    select shop_timezone from staging.stg_shop
),

latest as (
    select *
    from checkouts
    qualify row_number() over (
        partition by id order by updated_at desc nulls last, _batch desc, _line desc
    ) = 1
)

select
    coalesce(
        try_cast(split_part(latest.id, '/', 5) as bigint),
        case when latest.id is not null then error(format(
            'raw/{0}/{1}.parquet, line {2}: {3} {4} does not fit BIGINT (an older release ingested it unchecked). '
            || 'Delete raw/*/{1}.parquet in the data directory and rerun: the ingest then names the line to fix.',
            'abandoned_checkouts', latest._batch, latest._line, 'id', latest.id
        )) end
    ) as checkout_id,
    coalesce(
        try_cast(split_part(latest.customer_id, '/', 5) as bigint),
        case when latest.customer_id is not null then error(format(
            'raw/{0}/{1}.parquet, line {2}: {3} {4} does not fit BIGINT (an older release ingested it unchecked). '
            || 'Delete raw/*/{1}.parquet in the data directory and rerun: the ingest then names the line to fix.',
            'abandoned_checkouts', latest._batch, latest._line, 'customer.id', latest.customer_id
        )) end
    ) as customer_id,
    latest.created_at,
    latest.completed_at,
    cast(timezone(shop.shop_timezone, latest.created_at) as date) as created_date,
    cast(timezone(shop.shop_timezone, latest.completed_at) as date) as completed_date,
    latest.abandoned_checkout_url,
    latest.total_price
from latest
cross join shop
