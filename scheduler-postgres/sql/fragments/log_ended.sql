-- The attempts log's append, spliced as the last CTE of every statement whose
-- transition ends attempts (finish.sql, finish_many.sql, sweep.sql,
-- claim_reclaim.sql), so each record is written in its transition's own
-- statement: from {ended}, the CTE naming the attempts the transition ended
-- (each with `id`, `attempt`, `runner_id`, `started_at` as they were while
-- it ran), at {ended_at}, recording {ending} (outcome, error code, message
-- and duration, `machine::Ending::columns`).
--
-- A record already there for the attempt number stays: the log must never
-- make a transition fail, and only a hand that set a row's attempt back could
-- bring one.
logged AS (
    INSERT INTO {attempts} ({attempt_columns})
    SELECT id, attempt, runner_id, started_at, {ended_at}, {ending}
    FROM {ended}
    ON CONFLICT (execution_id, attempt) DO NOTHING)
