-- Every replica of the registry, by runner id in byte order ("C"), as the
-- memory store sorts Rust strings, whatever the database's collation. The
-- jobs come back as JSON text, which scheduler_core::model::jobs_from_json
-- reads for every store alike, and the kinds as a JSON array of strings.
SELECT runner_id, host, pid, version, refresh_interval_ms, jobs::text AS jobs,
       kinds::text AS kinds,
       started_at, last_seen_at, stopped_at
FROM {replicas} ORDER BY runner_id COLLATE "C"
