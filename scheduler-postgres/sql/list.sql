-- The filtered list, newest plan time first. {filters} is completed per
-- call from fixed conditions only (`AND job_name = $n`, ...); every value is
-- a bound parameter, and a limit, when there is one, is appended the same
-- way.
-- Within one scope plan times are unique (the unique key), so a call for
-- one scope needs no tie-break: {tie} is empty there, and the order is then
-- the unique index's own, read backwards, so a limit stops the walk after
-- the rows returned instead of sorting the scope's whole history. Elsewhere
-- {tie} is `, id DESC`.
SELECT {columns}
FROM {table} WHERE true{filters}
ORDER BY plan_time DESC{tie}
