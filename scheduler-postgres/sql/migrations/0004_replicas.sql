-- Version 4: the replica registry (docs/contract.md §7, "The replica
-- registry"), one row per manager, keyed by its runner id, in a table of its
-- own beside the executions table, which stays as it is
-- (`sys_cron_replicas` for the default table, else derived from the
-- executions table's name: `names::ObjectNames`). `jobs` is the JSON array
-- of the jobs the replica registered (scheduler_core::model::jobs_to_json).
-- (Version 3 is the attempts log. Versions are applied by what the ledger
-- lacks, not by the highest recorded, so either may land first.)
CREATE TABLE IF NOT EXISTS {replicas} (
    runner_id           TEXT        PRIMARY KEY,
    host                TEXT        NOT NULL,
    pid                 BIGINT      NOT NULL,
    version             TEXT        NOT NULL,
    refresh_interval_ms BIGINT      NOT NULL,
    jobs                JSONB       NOT NULL DEFAULT '[]'::jsonb,
    started_at          TIMESTAMPTZ NOT NULL,
    last_seen_at        TIMESTAMPTZ NOT NULL,
    stopped_at          TIMESTAMPTZ
)
