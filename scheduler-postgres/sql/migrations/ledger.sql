-- The ledger of applied migrations (schema.rs), one per schema, keyed by the
-- executions table's name so several executions tables can share a schema.
-- Our own (not sqlx's `_sqlx_migrations`), so that it can never clash with
-- an application's own sqlx migrations and their version numbers.
CREATE TABLE IF NOT EXISTS {migrations} (
    table_name  TEXT        NOT NULL,
    version     BIGINT      NOT NULL,
    description TEXT        NOT NULL,
    applied_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (table_name, version))
