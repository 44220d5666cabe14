-- What admission (machine::admit, docs/contract.md §11) weighs a claim's keys
-- against, read first in the claim's IMMEDIATE transaction: SQLite's one
-- writer is the per-job lock the contract asks for, so no pause can be
-- stored (add_control) and no lease granted between this read and the
-- claim's writes. One statement, so a batch with no pause and no live run
-- costs one read more than it did before steering.
--
-- Two kinds of row in one shape:
-- - the job's pauses in force (active, `until_time` not reached:
--   Control::pauses), every control column ({control_columns}, read by
--   codec::control) and three NULLs; through the controls' (job_name,
--   ended_at) index, active ones only;
-- - the live runs of the batch's scopes (RUNNING, `stale_after` not before
--   :now: LiveRun::of), marked by the kind 'live' (never a control's: the
--   table's CHECK), with their id and scope in a control's places and their
--   plan time, origin and lease token (which tells the claimer's finishing
--   runs, ClaimRequest::finishing, from later attempts of the same rows) in
--   the last three columns; through the index of
--   RUNNING rows, which holds only live leases however long the history.
--   Their scopes arrive as one JSON array of `[kind, id]` pairs, as in
--   latest.sql. :weigh_live is false for a batch whose overlap policy is
--   allow_all, which admission decides without live runs.
SELECT {control_columns}, NULL, NULL, NULL
FROM sys_cron_controls INDEXED BY idx_sys_cron_controls_job
WHERE job_name = :job AND ended_at IS NULL AND kind = 'pause'
    AND (until_time IS NULL OR until_time > :now)
UNION ALL
SELECT id, 'live', job_name, scope_kind, scope_id,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    plan_time, origin, lease_token
FROM sys_cron_executions INDEXED BY idx_sys_cron_exec_running_stale
WHERE :weigh_live AND job_name = :job AND status = 'RUNNING' AND stale_after >= :now
    AND (scope_kind, scope_id) IN (
        SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]')
        FROM json_each(:scopes))
