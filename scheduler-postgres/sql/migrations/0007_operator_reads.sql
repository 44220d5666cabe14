-- Version 7: the operator's reads (summaries.sql) count the rare states of
-- each scope without reading its history: the RUNNING rows (at most the
-- leases held) and the FAILED rows (a small share of the table) each get a
-- partial index ordered by scope, carrying every column the summary's
-- classification reads, so the count is an index-only walk grouped in
-- index order (docs/contract.md §10, "Operator reads").
--
-- The table's shape is unchanged, so the seed's replicas keep writing to it;
-- they maintain these indexes as any other. Built inside the migration's
-- transaction, each build scans the table once and blocks writes meanwhile:
-- on a large table, create both first with `CREATE INDEX CONCURRENTLY` under
-- these names (`IF NOT EXISTS` then makes this a no-op).
-- The FAILED index carries `status` too, constant as it is there: the
-- retry rule spliced into the count names it, and PostgreSQL reads from the
-- index alone only when every column a query names is in it.
CREATE INDEX IF NOT EXISTS {idx_running_scope}
    ON {table} (job_name, scope_kind, scope_id, stale_after)
    WHERE status = 'RUNNING';
CREATE INDEX IF NOT EXISTS {idx_failed_scope}
    ON {table} (job_name, scope_kind, scope_id, error_code, attempt, max_attempts,
                next_retry_at, status)
    WHERE status = 'FAILED';
