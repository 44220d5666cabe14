-- Every execution of job :job planned at or after :from, as its scope and
-- plan time (`ExecutionAudit::plan_times_since`, the missed-plan report):
-- the job's scopes by the loose index scan (fragments/scope_walk.sql), then
-- per scope one range of the unique key, (job, scope, plan_time >= :from),
-- so the read costs one descent per scope and the rows returned, never the
-- history before :from. One statement, one snapshot.
WITH RECURSIVE k(job_name, scope_kind, scope_id) AS ({scope_walk})
SELECT k.scope_kind, k.scope_id, x.plan_time
FROM k
JOIN sys_cron_executions AS x
    ON x.job_name = k.job_name AND x.scope_kind = k.scope_kind
    AND x.scope_id = k.scope_id AND x.plan_time >= :from
ORDER BY k.scope_kind, k.scope_id, x.plan_time
