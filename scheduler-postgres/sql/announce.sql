-- Announcement::apply, as one upsert of the replica's row: the information
-- replaced whole, `last_seen_at` now, `started_at` now for a start (or a
-- replica not seen before) and kept otherwise, `stopped_at` now for a stop
-- and cleared otherwise. $2 runner_id, $3 host, $4 pid, $5 version,
-- $6 refresh_interval_ms, $7 jobs (JSON text), $8 Presence::as_str,
-- $9 kinds (JSON text).
INSERT INTO {replicas} AS r (runner_id, host, pid, version, refresh_interval_ms, jobs, kinds,
                             started_at, last_seen_at, stopped_at)
VALUES ($2, $3, $4, $5, $6, $7::jsonb, $9::jsonb, {now}, {now},
        CASE WHEN $8::text = 'stopped' THEN {now} END)
ON CONFLICT (runner_id) DO UPDATE SET
    host = excluded.host, pid = excluded.pid, version = excluded.version,
    refresh_interval_ms = excluded.refresh_interval_ms, jobs = excluded.jobs,
    kinds = excluded.kinds,
    started_at = CASE WHEN $8::text = 'started' THEN excluded.started_at ELSE r.started_at END,
    last_seen_at = excluded.last_seen_at,
    stopped_at = excluded.stopped_at
