-- The loose index scan of the scopes (spliced into summaries.sql and
-- plan_times.sql as the recursive CTE `k`): every (job, scope) of {job},
-- each step one lookup of the first key after the previous scope's ({after},
-- a row-value range of the unique index, `LIMIT 1`), so it costs one
-- descent of the index per scope whatever each scope's history. SQLite
-- allows the step's subquery to read the previous row's columns, not the
-- recursive table itself, hence the probe returns a rowid and the row is
-- joined by it. (summaries.sql says why {after} is written as it is.)
SELECT job_name, scope_kind, scope_id FROM (
    SELECT job_name, scope_kind, scope_id
    FROM sys_cron_executions
    WHERE {job}
    ORDER BY job_name, scope_kind, scope_id
    LIMIT 1)
UNION ALL
SELECT x.job_name, x.scope_kind, x.scope_id
FROM k
JOIN sys_cron_executions AS x ON x.rowid = (
    SELECT e.rowid FROM sys_cron_executions AS e
    WHERE {after}
    ORDER BY e.job_name, e.scope_kind, e.scope_id
    LIMIT 1)
