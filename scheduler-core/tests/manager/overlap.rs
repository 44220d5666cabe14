//! Overlap policies: what a plan does while the previous run of its scope
//! still holds its lease, on another replica sharing the store or on the
//! same one. Store time is a manual clock; tokio's paused clock drives the
//! heartbeats that notice a replaced run.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use scheduler_core::model::OverlapPolicy;
use scheduler_core::time::TimeControl;
use scheduler_core::{
    CatchUpMode, JobOutput, JobSpec, Manager, RunContext, Scopes, Status, TickReport,
};
use scheduler_memory::MemoryLeaseStore;
use time::macros::datetime;
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::common::{
    manager, minute_job_with_long_leases, on_manual_clock, rows_of, spawn_run_once, MIN, T0,
};

/// The plan whose run blocks: the first one, at T0.
const BLOCKED: OffsetDateTime = datetime!(2026-03-05 12:00 UTC);

/// What the handlers of a test share.
#[derive(Default, Clone)]
struct Probe {
    /// Releases the blocked run.
    gate: Arc<Notify>,
    /// Told when the blocked run has started.
    started: Arc<Notify>,
    /// Handlers running now.
    running: Arc<AtomicUsize>,
    /// The most handlers ever running at once.
    peak: Arc<AtomicUsize>,
    /// The plan time of every run started, in order.
    starts: Arc<Mutex<Vec<OffsetDateTime>>>,
}

/// Counts a handler as running until it returns or is dropped.
struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A one-minute job on the global scope under `policy`, whose run of
/// [`BLOCKED`] waits for the probe's gate; heartbeats every 10 s.
fn gated_job(policy: OverlapPolicy, probe: &Probe) -> JobSpec {
    let probe = probe.clone();
    let job = JobSpec::new("gated", Scopes::global(), move |ctx: RunContext| {
        let probe = probe.clone();
        async move {
            let now = probe.running.fetch_add(1, Ordering::SeqCst) + 1;
            let _running = Running(probe.running.clone());
            probe.peak.fetch_max(now, Ordering::SeqCst);
            probe.starts.lock().unwrap().push(ctx.plan_time());
            if ctx.plan_time() == BLOCKED {
                probe.started.notify_one();
                probe.gate.notified().await;
            }
            Ok(JobOutput::rows(1))
        }
    });
    minute_job_with_long_leases(job.overlap(policy))
}

/// A replica `runner` of the gated job.
fn replica(
    store: &Arc<MemoryLeaseStore>,
    runner: &str,
    policy: OverlapPolicy,
    probe: &Probe,
) -> Manager {
    let m = manager(store, runner);
    m.register(gated_job(policy, probe)).unwrap();
    m
}

/// The 12:00 run blocked on replica `a` and, a minute later, one tick of
/// replica `b` (`a` itself when `b` is `None`): the store, the probe, the
/// first replica's pending tick and the report of the second tick.
async fn second_plan_while_the_first_runs(
    policy: OverlapPolicy,
    other_replica: bool,
) -> (
    Arc<MemoryLeaseStore>,
    Probe,
    tokio::task::JoinHandle<TickReport>,
    TickReport,
    Manager,
) {
    let (clock, store) = on_manual_clock(T0);
    let probe = Probe::default();
    let a = replica(&store, "a", policy, &probe);
    let first = spawn_run_once(&a);
    probe.started.notified().await;
    clock.advance(MIN);
    let b = match other_replica {
        true => replica(&store, "b", policy, &probe),
        false => a,
    };
    let report = b.run_once().await;
    (store, probe, first, report, b)
}

/// The row of `plan`, with its status and error code.
fn state_of(store: &MemoryLeaseStore, plan: OffsetDateTime) -> Option<(Status, Option<String>)> {
    rows_of(store, "gated")
        .into_iter()
        .find(|r| r.plan_time == plan)
        .map(|r| (r.status, r.error_code))
}

const NEXT: OffsetDateTime = datetime!(2026-03-05 12:01 UTC);

#[tokio::test(start_paused = true)]
async fn skip_records_the_plan_as_skipped_and_never_runs_it() {
    let (store, probe, first, report, b) =
        second_plan_while_the_first_runs(OverlapPolicy::Skip, true).await;
    assert_eq!((report.skipped, report.won), (1, 0), "{report:?}");
    assert_eq!(
        state_of(&store, NEXT),
        Some((Status::Failed, Some("overlap_skipped".into())))
    );
    probe.gate.notify_one();
    assert_eq!(first.await.unwrap().succeeded, 1);
    assert_eq!(b.run_once().await, TickReport::default(), "not retried");
}

#[tokio::test(start_paused = true)]
async fn buffer_all_waits_for_the_scope_to_be_free_then_runs_the_plan() {
    let (store, probe, first, report, b) =
        second_plan_while_the_first_runs(OverlapPolicy::BufferAll, true).await;
    assert_eq!((report.busy, report.won), (1, 0), "{report:?}");
    assert_eq!(state_of(&store, NEXT), None);
    probe.gate.notify_one();
    assert_eq!(first.await.unwrap().succeeded, 1);
    let after = b.run_once().await;
    assert_eq!(
        (after.won, after.succeeded),
        (1, 1),
        "asked again: {after:?}"
    );
    assert_eq!(probe.peak.load(Ordering::SeqCst), 1, "never two at once");
}

#[tokio::test(start_paused = true)]
async fn cancel_other_ends_the_older_run_through_its_lease() {
    let (store, probe, first, report, _) =
        second_plan_while_the_first_runs(OverlapPolicy::CancelOther, true).await;
    assert_eq!((report.won, report.succeeded), (1, 1), "{report:?}");
    assert_eq!(
        state_of(&store, BLOCKED),
        Some((Status::Failed, Some("overlap_canceled".into())))
    );
    // The older run's next heartbeat finds its lease gone: its handler is
    // stopped without its gate ever opening.
    let older = first.await.unwrap();
    assert_eq!((older.lease_lost, older.succeeded), (1, 0), "{older:?}");
    assert_eq!(probe.running.load(Ordering::SeqCst), 0);
    assert_eq!(
        state_of(&store, BLOCKED),
        Some((Status::Failed, Some("overlap_canceled".into()))),
        "no terminal write from the replaced run"
    );
}

#[tokio::test(start_paused = true)]
async fn allow_all_lets_runs_of_one_scope_overlap() {
    let (store, probe, first, report, _) =
        second_plan_while_the_first_runs(OverlapPolicy::AllowAll, true).await;
    assert_eq!((report.won, report.succeeded), (1, 1), "{report:?}");
    assert_eq!(probe.peak.load(Ordering::SeqCst), 2);
    probe.gate.notify_one();
    assert_eq!(first.await.unwrap().succeeded, 1);
    assert_eq!(state_of(&store, BLOCKED), Some((Status::Success, None)));
}

#[tokio::test(start_paused = true)]
async fn on_one_replica_a_replacing_run_starts_at_once_in_a_task_of_its_own() {
    let (_store, probe, first, report, _) =
        second_plan_while_the_first_runs(OverlapPolicy::CancelOther, false).await;
    assert_eq!((report.won, report.succeeded), (1, 1), "{report:?}");
    assert_eq!(
        probe.peak.load(Ordering::SeqCst),
        2,
        "12:01 ran while 12:00 still did: it did not wait behind it"
    );
    assert_eq!(first.await.unwrap().lease_lost, 1);
}

#[tokio::test(start_paused = true)]
async fn on_one_replica_buffer_all_does_not_even_ask_for_a_busy_scope() {
    let (store, probe, first, report, a) =
        second_plan_while_the_first_runs(OverlapPolicy::BufferAll, false).await;
    assert_eq!(report, TickReport::default(), "nothing claimed");
    probe.gate.notify_one();
    assert_eq!(first.await.unwrap().succeeded, 1);
    assert_eq!(a.run_once().await.succeeded, 1);
    assert_eq!(state_of(&store, NEXT), Some((Status::Success, None)));
}

#[tokio::test(start_paused = true)]
async fn a_queued_run_that_cancel_other_replaced_never_starts() {
    let (clock, store) = on_manual_clock(datetime!(2026-03-05 11:59:30 UTC));
    let probe = Probe::default();
    let catching_up = |runner: &str| {
        let m = manager(&store, runner);
        m.register(
            gated_job(OverlapPolicy::CancelOther, &probe)
                .catch_up(CatchUpMode::EveryPlan)
                .catch_up_window(10 * MIN)
                .max_plans_per_tick(5),
        )
        .unwrap();
        m
    };
    let (a, b) = (catching_up("a"), catching_up("b"));
    a.run_once().await;
    // 12:00 and 12:01 in one batch: 12:01 waits behind the blocked 12:00.
    clock.set(datetime!(2026-03-05 12:01:30 UTC));
    let first = spawn_run_once(&a);
    probe.started.notified().await;
    clock.advance(MIN);
    let report = b.run_once().await;
    assert_eq!((report.won, report.succeeded), (1, 1), "12:02: {report:?}");
    // 12:00 ends before any heartbeat could tell it that its lease is gone.
    probe.gate.notify_one();
    let replaced = first.await.unwrap();
    assert_eq!(
        (replaced.lease_lost, replaced.succeeded),
        (2, 0),
        "{replaced:?}"
    );
    let minute = |m| datetime!(2026-03-05 11:59 UTC) + time::Duration::minutes(m);
    assert_eq!(
        probe.starts.lock().unwrap().clone(),
        [minute(0), minute(1), minute(3)],
        "12:01 was replaced while it waited: it never starts"
    );
    assert_eq!(
        state_of(&store, minute(2)),
        Some((Status::Failed, Some("overlap_canceled".into())))
    );
}
