-- One stored schedule by name, through the primary key: what
-- ExecutionAudit::write_schedule decides against, read in its IMMEDIATE
-- transaction, so no other write slips between the read and the write.
SELECT name, version, definition, created_at, updated_at
FROM sys_cron_schedules WHERE name = :name
