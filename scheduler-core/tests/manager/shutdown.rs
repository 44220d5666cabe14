//! Shutdown and store outages: the grace period, terminal writes retried
//! through an outage, and a loop that keeps ticking while the store is down.

use std::sync::Arc;
use std::time::Duration;

use scheduler_core::{JobOutput, JobSpec, ManagerOptions, Scopes, Status};
use scheduler_memory::MemoryLeaseStore;
use time::macros::datetime;
use tokio::sync::Notify;

use crate::common::{
    blocking_job, manager, manager_with, on_tokio_clock, recording_job, spawn_run_once, Ledger,
    MIN, T0,
};

#[tokio::test(start_paused = true)]
async fn shutdown_cancels_after_grace_and_leaves_nothing_running() {
    let (_, store) = on_tokio_clock(T0);
    let m = manager_with(
        store.clone(),
        ManagerOptions {
            runner_id: "r1".into(),
            shutdown_grace: Duration::from_secs(3),
            ..Default::default()
        },
    );
    let ledger = Ledger::default();
    m.register(recording_job("quick", Scopes::global(), &ledger))
        .unwrap();
    m.register(
        JobSpec::new("endless", Scopes::global(), |_ctx| async {
            tokio::time::sleep(Duration::from_secs(100)).await;
            Ok(JobOutput::default())
        })
        .cadence(MIN),
    )
    .unwrap();
    let report = m.run(tokio::time::sleep(Duration::from_secs(1))).await;
    assert_eq!((report.succeeded, report.failed), (1, 1), "{report:?}");
    let rows = store.executions();
    assert!(rows.iter().all(|r| r.status != Status::Running));
    let canceled = rows.iter().find(|r| r.job_name == "endless").unwrap();
    assert_eq!(canceled.error_code.as_deref(), Some("canceled"));
    assert_eq!(
        canceled.next_retry_at, canceled.finished_at,
        "immediately retryable"
    );
    assert_eq!(canceled.finished_at, Some(T0 + Duration::from_secs(4)));
}

#[tokio::test(start_paused = true)]
async fn the_terminal_write_is_retried_through_a_store_outage() {
    let (_, store) = on_tokio_clock(T0);
    let m = manager(&store, "r1");
    let (gate, started) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    m.register(
        blocking_job("outage", &gate, &started)
            .run_timeout(Duration::from_secs(50))
            .stale_timeout(Duration::from_secs(60))
            .heartbeat_interval(Duration::from_secs(10)),
    )
    .unwrap();
    let run = spawn_run_once(&m);
    started.notified().await;
    store.set_failing(true);
    gate.notify_one();
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(store.executions()[0].status, Status::Running);
    store.set_failing(false);
    let report = run.await.unwrap();
    assert_eq!((report.succeeded, report.errors), (1, 0), "{report:?}");
    let row = store.executions().remove(0);
    assert_eq!((row.status, row.attempt), (Status::Success, 1));
}

#[tokio::test(start_paused = true)]
async fn the_loop_keeps_ticking_while_the_store_is_down_and_resumes() {
    let (_, store) = on_tokio_clock(T0);
    store.set_failing(true);
    let ledger = Ledger::default();
    let m = manager(&store, "r1");
    m.register(recording_job("resilient", Scopes::global(), &ledger))
        .unwrap();
    let run = tokio::spawn({
        let m = m.clone();
        async move { m.run(tokio::time::sleep(Duration::from_secs(120))).await }
    });
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(ledger.lock().unwrap().is_empty());
    store.set_failing(false);
    let report = run.await.unwrap();
    assert!(report.errors >= 3, "{report:?}");
    assert!(report.succeeded >= 1, "{report:?}");
    // latest_only: the bucket of the moment the store came back, not the missed one.
    assert_eq!(ledger.lock().unwrap()[0].1, datetime!(2026-03-05 12:01 UTC));
}

#[tokio::test(start_paused = true)]
async fn a_manager_started_while_the_store_fails_every_call_runs_once_it_is_back() {
    let store = Arc::new(MemoryLeaseStore::new());
    store.set_failing(true);
    let back = store.clone();
    scheduler_conformance::manager_rides_out_a_store_down_at_start(store, async move {
        back.set_failing(false);
    })
    .await;
}
