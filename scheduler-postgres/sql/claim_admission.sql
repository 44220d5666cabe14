-- What admission weighs (machine::admit), read in a statement of its own
-- after the claim lock (claim_lock.sql) was granted: in READ COMMITTED its
-- snapshot is taken then, so it sees every pause committed before, and every
-- run another claim of the job committed. One statement, two kinds of row
-- (`live`):
--
-- - the pauses of job $2 in force at store time (active, `until_time` not
--   reached), with every column of a control ({control_columns}; the live
--   runs' `plan_time` and `origin` NULL);
-- - when $3 (the job's overlap policy weighs live runs: every policy but
--   allow_all), the job's live runs: RUNNING with `stale_after` not before
--   store time, with their id, scope, plan time, origin and lease token
--   (which tells the claimer's finishing runs, ClaimRequest::finishing, from
--   later attempts of the same rows; the controls' columns NULL).
--
-- The live runs are those of every scope of the job, not only the batch's:
-- admission matches them to the keys' scopes, as the memory store does. So
-- the claim binds no array of scopes, and the planner has no join to get
-- wrong: given the batch's scopes (thousands, in a generic plan estimated at
-- ten) it could probe them once per live run, a nested loop quadratic in the
-- batch. The runs are found through the index of RUNNING rows by
-- `stale_after`, whose range holds the live leases of every job (what runs
-- right now, however long the history); `OFFSET 0` keeps the job's name out
-- of that scan, since with it the planner may prefer the unique key's
-- prefix (job_name), a walk through the job's whole history, on a table it
-- has no statistics of yet (docs/contract.md §10, the planner trap).
SELECT false AS live, NULL::timestamptz AS plan_time, NULL::text AS origin,
       NULL::uuid AS lease_token,
       {control_columns}
FROM {controls}
WHERE job_name = $2 AND kind = 'pause' AND ended_at IS NULL
  AND (until_time IS NULL OR until_time > {now})
UNION ALL
SELECT true, e.plan_time, e.origin, e.lease_token,
       e.id, NULL, NULL, e.scope_kind, e.scope_id, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL, NULL, NULL, NULL
FROM (SELECT id, job_name, scope_kind, scope_id, plan_time, origin, lease_token
      FROM {table}
      WHERE $3 AND status = 'RUNNING' AND stale_after >= {now}
      OFFSET 0) e
WHERE e.job_name = $2
