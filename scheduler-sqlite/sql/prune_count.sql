-- A dry run: how many rows a prune with no limit would delete.
SELECT count(*) FROM sys_cron_executions WHERE {prunable}
