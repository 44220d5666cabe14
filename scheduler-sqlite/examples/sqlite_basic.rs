//! The smallest useful program on SQLite: two jobs, a few real seconds.
//!
//! `cargo run -p scheduler-sqlite --example sqlite_basic` (writes `basic.db`); run
//! it in two terminals at once to see the replicas share the work.

use scheduler_core::ExecutionAudit as _;
use std::sync::Arc;
use std::time::Duration;

use scheduler_core::{
    ExecutionFilter, JobOutput, JobSpec, Manager, ManagerOptions, RunContext, Scope, Scopes,
};
use scheduler_sqlite::SqliteLeaseStore;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = Arc::new(SqliteLeaseStore::open("basic.db").await?);
    let manager = Manager::new(store.clone(), ManagerOptions::default())?;
    manager.register(
        JobSpec::new(
            "heartbeat_report",
            Scopes::global(),
            |ctx: RunContext| async move {
                println!("[{}] report for {}", ctx.runner_id(), ctx.plan_time());
                Ok(JobOutput::rows(1))
            },
        )
        .cadence(Duration::from_secs(2)),
    )?;
    let tenants = Scopes::fixed(["acme", "globex"].map(|t| Scope::new("tenant", t)));
    manager.register(
        JobSpec::new("tenant_sync", tenants, |ctx: RunContext| async move {
            let (who, scope, plan) = (ctx.runner_id(), ctx.scope(), ctx.plan_time());
            println!("[{who}] sync {scope} at {plan}");
            Ok(JobOutput::rows(10))
        })
        .cadence(Duration::from_secs(3)),
    )?;
    // Seven seconds, or until Ctrl-C / SIGTERM: either way a graceful stop.
    manager
        .run(async {
            let stop = scheduler_core::shutdown_signal();
            let _ = tokio::time::timeout(Duration::from_secs(7), stop).await;
        })
        .await;
    let rows = store.list_executions(&ExecutionFilter::default()).await?;
    println!("{} executions in basic.db", rows.len());
    Ok(())
}
