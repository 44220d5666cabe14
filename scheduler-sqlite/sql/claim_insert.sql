-- The fresh row of a claim (machine::claim with no row): RUNNING, attempt 1,
-- with the batch's origin and control (Steering; NULL origin for a scheduled
-- plan), or nothing when the key exists.
INSERT INTO sys_cron_executions (
    id, job_name, scope_kind, scope_id, plan_time, status, attempt, max_attempts,
    runner_id, lease_token, heartbeat_at, stale_after, started_at, result,
    created_at, updated_at, origin, control_id)
VALUES (
    :id, :job, :kind, :scope_id, :plan_time, 'RUNNING', 1, :max_attempts,
    :runner, :token, :now, :stale_after, :now, '{}', :now, :now, :origin, :control_id)
ON CONFLICT (job_name, scope_kind, scope_id, plan_time) DO NOTHING
