//! What the manager tests share: stores on injected clocks, managers,
//! claims made outside any manager, an operator's controls, and handlers
//! that record, block, fail or hang.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::MetricKind;
use scheduler_core::model::{
    Control, ControlAction, ControlChange, ControlRead, ControlState, NewControl,
};
use scheduler_core::time::TimeControl;
use scheduler_core::{
    ClaimRequest, Clock, Execution, ExecutionAudit, JobOutput, JobSpec, Lease, LeaseStore, Manager,
    ManagerOptions, ManualClock, PlanKey, RunContext, Scope, Scopes, TickReport, TokioClock,
};
use scheduler_memory::MemoryLeaseStore;
use time::macros::datetime;
use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// The store time most tests start at: 30 s into the 12:00 bucket.
pub const T0: OffsetDateTime = datetime!(2026-03-05 12:00:30 UTC);
/// One minute: the cadence of most test jobs.
pub const MIN: Duration = Duration::from_secs(60);

/// A store on a manual clock starting at `start`.
pub fn on_manual_clock(start: OffsetDateTime) -> (ManualClock, Arc<MemoryLeaseStore>) {
    let clock = ManualClock::new(start);
    let store = Arc::new(MemoryLeaseStore::with_clock(Arc::new(clock.clone())));
    (clock, store)
}

/// A store whose time follows tokio's (paused) clock from `start`.
pub fn on_tokio_clock(start: OffsetDateTime) -> (TokioClock, Arc<MemoryLeaseStore>) {
    let clock = TokioClock::new(start);
    let store = Arc::new(MemoryLeaseStore::with_clock(Arc::new(clock.clone())));
    (clock, store)
}

/// A manager over `store` with `options`, which must be valid.
pub fn manager_with(store: Arc<dyn LeaseStore>, options: ManagerOptions) -> Manager {
    Manager::new(store, options).expect("valid manager options")
}

/// A manager over `store` as `runner` that runs at most `max_concurrency`
/// executions at once.
pub fn capped_manager(store: Arc<dyn LeaseStore>, runner: &str, max_concurrency: usize) -> Manager {
    manager_with(
        store,
        ManagerOptions {
            runner_id: runner.to_owned(),
            max_concurrency,
            ..Default::default()
        },
    )
}

/// A manager over `store` as `runner`, with default options.
pub fn manager(store: &Arc<MemoryLeaseStore>, runner: &str) -> Manager {
    manager_with(
        store.clone(),
        ManagerOptions {
            runner_id: runner.to_owned(),
            ..Default::default()
        },
    )
}

/// A manager on a store whose time follows tokio's (paused) clock from
/// `start`, with a long tick interval: only exact wake-ups make it tick.
pub fn waking_manager(start: OffsetDateTime, tick_interval: Duration) -> (TokioClock, Manager) {
    let (clock, store) = on_tokio_clock(start);
    let manager = manager_with(
        store,
        ManagerOptions {
            runner_id: "r1".into(),
            tick_interval,
            ..Default::default()
        },
    );
    (clock, manager)
}

/// `m.run_once()` in a task of its own, so the test can act meanwhile.
pub fn spawn_run_once(m: &Manager) -> JoinHandle<TickReport> {
    let m = m.clone();
    tokio::spawn(async move { m.run_once().await })
}

/// `m.run(..)` in a task of its own, until the returned notify is told to
/// stop it.
pub fn spawn_run(m: &Manager) -> (Arc<Notify>, JoinHandle<TickReport>) {
    let stop = Arc::new(Notify::new());
    let run = tokio::spawn({
        let (m, stop) = (m.clone(), stop.clone());
        async move { m.run(async move { stop.notified().await }).await }
    });
    (stop, run)
}

/// Claims `keys` of `job` as `runner`, outside any manager (a replica that
/// has since died, or history written before the test), with three
/// attempts; every key must be won.
pub async fn claim_as(
    store: &MemoryLeaseStore,
    job: &str,
    runner: &str,
    stale_timeout: Duration,
    allow_stale_reentry: bool,
    keys: &[PlanKey],
) -> Vec<Lease> {
    let request = ClaimRequest {
        finishing: &[],
        steering: scheduler_core::model::Steering::NONE,
        job_name: job,
        runner_id: runner,
        max_attempts: 3,
        stale_timeout,
        allow_stale_reentry,
        keys,
    };
    let outcomes = store.claim(&request).await.expect("claim");
    outcomes
        .iter()
        .map(|o| o.lease().cloned().expect("a fresh key is won"))
        .collect()
}

/// The global scope's lease of `job` at `plan_time`, claimed by a runner
/// "dead" with a 600 s stale timeout, which then died: `clock` is moved
/// past its `stale_after`. The row's id.
pub async fn dead_runners_lease(
    store: &MemoryLeaseStore,
    clock: &ManualClock,
    job: &str,
    allow_stale_reentry: bool,
    plan_time: OffsetDateTime,
) -> Uuid {
    let stale_timeout = Duration::from_secs(600);
    let keys = global_at(plan_time);
    let dead = claim_as(
        store,
        job,
        "dead",
        stale_timeout,
        allow_stale_reentry,
        &keys,
    )
    .await;
    clock.advance(stale_timeout + Duration::from_secs(1));
    dead[0].id
}

/// The row `id`, which must exist.
pub async fn row(store: &MemoryLeaseStore, id: Uuid) -> Execution {
    store
        .get_execution(id)
        .await
        .expect("get_execution")
        .expect("the row exists")
}

/// The global scope's key at `plan_time`.
pub fn global_at(plan_time: OffsetDateTime) -> [PlanKey; 1] {
    [PlanKey {
        scope: Scope::global(),
        plan_time,
    }]
}

/// Every run a handler saw: (scope, plan time, attempt).
pub type Ledger = Arc<Mutex<Vec<(Scope, OffsetDateTime, i32)>>>;

/// Writes the run `ctx` describes into `ledger`.
pub fn record(ledger: &Ledger, ctx: &RunContext) {
    ledger
        .lock()
        .unwrap()
        .push((ctx.scope().clone(), ctx.plan_time(), ctx.attempt()));
}

/// A job on a one-minute cadence whose handler records each run and succeeds.
pub fn recording_job(name: &str, scopes: Scopes, ledger: &Ledger) -> JobSpec {
    let ledger = ledger.clone();
    JobSpec::new(name, scopes, move |ctx: RunContext| {
        let ledger = ledger.clone();
        async move {
            record(&ledger, &ctx);
            Ok(JobOutput::rows(1))
        }
    })
    .cadence(MIN)
}

/// When each run started: (plan time, the clock's time at the start).
pub type Starts = Arc<Mutex<Vec<(OffsetDateTime, OffsetDateTime)>>>;

/// A job (schedule left to the caller) whose handler records in `starts`
/// when it starts each plan, by `clock`, and succeeds.
pub fn start_recording_job(
    name: &str,
    scopes: Scopes,
    clock: &TokioClock,
    starts: &Starts,
) -> JobSpec {
    let (starts, clock) = (starts.clone(), clock.clone());
    JobSpec::new(name, scopes, move |ctx: RunContext| {
        let (starts, clock) = (starts.clone(), clock.clone());
        async move {
            starts.lock().unwrap().push((ctx.plan_time(), clock.now()));
            Ok(JobOutput::default())
        }
    })
}

/// Every row of `job` in the memory store.
pub fn rows_of(store: &MemoryLeaseStore, job: &str) -> Vec<Execution> {
    store
        .executions()
        .into_iter()
        .filter(|r| r.job_name == job)
        .collect()
}

/// `job` on a one-minute cadence, with run and stale timeouts far beyond
/// any test's handler and heartbeats every 10 s: a run ends only when its
/// handler returns or its lease is taken.
pub fn minute_job_with_long_leases(job: JobSpec) -> JobSpec {
    job.cadence(MIN)
        .run_timeout(Duration::from_secs(3000))
        .stale_timeout(Duration::from_secs(3600))
        .heartbeat_interval(Duration::from_secs(10))
}

/// A handler that blocks until released, then succeeds.
pub fn blocking_job(name: &str, gate: &Arc<Notify>, started: &Arc<Notify>) -> JobSpec {
    let (gate, started) = (gate.clone(), started.clone());
    JobSpec::new(name, Scopes::global(), move |_ctx| {
        let (gate, started) = (gate.clone(), started.clone());
        async move {
            started.notify_one();
            gate.notified().await;
            Ok(JobOutput::rows(1))
        }
    })
    .cadence(MIN)
    .run_timeout(Duration::from_secs(3000))
    .stale_timeout(Duration::from_secs(3600))
    .heartbeat_interval(Duration::from_secs(3000))
}

/// A job on the global scope (schedule left to the caller) whose handler
/// never returns; `dropped` counts the handler futures dropped, which is
/// how a test sees that the manager stopped one.
pub fn hanging_job(name: &str, dropped: &Arc<AtomicUsize>) -> JobSpec {
    let dropped = dropped.clone();
    JobSpec::new(name, Scopes::global(), move |_ctx| {
        let guard = DropCounter(dropped.clone());
        async move {
            let _guard = guard;
            std::future::pending::<()>().await;
            Ok(JobOutput::default())
        }
    })
}

/// Counts its own drop.
struct DropCounter(Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A one-minute job on the global scope whose handler panics with
/// `message`.
pub fn panicking_job(name: &str, message: &'static str) -> JobSpec {
    JobSpec::new(name, Scopes::global(), move |_ctx| async move {
        if true {
            panic!("{message}");
        }
        Ok(JobOutput::default())
    })
    .cadence(MIN)
}

/// Stores an operator's control of `job`: of `scope`, or of every scope.
pub async fn add_control(
    store: &MemoryLeaseStore,
    job: &str,
    scope: Option<Scope>,
    action: ControlAction,
) -> Control {
    store
        .add_control(&NewControl {
            job_name: job.to_owned(),
            scope,
            note: "test".to_owned(),
            action,
        })
        .await
        .expect("the control is stored")
}

/// Pauses `job` (or one `scope` of it) until resumed.
pub async fn pause(store: &MemoryLeaseStore, job: &str, scope: Option<Scope>) -> Control {
    let action = ControlAction::Pause {
        until: None,
        skip_missed: false,
    };
    add_control(store, job, scope, action).await
}

/// Ends pause `id`, skipping the plans it missed when `skip_missed`.
pub async fn resume(store: &MemoryLeaseStore, id: Uuid, skip_missed: bool) {
    let change = ControlChange::End {
        state: ControlState::Done,
        reason: None,
        skip_missed: Some(skip_missed),
    };
    store
        .update_control(id, &change)
        .await
        .expect("the pause is resumed");
}

/// Control `id` as stored now.
pub async fn control(store: &MemoryLeaseStore, id: Uuid) -> Control {
    let every = ControlRead {
        jobs: None,
        ended_since: Some(time::PrimitiveDateTime::MIN.assume_utc()),
    };
    let controls = store.controls(&every).await.expect("controls");
    controls
        .into_iter()
        .find(|c| c.id == id)
        .expect("the control exists")
}

/// The plan times of `ledger`'s runs of `scope`, in the order they ran.
pub fn plans_of(ledger: &Ledger, scope: &Scope) -> Vec<OffsetDateTime> {
    ledger
        .lock()
        .unwrap()
        .iter()
        .filter(|(s, _, _)| s == scope)
        .map(|(_, t, _)| *t)
        .collect()
}

/// Runs `scenario` to its end on a current-thread runtime with `recorder`
/// as the thread's metrics recorder (a local recorder holds for one
/// thread only, so the runtime must not move the scenario to another).
pub fn with_recorder<T>(
    recorder: &DebuggingRecorder,
    scenario: impl std::future::Future<Output = T>,
) -> T {
    metrics::with_local_recorder(recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(scenario)
    })
}

/// A recorder's metrics: name, kind, labels, value.
pub type Snapshot = Vec<(String, MetricKind, Vec<(String, String)>, DebugValue)>;

/// Everything `recorder` holds.
pub fn snapshot(recorder: &DebuggingRecorder) -> Snapshot {
    recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let (kind, key) = key.into_parts();
            let labels = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            (key.name().to_owned(), kind, labels, value)
        })
        .collect()
}

/// The value of metric `name` with (at least) `labels`.
pub fn find<'a>(snap: &'a Snapshot, name: &str, labels: &[(&str, &str)]) -> Option<&'a DebugValue> {
    snap.iter()
        .find(|(n, _, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, _, v)| v)
}

/// The counter `name` with `labels`, which must exist.
pub fn counter(snap: &Snapshot, name: &str, labels: &[(&str, &str)]) -> u64 {
    match find(snap, name, labels) {
        Some(DebugValue::Counter(n)) => *n,
        other => panic!("{name} {labels:?}: {other:?}"),
    }
}
