-- The stored schedule as job::apply_write decided it, created or replaced
-- whole (its version moved by one, its updated_at the write's store time;
-- created_at is kept from the row it replaces).
INSERT INTO sys_cron_schedules (name, kind, version, definition, created_at, updated_at)
VALUES (:name, :kind, :version, :definition, :created_at, :updated_at)
ON CONFLICT (name) DO UPDATE SET
    kind = excluded.kind, version = excluded.version, definition = excluded.definition,
    updated_at = excluded.updated_at
