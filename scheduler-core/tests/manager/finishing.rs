//! Finishing runs: a run whose handler ended here while its terminal write
//! is still being stored is over for this replica's overlap decisions, and
//! only for this replica's (`docs/contract.md` §7 and §11). Terminal writes
//! are stalled by a [`CountingStore`]'s finish delay on tokio's paused
//! clock, which the store's time follows, so every instant below is exact.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use scheduler_core::model::OverlapPolicy;
use scheduler_core::store::CountingStore;
use scheduler_core::{
    Clock, JobOutput, JobSpec, Manager, ManagerOptions, RunContext, Scopes, Status, TickReport,
    TokioClock,
};
use scheduler_memory::MemoryLeaseStore;
use time::macros::datetime;
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::common::{
    manager_with, minute_job_with_long_leases, on_tokio_clock, rows_of, spawn_run_once, MIN, T0,
};

/// Longer than the job's cadence: every write is still in flight when the
/// next plan falls due.
const STALL: Duration = Duration::from_secs(5 * 60);

/// The plan T0 falls in.
const FIRST: OffsetDateTime = datetime!(2026-03-05 12:00 UTC);

/// One run as its handler saw it start.
#[derive(Debug, Clone)]
struct Start {
    plan: OffsetDateTime,
    at: OffsetDateTime,
    /// The job's other rows still RUNNING in the store at the start.
    others_running: usize,
}

/// What the handlers of a test share.
#[derive(Default, Clone)]
struct Probe {
    starts: Arc<Mutex<Vec<Start>>>,
    /// When set, the run of [`FIRST`] waits for it before it returns.
    gate: Option<Arc<Notify>>,
    /// Told when the run of [`FIRST`] has started.
    started: Arc<Notify>,
    /// Told when the run of [`FIRST`] has returned.
    returned: Arc<Notify>,
}

/// A one-minute job on the global scope under `policy` that records each
/// start in the probe.
fn probed_job(
    policy: OverlapPolicy,
    store: &Arc<MemoryLeaseStore>,
    clock: &TokioClock,
    probe: &Probe,
) -> JobSpec {
    let (store, clock, probe) = (store.clone(), clock.clone(), probe.clone());
    let job = JobSpec::new("probed", Scopes::global(), move |ctx: RunContext| {
        let (store, clock, probe) = (store.clone(), clock.clone(), probe.clone());
        async move {
            let others_running = rows_of(&store, "probed")
                .iter()
                .filter(|r| r.status == Status::Running && r.plan_time != ctx.plan_time())
                .count();
            probe.starts.lock().unwrap().push(Start {
                plan: ctx.plan_time(),
                at: clock.now(),
                others_running,
            });
            if ctx.plan_time() == FIRST {
                probe.started.notify_one();
                if let Some(gate) = &probe.gate {
                    gate.notified().await;
                }
                probe.returned.notify_one();
            }
            Ok(JobOutput::rows(1))
        }
    });
    minute_job_with_long_leases(job.overlap(policy))
}

/// A replica `runner` over `store` whose terminal writes each stall for
/// [`STALL`].
fn stalling_replica(store: &Arc<MemoryLeaseStore>, runner: &str) -> Manager {
    manager_with(
        Arc::new(CountingStore::new(store.clone()).with_finish_delay(STALL)),
        ManagerOptions {
            runner_id: runner.to_owned(),
            ..Default::default()
        },
    )
}

#[tokio::test(start_paused = true)]
async fn a_stalled_terminal_write_does_not_delay_the_next_plan_of_its_scope() {
    for policy in OverlapPolicy::ALL {
        let (clock, store) = on_tokio_clock(T0);
        let probe = Probe::default();
        let m = stalling_replica(&store, "r1");
        m.register(probed_job(policy, &store, &clock, &probe))
            .unwrap();
        // 12:00 (due at T0) and the plans of 12:01 to 12:04, each falling
        // due while the writes of the ones before it are stalled.
        m.run(tokio::time::sleep_until(
            tokio::time::Instant::now() + Duration::from_secs(4 * 60),
        ))
        .await;
        let starts = probe.starts.lock().unwrap().clone();
        let plans: Vec<OffsetDateTime> = starts.iter().map(|s| s.plan).collect();
        let minute = |m| FIRST + time::Duration::minutes(m);
        assert_eq!(plans, (0..5).map(minute).collect::<Vec<_>>(), "{policy}");
        for start in &starts[1..] {
            assert!(
                start.at - start.plan < time::Duration::seconds(1),
                "{policy}: {start:?} started as it fell due"
            );
            assert!(
                start.others_running >= 1,
                "{policy}: {start:?} started while an earlier write was in flight"
            );
        }
        let rows = rows_of(&store, "probed");
        assert_eq!(rows.len(), 5, "{policy}");
        for row in rows {
            assert_eq!(
                (row.status, row.attempt, row.error_code.as_deref()),
                (Status::Success, 1, None),
                "{policy}: no run was skipped, cancelled or retried: {row:?}"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_scope_is_busy_here_until_the_handler_ends_then_free_while_its_write_is_stored() {
    let (clock, store) = on_tokio_clock(T0);
    let probe = Probe {
        gate: Some(Arc::new(Notify::new())),
        ..Default::default()
    };
    let a = stalling_replica(&store, "a");
    a.register(probed_job(OverlapPolicy::BufferAll, &store, &clock, &probe))
        .unwrap();
    let first = spawn_run_once(&a);
    probe.started.notified().await;
    tokio::time::sleep(MIN).await;
    assert_eq!(
        a.run_once().await,
        TickReport::default(),
        "12:01 is not even asked for while 12:00's handler runs here"
    );
    probe.gate.as_ref().unwrap().notify_one();
    probe.returned.notified().await;
    let second = a.run_once().await;
    assert_eq!((second.won, second.succeeded), (1, 1), "{second:?}");
    let starts = probe.starts.lock().unwrap().clone();
    assert_eq!(
        starts[1].others_running, 1,
        "12:01 started while 12:00's write was still in flight: {starts:?}"
    );
    assert_eq!(first.await.unwrap().succeeded, 1);
}

#[tokio::test(start_paused = true)]
async fn another_replica_still_sees_a_finishing_run_as_live() {
    for (policy, held) in [
        (OverlapPolicy::BufferAll, "busy"),
        (OverlapPolicy::Skip, "skipped"),
    ] {
        let (clock, store) = on_tokio_clock(T0);
        let probe = Probe::default();
        let a = stalling_replica(&store, "a");
        a.register(probed_job(policy, &store, &clock, &probe))
            .unwrap();
        let first = spawn_run_once(&a);
        probe.returned.notified().await;
        tokio::time::sleep(MIN).await;
        let b = manager_with(
            store.clone(),
            ManagerOptions {
                runner_id: "b".to_owned(),
                ..Default::default()
            },
        );
        b.register(probed_job(policy, &store, &clock, &probe))
            .unwrap();
        let report = b.run_once().await;
        assert_eq!(
            (report.busy, report.skipped, report.won),
            (u64::from(held == "busy"), u64::from(held == "skipped"), 0),
            "{policy}: 12:00's write is in flight on a, so b finds it live: {report:?}"
        );
        assert_eq!(first.await.unwrap().succeeded, 1, "{policy}");
    }
}
