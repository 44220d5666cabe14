-- The live runs a batch claim replaced (machine::cancel_for_overlap, policy
-- cancel_other), ended once the claim holds the newer run's lease: each of
-- the ids $2 still RUNNING becomes FAILED with code `overlap_canceled` and
-- the message $4, finished at store time, never retried by itself
-- (`next_retry_at` machine::NEVER, $3). Its lease is gone with it: the
-- runner's next heartbeat fails and cancels the handler. A row that stopped
-- running meanwhile (its runner finished it) is left alone.
--
-- `duration_ms` is the machine's: whole milliseconds from `started_at` to
-- store time, truncated, at least 0, at most i32::MAX, NULL without a
-- start. The CTE locks the rows in id order (concurrent writers of several
-- of them lock in one order) and keeps the attempt each was on, which is
-- logged in the same statement ({log_ended}) with what
-- `machine::Ending::Overlap` records ($5 outcome, $6 code, $7 message, $8
-- duration).
WITH c AS (
    SELECT id, attempt, runner_id, started_at FROM {table}
    WHERE id = ANY($2::uuid[]) AND status = 'RUNNING'
    ORDER BY id
    FOR UPDATE
),
canceled AS (
    UPDATE {table} e SET status = 'FAILED', next_retry_at = $3, finished_at = {now},
        duration_ms = least(greatest(trunc(extract(epoch FROM {now} - e.started_at) * 1000),
                                     0), 2147483647)::int4,
        error_code = 'overlap_canceled', error_msg = $4, updated_at = {now}
    FROM c WHERE e.id = c.id
    RETURNING c.id, c.attempt, c.runner_id, c.started_at
),
{log_ended}
SELECT id FROM canceled
