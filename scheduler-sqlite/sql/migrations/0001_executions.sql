-- Version 1: the executions table (docs/contract.md §3, in SQLite's types)
-- with the seed's column, constraint and index names. Every statement is
-- `IF NOT EXISTS`, so a table created by an earlier run (or by hand from the
-- same DDL) is adopted as it is. Applied migrations never change.
CREATE TABLE IF NOT EXISTS sys_cron_executions (
    id             TEXT    NOT NULL PRIMARY KEY,
    job_name       TEXT    NOT NULL,
    scope_kind     TEXT    NOT NULL DEFAULT 'global',
    scope_id       TEXT    NOT NULL DEFAULT 'global',
    plan_time      INTEGER NOT NULL,
    status         TEXT    NOT NULL,
    attempt        INTEGER NOT NULL DEFAULT 1,
    max_attempts   INTEGER NOT NULL DEFAULT 3,
    next_retry_at  INTEGER,
    runner_id      TEXT,
    lease_token    TEXT    NOT NULL,
    heartbeat_at   INTEGER,
    stale_after    INTEGER,
    started_at     INTEGER,
    finished_at    INTEGER,
    duration_ms    INTEGER,
    rows_affected  INTEGER,
    result         TEXT    NOT NULL DEFAULT '{}',
    error_code     TEXT,
    error_msg      TEXT,
    created_at     INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000000 AS INTEGER)),
    updated_at     INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000000 AS INTEGER)),
    CONSTRAINT chk_sys_cron_status CHECK (status IN ('RUNNING', 'SUCCESS', 'FAILED')),
    CONSTRAINT chk_sys_cron_attempt CHECK (attempt >= 1 AND max_attempts >= attempt),
    CONSTRAINT chk_sys_cron_duration CHECK (duration_ms IS NULL OR duration_ms >= 0),
    CONSTRAINT chk_sys_cron_result CHECK (json_valid(result)),
    CONSTRAINT uq_sys_cron_execution UNIQUE (job_name, scope_kind, scope_id, plan_time)
) STRICT;
CREATE INDEX IF NOT EXISTS idx_sys_cron_exec_running_stale
    ON sys_cron_executions (stale_after) WHERE status = 'RUNNING';
CREATE INDEX IF NOT EXISTS idx_sys_cron_exec_failed_recent
    ON sys_cron_executions (job_name, plan_time DESC) WHERE status = 'FAILED';
CREATE INDEX IF NOT EXISTS idx_sys_cron_exec_finished
    ON sys_cron_executions (finished_at) WHERE status IN ('SUCCESS', 'FAILED');
