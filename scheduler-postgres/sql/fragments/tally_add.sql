-- Adds to the tally of ended FAILED rows ({tally}, migration 8) the rows
-- of {rows}, each counted {sign} times (1, -1, or a column of {rows} that
-- is either): spliced into the tally's trigger function (what a statement
-- changed), tally_rebuild.sql (the whole table) and
-- partitions/untally.sql (a partition about to be detached).
--
-- The two classes are those of `ScopeSummary::of_rows` a FAILED row stays
-- in until an operator's retry or a prune: `skipped` (an overlap code,
-- `overlap_skipped` or `overlap_canceled`, whatever the attempts), and
-- `exhausted` (no attempt left and not an overlap code; `coalesce` because
-- a NULL code is no overlap code, and `NULL IN (..)` is not false). The
-- codes are written out, as everywhere (fragments/retry_eligible.sql).
--
-- One upsert for the statement, one row per scope whose counts change,
-- in key order: two transactions adding to the same scopes lock their
-- tally rows in one order, so they queue and never deadlock on them.
INSERT INTO {tally} AS t (job_name, scope_kind, scope_id, exhausted, skipped)
SELECT d.job_name, d.scope_kind, d.scope_id, d.exhausted, d.skipped
FROM (
    SELECT r.job_name, r.scope_kind, r.scope_id,
           sum({sign} * (r.attempt >= r.max_attempts
               AND coalesce(r.error_code, '') NOT IN ('overlap_skipped', 'overlap_canceled'))::int)
               AS exhausted,
           sum({sign} * (coalesce(r.error_code, '') IN ('overlap_skipped', 'overlap_canceled'))::int)
               AS skipped
    FROM {rows} r
    WHERE r.status = 'FAILED'
    GROUP BY r.job_name, r.scope_kind, r.scope_id) d
WHERE d.exhausted <> 0 OR d.skipped <> 0
ORDER BY d.job_name, d.scope_kind, d.scope_id
ON CONFLICT ON CONSTRAINT {tally_pk} DO UPDATE
SET exhausted = t.exhausted + excluded.exhausted, skipped = t.skipped + excluded.skipped
