-- The write-back of an operator's retry, the same in both stores: every
-- column a transition may change takes the value `machine::operator_retry`
-- computed, so the rule lives only there. The key columns, `id` and
-- `created_at` never change. `result` is written only when the rule changed
-- it (:result is NULL otherwise; it never does): a store that reads another
-- writer's result loosely (PostgreSQL reads the seed's non-object results as
-- objects) must not write its reading back.
--
-- The guard repeats what was read in the same transaction (IMMEDIATE here):
-- still FAILED and still under the last attempt's token (every claim
-- rotates it), so the write can only land on the row the machine decided
-- about.
UPDATE sys_cron_executions
SET status = :status, attempt = :attempt, max_attempts = :max_attempts,
    next_retry_at = :next_retry_at, runner_id = :runner_id, lease_token = :lease_token,
    heartbeat_at = :heartbeat_at, stale_after = :stale_after, started_at = :started_at,
    finished_at = :finished_at, duration_ms = :duration_ms, rows_affected = :rows_affected,
    result = coalesce(:result, result), error_code = :error_code, error_msg = :error_msg,
    updated_at = :updated_at
WHERE id = :id AND status = 'FAILED' AND lease_token = :read_token
RETURNING {columns}
