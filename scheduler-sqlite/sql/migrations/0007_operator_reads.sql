-- Version 7: the operator's reads (summaries.sql) count the rare states of
-- each scope without reading its history: the RUNNING rows (at most the
-- leases held) and the FAILED rows (a small share of the table) each get a
-- partial index ordered by scope, covering every column the summary's
-- classification reads, so the count walks only the index, grouped in its
-- order (docs/contract.md §10, "Operator reads").
--
-- The table's shape is unchanged. Each build scans the table once, inside
-- the migration's write transaction.
-- The FAILED index carries `status` too, constant as it is there: the
-- retry rule spliced into the count names it, and PostgreSQL reads from the
-- index alone only when every column a query names is in it.
CREATE INDEX IF NOT EXISTS idx_sys_cron_exec_running_scope
    ON sys_cron_executions (job_name, scope_kind, scope_id, stale_after)
    WHERE status = 'RUNNING';
CREATE INDEX IF NOT EXISTS idx_sys_cron_exec_failed_scope
    ON sys_cron_executions (job_name, scope_kind, scope_id, error_code, attempt,
                            max_attempts, next_retry_at, status)
    WHERE status = 'FAILED';
