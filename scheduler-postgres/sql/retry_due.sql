-- The retry rule (fragments/retry_eligible.sql) of job $2, as a read, in
-- three branches: the job's own retries from $3 on (through the index of
-- FAILED rows by plan time), and the forced ones whatever their plan time
-- (`RetryDue::forced`: an operator asked for them): an operator's retries
-- (through the small index of operator_retry rows) and the failed runs of
-- triggers and backfills, `origin` not NULL (through the small index of
-- those), so old history is never walked. The branches are disjoint: the
-- first takes no forced row, the third no operator retry. $4 is
-- allow_stale_reentry. At most $5 of each kind (forced or not) per scope,
-- the oldest: a per-scope limit, so one scope's failures cannot crowd
-- another's out. Byte order ("C") for the scope tie-break, as the memory
-- store sorts Rust strings, whatever the database's collation; a scope has
-- one row per plan time, so the order is total.
--
-- The code `operator_retry` (machine::OPERATOR_RETRY_CODE) is written out,
-- as the index's predicate is.
SELECT scope_kind, scope_id, plan_time, operator_retry, origin FROM (
    SELECT scope_kind, scope_id, plan_time, operator_retry, origin, forced,
           row_number() OVER (PARTITION BY scope_kind, scope_id, forced
                              ORDER BY plan_time) AS nth
    FROM (SELECT scope_kind, scope_id, plan_time, false AS operator_retry, origin,
                 false AS forced
          FROM {table} WHERE job_name = $2 AND {retry_eligible} AND plan_time >= $3
            AND error_code IS DISTINCT FROM 'operator_retry' AND origin IS NULL
          UNION ALL
          SELECT scope_kind, scope_id, plan_time, true, origin, true
          FROM {table} WHERE job_name = $2 AND {retry_eligible}
            AND error_code = 'operator_retry'
          UNION ALL
          SELECT scope_kind, scope_id, plan_time, false, origin, true
          FROM {table} WHERE job_name = $2 AND {retry_eligible}
            AND origin IS NOT NULL AND error_code IS DISTINCT FROM 'operator_retry') d
) r WHERE nth <= $5
ORDER BY plan_time, scope_kind COLLATE "C", scope_id COLLATE "C", forced
