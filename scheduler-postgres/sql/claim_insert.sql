-- The fresh rows of a batch claim (machine::claim with no row): RUNNING,
-- attempt 1, one per key of the arrays, or nothing for a key that exists.
-- $2 job, $3 runner, $4 max_attempts, $5 stale_timeout, then the keys'
-- parallel arrays with their minted ids and tokens, then the steering's
-- $11 origin (`Origin::column`, NULL for a scheduled run) and $12 control.
INSERT INTO {table} ({columns})
SELECT k.id, $2, k.scope_kind, k.scope_id, k.plan_time, 'RUNNING', 1, $4, NULL, $3,
       k.token, {now}, {now} + $5::interval, {now}, NULL, NULL, NULL, '{}'::jsonb,
       NULL, NULL, {now}, {now}, $11::text, $12::uuid
FROM unnest($6::text[], $7::text[], $8::timestamptz[], $9::uuid[], $10::uuid[])
     AS k(scope_kind, scope_id, plan_time, id, token)
ON CONFLICT ON CONSTRAINT {uq} DO NOTHING
RETURNING id, started_at, stale_after
