-- Announcement::apply, as one upsert of the replica's row: the information
-- replaced whole, `last_seen_at` now, `started_at` now for a start (or a
-- replica not seen before) and kept otherwise, `stopped_at` now for a stop
-- and cleared otherwise. :presence is Presence::as_str; :jobs and :kinds are
-- JSON arrays.
INSERT INTO sys_cron_replicas (runner_id, host, pid, version, refresh_interval_ms, jobs,
                               kinds, started_at, last_seen_at, stopped_at)
VALUES (:runner_id, :host, :pid, :version, :refresh_interval_ms, :jobs,
        :kinds, :now, :now, CASE WHEN :presence = 'stopped' THEN :now END)
ON CONFLICT (runner_id) DO UPDATE SET
    host = excluded.host, pid = excluded.pid, version = excluded.version,
    refresh_interval_ms = excluded.refresh_interval_ms, jobs = excluded.jobs,
    kinds = excluded.kinds,
    started_at = CASE WHEN :presence = 'started' THEN excluded.started_at ELSE started_at END,
    last_seen_at = excluded.last_seen_at,
    stopped_at = excluded.stopped_at
