-- machine::finish: one terminal write, guarded like a heartbeat, bound from
-- `Finish::columns()` ($2 id, $3 token, then the columns: $4 status,
-- $5 duration_ms, $6 rows_affected, $7 result, $8 error_code, $9 error_msg,
-- $10 retry_after; $11 the lease's plan time). A success writes its rows_affected and result and
-- clears the retry time and the error (its code and message are NULL); a
-- failure keeps rows_affected and result as they are, like machine::finish,
-- and gets a retry time only while attempts remain. finish_many.sql sets the
-- same for many leases; this one writes the items of a batch the server
-- refused, one by one.
--
-- The attempt it ends is logged in the same statement ({log_ended}): its
-- record is what the finish wrote (the outcome is the status), beside the
-- columns a finish leaves as they were. A lost lease writes and logs nothing,
-- and returns no row.
--
-- The plan time is the lease's, matched besides its id: on a partitioned
-- table (docs/contract.md §10, "Partitioned executions") it lets the
-- planner go to the one partition of the row instead of probing every
-- partition's primary key for the id; on any table it is the row's, so the
-- guard refuses nothing it accepted before.
WITH written AS (
    UPDATE {table} SET status = $4, finished_at = {now}, duration_ms = $5,
        rows_affected = CASE WHEN $4 = 'SUCCESS' THEN $6 ELSE rows_affected END,
        result = CASE WHEN $4 = 'SUCCESS' THEN $7 ELSE result END,
        next_retry_at = CASE WHEN $4 = 'FAILED' AND attempt < max_attempts
                             THEN {now} + $10::interval END,
        error_code = $8, error_msg = $9, updated_at = {now}
    WHERE id = $2 AND lease_token = $3 AND status = 'RUNNING' AND plan_time = $11
    RETURNING id, attempt, runner_id, started_at, finished_at, status, error_code,
              error_msg, duration_ms),
{log_ended}
SELECT id FROM written
