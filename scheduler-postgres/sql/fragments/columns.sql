-- Every column of a row, as `rows::execution` reads them (by name).
id, job_name, scope_kind, scope_id, plan_time, status, attempt,
max_attempts, next_retry_at, runner_id, lease_token, heartbeat_at, stale_after,
started_at, finished_at, duration_ms, rows_affected, result, error_code, error_msg,
created_at, updated_at, origin, control_id
