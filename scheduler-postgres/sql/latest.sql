-- The latest row of each scope of job $1, the scopes as parallel arrays.
-- The planner trap of docs/contract.md §10: this shape (unnest of the
-- client's arrays, a LIMIT 1 lateral probe of the unique index per scope)
-- stays fast on a freshly filled table that has no statistics yet.
--
-- A trigger's run is off the schedule's grid, so planning never sees it
-- (docs/contract.md §11): the probe passes over it. Any origin text but
-- `backfill` reads as a trigger (`Origin::from_column`); triggers are rare,
-- so the probe still stops at once.
SELECT k.ord, e.plan_time, e.status, e.attempt, e.max_attempts, e.next_retry_at,
       e.error_code
FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS k(scope_kind, scope_id, ord)
CROSS JOIN LATERAL (
    SELECT x.plan_time, x.status, x.attempt, x.max_attempts, x.next_retry_at,
           x.error_code
    FROM {table} x
    WHERE x.job_name = $1 AND x.scope_kind = k.scope_kind
      AND x.scope_id = k.scope_id AND (x.origin IS NULL OR x.origin = 'backfill')
    ORDER BY x.plan_time DESC LIMIT 1
) e
