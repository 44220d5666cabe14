-- One row by id, through the primary key.
SELECT {columns}
FROM sys_cron_executions WHERE id = :id
