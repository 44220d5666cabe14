-- One statement for any number of scopes: the scopes arrive as one JSON
-- array of `[kind, id]` pairs, and each finds its newest row through the
-- unique index (`ORDER BY plan_time DESC LIMIT 1`), never by scanning.
--
-- A trigger's row is skipped (docs/contract.md §9): its plan time is off the
-- schedule's grid, and planning must not take it for the newest plan. The
-- origins it keeps are the ones `Origin::from_column` reads as scheduled or
-- backfill (NULL, `backfill`), so a text another version wrote is skipped
-- too, as the memory store skips what it reads as a trigger. Triggers are
-- rare, so the probe stops at the first or second row.
SELECT s.key, e.plan_time, e.status, e.attempt, e.max_attempts, e.next_retry_at, e.error_code
FROM json_each(:scopes) AS s
JOIN sys_cron_executions AS e ON e.rowid = (
    SELECT x.rowid FROM sys_cron_executions AS x
    WHERE x.job_name = :job
        AND x.scope_kind = json_extract(s.value, '$[0]')
        AND x.scope_id = json_extract(s.value, '$[1]')
        AND (x.origin IS NULL OR x.origin = 'backfill')
    ORDER BY x.plan_time DESC
    LIMIT 1)
