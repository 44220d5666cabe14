-- The loose index scan of the scopes (spliced into summaries.sql and
-- plan_times.sql as the recursive CTE `k`): every (job, scope) of {job}, by
-- one probe of the unique key per scope for the first key after the
-- previous scope's ({after}), so it costs one descent of the index per
-- scope whatever each scope's history (PostgreSQL 15 has no skip scan).
-- The row comparison is in the index's own collation, so the walk follows
-- the index order exactly.
(SELECT e.job_name, e.scope_kind, e.scope_id
 FROM {table} e
 WHERE {job}
 ORDER BY e.job_name, e.scope_kind, e.scope_id
 LIMIT 1)
UNION ALL
SELECT x.job_name, x.scope_kind, x.scope_id
FROM k
CROSS JOIN LATERAL (
    SELECT e.job_name, e.scope_kind, e.scope_id
    FROM {table} e
    WHERE {after}
    ORDER BY e.job_name, e.scope_kind, e.scope_id
    LIMIT 1
) x
