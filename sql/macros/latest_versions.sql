-- The latest version of each id of `versions` (the name of a table or CTE with id, updated_at, _batch
-- and _line): the latest updatedAt, then the later batch, then the later line; a version without an
-- updatedAt loses to one with. Every staging model that deduplicates calls this one rule.
-- Only ids listed more than once are ranked (found by hash: a collision only adds a candidate), and
-- the rest pass through untouched: sorting every row to find the few repeated ids is what made the
-- staging models slow. Pass a `not materialized` CTE: reading its Parquet three times costs less than
-- a copy of every row. `listed` (default: `versions`) is where repeated ids are looked for: any
-- cheaper superset of `versions` will do, such as the raw rows a join narrows down to `versions`.
create or replace macro latest_versions(versions, listed := null) as table
with repeated_ids as (
    select hash(id) as id_hash
    from query_table(coalesce(listed, versions))
    group by id_hash
    having count(*) > 1
),

superseded as (
    select _batch, _line
    from query_table(versions)
    where hash(id) in (select id_hash from repeated_ids)
    qualify row_number() over (
        partition by id order by updated_at desc nulls last, _batch desc, _line desc
    ) > 1
)

select candidates.*
from query_table(versions) as candidates
anti join superseded
    on candidates._batch = superseded._batch
    and candidates._line = superseded._line
