-- The fresh row of a claim (machine::claim with no row): RUNNING, attempt 1,
-- or nothing when the key exists.
INSERT INTO sys_cron_executions (
    id, job_name, scope_kind, scope_id, plan_time, status, attempt, max_attempts,
    runner_id, lease_token, heartbeat_at, stale_after, started_at, result,
    created_at, updated_at)
VALUES (
    :id, :job, :kind, :scope_id, :plan_time, 'RUNNING', 1, :max_attempts,
    :runner, :token, :now, :stale_after, :now, '{}', :now, :now)
ON CONFLICT (job_name, scope_kind, scope_id, plan_time) DO NOTHING
