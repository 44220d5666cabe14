-- machine::sweep of one job ($2): every RUNNING row whose lease went stale
-- becomes FAILED with `stale_timeout` and the message $3. `next_retry_at` is
-- machine::swept_retry_at's, bound as $4: null for a reentrant job, "never"
-- for one that waits for an operator.
--
-- The attempts it ends are logged in the same statement ({log_ended}), with
-- what `machine::Ending::Sweep` records ($5 outcome, $6 code, $7 message,
-- $8 duration). The answer is how many rows it closed.
WITH swept AS (
    UPDATE {table} SET status = 'FAILED', finished_at = {now}, next_retry_at = $4,
        error_code = 'stale_timeout', error_msg = $3, updated_at = {now}
    WHERE job_name = $2 AND status = 'RUNNING' AND stale_after < {now}
    RETURNING id, attempt, runner_id, started_at, finished_at),
{log_ended}
SELECT count(*) AS closed FROM swept
