-- Version 5: steering (docs/contract.md §9). The executions table gets two
-- nullable columns, so every row written before, and every row the Go seed
-- writes, reads as scheduled: `origin` (NULL for scheduled, `trigger`,
-- `backfill`: Origin::column) and `control_id` (the trigger or backfill that
-- asked for the row). No CHECK on `origin`: a text another version writes
-- reads as a trigger (Origin::from_column), it is not refused.
--
-- ALTER TABLE has no IF NOT EXISTS; the ledger runs this version once, in
-- the transaction that records it.
ALTER TABLE sys_cron_executions ADD COLUMN origin TEXT;
ALTER TABLE sys_cron_executions ADD COLUMN control_id TEXT;
-- A control's rows, for its progress (control_progress.sql); scheduled rows,
-- nearly all of them, are not in it.
CREATE INDEX IF NOT EXISTS idx_sys_cron_exec_control_id
    ON sys_cron_executions (control_id) WHERE control_id IS NOT NULL;
-- The FAILED rows of triggers and backfills, which are due whatever their
-- plan time, as an operator's retries are (retry_due.sql's third branch),
-- so that branch never walks the job's old failures.
CREATE INDEX IF NOT EXISTS idx_sys_cron_exec_forced_retry
    ON sys_cron_executions (job_name, plan_time) WHERE status = 'FAILED' AND origin IS NOT NULL;
-- The controls (scheduler_core::model::Control), one row each, beside the
-- executions table, with the PostgreSQL store's column, constraint and
-- index names. What a control asks for is spread over columns by kind, NULL
-- (or 0) for the others: a pause's `until_time` and `skip_missed`, a
-- backfill's `from_time`, `to_time` and `cursor_time`; a trigger has none.
-- No scope (both columns NULL) targets every scope of the job. Instants are
-- INTEGER microseconds, UUIDs hyphenated lowercase TEXT, as in the
-- executions table.
--
-- `ended_at` is NULL exactly while the control is active (a CHECK), so the
-- per-tick read (controls.sql: the active controls of some jobs, and those
-- that ended since an instant) and the claim's read of pauses in force
-- (claim_admission.sql) are ranges of one index, (job_name, ended_at), and
-- never walk a job's ended controls, which are kept.
CREATE TABLE IF NOT EXISTS sys_cron_controls (
    id          TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    job_name    TEXT    NOT NULL,
    scope_kind  TEXT,
    scope_id    TEXT,
    note        TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    reason      TEXT,
    created_at  INTEGER NOT NULL,
    ended_at    INTEGER,
    until_time  INTEGER,
    skip_missed INTEGER NOT NULL DEFAULT 0,
    from_time   INTEGER,
    to_time     INTEGER,
    cursor_time INTEGER,
    updated_at  INTEGER NOT NULL,
    CONSTRAINT pk_sys_cron_controls PRIMARY KEY (id),
    CONSTRAINT chk_sys_cron_controls_kind CHECK (kind IN ('pause', 'trigger', 'backfill')),
    CONSTRAINT chk_sys_cron_controls_state
        CHECK (state IN ('active', 'done', 'cancelled', 'rejected')
               AND (state = 'active') = (ended_at IS NULL)),
    -- Each term is spelled so that it is never NULL: a CHECK whose result
    -- is NULL passes.
    CONSTRAINT chk_sys_cron_controls_shape CHECK (
        (scope_kind IS NULL) = (scope_id IS NULL)
        AND skip_missed IN (0, 1)
        AND (kind = 'pause' OR (until_time IS NULL AND skip_missed = 0))
        AND CASE WHEN kind = 'backfill'
                 THEN from_time IS NOT NULL AND to_time IS NOT NULL
                      AND cursor_time IS NOT NULL AND from_time < to_time
                 ELSE from_time IS NULL AND to_time IS NULL AND cursor_time IS NULL END)
) STRICT;
CREATE INDEX IF NOT EXISTS idx_sys_cron_controls_job
    ON sys_cron_controls (job_name, ended_at);
