-- machine::heartbeat: extends a live lease, guarded by id and token and
-- RUNNING, like every write to a lease. $2 id, $3 token, $4 stale_timeout,
-- $5 the lease's plan time, which takes a partitioned table's planner to the
-- row's one partition (finish.sql says more).
UPDATE {table} SET heartbeat_at = {now}, stale_after = {now} + $4::interval,
    updated_at = {now}
WHERE id = $2 AND lease_token = $3 AND status = 'RUNNING' AND plan_time = $5
RETURNING stale_after
