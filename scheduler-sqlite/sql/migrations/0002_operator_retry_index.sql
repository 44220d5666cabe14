-- Version 2: a partial index of the rows an operator retried, so the retry
-- read (retry_due.sql) finds them without walking the job's failures. The
-- code is `machine::OPERATOR_RETRY_CODE`, written out: an index predicate is
-- a literal, and retry_due.sql must repeat it word for word.
CREATE INDEX IF NOT EXISTS idx_sys_cron_exec_operator_retry
    ON sys_cron_executions (job_name) WHERE status = 'FAILED' AND error_code = 'operator_retry';
