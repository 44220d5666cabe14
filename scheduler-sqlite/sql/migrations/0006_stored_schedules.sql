-- Version 6: stored schedules (docs/contract.md §12), one row per schedule,
-- in a table of their own beside the executions table, which stays as it
-- is, with the PostgreSQL store's column and constraint names. `definition`
-- is the JSON text of scheduler_core::model::ScheduleDefinition
-- (StoredSchedule::definition_json), read back whole; `kind` repeats its
-- kind so an operator's query can find a kind's schedules without parsing
-- JSON. `updated_at` is the instant the current version became current:
-- plans before it belong to earlier versions. Instants are INTEGER
-- microseconds, as in the executions table.
--
-- The name is the primary key, compared bytewise (SQLite's BINARY
-- collation), so schedules.sql lists them in the order the memory store
-- sorts Rust strings, through the key's index.
CREATE TABLE IF NOT EXISTS sys_cron_schedules (
    name        TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    definition  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    CONSTRAINT pk_sys_cron_schedules PRIMARY KEY (name),
    CONSTRAINT chk_sys_cron_schedules_version CHECK (version >= 1),
    CONSTRAINT chk_sys_cron_schedules_definition CHECK (json_valid(definition))
) STRICT;
-- The kinds of stored schedules each replica registered
-- (ReplicaInfo::kinds), a JSON array of strings. Rows announced before this
-- version read as a replica that registered none, which is what an older
-- build is. ALTER TABLE has no IF NOT EXISTS; the ledger runs this version
-- once, in the transaction that records it.
ALTER TABLE sys_cron_replicas ADD COLUMN kinds TEXT NOT NULL DEFAULT '[]'
    CONSTRAINT chk_sys_cron_replica_kinds CHECK (json_valid(kinds));
