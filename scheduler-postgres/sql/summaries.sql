-- The scope summaries of `ScopeSummary::of_rows` in one statement, with
-- {filter} (empty, or a condition on the job name as $2) on the rows.
--
-- Store time is computed once (`n`) and every classification compares with
-- it. One pass over the rows groups them per scope and counts them into the
-- classes of `of_rows`, whose conditions are mutually exclusive in the same
-- order: RUNNING is stale when `stale_after < now` (a null `stale_after`
-- counts as live); FAILED is exhausted when `attempt >= max_attempts`, else
-- `stale_timeout` by its code, else a pending retry (a null code is not
-- `stale_timeout`), whose due time is `coalesce(next_retry_at, now)`. Before
-- them all, a FAILED row the overlap policy ended (code `overlap_skipped` or
-- `overlap_canceled`, `ErrorCode::is_overlap`) is `skipped`, whatever its
-- attempts, and counted in no other class (`IS NOT TRUE`: a NULL code is not
-- one of them).
--
-- The FAILED classes are the retry rule (fragments/retry_eligible.sql)
-- decided at each row's own due time, `coalesce(next_retry_at, n.now)`, when
-- the rule only asks for an attempt left and the code: {pending} is the rule
-- for a job that forbids stale re-entry (a retry that will come), and
-- {pending_if_reentrant} for one that allows it (every FAILED row with an
-- attempt left).
--
-- The same pass finds the latest plan time and the latest SUCCESS plan time,
-- and those rows are then read back by the unique key: two point probes of
-- its index per scope, no walk through history. The `LATERAL ... LIMIT 1`
-- keeps them probes: as plain joins the planner, which cannot know how few
-- groups there are, may hash-join them against a scan of the whole table.
-- One statement sees one snapshot, so the latest row always exists.
--
-- Two texts rather than `($2 IS NULL OR job_name = $2)`: a generic plan of
-- that form could not use the unique index for one job. Scopes come in byte
-- order ("C"), as the memory store sorts Rust strings.
WITH n AS (SELECT {now} AS now),
g AS (
    SELECT e.job_name, e.scope_kind, e.scope_id,
           max(e.plan_time) AS latest_plan_time,
           max(e.plan_time) FILTER (WHERE e.status = 'SUCCESS') AS success_plan_time,
           count(*) FILTER (WHERE e.status = 'RUNNING'
                            AND (e.stale_after IS NULL OR e.stale_after >= n.now))
               AS running,
           count(*) FILTER (WHERE e.status = 'RUNNING' AND e.stale_after < n.now)
               AS stale,
           count(*) FILTER (WHERE {pending} AND o.overlap IS NOT TRUE) AS retry_pending,
           min(coalesce(e.next_retry_at, n.now))
               FILTER (WHERE {pending} AND o.overlap IS NOT TRUE) AS first_retry_at,
           count(*) FILTER (WHERE e.status = 'FAILED' AND e.attempt >= e.max_attempts
                            AND o.overlap IS NOT TRUE)
               AS exhausted,
           count(*) FILTER (WHERE {pending_if_reentrant}
                            AND e.error_code = 'stale_timeout')
               AS stale_timeout,
           count(*) FILTER (WHERE e.status = 'FAILED' AND o.overlap) AS skipped
    FROM {table} e CROSS JOIN n
         CROSS JOIN LATERAL (SELECT e.error_code IN ('overlap_skipped', 'overlap_canceled')
                             AS overlap) o
    {filter}
    GROUP BY e.job_name, e.scope_kind, e.scope_id
)
SELECT g.job_name, g.scope_kind, g.scope_id, g.success_plan_time,
       s.finished_at AS success_finished_at, g.running, g.stale, g.retry_pending,
       g.first_retry_at, g.exhausted, g.stale_timeout, g.skipped,
       l.plan_time, l.status, l.attempt, l.max_attempts, l.next_retry_at, l.error_code
FROM g
CROSS JOIN LATERAL (
    SELECT x.plan_time, x.status, x.attempt, x.max_attempts, x.next_retry_at,
           x.error_code
    FROM {table} x
    WHERE x.job_name = g.job_name AND x.scope_kind = g.scope_kind
      AND x.scope_id = g.scope_id AND x.plan_time = g.latest_plan_time
    LIMIT 1
) l
LEFT JOIN LATERAL (
    SELECT x.finished_at
    FROM {table} x
    WHERE x.job_name = g.job_name AND x.scope_kind = g.scope_kind
      AND x.scope_id = g.scope_id AND x.plan_time = g.success_plan_time
    LIMIT 1
) s ON true
ORDER BY g.job_name COLLATE "C", g.scope_kind COLLATE "C",
         g.scope_id COLLATE "C"
