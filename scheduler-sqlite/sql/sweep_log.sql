-- The record of an attempt the sweep ended (machine::ended_attempt with
-- `Ending::Sweep`), appended in the sweep's transaction once per row its
-- RETURNING names (the execution, the attempt's number, runner and start),
-- with what the ending records (:outcome, :error_code, :error_msg,
-- :duration_ms, bound from `Ending::columns`). SQLite has no
-- data-modifying CTE, which is how the PostgreSQL store writes the same in
-- the sweep's own statement. A claim's overlap policy appends the attempt
-- of a run it canceled (claim_cancel.sql, `Ending::Overlap`) the same way,
-- every value bound from machine::ended_attempt.
--
-- A record already there for the attempt number stays: the log must never
-- make a transition fail, and only a hand that set a row's attempt back could
-- bring one.
INSERT INTO sys_cron_execution_attempts ({attempt_columns})
VALUES (
    :id, :attempt, :runner_id, :started_at, :now, :outcome, :error_code,
    :error_msg, :duration_ms)
ON CONFLICT (execution_id, attempt) DO NOTHING
