-- Version 5: steering (docs/contract.md §11): an execution's origin and
-- control, and the controls an operator stores (pauses, triggers, backfills).
--
-- The executions table gains two nullable columns without a default, a
-- change of the catalog alone: no row is rewritten (the table's storage
-- stays where it was), and the one ALTER holds its lock only for the catalog
-- update. The two indexes below are empty when built, but each build reads
-- the whole table while holding writes off (an index cannot be built
-- CONCURRENTLY inside the migration's transaction): on a large table,
-- migrate at a quiet time.
-- The seed's statements name their columns, so its inserts and updates run
-- unchanged; a row the seed writes has both NULL, which reads as a
-- scheduled run (`Origin::from_column`). The seed's columns, constraints and
-- indexes stay as they are.
--
-- `origin`: NULL for a scheduled run, `trigger` or `backfill`
-- (`Origin::column`); `control_id`: the trigger or backfill that asked for
-- the run. No foreign key to the controls, for the reason the attempts log
-- has none (0003_attempts.sql): a check on every claim of the hot path.
ALTER TABLE {table} ADD COLUMN IF NOT EXISTS origin TEXT,
    ADD COLUMN IF NOT EXISTS control_id UUID;
-- A control's runs, for its progress (control_progress.sql); partial, so
-- the scheduled rows, nearly all of them, cost it nothing.
CREATE INDEX IF NOT EXISTS {idx_control_id} ON {table} (control_id)
    WHERE control_id IS NOT NULL;
-- The failed runs of triggers and backfills, which the retry read
-- (retry_due.sql) reports whatever their plan time, as it does an
-- operator's retries (0002_operator_retry_index.sql), without walking the
-- job's failures.
CREATE INDEX IF NOT EXISTS {idx_forced_retry} ON {table} (job_name, plan_time)
    WHERE status = 'FAILED' AND origin IS NOT NULL;
-- The controls, one row each, in a table of their own beside the executions
-- table (`sys_cron_controls` for the default table, else derived from its
-- name: `names::ObjectNames`). A NULL scope is every scope of the job. The
-- columns of one kind are NULL (or false) for the others: a pause's
-- `until_time` and `skip_missed`; a backfill's `from_time`, `to_time` and
-- `cursor_time` (its progress, from `from_time` on). `ended_at` is set
-- exactly when the control is no longer active, which the reads rely on
-- (controls.sql finds the active ones as `ended_at IS NULL`).
CREATE TABLE IF NOT EXISTS {controls} (
    id          UUID        NOT NULL,
    kind        TEXT        NOT NULL,
    job_name    TEXT        NOT NULL,
    scope_kind  TEXT,
    scope_id    TEXT,
    note        TEXT        NOT NULL,
    state       TEXT        NOT NULL,
    reason      TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    ended_at    TIMESTAMPTZ,
    until_time  TIMESTAMPTZ,
    skip_missed BOOLEAN     NOT NULL DEFAULT false,
    from_time   TIMESTAMPTZ,
    to_time     TIMESTAMPTZ,
    cursor_time TIMESTAMPTZ,
    updated_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT {controls_pk} PRIMARY KEY (id),
    CONSTRAINT {chk_controls_kind} CHECK (kind IN ('pause', 'trigger', 'backfill')),
    CONSTRAINT {chk_controls_state}
        CHECK (state IN ('active', 'done', 'cancelled', 'rejected')
               AND (state = 'active') = (ended_at IS NULL)),
    CONSTRAINT {chk_controls_shape} CHECK (
        (scope_kind IS NULL) = (scope_id IS NULL)
        AND (kind = 'pause' OR (until_time IS NULL AND NOT skip_missed))
        AND CASE WHEN kind = 'backfill'
                 THEN from_time IS NOT NULL AND to_time IS NOT NULL
                      AND from_time < to_time AND cursor_time IS NOT NULL
                 ELSE from_time IS NULL AND to_time IS NULL AND cursor_time IS NULL END)
);
-- Every replica's read at every tick (controls.sql), and the claim's read of
-- the pauses in force (claim_admission.sql): the active controls of some
-- jobs (`ended_at IS NULL`), and those ended since an instant, each a range
-- of this index.
CREATE INDEX IF NOT EXISTS {idx_controls_job} ON {controls} (job_name, ended_at)
