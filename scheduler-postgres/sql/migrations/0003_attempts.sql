-- Version 3: the attempts log (docs/contract.md §3), one row per ended
-- attempt of an execution, appended by the statement of the transition that
-- ended it (finish.sql, finish_many.sql, sweep.sql, claim_reclaim.sql) and
-- deleted with its execution by prune.sql. A table of its own: the
-- executions table, the seed's, is not changed.
--
-- The primary key (execution, attempt number) is the one index: it serves
-- the reads (attempts.sql) and the prune, and keeps an attempt from being
-- logged twice.
--
-- No foreign key to the executions table, on purpose (docs/contract.md §10):
-- its check on every record appended took the finish of 5,000 leases from
-- about 50 ms (37 ms without the log) to 64 ms, and its cascade took a prune
-- of 10,000 rows with two records each from 43 ms (prune.sql deleting the
-- records in its own statement) to 66 ms. The records are written only
-- beside a row the same statement updates, so they never point at nothing
-- when written; a row deleted by another writer (the seed's retention, a
-- hand) leaves its records behind, which nothing reads.
CREATE TABLE IF NOT EXISTS {attempts} (
    execution_id UUID        NOT NULL,
    attempt      INTEGER     NOT NULL,
    runner_id    TEXT,
    started_at   TIMESTAMPTZ,
    ended_at     TIMESTAMPTZ NOT NULL,
    outcome      TEXT        NOT NULL,
    error_code   TEXT,
    error_msg    TEXT,
    duration_ms  INTEGER,
    CONSTRAINT {attempts_pk} PRIMARY KEY (execution_id, attempt),
    CONSTRAINT {chk_attempts_outcome}
        CHECK (outcome IN ('SUCCESS', 'FAILED', 'SWEPT', 'STOLEN'))
);
