-- machine::sweep of one job. Through the index of RUNNING rows, which holds
-- only live leases however long the job's history: left to itself, the
-- planner of a never analysed table prefers the unique index and walks the
-- job's whole history.
--
-- `:next_retry_at` is `machine::swept_retry_at`'s: null for a reentrant
-- job, "never" for one that waits for an operator. RETURNING says which
-- attempts it ended, each of which the caller appends to the attempts log
-- (sweep_log.sql) in the same transaction.
UPDATE sys_cron_executions INDEXED BY idx_sys_cron_exec_running_stale
SET status = 'FAILED', finished_at = :now, next_retry_at = :next_retry_at,
    error_code = 'stale_timeout', error_msg = :stale_msg, updated_at = :now
WHERE job_name = :job AND status = 'RUNNING' AND stale_after < :now
RETURNING id, attempt, runner_id, started_at
