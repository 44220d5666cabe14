-- Version 6: stored schedules (docs/contract.md §12), one row per schedule,
-- in a table of their own beside the executions table, which stays as it is
-- (`sys_cron_schedules` for the default table, else derived from the
-- executions table's name: `names::ObjectNames`). `definition` is the JSON
-- of scheduler_core::model::ScheduleDefinition
-- (StoredSchedule::definition_json), read back whole; `kind` repeats its
-- kind so an operator's query can find a kind's schedules without reading
-- the JSON. `updated_at` is the instant the current version became current:
-- plans before it belong to earlier versions.
--
-- The name is compared bytewise (COLLATE "C"), so the primary key's index
-- lists the schedules in the order the memory store sorts Rust strings
-- (schedules.sql), whatever the database's collation.
CREATE TABLE IF NOT EXISTS {schedules} (
    name        TEXT COLLATE "C" NOT NULL,
    kind        TEXT        NOT NULL,
    version     BIGINT      NOT NULL,
    definition  JSONB       NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT {schedules_pk} PRIMARY KEY (name),
    CONSTRAINT {chk_schedules_version} CHECK (version >= 1)
);
-- The kinds of stored schedules each replica registered
-- (ReplicaInfo::kinds), a JSON array of strings. A column with a constant
-- default is a change of the catalog alone (no rewrite); rows announced
-- before this version read as a replica that registered none, which is
-- what an older build is.
ALTER TABLE {replicas} ADD COLUMN IF NOT EXISTS kinds JSONB NOT NULL DEFAULT '[]'::jsonb
