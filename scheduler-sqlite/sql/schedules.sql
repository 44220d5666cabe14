-- Every stored schedule (LeaseStore::schedules), by name in byte order
-- (SQLite's BINARY collation), through the primary key.
SELECT name, version, definition, created_at, updated_at
FROM sys_cron_schedules ORDER BY name
