-- Version 1: the seed's table, constraints and indexes, verbatim but for the
-- names of a non-default table ({table} and the object names of
-- `names::ObjectNames`). Every statement is `IF NOT EXISTS`, so a table the
-- seed created is adopted unchanged. Applied migrations never change.
CREATE TABLE IF NOT EXISTS {table} (
    id             UUID        PRIMARY KEY DEFAULT gen_random_uuid(),
    job_name       TEXT        NOT NULL,
    scope_kind     TEXT        NOT NULL DEFAULT 'global',
    scope_id       TEXT        NOT NULL DEFAULT 'global',
    plan_time      TIMESTAMPTZ NOT NULL,
    status         TEXT        NOT NULL,
    attempt        INTEGER     NOT NULL DEFAULT 1,
    max_attempts   INTEGER     NOT NULL DEFAULT 3,
    next_retry_at  TIMESTAMPTZ,
    runner_id      TEXT,
    lease_token    UUID        NOT NULL DEFAULT gen_random_uuid(),
    heartbeat_at   TIMESTAMPTZ,
    stale_after    TIMESTAMPTZ,
    started_at     TIMESTAMPTZ,
    finished_at    TIMESTAMPTZ,
    duration_ms    INTEGER,
    rows_affected  BIGINT,
    result         JSONB       NOT NULL DEFAULT '{}'::jsonb,
    error_code     TEXT,
    error_msg      TEXT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT {chk_status} CHECK (status IN ('RUNNING', 'SUCCESS', 'FAILED')),
    CONSTRAINT {chk_attempt} CHECK (attempt >= 1 AND max_attempts >= attempt),
    CONSTRAINT {chk_duration} CHECK (duration_ms IS NULL OR duration_ms >= 0),
    CONSTRAINT {uq} UNIQUE (job_name, scope_kind, scope_id, plan_time)
);
CREATE INDEX IF NOT EXISTS {idx_running_stale} ON {table} (stale_after) WHERE status = 'RUNNING';
CREATE INDEX IF NOT EXISTS {idx_failed_recent} ON {table} (job_name, plan_time DESC)
    WHERE status = 'FAILED';
CREATE INDEX IF NOT EXISTS {idx_finished} ON {table} (finished_at)
    WHERE status IN ('SUCCESS', 'FAILED');
