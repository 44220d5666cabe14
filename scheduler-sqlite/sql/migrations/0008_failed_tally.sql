-- Version 8: the operator's reads count the FAILED rows that ended for good
-- without reading them (docs/contract.md §10, "Operator reads"): nearly all
-- FAILED rows of a long history are `exhausted` (no attempt left) or
-- `skipped` (an overlap code), and stay so until pruned.
--
-- - sys_cron_failed_tally: per (job, scope), how many of its rows are
--   exhausted and skipped (the classes of fragments/tally_add.sql), kept by
--   triggers on the executions table, so every writer keeps it (another
--   process's, an older build's, a hand-written UPDATE, the prune's
--   DELETE). SQLite's triggers are per row; each fires only for a row that
--   is or was FAILED (its WHEN), so a claim or a successful finish costs
--   nothing more. One writer at a time: no two transactions ever add to a
--   tally row together. Whatever bypasses the triggers is repaired by a
--   rebuild (tally_rebuild.sql, which is also this migration's backfill).
-- - idx_sys_cron_exec_failed_retryable: the other FAILED rows, those with
--   an attempt left (fragments/failed_retryable.sql), which the summaries
--   still count row by row (their due times matter): normally a few per
--   scope.
CREATE TABLE IF NOT EXISTS sys_cron_failed_tally (
    job_name   TEXT    NOT NULL,
    scope_kind TEXT    NOT NULL,
    scope_id   TEXT    NOT NULL,
    exhausted  INTEGER NOT NULL DEFAULT 0,
    skipped    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_name, scope_kind, scope_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_sys_cron_exec_failed_retryable
    ON sys_cron_executions (job_name, scope_kind, scope_id, error_code, attempt,
                            max_attempts, next_retry_at, status)
    WHERE {failed_retryable};
CREATE TRIGGER IF NOT EXISTS trg_sys_cron_tally_inserted
AFTER INSERT ON sys_cron_executions WHEN NEW.status = 'FAILED'
BEGIN
    {tally_add_inserted};
END;
CREATE TRIGGER IF NOT EXISTS trg_sys_cron_tally_updated
AFTER UPDATE ON sys_cron_executions WHEN NEW.status = 'FAILED' OR OLD.status = 'FAILED'
BEGIN
    {tally_add_updated};
END;
CREATE TRIGGER IF NOT EXISTS trg_sys_cron_tally_deleted
AFTER DELETE ON sys_cron_executions WHEN OLD.status = 'FAILED'
BEGIN
    {tally_add_deleted};
END;
{tally_rebuild};
