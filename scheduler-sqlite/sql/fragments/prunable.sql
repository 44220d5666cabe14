-- The terminal rows a prune may delete (spliced into prune.sql and
-- prune_count.sql). The `status IN` term repeats the partial index's `WHERE`
-- word for word, which is what lets SQLite use `idx_sys_cron_exec_finished`
-- (a RUNNING row, even a retried one whose `finished_at` was cleared, is
-- never in it).
status IN ('SUCCESS', 'FAILED') AND finished_at < :cutoff
