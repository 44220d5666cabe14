//! A transactional job on PostgreSQL: a per-tenant rollup whose rows are
//! written in the job's transaction and committed with the run's SUCCESS,
//! so each (tenant, plan) is rolled up exactly once.
//!
//! `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo run -p scheduler-postgres --example transactional_postgres`
//!
//! It works in a schema of its own (the scheduler's tables, the events it
//! rolls up and the rollups), ticks a few times with `run_once`, prints the
//! rollups and drops the schema.

use std::sync::Arc;
use std::time::Duration;

use scheduler_core::time::Rfc3339;
use scheduler_core::{JobOutput, Manager, ManagerOptions, Scope, Scopes};
use scheduler_postgres::{PgLeaseStore, PgStoreOptions};
use sqlx_core::query::query;
use sqlx_core::raw_sql::raw_sql;
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_postgres::{PgPool, PgPoolOptions};
use time::OffsetDateTime;

const CADENCE: Duration = Duration::from_secs(1);
const TICKS: usize = 3;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let Some(url) = std::env::var("DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
    else {
        println!(
            "skipped: the transactional example needs DATABASE_URL, the database to work in, e.g.\n  \
             DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo run -p scheduler-postgres --example transactional_postgres"
        );
        return Ok(());
    };
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await?;
    let schema = format!("transactional_example_{}", std::process::id());
    raw_sql(AssertSqlSafe(format!(
        "CREATE SCHEMA {schema}; \
         CREATE TABLE {schema}.events (tenant text NOT NULL, amount bigint NOT NULL); \
         INSERT INTO {schema}.events VALUES ('acme', 5), ('acme', 7), ('globex', 11); \
         CREATE TABLE {schema}.rollups (tenant text NOT NULL, plan_time timestamptz NOT NULL, \
           total bigint NOT NULL, PRIMARY KEY (tenant, plan_time))"
    )))
    .execute(&admin)
    .await?;
    // Whatever happens, the schema goes.
    let ran = run(&url, &schema, &admin).await;
    raw_sql(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&admin)
        .await?;
    ran
}

async fn run(url: &str, schema: &str, admin: &PgPool) -> Result<(), BoxError> {
    let store = PgLeaseStore::connect_with(url, &PgStoreOptions::new().schema(schema)).await?;
    let manager = Manager::new(
        Arc::new(store.clone()),
        ManagerOptions {
            runner_id: "example".into(),
            ..Default::default()
        },
    )?;
    let tenants = Scopes::fixed(["acme", "globex"].map(|t| Scope::new("tenant", t)));
    let (events, rollups) = (format!("{schema}.events"), format!("{schema}.rollups"));
    let job = store.transactional_job("usage_rollup", tenants, move |ctx, mut tx| {
        let sql = format!(
            "INSERT INTO {rollups} (tenant, plan_time, total) \
             SELECT $1, $2, coalesce(sum(amount), 0) FROM {events} WHERE tenant = $1"
        );
        async move {
            // Through the transaction: committed with the run's SUCCESS,
            // or not at all. Anything done elsewhere (a message sent, a
            // file written) would still be at-least-once.
            let done = query(AssertSqlSafe(sql))
                .bind(ctx.scope().id.as_str())
                .bind(ctx.plan_time())
                .execute(&mut *tx)
                .await?;
            Ok((JobOutput::rows(i64::try_from(done.rows_affected())?), tx))
        }
    });
    manager.register(job.cadence(CADENCE))?;
    for tick in 1..=TICKS {
        let report = manager.run_once().await;
        println!(
            "tick {tick}: {} succeeded, {} failed, {} lease lost",
            report.succeeded, report.failed, report.lease_lost
        );
        // The next tick claims the next plan.
        tokio::time::sleep(CADENCE).await;
    }
    let rows: Vec<(String, OffsetDateTime, i64)> = sqlx_core::query_as::query_as(AssertSqlSafe(
        format!("SELECT tenant, plan_time, total FROM {schema}.rollups ORDER BY plan_time, tenant"),
    ))
    .fetch_all(admin)
    .await?;
    println!("rollups, one per (tenant, plan):");
    for (tenant, plan_time, total) in rows {
        println!("  {tenant:<8} {}  total {total}", Rfc3339(plan_time));
    }
    Ok(())
}
