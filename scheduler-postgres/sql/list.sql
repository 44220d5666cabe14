-- The filtered list, newest plan time first. {filters} is completed per
-- call from fixed conditions only (`AND job_name = $n`, ...); every value is
-- a bound parameter, and a limit, when there is one, is appended the same
-- way.
SELECT {columns}
FROM {table} WHERE true{filters}
ORDER BY plan_time DESC, id DESC
