//! What the unit tests that need a server share: the server, and a fresh
//! schema on it.

use std::io::Write;

use sqlx_core::raw_sql::raw_sql;
use sqlx_core::sql_str::AssertSqlSafe;

/// A server for the unit tests that need one, found as `tests/common` finds one: none
/// without `DATABASE_URL` (said where libtest cannot hide it), a failure
/// instead when `SCHEDULER_REQUIRE_POSTGRES=1`.
pub(crate) async fn server() -> Option<sqlx_postgres::PgPool> {
    let required = std::env::var("SCHEDULER_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
    let pool = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => sqlx_postgres::PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(&url)
            .await
            .map_err(|e| format!("PostgreSQL unreachable ({e})")),
        _ => Err("DATABASE_URL not set".to_owned()),
    };
    match pool {
        Ok(pool) => Some(pool),
        Err(why) => {
            assert!(!required, "SCHEDULER_REQUIRE_POSTGRES=1 but {why}");
            let _ = writeln!(std::io::stderr(), "SKIPPED: {why}: a unit test did not run");
            None
        }
    }
}

/// A fresh schema, named and stamped as tests/common does, so its
/// janitor removes it should a test fail before dropping it.
pub(crate) async fn test_schema(pool: &sqlx_postgres::PgPool) -> String {
    let schema = format!("sched_test_{}", uuid::Uuid::new_v4().simple());
    raw_sql(AssertSqlSafe(format!(
        "DO $$ BEGIN \
           CREATE SCHEMA \"{schema}\"; \
           EXECUTE format('COMMENT ON SCHEMA \"{schema}\" IS %L', \
                          'created ' || extract(epoch FROM now())::bigint); \
         END $$"
    )))
    .execute(pool)
    .await
    .unwrap();
    schema
}
