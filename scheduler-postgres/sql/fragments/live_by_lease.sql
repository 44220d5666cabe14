-- claim_admission.sql's live runs on a partitioned table: every RUNNING row
-- of the job with `stale_after` not before store time, found through the
-- index of RUNNING rows by `stale_after`, whose range holds the live leases
-- of every job (what runs right now, however long the history). A probe
-- per scope (live_by_scope.sql) would here be one per partition: the
-- partitions are by plan time, which a live run's scope does not bound.
-- The range also holds the dead versions of the runs ended within the last
-- stale timeout, until a vacuum (see live_by_scope.sql); docs/contract.md
-- §10 gives what that costs.
--
-- `OFFSET 0` keeps the job's name out of that scan, since with it the
-- planner may prefer the unique key's prefix (job_name), a walk through the
-- job's whole history, on a table it has no statistics of yet
-- (docs/contract.md §10, the planner trap).
SELECT true, e.plan_time, e.origin, e.lease_token,
       e.id, NULL, NULL, e.scope_kind, e.scope_id, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL, NULL, NULL, NULL
FROM (SELECT id, job_name, scope_kind, scope_id, plan_time, origin, lease_token
      FROM {table}
      WHERE $3 AND status = 'RUNNING' AND stale_after >= {now}
      OFFSET 0) e
WHERE e.job_name = $2
