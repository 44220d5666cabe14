-- One stored schedule by name ($2), read by ExecutionAudit::write_schedule
-- once it holds the job's claim lock, with the store time its write
-- decides at: {clock}, the time when this statement runs (clock_timestamp()
-- on the server's clock, not now(), the transaction's start, which predates
-- the wait for the lock), so the new version's `updated_at` follows the
-- commit of every claim that held the lock before it. No row: none stored.
-- The store time comes back alone then, from the outer query.
SELECT s.name, s.version, s.definition::text AS definition, s.created_at, s.updated_at,
       n.store_now
FROM (SELECT {clock} AS store_now) n
LEFT JOIN {schedules} s ON s.name = $2
