-- The retry rule (fragments/retry_eligible.sql), as a read, in three
-- disjoint branches: the job's own retries of scheduled rows from `:since`
-- on (through the index of FAILED rows by plan time); an operator's retries
-- whatever their plan time (through the small index of `operator_retry`
-- rows, so old history is never walked); and the other failed rows of
-- triggers and backfills, due whatever their plan time too (through the
-- small index of FAILED rows with an origin). The last two are the forced
-- ones (`RetryDue::forced`). At most `:limit` of each kind (forced or not)
-- per scope, the oldest: a per-scope limit, so one scope's failures cannot
-- crowd another's out. Ordered like `machine::retry_due` (plan time, then
-- scope, in byte order, then forced last).
--
-- The code `operator_retry` (`machine::OPERATOR_RETRY_CODE`) and the
-- `origin IS NOT NULL` term are spelled out, not bound: SQLite uses a
-- partial index only when the query's terms match the index's `WHERE`
-- literally.
SELECT scope_kind, scope_id, plan_time, operator_retry, origin FROM (
    SELECT scope_kind, scope_id, plan_time, operator_retry, origin,
        row_number() OVER (PARTITION BY scope_kind, scope_id, forced
                           ORDER BY plan_time) AS nth, forced
    FROM (SELECT scope_kind, scope_id, plan_time, 0 AS operator_retry, origin, 0 AS forced
          FROM sys_cron_executions INDEXED BY idx_sys_cron_exec_failed_recent
          WHERE job_name = :job AND {retry_eligible}
              AND plan_time >= :since AND error_code IS NOT 'operator_retry'
              AND origin IS NULL
          UNION ALL
          SELECT scope_kind, scope_id, plan_time, 1, origin, 1
          FROM sys_cron_executions INDEXED BY idx_sys_cron_exec_operator_retry
          WHERE job_name = :job AND {retry_eligible}
              AND error_code = 'operator_retry'
          UNION ALL
          SELECT scope_kind, scope_id, plan_time, 0, origin, 1
          FROM sys_cron_executions INDEXED BY idx_sys_cron_exec_forced_retry
          WHERE job_name = :job AND {retry_eligible}
              AND origin IS NOT NULL AND error_code IS NOT 'operator_retry'))
WHERE nth <= :limit
ORDER BY plan_time, scope_kind, scope_id, forced
