-- The FAILED rows the tally does not count (fragments/tally_add.sql): an
-- attempt left and no overlap code, so a retry pending, a `stale_timeout`
-- row, or one an operator's retry revived. Persisted: it is the predicate
-- of migration 8's partial index, spliced there and into summaries.sql,
-- whose count the planner reads from that index only while the two texts
-- are the same; never change it.
status = 'FAILED' AND attempt < max_attempts
AND coalesce(error_code, '') NOT IN ('overlap_skipped', 'overlap_canceled')
