-- A deleted stored schedule's row, as job::apply_write decided; its
-- executions stay, attached to its name.
DELETE FROM sys_cron_schedules WHERE name = :name
