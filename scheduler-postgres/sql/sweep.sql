-- machine::sweep of one job ($2): every RUNNING row whose lease went stale
-- becomes FAILED with `stale_timeout` and the message $3. `next_retry_at` is
-- machine::swept_retry_at's, bound as $4: null for a reentrant job, "never"
-- for one that waits for an operator.
--
-- The attempts it ends are logged in the same statement ({log_ended}), with
-- what `machine::Ending::Sweep` records ($5 outcome, $6 code, $7 message,
-- $8 duration). The answer is how many rows it closed.
--
-- The stale leases are found through the index of RUNNING rows by
-- `stale_after`, as the range below store time (every job's; the job's name
-- filters them after), and `OFFSET 0` keeps the name out of that scan. With
-- it the planner prefers the index of RUNNING rows by scope (job_name
-- first), a walk through the job's every RUNNING entry: the live leases,
-- and each run's dead RUNNING version until a vacuum, so a sweep, which
-- runs every tick, would cost every run ended lately (at a million scopes,
-- a tenth of a second each; tested in statements.rs). The outer condition
-- repeats the range without the name, which would invite the same walk: a
-- row a concurrent finish or heartbeat changed is weighed again as it now
-- is.
WITH swept AS (
    UPDATE {table} SET status = 'FAILED', finished_at = {now}, next_retry_at = $4,
        error_code = 'stale_timeout', error_msg = $3, updated_at = {now}
    WHERE (id, plan_time) IN (
            SELECT s.id, s.plan_time
            FROM (SELECT id, plan_time, job_name FROM {table}
                  WHERE status = 'RUNNING' AND stale_after < {now}
                  OFFSET 0) s
            WHERE s.job_name = $2)
      AND status = 'RUNNING' AND stale_after < {now}
    RETURNING id, attempt, runner_id, started_at, finished_at),
{log_ended}
SELECT count(*) AS closed FROM swept
