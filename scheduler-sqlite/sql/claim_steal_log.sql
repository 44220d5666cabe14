-- The record of the attempt a claim takes over (machine::ended_attempt with
-- `Ending::Steal`), run just before claim_reclaim.sql for the same key in the
-- same IMMEDIATE transaction and at the same :now, with the same takeover
-- rule ({steal_eligible}), so it logs exactly the attempt the reclaim then
-- ends. It reads the row as it was: the reclaim's RETURNING sees only the
-- new runner and start. A retry of a FAILED row logs nothing here: its
-- failure was logged when it was written.
--
-- The WHERE before ON CONFLICT is required by SQLite's grammar for an upsert
-- of a SELECT, and is the rule anyway.
INSERT INTO sys_cron_execution_attempts ({attempt_columns})
SELECT id, attempt, runner_id, started_at, :now, :outcome, :error_code, :error_msg,
    :duration_ms
FROM sys_cron_executions
WHERE job_name = :job AND scope_kind = :kind AND scope_id = :scope_id
    AND plan_time = :plan_time AND {steal_eligible}
ON CONFLICT (execution_id, attempt) DO NOTHING
