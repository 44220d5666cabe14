-- The retry rule (fragments/retry_eligible.sql) of job $2, as a read, in two
-- branches: the job's own retries from $3 on (through the index of FAILED
-- rows by plan time), and an operator's retries whatever their plan time
-- (through the small index of operator_retry rows, so old history is never
-- walked). $4 is allow_stale_reentry. At most $5 of each kind per scope,
-- the oldest: a per-scope limit, so one scope's failures cannot crowd
-- another's out. Byte order ("C") for the scope tie-break, as the memory
-- store sorts Rust strings, whatever the database's collation.
--
-- The code `operator_retry` (machine::OPERATOR_RETRY_CODE) is written out,
-- as the index's predicate is.
SELECT scope_kind, scope_id, plan_time, operator_retry FROM (
    SELECT scope_kind, scope_id, plan_time, operator_retry,
           row_number() OVER (PARTITION BY scope_kind, scope_id, operator_retry
                              ORDER BY plan_time) AS nth
    FROM (SELECT scope_kind, scope_id, plan_time, false AS operator_retry
          FROM {table} WHERE job_name = $2 AND {retry_eligible} AND plan_time >= $3
            AND error_code IS DISTINCT FROM 'operator_retry'
          UNION ALL
          SELECT scope_kind, scope_id, plan_time, true
          FROM {table} WHERE job_name = $2 AND {retry_eligible}
            AND error_code = 'operator_retry') d
) r WHERE nth <= $5
ORDER BY plan_time, scope_kind COLLATE "C", scope_id COLLATE "C", operator_retry
