//! Two replicas, two jobs, a few ticks, then the audit rows.
//!
//! `cargo run -p scheduler-memory --example quickstart`
//!
//! Store time is a manual clock moved one minute per tick, so the example
//! runs instantly and shows several plans without waiting for them.

use std::sync::Arc;
use std::time::Duration;

use scheduler_core::time::TimeControl;
use scheduler_core::{
    BoxError, CatchUpMode, JobOutput, JobSpec, Manager, ManagerOptions, ManualClock, RunContext,
    Scope, Scopes,
};
use scheduler_memory::MemoryLeaseStore;
use time::OffsetDateTime;

fn jobs() -> Vec<JobSpec> {
    let rollup = JobSpec::new(
        "usage_rollup",
        Scopes::global(),
        |ctx: RunContext| async move { Ok(JobOutput::rows(100).with("runner", ctx.runner_id())) },
    )
    .cadence(Duration::from_secs(60));

    let tenants = Scopes::fixed(["acme", "globex"].map(|t| Scope::new("tenant", t)));
    let digest = JobSpec::new("tenant_digest", tenants, |ctx: RunContext| async move {
        // The first attempt for globex fails; the retry (after no backoff) succeeds.
        if ctx.scope().id == "globex" && ctx.attempt() == 1 {
            return Err::<JobOutput, BoxError>("mail server busy".into());
        }
        Ok(JobOutput::rows(1))
    })
    .cadence(Duration::from_secs(60))
    .catch_up(CatchUpMode::EveryPlan)
    .catch_up_window(Duration::from_secs(600))
    .max_plans_per_tick(5)
    .retry_backoff(vec![]);
    vec![rollup, digest]
}

#[tokio::main]
async fn main() {
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let store = Arc::new(MemoryLeaseStore::with_clock(Arc::new(clock.clone())));
    let replicas: Vec<Manager> = ["replica-a", "replica-b"]
        .into_iter()
        .map(|name| {
            let manager = Manager::new(
                store.clone(),
                ManagerOptions {
                    runner_id: name.to_owned(),
                    ..Default::default()
                },
            )
            .expect("valid manager options");
            for job in jobs() {
                manager.register(job).expect("valid job");
            }
            manager
        })
        .collect();

    for tick in 1..=3 {
        // Both replicas tick at once; who asks first wins each plan, the
        // other's claim conflicts. Alternate who starts, as real timing would.
        let order: Vec<&Manager> = if tick % 2 == 0 {
            replicas.iter().rev().collect()
        } else {
            replicas.iter().collect()
        };
        let reports = futures::future::join_all(order.iter().map(|m| m.run_once())).await;
        for (manager, report) in order.iter().zip(&reports) {
            println!("tick {tick} {:<9} {report:?}", manager.runner_id());
        }
        clock.advance(Duration::from_secs(60));
    }

    println!(
        "\n{:<14} {:<14} {:<20} {:<8} {:>7} {:<10} error",
        "job", "scope", "plan_time", "status", "attempt", "runner"
    );
    for row in store.executions() {
        println!(
            "{:<14} {:<14} {:<20} {:<8} {:>7} {:<10} {}",
            row.job_name,
            row.scope.to_string(),
            row.plan_time.time().to_string(),
            row.status,
            row.attempt,
            row.runner_id.unwrap_or_default(),
            row.error_msg.unwrap_or_default(),
        );
    }
}
