-- The current version of stored schedule :name (no row: deleted, or never
-- stored), read by a stored schedule's claim before anything else in its
-- IMMEDIATE transaction (Steering::superseded): SQLite's one writer orders
-- it with the schedule's writes. A compiled-in job's claim never sends it.
SELECT version FROM sys_cron_schedules WHERE name = :name
