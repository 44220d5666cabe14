-- One statement: the oldest `:limit` prunable rows, oldest `finished_at`
-- first and ties in key order (as the memory store breaks them), found
-- through `idx_sys_cron_exec_finished` and deleted by rowid. RETURNING names
-- them, so that prune_log.sql deletes their attempts logs in the same
-- transaction.
DELETE FROM sys_cron_executions WHERE rowid IN (
    SELECT rowid FROM sys_cron_executions WHERE {prunable}
    ORDER BY finished_at, job_name, scope_kind, scope_id, plan_time
    LIMIT :limit)
RETURNING id
