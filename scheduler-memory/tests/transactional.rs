//! The memory store's transactional jobs (`docs/contract.md` §13): a run's
//! effects land with its SUCCESS, or not at all.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use scheduler_core::time::TimeControl;
use scheduler_core::{
    ExecutionAudit, JobOutput, Manager, ManagerOptions, ManualClock, Scopes, Status,
};
use scheduler_memory::MemoryLeaseStore;
use serde_json::json;
use time::macros::datetime;

fn setup() -> (ManualClock, Arc<MemoryLeaseStore>, Manager) {
    let clock = ManualClock::new(datetime!(2026-03-05 12:00:30 UTC));
    let store = Arc::new(MemoryLeaseStore::with_clock(Arc::new(clock.clone())));
    let manager = Manager::new(
        store.clone(),
        ManagerOptions {
            runner_id: "r1".into(),
            ..Default::default()
        },
    )
    .unwrap();
    (clock, store, manager)
}

#[tokio::test]
async fn effects_land_with_the_success_and_the_run_counts_once() {
    let (_clock, store, m) = setup();
    let job = store
        .transactional_job("rollup", Scopes::global(), |ctx, tx| {
            let key = format!("rollup/{}", ctx.plan_time());
            tx.insert(key, json!({"attempt": ctx.attempt()}));
            Ok(JobOutput::rows(1))
        })
        .cadence(Duration::from_secs(60));
    m.register(job).unwrap();
    let report = m.run_once().await;
    assert_eq!((report.succeeded, report.lease_lost), (1, 0), "{report:?}");
    let effects = store.effects();
    assert_eq!(effects.len(), 1);
    assert_eq!(effects.values().next(), Some(&json!({"attempt": 1})));
    let row = &store.executions()[0];
    assert_eq!((row.status, row.rows_affected), (Status::Success, Some(1)));
    let attempts = store.attempts(row.id).await.unwrap();
    assert_eq!(
        attempts.len(),
        1,
        "the attempt is logged once: {attempts:?}"
    );
}

#[tokio::test]
async fn a_failed_run_writes_nothing_and_its_retry_writes_the_effect_once() {
    let (clock, store, m) = setup();
    let calls = Arc::new(AtomicU32::new(0));
    let seen = calls.clone();
    let job = store
        .transactional_job("rollup", Scopes::global(), move |ctx, tx| {
            tx.insert(format!("rollup/{}", ctx.plan_time()), json!(ctx.attempt()));
            if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                return Err("the first attempt fails after writing".into());
            }
            Ok(JobOutput::rows(1))
        })
        .cadence(Duration::from_secs(60))
        .retry_backoff(vec![Duration::from_secs(10)]);
    m.register(job).unwrap();
    assert_eq!(m.run_once().await.failed, 1);
    assert!(
        store.effects().is_empty(),
        "the failed attempt's write is gone"
    );
    assert_eq!(store.executions()[0].status, Status::Failed);
    clock.advance(Duration::from_secs(11));
    assert_eq!(m.run_once().await.succeeded, 1);
    let effects = store.effects();
    assert_eq!(effects.len(), 1);
    assert_eq!(
        effects.values().next(),
        Some(&json!(2)),
        "written by attempt 2"
    );
}
