//! The smallest useful program on PostgreSQL: one job, a few real seconds.
//!
//! `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo run -p scheduler-postgres --example postgres_basic`
//!
//! Start it several times at once: the replicas coordinate through the
//! table, and each plan runs once.

use std::sync::Arc;
use std::time::Duration;

use scheduler_core::{JobOutput, JobSpec, Manager, ManagerOptions, RunContext, Scope, Scopes};
use scheduler_postgres::PgLeaseStore;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    // Connects and migrates (creates sys_cron_executions if missing).
    let store = Arc::new(PgLeaseStore::connect(&url).await?);
    let manager = Manager::new(store, ManagerOptions::default()).expect("valid manager options");
    let tenants = Scopes::fixed(["acme", "globex", "initech"].map(|t| Scope::new("tenant", t)));
    manager.register(
        JobSpec::new("usage_rollup", tenants, |ctx: RunContext| async move {
            println!(
                "[{}] rollup {} at {}",
                ctx.runner_id(),
                ctx.scope(),
                ctx.plan_time()
            );
            Ok(JobOutput::rows(100))
        })
        .cadence(Duration::from_secs(2)),
    )?;
    let report = manager
        .run(tokio::time::sleep(Duration::from_secs(5)))
        .await;
    println!("{report:?}");
    Ok(())
}
