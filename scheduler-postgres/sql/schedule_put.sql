-- The stored schedule as job::apply_write decided it, created or replaced
-- whole (its version moved by one, its updated_at the write's store time;
-- created_at is kept from the row it replaces). $1 name, $2 kind,
-- $3 version, $4 definition (JSON text), $5 created_at, $6 updated_at.
INSERT INTO {schedules} (name, kind, version, definition, created_at, updated_at)
VALUES ($1, $2, $3, $4::jsonb, $5, $6)
ON CONFLICT (name) DO UPDATE SET
    kind = excluded.kind, version = excluded.version, definition = excluded.definition,
    updated_at = excluded.updated_at
