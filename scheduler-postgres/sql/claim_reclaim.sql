-- The keys of a batch claim that exist (docs/contract.md §4,
-- machine::claim): a retry of a retry-eligible FAILED row or a takeover of a
-- stealable stale RUNNING row; at most one guard holds, since they require
-- different statuses. The effect is the one both share: back to RUNNING with
-- attempt + 1, a new token and runner, lease instants reset, and the previous
-- attempt's outcome cleared. $2 job, $3 runner, $4 stale_timeout, $5
-- allow_stale_reentry, then the keys' parallel arrays with their tokens.
--
-- The CTE locks the rows that pass the guards (FOR UPDATE re-checks the
-- guards against the newest version if a concurrent writer got there first)
-- and remembers the status they had, which tells a retry from a takeover,
-- and the attempt they were on; RETURNING could only see the new row.
--
-- A takeover ends the attempt it takes over, which is logged in the same
-- statement ({log_ended}) from the row as it was (`taken`), with what
-- `machine::Ending::Steal` records ($10 outcome, $11 code, $12 message, $13
-- duration). A retry logs nothing: its failure was logged when it was
-- written.
--
-- The rows locked are found again by id and plan time: on a partitioned
-- table (docs/contract.md §10) the plan time takes the update to each row's
-- one partition instead of every partition's primary key.
WITH c AS (
    SELECT e.id, e.plan_time, e.status AS old_status, e.attempt, e.runner_id,
           e.started_at, k.token, k.ord
    FROM unnest($6::text[], $7::text[], $8::timestamptz[], $9::uuid[])
         WITH ORDINALITY AS k(scope_kind, scope_id, plan_time, token, ord)
    JOIN {table} e ON e.job_name = $2 AND e.scope_kind = k.scope_kind
              AND e.scope_id = k.scope_id AND e.plan_time = k.plan_time
    WHERE ({retry_eligible}) OR ({steal_eligible})
    FOR UPDATE OF e
),
taken AS (SELECT * FROM c WHERE old_status = 'RUNNING'),
{log_ended}
UPDATE {table} e SET status = 'RUNNING', attempt = e.attempt + 1, runner_id = $3,
    lease_token = c.token, heartbeat_at = {now}, stale_after = {now} + $4::interval,
    started_at = {now}, finished_at = NULL, duration_ms = NULL, next_retry_at = NULL,
    error_code = NULL, error_msg = NULL, updated_at = {now}
FROM c WHERE e.id = c.id AND e.plan_time = c.plan_time
RETURNING c.ord, c.old_status, e.id, e.lease_token, e.attempt, e.max_attempts,
          e.started_at, e.stale_after
