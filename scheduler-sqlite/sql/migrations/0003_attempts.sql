-- Version 3: the attempts log (docs/contract.md §3), one row per ended
-- attempt of an execution, appended in the transaction of the transition
-- that ended it (finish_log.sql, sweep_log.sql, claim_steal_log.sql) and
-- deleted with its execution (prune_log.sql, in the prune's transaction).
-- The executions table is not changed.
--
-- The primary key (execution, attempt number) is the one index: it serves
-- the reads (attempts.sql) and the prune, and keeps an attempt from being
-- logged twice. WITHOUT ROWID stores the records in that order, so one
-- execution's log is one contiguous range.
--
-- No foreign key to the executions table, as in the PostgreSQL store (whose
-- migration says why); SQLite would only enforce it on connections that turn
-- `PRAGMA foreign_keys` on anyway.
CREATE TABLE IF NOT EXISTS sys_cron_execution_attempts (
    execution_id TEXT    NOT NULL,
    attempt      INTEGER NOT NULL,
    runner_id    TEXT,
    started_at   INTEGER,
    ended_at     INTEGER NOT NULL,
    outcome      TEXT    NOT NULL,
    error_code   TEXT,
    error_msg    TEXT,
    duration_ms  INTEGER,
    CONSTRAINT pk_sys_cron_execution_attempts PRIMARY KEY (execution_id, attempt),
    CONSTRAINT chk_sys_cron_attempts_outcome
        CHECK (outcome IN ('SUCCESS', 'FAILED', 'SWEPT', 'STOLEN'))
) STRICT, WITHOUT ROWID;
