-- The ledger of applied migrations (schema.rs), in its own table rather than
-- `PRAGMA user_version`: the scheduler's table often lives in an
-- application's own database file, whose migration tool may already own
-- `user_version`.
CREATE TABLE IF NOT EXISTS sys_cron_schema_migrations (
    version     INTEGER NOT NULL PRIMARY KEY,
    description TEXT    NOT NULL,
    applied_at  INTEGER NOT NULL
) STRICT;
