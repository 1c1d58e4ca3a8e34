-- The number of a Shopify GID (gid://shopify/Customer/123) as a BIGINT. The ingest refuses a number
-- that does not fit, but a batch an older release ingested unchecked may hold one: then the build
-- stops naming its batch and line, rather than with DuckDB's bare conversion error.
create or replace macro gid_number(gid, resource, batch, line, field) as coalesce(
    try_cast(split_part(gid, '/', 5) as bigint),
    case when gid is not null then error(format(
        'raw/{0}/{1}.parquet, line {2}: {3} {4} does not fit BIGINT (an older release ingested it unchecked). '
        || 'Delete raw/*/{1}.parquet in the data directory and rerun: the ingest then names the line to fix.',
        resource, batch, line, field, gid
    )) end
)
