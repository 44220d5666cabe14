-- The row of a plan the overlap policy skipped (machine::skipped), when the
-- key has no row yet; nothing when it has one (the claim then answers
-- Conflicted). Every column is bound from the row the machine computed, so
-- the rule lives only there.
INSERT INTO sys_cron_executions (
    id, job_name, scope_kind, scope_id, plan_time, status, attempt, max_attempts,
    next_retry_at, runner_id, lease_token, heartbeat_at, stale_after, started_at,
    finished_at, duration_ms, rows_affected, result, error_code, error_msg,
    created_at, updated_at, origin, control_id)
VALUES (
    :id, :job, :kind, :scope_id, :plan_time, :status, :attempt, :max_attempts,
    :next_retry_at, :runner_id, :lease_token, :heartbeat_at, :stale_after, :started_at,
    :finished_at, :duration_ms, :rows_affected, :result, :error_code, :error_msg,
    :created_at, :updated_at, :origin, :control_id)
ON CONFLICT (job_name, scope_kind, scope_id, plan_time) DO NOTHING
