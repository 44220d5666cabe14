-- Adds to the tally of ended FAILED rows (sys_cron_failed_tally, migration
-- 8) the rows of {rows}, each counted {sign} times (1, -1, or a column of
-- {rows} that is either): spliced into the tally's triggers (the row a
-- statement wrote, replaced or deleted) and tally_rebuild.sql (the whole
-- table).
--
-- The two classes are those of `ScopeSummary::of_rows` a FAILED row stays
-- in until an operator's retry or a prune: `skipped` (an overlap code,
-- `overlap_skipped` or `overlap_canceled`, whatever the attempts), and
-- `exhausted` (no attempt left and not an overlap code; `coalesce` because
-- a NULL code is no overlap code, and `NULL IN (..)` is not false). The
-- codes are written out, as everywhere (fragments/retry_eligible.sql).
-- The `WHERE` ahead of `ON CONFLICT` is also what tells SQLite's parser
-- that `ON` starts the upsert, not a join's constraint.
INSERT INTO sys_cron_failed_tally (job_name, scope_kind, scope_id, exhausted, skipped)
SELECT d.job_name, d.scope_kind, d.scope_id, d.exhausted, d.skipped
FROM (
    SELECT r.job_name, r.scope_kind, r.scope_id,
        sum({sign} * (r.attempt >= r.max_attempts
            AND coalesce(r.error_code, '') NOT IN ('overlap_skipped', 'overlap_canceled')))
            AS exhausted,
        sum({sign} * (coalesce(r.error_code, '') IN ('overlap_skipped', 'overlap_canceled')))
            AS skipped
    FROM {rows} AS r
    WHERE r.status = 'FAILED'
    GROUP BY r.job_name, r.scope_kind, r.scope_id) AS d
WHERE d.exhausted <> 0 OR d.skipped <> 0
ON CONFLICT (job_name, scope_kind, scope_id) DO UPDATE
SET exhausted = exhausted + excluded.exhausted, skipped = skipped + excluded.skipped
