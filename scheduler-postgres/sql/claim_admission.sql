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
-- The live runs are read by one of two fragments ({live}), chosen by the
-- table's shape when the statements are built (statements.rs):
--
-- - fragments/live_by_scope.sql (an unpartitioned table, the seed's
--   included): one probe per distinct scope of the batch ($4 kinds, $5 ids)
--   through the index of RUNNING rows by scope, so the read costs the
--   batch's size, whatever else runs or ran;
-- - fragments/live_by_lease.sql (a partitioned table, where a probe per
--   scope would be one per partition): every live run of the job through
--   the index of RUNNING rows by `stale_after`.
--
-- Either way admission matches the runs to the keys' scopes
-- (machine::admit), as the memory store does.
SELECT false AS live, NULL::timestamptz AS plan_time, NULL::text AS origin,
       NULL::uuid AS lease_token,
       {control_columns}
FROM {controls}
WHERE job_name = $2 AND kind = 'pause' AND ended_at IS NULL
  AND (until_time IS NULL OR until_time > {now})
UNION ALL
{live}
