-- Every replica of the registry, by runner id in byte order (SQLite's
-- default collation), through the primary key.
SELECT runner_id, host, pid, version, refresh_interval_ms, jobs,
       started_at, last_seen_at, stopped_at, kinds
FROM sys_cron_replicas ORDER BY runner_id
