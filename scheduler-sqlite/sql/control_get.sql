-- One control by id, through the primary key.
SELECT {control_columns}
FROM sys_cron_controls WHERE id = :id
