-- The write-back of an operator's retry, the same in both stores: every
-- column a transition may change takes the value `machine::operator_retry`
-- computed, so the rule lives only there. The key columns, `id` and
-- `created_at` never change. `result` is written only when the rule changed
-- it ($15 is NULL otherwise; it never does): this store reads another
-- writer's non-object result (the seed's) as an object, and must not write
-- that reading back.
--
-- The guard repeats what was read, under the row lock, in the same
-- transaction (operator_retry_lock.sql): still FAILED ($1 id) and still
-- under the last attempt's token ($2; every claim rotates it), so the write
-- can only land on the row the machine decided about.
UPDATE {table} SET status = $3, attempt = $4, max_attempts = $5, next_retry_at = $6,
    runner_id = $7, lease_token = $8, heartbeat_at = $9, stale_after = $10,
    started_at = $11, finished_at = $12, duration_ms = $13, rows_affected = $14,
    result = coalesce($15, result), error_code = $16, error_msg = $17,
    updated_at = $18
WHERE id = $1 AND status = 'FAILED' AND lease_token = $2
RETURNING {columns}
