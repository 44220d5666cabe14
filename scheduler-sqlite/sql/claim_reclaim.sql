-- A claim of a key that exists (docs/contract.md §4, machine::claim): a
-- retry of a retry-eligible FAILED row or a takeover of a stealable stale
-- RUNNING row; at most one guard holds, since they require different
-- statuses. The effect is the one both share: back to RUNNING with
-- attempt + 1, a new token and runner, lease instants reset, and the previous
-- attempt's outcome cleared.
--
-- RETURNING sees only the new row, so which guard held is recorded in the
-- token the row takes: :retry_token when it was FAILED, :steal_token (another
-- fresh v4 token) when it was RUNNING. One statement per existing key, where
-- a retry statement and then a steal statement took two.
UPDATE sys_cron_executions SET
    status = 'RUNNING', attempt = attempt + 1, runner_id = :runner,
    lease_token = CASE status WHEN 'FAILED' THEN :retry_token ELSE :steal_token END,
    heartbeat_at = :now, stale_after = :stale_after,
    started_at = :now, finished_at = NULL, duration_ms = NULL,
    next_retry_at = NULL, error_code = NULL, error_msg = NULL, updated_at = :now
WHERE job_name = :job AND scope_kind = :kind AND scope_id = :scope_id
    AND plan_time = :plan_time
    AND (({retry_eligible}) OR ({steal_eligible}))
RETURNING id, attempt, max_attempts, lease_token
