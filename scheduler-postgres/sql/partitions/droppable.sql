-- Whether every row of one partition is one a prune may delete
-- (fragments/prunable.sql: SUCCESS or FAILED, finished before $1) and no
-- transition can change any more. Each part is
-- a probe of one of the partition's indexes, never a scan of its rows:
-- - no RUNNING row (the partial index on stale_after);
-- - no terminal row finished at or after $1, or without a finish (the
--   partial index on finished_at, read from its end);
-- - no FAILED row with a retry pending: an attempt left and a retry time
--   other than "never" ($2, `machine::NEVER`: overlap-skipped rows, a
--   non-reentrant job's swept ones), read from the partial index of the
--   FAILED rows by scope. Such a row is prunable, and the row-by-row prune
--   deletes it as on an unpartitioned table, but it is also one the fleet
--   may revive any moment: a partition goes whole only when nothing in it
--   can change again but by an operator's hand, so that dropping it never
--   has to be weighed against a retry in flight.
-- Run in the transaction that holds the table's lock (lock.sql) and then
-- detaches the partition (detach.sql), so no claim, finish or operator
-- retry changes a row between this check and the detach.
SELECT NOT EXISTS (SELECT 1 FROM {partition} WHERE status = 'RUNNING')
       AND NOT EXISTS (SELECT 1 FROM {partition}
                       WHERE status IN ('SUCCESS', 'FAILED') AND finished_at IS NULL)
       AND coalesce((SELECT max(finished_at) FROM {partition}
                     WHERE status IN ('SUCCESS', 'FAILED')) < $1, true)
       AND NOT EXISTS (SELECT 1 FROM {partition}
                       WHERE status = 'FAILED' AND attempt < max_attempts
                         AND next_retry_at IS DISTINCT FROM $2)
