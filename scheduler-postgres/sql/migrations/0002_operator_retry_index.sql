-- Version 2: a partial index of the rows an operator retried, so the retry
-- read (retry_due.sql) finds them without walking the job's failures. The
-- code is `machine::OPERATOR_RETRY_CODE`, written out: an index predicate is
-- a literal, which retry_due.sql repeats.
CREATE INDEX IF NOT EXISTS {idx_operator_retry} ON {table} (job_name)
    WHERE status = 'FAILED' AND error_code = 'operator_retry';
