-- finish.sql for many leases at once, one row of parallel arrays per lease
-- (plain arrays: no type of ours has to exist on the server), bound from
-- `Finish::columns()`. Every column is set exactly as finish.sql sets it for
-- the item's kind: a success writes its rows_affected and result and clears
-- the retry time and the error (the arrays hold NULL codes and messages for
-- successes); a failure keeps rows_affected and result, and gets a retry
-- time only while attempts remain. Store time is computed once, in `n`. The
-- guard is per row, so a lost lease is simply not RETURNed. Each
-- (id, token) must appear at most once, so that no row joins twice (an
-- UPDATE would then pick one of the joined rows unpredictably); the caller
-- sees to it. Each lease's plan time is matched too, as in finish.sql.
--
-- The planner trap again (docs/contract.md §10): the leases were claimed
-- moments ago, so the statistics may still say that hardly any row is
-- RUNNING. As a restriction on `e`, `status = 'RUNNING'` then makes the
-- RUNNING rows look like one, and the plan walks them once, reading all the
-- arrays again for each (seen: 17 s for 5,000 leases among 10,000 RUNNING
-- rows). So the guard compares with `f.live`, a column of the arrays' side
-- held back from flattening by OFFSET 0: a join clause, which no statistics
-- on `status` can make selective, and which a concurrent writer's change is
-- rechecked against like any other. The plan then probes the primary key
-- once per lease, or hashes the table when that is cheaper.
--
-- The attempts it ends are logged in the same statement ({log_ended}), as
-- finish.sql logs one: a lease written is logged once, a lost one not at all.
WITH written AS (
    UPDATE {table} e SET status = f.status, finished_at = n.now,
        duration_ms = f.duration_ms,
        rows_affected = CASE WHEN f.status = 'SUCCESS'
                             THEN f.rows_affected ELSE e.rows_affected END,
        result = CASE WHEN f.status = 'SUCCESS' THEN f.result ELSE e.result END,
        next_retry_at = CASE WHEN f.status = 'FAILED' AND e.attempt < e.max_attempts
                             THEN n.now + f.retry_after END,
        error_code = f.error_code, error_msg = f.error_msg, updated_at = n.now
    FROM (SELECT {now} AS now) n,
         (SELECT u.*, 'RUNNING'::text AS live
          FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::int4[], $6::int8[],
                      $7::jsonb[], $8::text[], $9::text[], $10::interval[],
                      $11::timestamptz[])
               WITH ORDINALITY AS u(id, token, status, duration_ms, rows_affected,
                                    result, error_code, error_msg, retry_after, plan_time,
                                    ord)
          OFFSET 0) f
    WHERE e.id = f.id AND e.lease_token = f.token AND e.status = f.live
      AND e.plan_time = f.plan_time
    RETURNING f.ord, e.id, e.attempt, e.runner_id, e.started_at, e.finished_at, e.status,
              e.error_code, e.error_msg, e.duration_ms),
{log_ended}
SELECT ord FROM written
