-- The retry rule (fragments/retry_eligible.sql), as a read, in two branches:
-- the job's own retries from `:since` on (through the index of FAILED rows
-- by plan time), and an operator's retries whatever their plan time (through
-- the small index of `operator_retry` rows, so old history is never walked).
-- At most `:limit` of each kind per scope, the oldest: a per-scope limit, so
-- one scope's failures cannot crowd another's out. Ordered like the memory
-- store (plan time, then scope, in byte order).
--
-- The code `operator_retry` (`machine::OPERATOR_RETRY_CODE`) is spelled out,
-- not bound: SQLite uses a partial index only when the query's terms match
-- the index's `WHERE` literally.
SELECT scope_kind, scope_id, plan_time, operator_retry FROM (
    SELECT scope_kind, scope_id, plan_time, operator_retry,
        row_number() OVER (PARTITION BY scope_kind, scope_id, operator_retry
                           ORDER BY plan_time) AS nth
    FROM (SELECT scope_kind, scope_id, plan_time, 0 AS operator_retry
          FROM sys_cron_executions INDEXED BY idx_sys_cron_exec_failed_recent
          WHERE job_name = :job AND {retry_eligible}
              AND plan_time >= :since AND error_code IS NOT 'operator_retry'
          UNION ALL
          SELECT scope_kind, scope_id, plan_time, 1
          FROM sys_cron_executions INDEXED BY idx_sys_cron_exec_operator_retry
          WHERE job_name = :job AND {retry_eligible}
              AND error_code = 'operator_retry'))
WHERE nth <= :limit
ORDER BY plan_time, scope_kind, scope_id, operator_retry
