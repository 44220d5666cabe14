-- `ScopeSummary::of_rows` as one statement (so one consistent snapshot of
-- every scope, at one store time): a pass over the scopes' rows computes the
-- counts with conditional aggregates, then the latest row and the last
-- SUCCESS row of each scope are looked up by their full unique key (the
-- group's `max(plan_time)`, `plan_time` being unique within a scope).
--
-- Each `CASE` is one arm of `of_rows`'s `match`, in its order, so every
-- FAILED or RUNNING row is counted exactly once:
-- - FAILED with an overlap code (`overlap_skipped`, `overlap_canceled`:
--   `ErrorCode::is_overlap`) is skipped, whatever its attempts, and the
--   other FAILED arms leave it out (`coalesce`, because a NULL code is not
--   an overlap code, and `NULL NOT IN (..)` is not true; the
--   `stale_timeout` arm needs no such term, its code being another).
-- - RUNNING is stale when `stale_after < :now`; a NULL `stale_after` is
--   never stale (`is_some_and`), and SQL's `NULL < x` is not true either,
--   so the live arm must spell out `IS NULL OR >=`.
-- - FAILED with `attempt >= max_attempts` is exhausted, whatever its other
--   code.
-- - FAILED with attempts left is `stale_timeout` when its code is exactly
--   that (`IS`, so NULL is not), else a pending retry; the earliest retry
--   counts a NULL `next_retry_at` as `:now`, and `min` of no row is NULL.
--
-- The FAILED arms are the retry rule (fragments/retry_eligible.sql) decided
-- at each row's own due time, `coalesce(next_retry_at, :now)`, when the rule
-- only asks for an attempt left and the code: {pending} is the rule for a
-- job that forbids stale re-entry (a retry that will come), and
-- {pending_if_reentrant} for one that allows it (every FAILED row with an
-- attempt left).
--
-- `:now` is store time, bound by the caller. {filter} is empty (every scope
-- of every job: necessarily a pass over the whole table) or
-- `WHERE job_name = :job` (one job's scopes, through its range of the unique
-- index). Both forms read the unique index in order, so grouping needs no
-- sort; only the output, one row per scope, is sorted again (SQLite cannot
-- carry the order through the joins).
WITH groups AS (
    SELECT job_name, scope_kind, scope_id,
        max(plan_time) AS latest_plan,
        max(CASE WHEN status = 'SUCCESS' THEN plan_time END) AS success_plan,
        count(CASE WHEN status = 'RUNNING'
            AND (stale_after IS NULL OR stale_after >= :now) THEN 1 END) AS running,
        count(CASE WHEN status = 'RUNNING' AND stale_after < :now THEN 1 END) AS stale,
        count(CASE WHEN {pending}
            AND coalesce(error_code, '') NOT IN ('overlap_skipped', 'overlap_canceled')
            THEN 1 END) AS retry_pending,
        min(CASE WHEN {pending}
            AND coalesce(error_code, '') NOT IN ('overlap_skipped', 'overlap_canceled')
            THEN coalesce(next_retry_at, :now) END) AS next_retry_at,
        count(CASE WHEN status = 'FAILED' AND attempt >= max_attempts
            AND coalesce(error_code, '') NOT IN ('overlap_skipped', 'overlap_canceled')
            THEN 1 END) AS exhausted,
        count(CASE WHEN {pending_if_reentrant}
            AND error_code IS 'stale_timeout' THEN 1 END) AS stale_timeout,
        count(CASE WHEN status = 'FAILED'
            AND error_code IN ('overlap_skipped', 'overlap_canceled') THEN 1 END) AS skipped
    FROM sys_cron_executions {filter}
    GROUP BY job_name, scope_kind, scope_id)
SELECT g.job_name, g.scope_kind, g.scope_id,
    l.plan_time, l.status, l.attempt, l.max_attempts, l.next_retry_at, l.error_code,
    s.plan_time, s.finished_at,
    g.running, g.stale, g.retry_pending, g.next_retry_at, g.exhausted, g.stale_timeout,
    g.skipped
FROM groups AS g
JOIN sys_cron_executions AS l
    ON l.job_name = g.job_name AND l.scope_kind = g.scope_kind
    AND l.scope_id = g.scope_id AND l.plan_time = g.latest_plan
LEFT JOIN sys_cron_executions AS s
    ON s.job_name = g.job_name AND s.scope_kind = g.scope_kind
    AND s.scope_id = g.scope_id AND s.plan_time = g.success_plan
ORDER BY g.job_name, g.scope_kind, g.scope_id
