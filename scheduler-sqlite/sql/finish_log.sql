-- The record of the attempt finish.sql just ended (machine::ended_attempt
-- with `Ending::Finish`), run right after it in the same IMMEDIATE
-- transaction, and only when it wrote the row: read from the row as the
-- finish left it, as the PostgreSQL store's finish reads its RETURNING. A
-- finish's outcome is the status it wrote; the attempt's number, runner and
-- start are the ones it leaves as they were. (Reading the row back costs
-- less than an UPDATE ... RETURNING and binding the values again.)
--
-- A record already there for the attempt number stays, as in
-- sweep_log.sql.
INSERT INTO sys_cron_execution_attempts ({attempt_columns})
SELECT id, attempt, runner_id, started_at, finished_at, status, error_code, error_msg,
    duration_ms
FROM sys_cron_executions WHERE id = :id
ON CONFLICT (execution_id, attempt) DO NOTHING
