-- One statement for any number of scopes: the scopes arrive as one JSON
-- array of `[kind, id]` pairs, and each finds its newest row through the
-- unique index (`ORDER BY plan_time DESC LIMIT 1`), never by scanning.
SELECT s.key, e.plan_time, e.status, e.attempt, e.max_attempts, e.next_retry_at, e.error_code
FROM json_each(:scopes) AS s
JOIN sys_cron_executions AS e ON e.rowid = (
    SELECT x.rowid FROM sys_cron_executions AS x
    WHERE x.job_name = :job
        AND x.scope_kind = json_extract(s.value, '$[0]')
        AND x.scope_id = json_extract(s.value, '$[1]')
    ORDER BY x.plan_time DESC
    LIMIT 1)
