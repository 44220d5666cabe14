-- The scope summaries of `ScopeSummary::of_rows` in one statement (one
-- snapshot, one store time), costing in proportion to the scopes shown and
-- the rare rows, not to the history (docs/contract.md §10, "Operator
-- reads"). {job} is `true` (every job) or `e.job_name = $2` (one job);
-- every read below is then one range of an index.
--
-- `k`: every (job, scope), by a loose index scan of the unique key
-- (fragments/scope_walk.sql): each step is one probe for the last key
-- before the previous scope's, so it costs one descent of the index per
-- scope whatever each scope's history. {before} is that range:
-- `(job_name, scope_kind, scope_id) < (...)`, or for one job
-- `job_name = $2 AND (scope_kind, scope_id) < (...)` (the form SQLite's
-- planner needs, with `>`: it walks forwards). The row comparison is in the
-- index's own collation, so the walk follows the index order exactly.
--
-- Every part below is read scope by scope, by probes of an index keyed by
-- (job, scope), each a `LATERAL` subquery the planner cannot flatten into a
-- join (an aggregate, or `LIMIT 1`). As joins, the planner, which
-- estimates `k` at a hundred rows whatever the scopes, picked nested loops
-- and merge joins on the scope kind alone that compared every scope with
-- every row of the part: with stale statistics of the tally, 1.1 s instead
-- of 0.4 s for 10,000 scopes; in the generic plan a prepared statement
-- switches to after five runs, 4–6.5 s.
--
-- `r`: the RUNNING rows, from their partial index (migration 0007), which
-- carries every column the classification reads. RUNNING is stale when
-- `stale_after < now` (a null `stale_after` counts as live).
--
-- The FAILED rows come in two parts, so that the million a long history
-- ends with are never read (migration 0008):
-- - `t`: the tally, one row per scope, of the FAILED rows that ended for
--   good, kept by triggers on the table: `skipped` (an overlap code,
--   `overlap_skipped` or `overlap_canceled`, `ErrorCode::is_overlap`,
--   whatever the attempts) and `exhausted` (no attempt left, no overlap
--   code), the two first arms of `of_rows` for a FAILED row (at most one row
--   by its key).
-- - `f`: the other FAILED rows ({failed_retryable}: an attempt left, no
--   overlap code), from the partial index of exactly those (its predicate
--   spliced here as in the migration, so the planner can prove it), which
--   carries every column they are classified by: `stale_timeout` by its
--   code, else a pending retry (a null code is not `stale_timeout`), whose
--   due time is `coalesce(next_retry_at, now)`.
-- A scope with none has no tally row, and counts 0 in `r` and `f`.
--
-- The FAILED classes of `f` are the retry rule (fragments/retry_eligible.sql)
-- decided at each row's own due time, `coalesce(next_retry_at, n.now)`, when
-- the rule only asks for an attempt left and the code: {pending} is the rule
-- for a job that forbids stale re-entry (a retry that will come), and
-- {pending_if_reentrant} for one that allows it (every FAILED row with an
-- attempt left).
--
-- Per scope then, two backward walks of the unique index: the newest row
-- (the first entry), and the newest SUCCESS (the first SUCCESS entry: it
-- reads the rows since the scope's last success, normally none or a few; a
-- scope that never succeeded is read whole, the one case that costs its
-- history). The `LATERAL ... LIMIT 1` keeps them walks: as plain joins the
-- planner, which cannot know how few scopes there are, may hash-join them
-- against a scan of the whole table. One statement sees one snapshot, so
-- every scope of `k` has its newest row.
--
-- Two texts rather than `($2 IS NULL OR job_name = $2)`: a generic plan of
-- that form could not use the indexes for one job. Scopes come in byte
-- order ("C"), as the memory store sorts Rust strings.
WITH RECURSIVE n AS (SELECT {now} AS now),
k AS ({scope_walk})
SELECT k.job_name, k.scope_kind, k.scope_id, s.plan_time AS success_plan_time,
       s.finished_at AS success_finished_at,
       r.running, r.stale,
       f.retry_pending, f.first_retry_at,
       coalesce(t.exhausted, 0) AS exhausted, f.stale_timeout,
       coalesce(t.skipped, 0) AS skipped,
       l.plan_time, l.status, l.attempt, l.max_attempts, l.next_retry_at, l.error_code
FROM k
CROSS JOIN n
CROSS JOIN LATERAL (
    SELECT x.plan_time, x.status, x.attempt, x.max_attempts, x.next_retry_at,
           x.error_code
    FROM {table} x
    WHERE x.job_name = k.job_name AND x.scope_kind = k.scope_kind
      AND x.scope_id = k.scope_id
    ORDER BY x.plan_time DESC
    LIMIT 1
) l
LEFT JOIN LATERAL (
    SELECT x.plan_time, x.finished_at
    FROM {table} x
    WHERE x.job_name = k.job_name AND x.scope_kind = k.scope_kind
      AND x.scope_id = k.scope_id AND x.status = 'SUCCESS'
    ORDER BY x.plan_time DESC
    LIMIT 1
) s ON true
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE e.stale_after IS NULL OR e.stale_after >= n.now)
               AS running,
           count(*) FILTER (WHERE e.stale_after < n.now) AS stale
    FROM {table} e
    WHERE e.status = 'RUNNING' AND e.job_name = k.job_name
      AND e.scope_kind = k.scope_kind AND e.scope_id = k.scope_id
) r
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE {pending}) AS retry_pending,
           min(coalesce(e.next_retry_at, n.now)) FILTER (WHERE {pending}) AS first_retry_at,
           count(*) FILTER (WHERE {pending_if_reentrant}
                            AND e.error_code = 'stale_timeout')
               AS stale_timeout
    FROM {table} e
    WHERE {failed_retryable} AND e.job_name = k.job_name
      AND e.scope_kind = k.scope_kind AND e.scope_id = k.scope_id
) f
LEFT JOIN LATERAL (
    SELECT e.exhausted, e.skipped
    FROM {tally} e
    WHERE e.job_name = k.job_name AND e.scope_kind = k.scope_kind
      AND e.scope_id = k.scope_id
    LIMIT 1
) t ON true
ORDER BY k.job_name COLLATE "C", k.scope_kind COLLATE "C",
         k.scope_id COLLATE "C"
