-- The attempts log of a page of executions (ExecutionAudit::attempts_of):
-- the ids arrive as one JSON array, and each finds its records through the
-- primary key (execution, attempt number), in attempt order, never by
-- scanning. The caller groups the records by id.
SELECT {attempt_columns}
FROM sys_cron_execution_attempts
WHERE execution_id IN (SELECT value FROM json_each(:ids))
ORDER BY execution_id, attempt
