-- The loose index scan of the scopes (spliced into summaries.sql and
-- plan_times.sql as the recursive CTE `k`): every (job, scope) of {job}, by
-- one probe of the unique key per scope for the last key before the
-- previous scope's ({before}), so it costs one descent of the index per
-- scope whatever each scope's history (PostgreSQL 15 has no skip scan).
-- The row comparison is in the index's own collation, so the walk follows
-- the index order exactly.
--
-- Backwards, from the last scope to the first, so that each probe lands on
-- a scope's newest entry. Forwards it would land on the oldest, which is
-- where a prune deletes: until a vacuum removes their index entries, each
-- probe then steps over every dead entry of the scope (after pruning 14M of
-- 100M rows, 340–500 ms for 990 scopes where the backward walk takes 20 ms).
-- The statements sort their own results.
(SELECT e.job_name, e.scope_kind, e.scope_id
 FROM {table} e
 WHERE {job}
 ORDER BY e.job_name DESC, e.scope_kind DESC, e.scope_id DESC
 LIMIT 1)
UNION ALL
SELECT x.job_name, x.scope_kind, x.scope_id
FROM k
CROSS JOIN LATERAL (
    SELECT e.job_name, e.scope_kind, e.scope_id
    FROM {table} e
    WHERE {before}
    ORDER BY e.job_name DESC, e.scope_kind DESC, e.scope_id DESC
    LIMIT 1
) x
