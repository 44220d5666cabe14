-- `ScopeSummary::of_rows` as one statement (so one consistent snapshot of
-- every scope, at one store time), costing in proportion to the scopes
-- shown and the rare rows, not to the history (docs/contract.md §10,
-- "Operator reads"). {job} is `1` (every job) or `job_name = :job` (one
-- job); every read below is then one range of an index.
--
-- `k`: every (job, scope), by a loose index scan of the unique key: each
-- step looks up the first key after the previous scope's (a row-value
-- range of the unique index, `LIMIT 1`), so it costs one descent of the
-- index per scope whatever each scope's history. SQLite allows the step's
-- subquery to read the previous row's columns, not the recursive table
-- itself, hence the probe returns a rowid and the row is joined by it.
-- {after} is that range: `(job_name, scope_kind, scope_id, plan_time) >
-- (...)`, or for one job `job_name = :job AND (scope_kind, scope_id,
-- plan_time) > (...)` (SQLite does
-- not combine an equality with a row-value range that starts at the same
-- column). The previous row's values are written `+k.x`: a bare column of
-- `k` carries the table's TEXT affinity, and SQLite then uses only the
-- first term of the row value as the range (a walk through the whole job);
-- the unary plus drops affinity and collation, which leaves the comparison
-- the column's own (BINARY). The range ends in `plan_time` past every plan
-- time (`i64::MAX`): a row value shorter than the index lands the seek on
-- the previous scope's first entry and steps through its whole history (4 s
-- for 1,000 scopes of 10,000 rows, against 22 ms so).
--
-- `r`: the RUNNING rows, from their partial index (migration 0007), which
-- covers every column the classification reads: a walk of the few RUNNING
-- rows, grouped in index order. RUNNING is stale when `stale_after < :now`;
-- a NULL `stale_after` is never stale (`is_some_and`), and SQL's
-- `NULL < x` is not true either, so the live arm must spell out
-- `IS NULL OR >=`.
--
-- The FAILED rows come in two parts, so that the many a long history ends
-- with are never read (migration 0008):
-- - `t`: the tally, one row per scope, of the FAILED rows that ended for
--   good, kept by triggers on the table: `skipped` (an overlap code,
--   `overlap_skipped` or `overlap_canceled`: `ErrorCode::is_overlap`,
--   whatever the attempts) and `exhausted` (no attempt left, no overlap
--   code), the first two arms of `of_rows` for a FAILED row.
-- - `f`: the other FAILED rows ({failed_retryable}: an attempt left, no
--   overlap code), from the partial index of exactly those (SQLite uses a
--   partial index only when the query names each term of its predicate,
--   hence the same fragment as the migration's), which covers every
--   column they are classified by: `stale_timeout` when the code is
--   exactly that (`IS`, so NULL is not), else a pending retry; the earliest
--   retry counts a NULL `next_retry_at` as `:now`, and `min` of no row is
--   NULL.
-- A scope with none has no row in them: its counts are 0.
--
-- The FAILED arms of `f` are the retry rule (fragments/retry_eligible.sql)
-- decided at each row's own due time, `coalesce(next_retry_at, :now)`, when
-- the rule only asks for an attempt left and the code: {pending} is the rule
-- for a job that forbids stale re-entry (a retry that will come), and
-- {pending_if_reentrant} for one that allows it (every FAILED row with an
-- attempt left).
--
-- Per scope then, two backward walks of the unique index: the newest row
-- (its first entry) and the newest SUCCESS (the first SUCCESS entry: it
-- reads the rows since the scope's last success, normally none or a few; a
-- scope that never succeeded is read whole, the one case that costs its
-- history).
--
-- `:now` is store time, bound by the caller. The output, one row per
-- scope, is sorted again (SQLite cannot carry the order through the joins).
WITH RECURSIVE k(job_name, scope_kind, scope_id) AS ({scope_walk}),
r AS (
    SELECT job_name, scope_kind, scope_id,
        count(CASE WHEN stale_after IS NULL OR stale_after >= :now THEN 1 END) AS running,
        count(CASE WHEN stale_after < :now THEN 1 END) AS stale
    FROM sys_cron_executions
    WHERE status = 'RUNNING' AND {job}
    GROUP BY job_name, scope_kind, scope_id),
t AS (
    SELECT job_name, scope_kind, scope_id, exhausted, skipped
    FROM sys_cron_failed_tally
    WHERE {job}),
f AS (
    SELECT job_name, scope_kind, scope_id,
        count(CASE WHEN {pending} THEN 1 END) AS retry_pending,
        min(CASE WHEN {pending} THEN coalesce(next_retry_at, :now) END) AS next_retry_at,
        count(CASE WHEN {pending_if_reentrant}
            AND error_code IS 'stale_timeout' THEN 1 END) AS stale_timeout
    FROM sys_cron_executions
    WHERE {failed_retryable} AND {job}
    GROUP BY job_name, scope_kind, scope_id)
SELECT k.job_name, k.scope_kind, k.scope_id,
    l.plan_time, l.status, l.attempt, l.max_attempts, l.next_retry_at, l.error_code,
    s.plan_time, s.finished_at,
    coalesce(r.running, 0), coalesce(r.stale, 0), coalesce(f.retry_pending, 0),
    f.next_retry_at, coalesce(t.exhausted, 0), coalesce(f.stale_timeout, 0),
    coalesce(t.skipped, 0)
FROM k
JOIN sys_cron_executions AS l ON l.rowid = (
    SELECT x.rowid FROM sys_cron_executions AS x
    WHERE x.job_name = k.job_name AND x.scope_kind = k.scope_kind
        AND x.scope_id = k.scope_id
    ORDER BY x.plan_time DESC
    LIMIT 1)
LEFT JOIN sys_cron_executions AS s ON s.rowid = (
    SELECT x.rowid FROM sys_cron_executions AS x
    WHERE x.job_name = k.job_name AND x.scope_kind = k.scope_kind
        AND x.scope_id = k.scope_id AND x.status = 'SUCCESS'
    ORDER BY x.plan_time DESC
    LIMIT 1)
LEFT JOIN r ON r.job_name = k.job_name AND r.scope_kind = k.scope_kind
    AND r.scope_id = k.scope_id
LEFT JOIN f ON f.job_name = k.job_name AND f.scope_kind = k.scope_kind
    AND f.scope_id = k.scope_id
LEFT JOIN t ON t.job_name = k.job_name AND t.scope_kind = k.scope_kind
    AND t.scope_id = k.scope_id
ORDER BY k.job_name, k.scope_kind, k.scope_id
