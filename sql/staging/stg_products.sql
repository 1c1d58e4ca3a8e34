-- One row per product: the version with the latest updatedAt.
with products as (
    select * from raw.products
),

latest as (
    select *
    from products
    qualify row_number() over (
        partition by id order by updated_at desc nulls last, _batch desc, _line desc
    ) = 1
)

select
    coalesce(
        try_cast(split_part(id, '/', 5) as bigint),
        case when id is not null then error(format(
            'raw/{0}/{1}.parquet, line {2}: {3} {4} does not fit BIGINT (an older release ingested it unchecked). '
            || 'Delete raw/*/{1}.parquet in the data directory and rerun: the ingest then names the line to fix.',
            'products', _batch, _line, 'id', id
        )) end
    ) as product_id,
    id as product_gid,
    _batch as source_batch,
    title,
    handle,
    product_type,
    vendor,
    coalesce(tags, []) as tags
from latest
