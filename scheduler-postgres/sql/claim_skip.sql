-- The plans a batch claim skips (machine::skipped, for the keys admission
-- skipped): a FAILED row with code `overlap_skipped` for each key of the
-- arrays that has no row yet, started and finished at store time, that
-- nothing retries by itself (`next_retry_at` is machine::NEVER, $5) and no
-- attempt ran for (nothing is logged). A key that has a row is left alone
-- and returns nothing (the claim reports it Conflicted).
--
-- $2 job, $3 runner, $4 max_attempts, $5 never, $6 message, $7 origin, $8
-- control, then the keys' parallel arrays with their minted ids and tokens.
-- The code is written out, as every stored code is (see
-- fragments/retry_eligible.sql).
INSERT INTO {table} ({columns})
SELECT k.id, $2, k.scope_kind, k.scope_id, k.plan_time, 'FAILED', 1, $4, $5, $3,
       k.token, NULL, NULL, {now}, {now}, 0, NULL, '{}'::jsonb,
       'overlap_skipped', $6, {now}, {now}, $7::text, $8::uuid
FROM unnest($9::text[], $10::text[], $11::timestamptz[], $12::uuid[], $13::uuid[])
     AS k(scope_kind, scope_id, plan_time, id, token)
ON CONFLICT ON CONSTRAINT {uq} DO NOTHING
RETURNING id
