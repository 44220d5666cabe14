-- The tally of ended FAILED rows (migration 8) rebuilt from the executions
-- table: migration 8's backfill, and `SqliteLeaseStore::rebuild_tally`
-- (after writes the triggers did not see: a connection that dropped them,
-- or a table edited by a tool without them). Run in one IMMEDIATE
-- transaction, so no write comes between the two statements. The count
-- walks the partial index of the FAILED rows (migration 7).
DELETE FROM sys_cron_failed_tally;
{tally_add_all}
