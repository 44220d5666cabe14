-- The filtered list, newest plan time first. {filters} is completed per
-- call from fixed conditions only (`AND job_name = :job`, ...); every value
-- is a bound parameter, and each filter shape is one cached statement.
-- SQLite reads a negative :limit as "no limit".
SELECT {columns}
FROM sys_cron_executions WHERE 1 = 1{filters}
ORDER BY plan_time DESC, id DESC LIMIT :limit
