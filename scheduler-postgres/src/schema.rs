//! The embedded, versioned migrations, from `sql/migrations/`, and what
//! applies them: one transaction under an advisory lock, recorded in
//! [`MIGRATIONS_TABLE`].

use scheduler_core::store::sql::render;
use scheduler_core::StoreError;
use sqlx_core::acquire::Acquire;
use sqlx_core::raw_sql::raw_sql;
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_postgres::Postgres;

use crate::names::{quote, Table};
use crate::rows::backend;
use crate::statements::{sql_file, tally_add, tally_rebuild};

/// The table recording which migrations ran, one per schema, keyed by the
/// executions table's name so several executions tables can share a schema.
/// Our own (not sqlx's `_sqlx_migrations`), so that it can never clash with
/// an application's own sqlx migrations and their version numbers.
pub const MIGRATIONS_TABLE: &str = "sys_cron_schema_migrations";

/// The newest schema version this code creates and understands.
pub const SCHEMA_VERSION: i64 = 8;

/// Serialises migrations of every replica (and every table) on one server:
/// the bytes of `"schedmig"`. Held with `pg_advisory_xact_lock`, so it is
/// released by the migration transaction's commit or rollback.
const MIGRATION_LOCK_KEY: i64 = i64::from_be_bytes(*b"schedmig");

/// Every migration: its version, its description (recorded in the ledger)
/// and its template. A migration runs when the ledger lacks its version,
/// not only when it is above the highest recorded, so a ledger with a gap
/// (a version skipped by a development build) is completed.
const MIGRATIONS: [(i64, &str, &str); 8] = [
    (
        1,
        "executions table, constraints and indexes",
        sql_file!("migrations/0001_executions.sql"),
    ),
    (
        2,
        "index of operator retries",
        sql_file!("migrations/0002_operator_retry_index.sql"),
    ),
    (3, "attempts log", sql_file!("migrations/0003_attempts.sql")),
    (
        4,
        "replica registry",
        sql_file!("migrations/0004_replicas.sql"),
    ),
    (
        5,
        "steering: origin and control of executions, controls",
        sql_file!("migrations/0005_steering.sql"),
    ),
    (
        6,
        "stored schedules, and the kinds each replica registered",
        sql_file!("migrations/0006_stored_schedules.sql"),
    ),
    (
        7,
        "operator reads: partial indexes of the RUNNING and FAILED rows by scope",
        sql_file!("migrations/0007_operator_reads.sql"),
    ),
    (
        8,
        "operator reads: tally of ended FAILED rows by scope, index of the others",
        sql_file!("migrations/0008_failed_tally.sql"),
    ),
];

/// Applies every migration `table`'s ledger lacks, in one transaction under
/// the migration advisory lock, so concurrent replicas run each once.
/// `on` is the store's pool, or a connection being opened by it (see
/// `PgLeaseStore::connect_lazy_with`).
pub(crate) async fn migrate<'c>(
    table: &Table,
    on: impl Acquire<'c, Database = Postgres>,
) -> Result<(), StoreError> {
    let err = backend("migrate");
    let mut tx = on.begin().await.map_err(err)?;
    sqlx_core::query::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut *tx)
        .await
        .map_err(err)?;
    if let Some(schema) = &table.schema {
        // Checked first: CREATE SCHEMA IF NOT EXISTS demands the
        // database's CREATE privilege even when the schema exists.
        let exists: bool = sqlx_core::query_scalar::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
        )
        .bind(schema)
        .fetch_one(&mut *tx)
        .await
        .map_err(err)?;
        if !exists {
            raw_sql(AssertSqlSafe(format!("CREATE SCHEMA {}", quote(schema))))
                .execute(&mut *tx)
                .await
                .map_err(err)?;
        }
    }
    let migrations = table.qualified(MIGRATIONS_TABLE);
    raw_sql(AssertSqlSafe(render(
        sql_file!("migrations/ledger.sql"),
        &[("migrations", &migrations)],
    )))
    .execute(&mut *tx)
    .await
    .map_err(err)?;
    let applied: Vec<i64> = sqlx_core::query_scalar::query_scalar(AssertSqlSafe(format!(
        "SELECT version FROM {migrations} WHERE table_name = $1 ORDER BY version"
    )))
    .bind(&table.name)
    .fetch_all(&mut *tx)
    .await
    .map_err(err)?;
    if let Some(&found) = applied.last().filter(|&&v| v > SCHEMA_VERSION) {
        return Err(StoreError::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    let names = table.names.placeholders();
    // Migration 8's spliced parts: the partial index's predicate and the
    // tally's statements, one spelling each with the store's own.
    let failed_retryable = render(sql_file!("fragments/failed_retryable.sql"), &[]);
    let tally_add_changes = tally_add(table, "changes", "r.sign");
    let tally_rebuild = tally_rebuild(table);
    let mut values: Vec<(&str, &str)> = vec![
        ("tally", &table.tally),
        ("tally_apply", &table.tally_apply),
        ("failed_retryable", &failed_retryable),
        ("tally_add_changes", &tally_add_changes),
        ("tally_rebuild", &tally_rebuild),
        ("table", &table.display),
        ("default_partition", &table.default_partition),
        ("attempts", &table.attempts),
        ("replicas", &table.replicas),
        ("controls", &table.controls),
        ("schedules", &table.schedules),
    ];
    values.extend(names.iter().map(|(key, name)| (*key, name.as_str())));
    if table.partitioned.is_some() {
        // Before migration 1, which then adopts the partitioned table.
        let partitioned: Option<bool> = sqlx_core::query_scalar::query_scalar(
            "SELECT c.relkind = 'p' FROM pg_class c WHERE c.oid = to_regclass($1)",
        )
        .bind(&table.display)
        .fetch_optional(&mut *tx)
        .await
        .map_err(err)?;
        match partitioned {
            None => {
                // Migration 1's table as the template of the partitioned
                // one (see 0001_executions_partitioned.sql), in `pg_temp`,
                // where its indexes' names clash with nothing.
                let template = "pg_temp.executions_template";
                let mut first = values.clone();
                first.retain(|(key, _)| *key != "table");
                first.push(("table", template));
                let mut then = values.clone();
                then.push(("template", template));
                let partitioned = sql_file!("migrations/0001_executions_partitioned.sql");
                for (sql, with) in [(MIGRATIONS[0].2, &first), (partitioned, &then)] {
                    raw_sql(AssertSqlSafe(render(sql, with)))
                        .execute(&mut *tx)
                        .await
                        .map_err(err)?;
                }
            }
            Some(true) => {}
            Some(false) => {
                return Err(StoreError::InvalidInput(format!(
                    "the table {} exists and is not partitioned: a partitioned store only \
                     creates new tables (leave `partitioned` off to adopt it as it is)",
                    table.display
                )))
            }
        }
    }
    for (version, description, template) in MIGRATIONS {
        if applied.binary_search(&version).is_ok() {
            continue;
        }
        raw_sql(AssertSqlSafe(render(template, &values)))
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        sqlx_core::query::query(AssertSqlSafe(format!(
            "INSERT INTO {migrations} (table_name, version, description) VALUES ($1, $2, $3)"
        )))
        .bind(&table.name)
        .bind(version)
        .bind(description)
        .execute(&mut *tx)
        .await
        .map_err(err)?;
    }
    tx.commit().await.map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_migration_is_the_known_version() {
        assert_eq!(MIGRATIONS.last().map(|m| m.0), Some(SCHEMA_VERSION));
        assert!(MIGRATIONS.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
