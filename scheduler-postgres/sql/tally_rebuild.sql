-- The tally of ended FAILED rows (migration 8) rebuilt from the executions
-- table: migration 8's backfill, and `PgLeaseStore::rebuild_tally` (after a
-- write the triggers could not see: a partition detached by hand, a
-- TRUNCATE of one partition, a role that bypassed them with
-- `session_replication_role = replica`). In one transaction: the SHARE lock
-- waits for every writing transaction to end and keeps new ones out until
-- the commit, so the count is of one settled table and no trigger adds to
-- the tally meanwhile; reads go on. The count walks the partial index of
-- the FAILED rows (migration 7), never the whole table.
LOCK TABLE {table} IN SHARE MODE;
DELETE FROM {tally};
{tally_add_all}
