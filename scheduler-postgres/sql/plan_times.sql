-- Every execution of job $1 planned at or after $2, as its scope and plan
-- time (`ExecutionAudit::plan_times_since`, the missed-plan report): the
-- job's scopes by the loose index scan (fragments/scope_walk.sql), then
-- per scope one range of the unique key, (job, scope, plan_time >= $2), so
-- the read costs one descent per scope and the rows returned, never the
-- history before $2. One statement, one snapshot. Scopes in byte order
-- ("C"), as the memory store sorts Rust strings.
WITH RECURSIVE k AS ({scope_walk})
SELECT k.scope_kind, k.scope_id, p.plan_time
FROM k
CROSS JOIN LATERAL (
    SELECT x.plan_time
    FROM {table} x
    WHERE x.job_name = k.job_name AND x.scope_kind = k.scope_kind
      AND x.scope_id = k.scope_id AND x.plan_time >= $2
) p
ORDER BY k.scope_kind COLLATE "C", k.scope_id COLLATE "C", p.plan_time
