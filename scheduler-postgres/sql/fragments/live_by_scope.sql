-- claim_admission.sql's live runs on an unpartitioned table: the RUNNING
-- rows, `stale_after` not before store time, of the job's scopes among the
-- batch's ($4 kinds, $5 ids: each scope once), one probe per scope through
-- the index of RUNNING rows by scope (migration 7).
--
-- Why not every live run of the job, through the index by `stale_after`:
-- a run's end leaves its RUNNING version dead in that index until a vacuum,
-- and every such entry of the last stale timeout lies in the range
-- `stale_after >= now`, so each claim would visit the heap row of every run
-- ended in that time: at a million scopes a claim then costs as much as the
-- whole fan-out before it. A scope's own dead entries are the few runs it
-- ended lately, so the probes cost the batch's size.
--
-- LATERAL makes each scope the probe's parameter, and `OFFSET 0` keeps the
-- probe a subquery of its own, so the planner cannot turn the join around
-- (a walk of every live run by `stale_after`, matched to the batch: the
-- cost above, and what it picks once statistics show few RUNNING rows).
-- With the job, the scope and `stale_after` as its bounds, the partial index
-- by scope is the one that matches them all (never the unique key's walk
-- through the scope's history; tested in statements.rs).
SELECT true, e.plan_time, e.origin, e.lease_token,
       e.id, NULL, NULL, e.scope_kind, e.scope_id, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL, NULL, NULL, NULL
FROM unnest($4::text[], $5::text[]) AS k(scope_kind, scope_id)
CROSS JOIN LATERAL (
    SELECT id, scope_kind, scope_id, plan_time, origin, lease_token
    FROM {table} r
    WHERE $3 AND r.job_name = $2 AND r.scope_kind = k.scope_kind
      AND r.scope_id = k.scope_id AND r.status = 'RUNNING'
      AND r.stale_after >= {now}
    OFFSET 0) e
