//! The smallest useful program on PostgreSQL: one job, a few real seconds.
//!
//! `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo run -p scheduler-postgres --example postgres_basic`
//!
//! Start it several times at once: the replicas coordinate through the
//! table, and each plan runs once.

use std::sync::Arc;
use std::time::Duration;

use scheduler_core::{
    shutdown_signal, JobOutput, JobSpec, Manager, ManagerOptions, RunContext, Scope, Scopes,
};
use scheduler_postgres::PgLeaseStore;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // No default: connecting creates the table, and it must not land in a
    // database nobody chose.
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!(
            "postgres_basic needs DATABASE_URL, the database to create its table in, e.g.\n  \
             DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo run -p scheduler-postgres --example postgres_basic"
        );
        std::process::exit(2);
    };
    // Connects and migrates (creates sys_cron_executions if missing).
    let store = Arc::new(PgLeaseStore::connect(&url).await?);
    let manager = Manager::new(store, ManagerOptions::default())?;
    let tenants = Scopes::fixed(["acme", "globex", "initech"].map(|t| Scope::new("tenant", t)));
    manager.register(
        JobSpec::new("usage_rollup", tenants, |ctx: RunContext| async move {
            let (who, scope, plan) = (ctx.runner_id(), ctx.scope(), ctx.plan_time());
            println!("[{who}] rollup {scope} at {plan}");
            Ok(JobOutput::rows(100))
        })
        .cadence(Duration::from_secs(2)),
    )?;
    // Five seconds, or until Ctrl-C / SIGTERM: either way a graceful stop.
    let report = manager
        .run(async {
            let stop = shutdown_signal();
            let _ = tokio::time::timeout(Duration::from_secs(5), stop).await;
        })
        .await;
    println!("{report:?}");
    Ok(())
}
