-- machine::heartbeat: extends a live lease, guarded by id and token and
-- RUNNING, like every write to a lease.
UPDATE sys_cron_executions
SET heartbeat_at = :now, stale_after = :stale_after, updated_at = :now
WHERE id = :id AND lease_token = :token AND status = 'RUNNING'
