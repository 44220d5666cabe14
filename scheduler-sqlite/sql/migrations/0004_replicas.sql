-- Version 4: the replica registry (docs/contract.md §7, "The replica
-- registry"), one row per manager, keyed by its runner id, beside the
-- executions table, which stays as it is. `jobs` is the JSON array of the
-- jobs the replica registered (scheduler_core::model::jobs_to_json);
-- instants are INTEGER microseconds, as in the executions table.
-- (Version 3 is the attempts log. Versions are applied by what the ledger
-- lacks, not by the highest recorded, so either may land first.)
CREATE TABLE IF NOT EXISTS sys_cron_replicas (
    runner_id           TEXT    NOT NULL PRIMARY KEY,
    host                TEXT    NOT NULL,
    pid                 INTEGER NOT NULL,
    version             TEXT    NOT NULL,
    refresh_interval_ms INTEGER NOT NULL,
    jobs                TEXT    NOT NULL DEFAULT '[]',
    started_at          INTEGER NOT NULL,
    last_seen_at        INTEGER NOT NULL,
    stopped_at          INTEGER,
    CONSTRAINT chk_sys_cron_replica_jobs CHECK (json_valid(jobs))
) STRICT;
