-- The filtered list, newest plan time first. {filters} is completed per
-- call from fixed conditions only (`AND job_name = :job`, ...); every value
-- is a bound parameter, and each filter shape is one cached statement.
-- SQLite reads a negative :limit as "no limit".
-- Within one scope plan times are unique (the unique key), so a call for
-- one scope needs no tie-break: {tie} is empty there, and the order is then
-- the unique index's own, read backwards, so a limit stops the walk after
-- the rows returned instead of sorting the scope's whole history. Elsewhere
-- {tie} is `, id DESC`.
SELECT {columns}
FROM sys_cron_executions WHERE 1 = 1{filters}
ORDER BY plan_time DESC{tie} LIMIT :limit
