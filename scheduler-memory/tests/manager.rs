//! Manager behaviour (`docs/contract.md` §7 and §8) on the memory store, with
//! store time injected (a manual clock, or a clock that follows tokio's
//! paused time).

use scheduler_core::{ExecutionAudit as _, LeaseStoreExt as _};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scheduler_core::model::{MAX_ERROR_MSG_BYTES, RESULT_TOO_LARGE_KEY};
use scheduler_core::time::TimeControl;
use scheduler_core::{
    BoxError, CatchUpMode, ClaimRequest, Clock, Execution, JobOutput, JobSpec, LeaseStore, Manager,
    ManagerOptions, ManualClock, PlanKey, RunContext, Scope, Scopes, Status, TokioClock,
};
use scheduler_memory::MemoryLeaseStore;
use time::macros::datetime;
use time::OffsetDateTime;
use tokio::sync::Notify;

const T0: OffsetDateTime = datetime!(2026-03-05 12:00:30 UTC);
const MIN: Duration = Duration::from_secs(60);

/// A store on a manual clock starting at `start`.
fn on_manual_clock(start: OffsetDateTime) -> (ManualClock, Arc<MemoryLeaseStore>) {
    let clock = ManualClock::new(start);
    let store = Arc::new(MemoryLeaseStore::with_clock(Arc::new(clock.clone())));
    (clock, store)
}

/// A store whose time follows tokio's (paused) clock from `start`.
fn on_tokio_clock(start: OffsetDateTime) -> (TokioClock, Arc<MemoryLeaseStore>) {
    let clock = TokioClock::new(start);
    let store = Arc::new(MemoryLeaseStore::with_clock(Arc::new(clock.clone())));
    (clock, store)
}

fn manager(store: &Arc<MemoryLeaseStore>, runner: &str) -> Manager {
    Manager::new(
        store.clone(),
        ManagerOptions {
            runner_id: runner.to_owned(),
            ..Default::default()
        },
    )
    .expect("valid manager options")
}

/// A manager on a store whose time follows tokio's (paused) clock from
/// `start`, with a long tick interval: only exact wake-ups make it tick.
fn waking_manager(start: OffsetDateTime, tick_interval: Duration) -> (TokioClock, Manager) {
    let (clock, store) = on_tokio_clock(start);
    let manager = Manager::new(
        store,
        ManagerOptions {
            runner_id: "r1".into(),
            tick_interval,
            ..Default::default()
        },
    )
    .expect("valid manager options");
    (clock, manager)
}

type Ledger = Arc<Mutex<Vec<(Scope, OffsetDateTime, i32)>>>;

/// A job on a one-minute cadence whose handler records each run and succeeds.
fn recording_job(name: &str, scopes: Scopes, ledger: &Ledger) -> JobSpec {
    let ledger = ledger.clone();
    JobSpec::new(name, scopes, move |ctx: RunContext| {
        let ledger = ledger.clone();
        async move {
            ledger
                .lock()
                .unwrap()
                .push((ctx.scope().clone(), ctx.plan_time(), ctx.attempt()));
            Ok(JobOutput::rows(1))
        }
    })
    .cadence(MIN)
}

fn rows_of(store: &MemoryLeaseStore, job: &str) -> Vec<Execution> {
    store
        .executions()
        .into_iter()
        .filter(|r| r.job_name == job)
        .collect()
}

#[tokio::test]
async fn eight_replicas_on_one_plan_give_one_execution() {
    let (_clock, store) = on_manual_clock(T0);
    let ledger = Ledger::default();
    let managers: Vec<Manager> = (0..8)
        .map(|i| {
            let m = manager(&store, &format!("replica-{i}"));
            m.register(recording_job("rollup", Scopes::global(), &ledger))
                .unwrap();
            m
        })
        .collect();
    let reports = futures::future::join_all(managers.iter().map(Manager::run_once)).await;
    assert_eq!(reports.iter().map(|r| r.won).sum::<u64>(), 1);
    assert_eq!(reports.iter().map(|r| r.conflicted).sum::<u64>(), 7);
    assert_eq!(reports.iter().map(|r| r.succeeded).sum::<u64>(), 1);
    assert_eq!(ledger.lock().unwrap().len(), 1);
    let rows = rows_of(&store, "rollup");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, Status::Success);
    assert_eq!(rows[0].plan_time, datetime!(2026-03-05 12:00 UTC));
    assert_eq!(rows[0].rows_affected, Some(1));
}

/// A handler that blocks until released, then succeeds.
fn blocking_job(name: &str, gate: &Arc<Notify>, started: &Arc<Notify>) -> JobSpec {
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

#[tokio::test]
async fn a_stale_lease_is_taken_over_and_the_old_runners_success_is_rejected() {
    let (clock, store) = on_manual_clock(T0);
    let (gate, started) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let slow = manager(&store, "slow");
    slow.register(blocking_job("report", &gate, &started).allow_stale_reentry(true))
        .unwrap();
    let slow_run = tokio::spawn({
        let slow = slow.clone();
        async move { slow.run_once().await }
    });
    started.notified().await;
    let first = rows_of(&store, "report").remove(0);
    assert_eq!((first.status, first.attempt), (Status::Running, 1));

    // The slow runner misses its heartbeats; store time passes stale_after.
    clock.advance(Duration::from_secs(3601));
    let ledger = Ledger::default();
    // The plan is the old bucket: pin it with a planner so the takeover is of that row.
    let planned = first.plan_time;
    let fast_old = manager(&store, "fast");
    fast_old
        .register(
            recording_job("report", Scopes::global(), &ledger)
                .allow_stale_reentry(true)
                .planner(move |_, _, _| vec![planned]),
        )
        .unwrap();
    // The tick sweeps the stale lease first, then retries it (a claim that
    // reaches the row before any sweep steals it instead; the conformance
    // suite covers that path).
    let report = fast_old.run_once().await;
    assert_eq!(
        (report.swept, report.retried, report.succeeded),
        (1, 1, 1),
        "{report:?}"
    );
    let taken = store.get_execution(first.id).await.unwrap().unwrap();
    assert_eq!(taken.attempt, 2);
    assert_ne!(taken.lease_token, first.lease_token);
    assert_eq!(taken.runner_id.as_deref(), Some("fast"));
    assert_eq!(taken.status, Status::Success);

    gate.notify_one();
    let late = slow_run.await.unwrap();
    assert_eq!((late.succeeded, late.lease_lost), (0, 1), "{late:?}");
    let after = store.get_execution(first.id).await.unwrap().unwrap();
    assert_eq!(after, taken, "the late SUCCESS changed nothing");
}

#[tokio::test]
async fn every_plan_retries_the_same_failed_plan_on_the_next_tick() {
    let (clock, store) = on_manual_clock(T0);
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Ledger::default();
    let m = manager(&store, "r1");
    let (c, s) = (calls.clone(), seen.clone());
    m.register(
        JobSpec::new("flaky", Scopes::global(), move |ctx: RunContext| {
            let (c, s) = (c.clone(), s.clone());
            async move {
                s.lock()
                    .unwrap()
                    .push((ctx.scope().clone(), ctx.plan_time(), ctx.attempt()));
                if c.fetch_add(1, Ordering::SeqCst) == 0 {
                    return Err::<JobOutput, BoxError>("first attempt fails".into());
                }
                Ok(JobOutput::rows(1))
            }
        })
        .cadence(MIN)
        .catch_up(CatchUpMode::EveryPlan)
        .catch_up_window(10 * MIN)
        .max_plans_per_tick(5)
        .retry_backoff(vec![Duration::from_secs(20)]),
    )
    .unwrap();
    let first = m.run_once().await;
    assert_eq!((first.won, first.failed), (1, 1));
    // Backoff not over, same bucket: nothing to do.
    clock.advance(Duration::from_secs(10));
    let idle = m.run_once().await;
    assert_eq!((idle.won, idle.retried), (0, 0), "{idle:?}");
    // Backoff over, a new bucket is also due: the failed plan comes first.
    clock.advance(Duration::from_secs(25));
    let second = m.run_once().await;
    assert_eq!(
        (second.retried, second.won, second.succeeded),
        (1, 1, 2),
        "{second:?}"
    );
    let seen = seen.lock().unwrap().clone();
    let plan = datetime!(2026-03-05 12:00 UTC);
    assert_eq!(
        seen.iter().map(|(_, t, a)| (*t, *a)).collect::<Vec<_>>(),
        vec![(plan, 1), (plan, 2), (plan + MIN, 1)]
    );
}

#[tokio::test]
async fn a_tick_closes_a_dead_runners_lease_and_runs_the_current_plan() {
    for reentrant in [false, true] {
        let (clock, store) = on_manual_clock(T0);
        let job = format!("cleanup_{reentrant}");
        let dead_plan = datetime!(2026-03-05 12:00 UTC);
        let dead = store
            .claim(&ClaimRequest {
                job_name: &job,
                runner_id: "dead",
                max_attempts: 3,
                stale_timeout: Duration::from_secs(600),
                allow_stale_reentry: reentrant,
                keys: &[PlanKey {
                    scope: Scope::global(),
                    plan_time: dead_plan,
                }],
            })
            .await
            .unwrap();
        let dead_id = dead[0].lease().unwrap().id;
        clock.advance(Duration::from_secs(601));
        let ledger = Ledger::default();
        let m = manager(&store, "alive");
        m.register(recording_job(&job, Scopes::global(), &ledger).allow_stale_reentry(reentrant))
            .unwrap();
        let report = m.run_once().await;
        assert_eq!(
            (report.swept, report.won, report.succeeded),
            (1, 1, 1),
            "{report:?}"
        );
        let closed = store.get_execution(dead_id).await.unwrap().unwrap();
        assert_eq!(closed.status, Status::Failed);
        assert_eq!(closed.error_code.as_deref(), Some("stale_timeout"));
        let current = ledger.lock().unwrap()[0].1;
        assert_eq!(current, datetime!(2026-03-05 12:10 UTC));
    }
}

#[tokio::test]
async fn a_panicking_handler_gives_failed_handler_panic_with_the_text() {
    let (_clock, store) = on_manual_clock(T0);
    let m = manager(&store, "r1");
    m.register(
        JobSpec::new("panics", Scopes::global(), |_ctx| async {
            if true {
                panic!("tenant table missing");
            }
            Ok(JobOutput::default())
        })
        .cadence(MIN),
    )
    .unwrap();
    let report = m.run_once().await;
    assert_eq!((report.failed, report.succeeded), (1, 0));
    let row = rows_of(&store, "panics").remove(0);
    assert_eq!(row.status, Status::Failed);
    assert_eq!(row.error_code.as_deref(), Some("handler_panic"));
    assert!(row.error_msg.unwrap().contains("tenant table missing"));
    assert!(
        row.next_retry_at.is_some(),
        "a panic is retried like an error"
    );
}

#[tokio::test]
async fn a_custom_planner_drives_plan_times_and_is_cut_at_the_cap() {
    let (_clock, store) = on_manual_clock(T0);
    let ledger = Ledger::default();
    let m = manager(&store, "r1");
    let base = datetime!(2026-01-01 00:00 UTC);
    let asked = Arc::new(Mutex::new(Vec::new()));
    let asked2 = asked.clone();
    m.register(
        recording_job(
            "custom",
            Scopes::fixed([Scope::new("tenant", "a")]),
            &ledger,
        )
        .cadence(Duration::ZERO)
        .max_plans_per_tick(2)
        .planner(move |scope, now, latest| {
            asked2
                .lock()
                .unwrap()
                .push((scope.clone(), now, latest.map(|l| l.plan_time)));
            vec![
                base + Duration::from_secs(3600),
                base,
                base + Duration::from_secs(7200),
            ]
        }),
    )
    .unwrap();
    m.register(
        recording_job("empty", Scopes::global(), &ledger)
            .cadence(Duration::ZERO)
            .planner(|_, _, _| Vec::new()),
    )
    .unwrap();
    let report = m.run_once().await;
    assert_eq!((report.won, report.succeeded), (2, 2), "{report:?}");
    let mut plans: Vec<_> = ledger.lock().unwrap().iter().map(|(_, t, _)| *t).collect();
    plans.sort();
    assert_eq!(plans, vec![base, base + Duration::from_secs(3600)]);
    assert!(
        rows_of(&store, "empty").is_empty(),
        "an empty plan list is a no-op"
    );
    let asked = asked.lock().unwrap().clone();
    assert_eq!(asked, vec![(Scope::new("tenant", "a"), T0, None)]);
    m.run_once().await;
    let asked_again = m.run_once().await;
    assert_eq!(asked_again.won, 0, "planned times already ran");
}

#[tokio::test]
async fn a_non_reentrant_stale_row_waits_for_an_operator() {
    let (clock, store) = on_manual_clock(T0);
    let job = "billing";
    let plan_time = datetime!(2026-03-05 12:00 UTC);
    let dead = store
        .claim(&ClaimRequest {
            job_name: job,
            runner_id: "dead",
            max_attempts: 3,
            stale_timeout: Duration::from_secs(600),
            allow_stale_reentry: false,
            keys: &[PlanKey {
                scope: Scope::global(),
                plan_time,
            }],
        })
        .await
        .unwrap();
    let id = dead[0].lease().unwrap().id;
    clock.advance(Duration::from_secs(601));
    let ledger = Ledger::default();
    let m = manager(&store, "r1");
    m.register(
        recording_job(job, Scopes::global(), &ledger)
            .catch_up(CatchUpMode::EveryPlan)
            .catch_up_window(60 * MIN)
            .max_plans_per_tick(20),
    )
    .unwrap();
    m.run_once().await;
    m.run_once().await;
    assert!(
        !ledger
            .lock()
            .unwrap()
            .iter()
            .any(|(_, t, _)| *t == plan_time),
        "the abandoned plan is not run again"
    );
    assert_eq!(
        store
            .get_execution(id)
            .await
            .unwrap()
            .unwrap()
            .error_code
            .as_deref(),
        Some("stale_timeout")
    );
    // Never due by itself, even to a reader that ignores the code (the Go
    // seed sharing the table).
    let swept = store.get_execution(id).await.unwrap().unwrap();
    assert_eq!(swept.next_retry_at, Some(scheduler_core::machine::NEVER));
    // The operator's repair.
    store.retry_execution(id).await.unwrap();
    let report = m.run_once().await;
    assert_eq!(report.retried, 1);
    assert!(ledger
        .lock()
        .unwrap()
        .contains(&(Scope::global(), plan_time, 2)));
}

#[tokio::test]
async fn an_older_failed_plan_is_retried_after_a_newer_plan_ran() {
    let (clock, store) = on_manual_clock(T0);
    let fail_once = Arc::new(AtomicUsize::new(0));
    let ledger = Ledger::default();
    let (f, l) = (fail_once.clone(), ledger.clone());
    let m = manager(&store, "r1");
    m.register(
        JobSpec::new("stranded", Scopes::global(), move |ctx: RunContext| {
            let (f, l) = (f.clone(), l.clone());
            async move {
                l.lock()
                    .unwrap()
                    .push((ctx.scope().clone(), ctx.plan_time(), ctx.attempt()));
                if f.fetch_add(1, Ordering::SeqCst) == 0 {
                    return Err::<JobOutput, BoxError>("transient".into());
                }
                Ok(JobOutput::default())
            }
        })
        .cadence(MIN)
        .catch_up(CatchUpMode::EveryPlan)
        .catch_up_window(30 * MIN)
        .max_plans_per_tick(5)
        .retry_backoff(vec![5 * MIN]),
    )
    .unwrap();
    m.run_once().await; // 12:00 fails, retry due 12:05:30
    clock.advance(MIN);
    m.run_once().await; // 12:01 succeeds: now the newest row is SUCCESS
    clock.advance(5 * MIN);
    let report = m.run_once().await; // 12:02..12:06 new, and the 12:00 retry
    assert_eq!(report.retried, 1, "{report:?}");
    let row = store
        .list_executions(&Default::default())
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.plan_time == datetime!(2026-03-05 12:00 UTC))
        .unwrap();
    assert_eq!((row.status, row.attempt), (Status::Success, 2));
}

#[tokio::test(start_paused = true)]
async fn a_handler_ignoring_cancellation_is_stopped_at_run_timeout() {
    let (_, store) = on_tokio_clock(T0);
    let m = manager(&store, "r1");
    let dropped = Arc::new(AtomicUsize::new(0));
    let d = dropped.clone();
    m.register(
        JobSpec::new("hangs", Scopes::global(), move |_ctx| {
            let guard = DropCounter(d.clone());
            async move {
                let _guard = guard;
                std::future::pending::<()>().await;
                Ok(JobOutput::default())
            }
        })
        .cadence(MIN)
        .run_timeout(Duration::from_secs(5))
        .stale_timeout(Duration::from_secs(30))
        .heartbeat_interval(Duration::from_secs(2)),
    )
    .unwrap();
    let report = m.run_once().await;
    assert_eq!(report.failed, 1);
    let row = rows_of(&store, "hangs").remove(0);
    assert_eq!(row.error_code.as_deref(), Some("run_timeout"));
    assert_eq!(row.finished_at, Some(T0 + Duration::from_secs(5)));
    tokio::task::yield_now().await;
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "the handler's future was dropped"
    );
}

struct DropCounter(Arc<AtomicUsize>);
impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(start_paused = true)]
async fn losing_the_lease_cancels_the_handler_and_writes_nothing() {
    let (clock, store) = on_tokio_clock(T0);
    let m = manager(&store, "r1");
    let dropped = Arc::new(AtomicUsize::new(0));
    let d = dropped.clone();
    m.register(
        JobSpec::new("victim", Scopes::global(), move |_ctx: RunContext| {
            let guard = DropCounter(d.clone());
            async move {
                let _guard = guard;
                std::future::pending::<()>().await;
                Ok(JobOutput::default())
            }
        })
        .cadence(MIN)
        .allow_stale_reentry(true)
        .run_timeout(Duration::from_secs(50))
        .stale_timeout(Duration::from_secs(60))
        .heartbeat_interval(Duration::from_secs(10)),
    )
    .unwrap();
    let run = tokio::spawn({
        let m = m.clone();
        async move { m.run_once().await }
    });
    // Let it claim, then have an operator-like actor rotate the token.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let row = rows_of(&store, "victim").remove(0);
    store.update_execution(row.id, |r| r.lease_token = uuid::Uuid::new_v4());
    let report = run.await.unwrap();
    assert_eq!(
        (report.lease_lost, report.failed, report.succeeded),
        (1, 0, 0),
        "{report:?}"
    );
    tokio::task::yield_now().await;
    assert_eq!(dropped.load(Ordering::SeqCst), 1, "the handler was stopped");
    let after = rows_of(&store, "victim").remove(0);
    assert_eq!(
        after.status,
        Status::Running,
        "no terminal write for a lost lease"
    );
    assert!(
        clock.now() < T0 + Duration::from_secs(20),
        "cancelled at the next heartbeat, not at the timeout"
    );
}

#[tokio::test]
async fn error_text_and_results_can_never_fail_the_terminal_write() {
    let (_clock, store) = on_manual_clock(T0);
    let m = manager(&store, "r1");
    m.register(
        JobSpec::new("noisy_error", Scopes::global(), |_ctx| async {
            Err::<JobOutput, BoxError>(format!("bad\0{}", "日本".repeat(10_000)).into())
        })
        .cadence(MIN),
    )
    .unwrap();
    m.register(
        JobSpec::new("huge_result", Scopes::global(), |_ctx| async {
            Ok(JobOutput::rows(3).with("blob", "x".repeat(50_000)))
        })
        .cadence(MIN),
    )
    .unwrap();
    let report = m.run_once().await;
    assert_eq!((report.failed, report.succeeded), (1, 1));
    let err = rows_of(&store, "noisy_error").remove(0);
    let msg = err.error_msg.unwrap();
    assert!(msg.len() <= MAX_ERROR_MSG_BYTES && msg.starts_with("bad日本"));
    let big = rows_of(&store, "huge_result").remove(0);
    assert_eq!(big.status, Status::Success);
    assert!(big.result.contains_key(RESULT_TOO_LARGE_KEY));
    assert_eq!(big.rows_affected, Some(3));
}

#[tokio::test]
async fn a_slow_handler_does_not_delay_other_jobs() {
    let (_clock, store) = on_manual_clock(T0);
    let (gate, started) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let ledger = Ledger::default();
    let m = manager(&store, "r1");
    m.register(blocking_job("slow", &gate, &started)).unwrap();
    m.register(recording_job(
        "fast",
        Scopes::fixed([Scope::new("t", "1"), Scope::new("t", "2")]),
        &ledger,
    ))
    .unwrap();
    let run = tokio::spawn({
        let m = m.clone();
        async move { m.run_once().await }
    });
    started.notified().await;
    // The slow handler is still blocked; the fast job's runs complete anyway.
    while ledger.lock().unwrap().len() < 2 {
        tokio::task::yield_now().await;
    }
    assert_eq!(rows_of(&store, "slow")[0].status, Status::Running);
    gate.notify_one();
    let report = run.await.unwrap();
    assert_eq!(report.succeeded, 3);
}

#[tokio::test]
async fn a_replica_claims_only_its_free_capacity() {
    let (_clock, store) = on_manual_clock(T0);
    let ledger = Ledger::default();
    let scopes = Scopes::fixed((0..5).map(|i| Scope::new("tenant", format!("{i}"))));
    let small = Manager::new(
        store.clone(),
        ManagerOptions {
            runner_id: "small".into(),
            max_concurrency: 2,
            ..Default::default()
        },
    )
    .expect("valid manager options");
    small
        .register(recording_job("fanout", scopes.clone(), &ledger))
        .unwrap();
    let report = small.run_once().await;
    assert_eq!(report.won, 2, "{report:?}");
    let other = manager(&store, "other");
    other
        .register(recording_job("fanout", scopes, &ledger))
        .unwrap();
    assert_eq!(other.run_once().await.won, 3);
    assert_eq!(rows_of(&store, "fanout").len(), 5);
}

#[tokio::test]
async fn one_scopes_plans_run_one_at_a_time_in_plan_order() {
    let (clock, store) = on_manual_clock(T0);
    let log = Arc::new(Mutex::new(Vec::new()));
    let running = Arc::new(AtomicUsize::new(0));
    let m = manager(&store, "r1");
    let (l, r) = (log.clone(), running.clone());
    m.register(
        JobSpec::new("ordered", Scopes::global(), move |ctx: RunContext| {
            let (l, r) = (l.clone(), r.clone());
            async move {
                assert_eq!(
                    r.fetch_add(1, Ordering::SeqCst),
                    0,
                    "overlapping runs of one scope"
                );
                tokio::task::yield_now().await;
                l.lock().unwrap().push(ctx.plan_time());
                r.fetch_sub(1, Ordering::SeqCst);
                Ok(JobOutput::default())
            }
        })
        .cadence(MIN)
        .catch_up(CatchUpMode::EveryPlan)
        .catch_up_window(10 * MIN)
        .max_plans_per_tick(10),
    )
    .unwrap();
    m.run_once().await;
    clock.advance(4 * MIN);
    let report = m.run_once().await;
    assert_eq!(report.succeeded, 4);
    let log = log.lock().unwrap().clone();
    let mut sorted = log.clone();
    sorted.sort();
    assert_eq!(log, sorted);
    assert_eq!(log.len(), 5);
}

#[tokio::test(start_paused = true)]
async fn the_loop_wakes_when_the_next_plan_becomes_eligible() {
    let (clock, m) = waking_manager(
        datetime!(2026-03-05 12:00:00.5 UTC),
        Duration::from_secs(3600),
    );
    let lateness = Arc::new(Mutex::new(Vec::new()));
    let (l, c) = (lateness.clone(), clock.clone());
    m.register(
        JobSpec::new("exact", Scopes::global(), move |ctx: RunContext| {
            let (l, c) = (l.clone(), c.clone());
            async move {
                l.lock()
                    .unwrap()
                    .push(c.now() - (ctx.plan_time() + Duration::from_secs(2)));
                Ok(JobOutput::default())
            }
        })
        .cadence(Duration::from_secs(10))
        .schedule_delay(Duration::from_secs(2)),
    )
    .unwrap();
    let stop = Arc::new(Notify::new());
    let run = tokio::spawn({
        let (m, stop) = (m.clone(), stop.clone());
        async move { m.run(async move { stop.notified().await }).await }
    });
    tokio::time::sleep(Duration::from_secs(35)).await;
    stop.notify_one();
    let report = run.await.unwrap();
    // 11:59:50 at start, then 12:00:00 (due 12:00:02), :10, :20, :30 -> 5 runs.
    assert_eq!(report.succeeded, 5, "{report:?}");
    let lateness = lateness.lock().unwrap().clone();
    for late in &lateness[1..] {
        assert!(
            *late >= time::Duration::ZERO && *late <= time::Duration::milliseconds(5),
            "{lateness:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn shutdown_cancels_after_grace_and_leaves_nothing_running() {
    let (_, store) = on_tokio_clock(T0);
    let m = Manager::new(
        store.clone(),
        ManagerOptions {
            runner_id: "r1".into(),
            shutdown_grace: Duration::from_secs(3),
            ..Default::default()
        },
    )
    .expect("valid manager options");
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
    let run = tokio::spawn({
        let m = m.clone();
        async move { m.run_once().await }
    });
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

#[test]
fn registration_refuses_invalid_and_duplicate_jobs() {
    let (_clock, store) = on_manual_clock(T0);
    let m = manager(&store, "r1");
    let ledger = Ledger::default();
    m.register(recording_job("dup", Scopes::global(), &ledger))
        .unwrap();
    let err = m
        .register(recording_job("dup", Scopes::global(), &ledger))
        .unwrap_err();
    assert_eq!((err.job.as_str(), err.field), ("dup", "name"));
    let err = m
        .register(recording_job("bad", Scopes::global(), &ledger).max_attempts(0))
        .unwrap_err();
    assert_eq!((err.job.as_str(), err.field), ("bad", "max_attempts"));
}

#[tokio::test]
async fn an_idle_tick_costs_two_store_calls_per_job_whatever_the_scope_count() {
    let (clock, store) = on_manual_clock(T0);
    let counting = Arc::new(scheduler_core::store::CountingStore::new(store.clone()));
    let m = Manager::new(
        counting.clone(),
        ManagerOptions {
            runner_id: "r1".into(),
            max_concurrency: 5_000,
            ..Default::default()
        },
    )
    .expect("valid manager options");
    let scopes = Scopes::fixed((0..2_000).map(|i| Scope::new("tenant", format!("{i}"))));
    let ledger = Ledger::default();
    m.register(recording_job("latest", scopes.clone(), &ledger))
        .unwrap();
    m.register(
        recording_job("every", scopes, &ledger)
            .catch_up(CatchUpMode::EveryPlan)
            .catch_up_window(10 * MIN)
            .max_plans_per_tick(3),
    )
    .unwrap();
    let first = m.run_once().await;
    assert_eq!(first.succeeded, 4_000);
    let busy = counting.take();
    assert_eq!(
        busy.get("claim"),
        Some(&2),
        "one batch claim per job: {busy:?}"
    );
    // Terminal writes of executions that end together go out in batches.
    let batches = busy["finish_many"];
    assert!(
        batches <= 4_000 / 10,
        "{batches} batches for 4,000 finishes: {busy:?}"
    );
    assert_eq!(busy.get("finish"), None);
    // Same bucket: nothing is due.
    clock.advance(Duration::from_secs(10));
    let idle = m.run_once().await;
    assert_eq!(idle, Default::default());
    let calls = counting.take();
    let per_job: u64 = calls
        .iter()
        .filter(|(m, _)| **m != "now")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(per_job, 2 * 2, "sweep + retry_due per job: {calls:?}");
    assert_eq!(calls.get("now"), Some(&1), "one store-time read per tick");
    // The next bucket is claimed in one batch per job, without re-reading.
    clock.advance(MIN);
    let next = m.run_once().await;
    assert_eq!(next.succeeded, 4_000);
    let calls = counting.take();
    assert_eq!(
        (calls.get("claim"), calls.get("latest_executions")),
        (Some(&2), None),
        "{calls:?}"
    );
}

#[tokio::test]
async fn a_failure_seen_by_another_replica_is_retried_through_retry_due() {
    // Replica A knows the plan exists; replica B runs it and fails; A must
    // still retry it once due, although its own knowledge says "exists".
    let (clock, store) = on_manual_clock(T0);
    let fail = Arc::new(AtomicUsize::new(0));
    let make = |runner: &str, fail: Arc<AtomicUsize>| {
        let m = manager(&store, runner);
        m.register(
            JobSpec::new("shared", Scopes::global(), move |_ctx: RunContext| {
                let fail = fail.clone();
                async move {
                    if fail.fetch_add(1, Ordering::SeqCst) == 0 {
                        return Err::<JobOutput, BoxError>("first try fails".into());
                    }
                    Ok(JobOutput::default())
                }
            })
            .cadence(MIN)
            .retry_backoff(vec![Duration::from_secs(5)]),
        )
        .unwrap();
        m
    };
    let b = make("b", fail.clone());
    let a = make("a", fail);
    assert_eq!(b.run_once().await.failed, 1);
    assert_eq!(
        a.run_once().await.won,
        0,
        "A learns the plan exists (conflict)"
    );
    clock.advance(Duration::from_secs(6));
    let report = a.run_once().await;
    assert_eq!((report.retried, report.succeeded), (1, 1), "{report:?}");
}

#[tokio::test(start_paused = true)]
async fn spread_staggers_scope_starts_inside_the_window() {
    let (clock, m) = waking_manager(
        datetime!(2026-03-05 12:00:00.5 UTC),
        Duration::from_secs(3600),
    );
    let starts = Arc::new(Mutex::new(Vec::new()));
    let (s, c) = (starts.clone(), clock.clone());
    m.register(
        JobSpec::new(
            "spread",
            Scopes::fixed((0..20).map(|i| Scope::new("tenant", format!("{i}")))),
            move |ctx: RunContext| {
                let (s, c) = (s.clone(), c.clone());
                async move {
                    s.lock().unwrap().push((ctx.plan_time(), c.now()));
                    Ok(JobOutput::default())
                }
            },
        )
        .cadence(MIN)
        .spread(Duration::from_secs(30)),
    )
    .unwrap();
    m.run(tokio::time::sleep(Duration::from_secs(90))).await;
    let starts = starts.lock().unwrap().clone();
    let bucket = datetime!(2026-03-05 12:01 UTC);
    let offsets: Vec<time::Duration> = starts
        .iter()
        .filter(|(plan, _)| *plan == bucket)
        .map(|(plan, start)| *start - *plan)
        .collect();
    assert_eq!(offsets.len(), 20, "every scope ran the 12:01 bucket once");
    assert!(offsets
        .iter()
        .all(|o| *o >= time::Duration::ZERO && *o < time::Duration::seconds(31)));
    let distinct: std::collections::BTreeSet<i64> =
        offsets.iter().map(|o| o.whole_seconds()).collect();
    assert!(distinct.len() >= 10, "starts are spread out: {offsets:?}");
}

#[tokio::test]
async fn cron_latest_only_after_an_outage_fires_only_a_recent_occurrence() {
    // Weekdays 09:00 in Berlin (08:00 UTC in winter). Thursday's runs;
    // the store comes back on Monday 2026-03-09 at 08:20 UTC after a 3-day
    // outage.
    let thursday = datetime!(2026-03-05 08:00:30 UTC);
    let (clock, store) = on_manual_clock(thursday);
    let ledger = Ledger::default();
    let m = manager(&store, "r1");
    m.register(
        recording_job("digest", Scopes::global(), &ledger)
            .cron("0 9 * * MON-FRI", "Europe/Berlin")
            .catch_up_window(Duration::from_secs(3600)),
    )
    .unwrap();
    assert_eq!(m.run_once().await.succeeded, 1);
    clock.set(datetime!(2026-03-09 08:20 UTC));
    let report = m.run_once().await;
    assert_eq!(report.succeeded, 1);
    assert_eq!(
        ledger.lock().unwrap().clone(),
        vec![
            (Scope::global(), datetime!(2026-03-05 08:00 UTC), 1),
            (Scope::global(), datetime!(2026-03-09 08:00 UTC), 1)
        ],
        "Friday's missed occurrence is not fired"
    );
    // Had it come back on Sunday, Friday's occurrence is outside the window.
    clock.set(thursday);
    let late = manager(&store, "r2");
    late.register(
        recording_job("digest_sunday", Scopes::global(), &ledger)
            .cron("0 9 * * MON-FRI", "Europe/Berlin")
            .catch_up_window(Duration::from_secs(3600)),
    )
    .unwrap();
    assert_eq!(late.run_once().await.won, 1);
    clock.set(datetime!(2026-03-08 12:00 UTC));
    assert_eq!(late.run_once().await.won, 0);
}

#[tokio::test]
async fn a_cron_job_started_without_history_waits_for_the_next_occurrence() {
    // The README's example: weekdays at 09:00 in Berlin, default options,
    // started on Sunday on an empty store.
    let (clock, store) = on_manual_clock(datetime!(2026-03-08 12:00 UTC));
    let ledger = Ledger::default();
    let m = manager(&store, "r1");
    m.register(
        recording_job("daily_digest", Scopes::global(), &ledger)
            .cron("0 9 * * MON-FRI", "Europe/Berlin"),
    )
    .unwrap();
    let report = m.run_once().await;
    assert_eq!(report.won, 0, "Friday's 09:00 is not run on Sunday");
    assert!(store.executions().is_empty());
    // Monday 09:00:20 Berlin: the next occurrence runs.
    clock.set(datetime!(2026-03-09 08:00:20 UTC));
    assert_eq!(m.run_once().await.succeeded, 1);
    assert_eq!(
        ledger.lock().unwrap().clone(),
        vec![(Scope::global(), datetime!(2026-03-09 08:00 UTC), 1)]
    );
}

#[tokio::test]
async fn cron_every_plan_replays_missed_occurrences_in_order_capped() {
    let (clock, store) = on_manual_clock(datetime!(2026-03-09 08:00:20 UTC));
    let ledger = Ledger::default();
    let m = manager(&store, "r1");
    m.register(
        recording_job("digest", Scopes::global(), &ledger)
            .cron("0 9 * * MON-FRI", "Europe/Berlin")
            .catch_up(CatchUpMode::EveryPlan)
            .catch_up_window(Duration::from_secs(5 * 86_400))
            .max_plans_per_tick(2),
    )
    .unwrap();
    // First tick: no history, so only the newest occurrence (as for cadences).
    m.run_once().await;
    // A later tick with a history: nothing newer is due.
    clock.set(datetime!(2026-03-13 08:30 UTC)); // Friday: Tue, Wed, Thu, Fri missed
    let first = m.run_once().await;
    assert_eq!(first.succeeded, 2, "capped at 2 per tick");
    let second = m.run_once().await;
    assert_eq!(second.succeeded, 2);
    let plans: Vec<OffsetDateTime> = ledger.lock().unwrap().iter().map(|(_, t, _)| *t).collect();
    assert_eq!(
        plans,
        vec![
            datetime!(2026-03-09 08:00 UTC),
            datetime!(2026-03-10 08:00 UTC),
            datetime!(2026-03-11 08:00 UTC),
            datetime!(2026-03-12 08:00 UTC),
            datetime!(2026-03-13 08:00 UTC),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_loop_wakes_at_the_next_cron_occurrence() {
    let (clock, m) = waking_manager(
        datetime!(2026-03-08 06:55 UTC),
        Duration::from_secs(24 * 3600),
    );
    let starts = Arc::new(Mutex::new(Vec::new()));
    let (s, c) = (starts.clone(), clock.clone());
    m.register(
        JobSpec::new("dst", Scopes::global(), move |ctx: RunContext| {
            let (s, c) = (s.clone(), c.clone());
            async move {
                s.lock().unwrap().push((ctx.plan_time(), c.now()));
                Ok(JobOutput::default())
            }
        })
        .cron("30 2 * * *", "America/New_York"),
    )
    .unwrap();
    m.run(tokio::time::sleep(Duration::from_secs(3600))).await;
    let starts = starts.lock().unwrap().clone();
    // 2026-03-08 02:30 does not exist in New York: it runs at 03:00 EDT = 07:00 UTC.
    let (plan, started) = *starts.last().unwrap();
    assert_eq!(plan, datetime!(2026-03-08 07:00 UTC));
    assert!(
        started - plan < time::Duration::milliseconds(5),
        "{starts:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_replica_torn_down_without_cleanup_stops_heartbeating() {
    // Dropping `run` (a crash, as far as the store can tell) must take the
    // lease keepers and the handler with it, so the lease goes stale and
    // another replica can close it.
    let (_, store) = on_tokio_clock(T0);
    let crashed = manager(&store, "crashed");
    let handler_alive = Arc::new(AtomicUsize::new(0));
    let alive = handler_alive.clone();
    crashed
        .register(
            JobSpec::new("endless", Scopes::global(), move |_ctx| {
                let guard = DropCounter(alive.clone());
                async move {
                    let _guard = guard;
                    std::future::pending::<()>().await;
                    Ok(JobOutput::default())
                }
            })
            .cadence(Duration::from_secs(3600))
            .run_timeout(Duration::from_secs(1000))
            .stale_timeout(Duration::from_secs(1200))
            .heartbeat_interval(Duration::from_secs(10)),
        )
        .unwrap();
    let run = tokio::spawn({
        let m = crashed.clone();
        async move { m.run(std::future::pending()).await }
    });
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(store.executions()[0].status, Status::Running);
    run.abort();
    let _ = run.await;
    tokio::task::yield_now().await;
    assert_eq!(
        handler_alive.load(Ordering::SeqCst),
        1,
        "the handler was dropped with it"
    );
    let last_heartbeat = store.executions()[0].heartbeat_at;
    tokio::time::sleep(Duration::from_secs(1300)).await;
    assert_eq!(
        store.executions()[0].heartbeat_at,
        last_heartbeat,
        "no heartbeats after the crash"
    );
    assert_eq!(store.sweep_stale("endless", false).await.unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_queued_lease_that_may_have_expired_is_confirmed_before_it_starts() {
    // Three plans of one scope are claimed together and run one after the
    // other while the store is down, so the last one's heartbeats fail for
    // longer than its stale_timeout: another replica may hold it by the
    // time its turn comes. The manager must confirm it before starting, and
    // not start it when it cannot.
    let (_, store) = on_tokio_clock(datetime!(2026-03-05 12:03:30 UTC));
    let job = "queued";
    let history = store
        .claim(&ClaimRequest {
            job_name: job,
            runner_id: "earlier",
            max_attempts: 3,
            stale_timeout: Duration::from_secs(60),
            allow_stale_reentry: true,
            keys: &[PlanKey {
                scope: Scope::global(),
                plan_time: datetime!(2026-03-05 12:00 UTC),
            }],
        })
        .await
        .unwrap();
    let ok = scheduler_core::Finish::success(Duration::ZERO, 0, Default::default());
    store
        .finish(history[0].lease().unwrap(), &ok)
        .await
        .unwrap();

    let started = Arc::new(Mutex::new(Vec::new()));
    let s = started.clone();
    let m = manager(&store, "a");
    m.register(
        JobSpec::new(job, Scopes::global(), move |ctx: RunContext| {
            let s = s.clone();
            async move {
                s.lock().unwrap().push(ctx.plan_time());
                tokio::time::sleep(Duration::from_secs(40)).await;
                Ok(JobOutput::default())
            }
        })
        .cadence(MIN)
        .catch_up(CatchUpMode::EveryPlan)
        .catch_up_window(10 * MIN)
        .max_plans_per_tick(5)
        .allow_stale_reentry(true)
        .run_timeout(Duration::from_secs(50))
        .stale_timeout(Duration::from_secs(60))
        .heartbeat_interval(Duration::from_secs(20)),
    )
    .unwrap();
    let run = tokio::spawn({
        let m = m.clone();
        async move { m.run_once().await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    store.set_failing(true);
    tokio::time::sleep(Duration::from_secs(200)).await;
    store.set_failing(false);
    let report = run.await.unwrap();
    assert_eq!(
        started.lock().unwrap().clone(),
        vec![
            datetime!(2026-03-05 12:01 UTC),
            datetime!(2026-03-05 12:02 UTC)
        ],
        "12:03, whose lease could not be confirmed, was not started"
    );
    assert_eq!((report.succeeded, report.lease_lost), (0, 1), "{report:?}");
}

#[tokio::test]
async fn a_dynamic_scope_provider_is_asked_each_tick_and_its_failure_skips_only_its_job() {
    let (clock, store) = on_manual_clock(T0);
    let ledger = Ledger::default();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let a = asked.clone();
    let tenants = Scopes::dynamic(move |now: OffsetDateTime| {
        let a = a.clone();
        async move {
            a.lock().unwrap().push(now);
            // A tenant signs up between the two ticks.
            let n = if a.lock().unwrap().len() == 1 { 1 } else { 2 };
            Ok((0..n)
                .map(|i| Scope::new("tenant", format!("t{i}")))
                .collect())
        }
    });
    let broken =
        Scopes::dynamic(|_now| async { Err::<Vec<Scope>, BoxError>("tenant service down".into()) });
    let m = manager(&store, "r1");
    m.register(recording_job("per_tenant", tenants, &ledger))
        .unwrap();
    m.register(recording_job("broken", broken, &ledger))
        .unwrap();
    let first = m.run_once().await;
    assert_eq!((first.succeeded, first.errors), (1, 1), "{first:?}");
    clock.advance(MIN);
    let second = m.run_once().await;
    assert_eq!(second.succeeded, 2, "the new tenant runs too: {second:?}");
    assert_eq!(
        asked.lock().unwrap().clone(),
        vec![T0, T0 + MIN],
        "asked with store time each tick"
    );
    assert!(rows_of(&store, "broken").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_blocking_its_thread_does_not_stop_its_heartbeats() {
    // A handler that blocks (std::thread::sleep instead of an await) holds
    // its worker thread; the lease's heartbeats must go on elsewhere, or
    // the lease expires under a run that is still going.
    let store = Arc::new(MemoryLeaseStore::new());
    let m = manager(&store, "r1");
    m.register(
        JobSpec::new("blocking", Scopes::global(), |_ctx| async {
            std::thread::sleep(Duration::from_millis(1500));
            Ok(JobOutput::default())
        })
        .cadence(MIN)
        .run_timeout(Duration::from_millis(900))
        .stale_timeout(Duration::from_millis(1000))
        .heartbeat_interval(Duration::from_millis(100)),
    )
    .unwrap();
    let report = m.run_once().await;
    let row = rows_of(&store, "blocking").remove(0);
    let beat = row.heartbeat_at.unwrap() - row.started_at.unwrap();
    assert!(
        beat >= time::Duration::milliseconds(1000),
        "heartbeats continued while the handler blocked (last one {beat} after the start); {report:?}"
    );
    assert_eq!(row.status, Status::Success, "the lease never lapsed");
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

/// A job whose handler fails the first attempt of every plan and succeeds
/// afterwards, recording each run.
fn fails_first_attempt(name: &str, scopes: Scopes, ledger: &Ledger) -> JobSpec {
    let ledger = ledger.clone();
    JobSpec::new(name, scopes, move |ctx: RunContext| {
        let ledger = ledger.clone();
        async move {
            ledger
                .lock()
                .unwrap()
                .push((ctx.scope().clone(), ctx.plan_time(), ctx.attempt()));
            if ctx.attempt() == 1 {
                Err(BoxError::from("first attempts fail"))
            } else {
                Ok(JobOutput::rows(1))
            }
        }
    })
    .retry_backoff(vec![])
}

#[tokio::test]
async fn latest_only_retries_the_newest_plan_whatever_older_failures_exist() {
    for scopes in [1, 3] {
        let at = datetime!(2026-03-05 08:15:30 UTC);
        let (clock, store) = on_manual_clock(at);
        let ledger = Ledger::default();
        let m = manager(&store, "r1");
        let tenants = Scopes::fixed((0..scopes).map(|i| Scope::new("tenant", format!("t{i}"))));
        m.register(
            fails_first_attempt("latest", tenants, &ledger)
                .cadence(5 * MIN)
                .catch_up_window(60 * MIN),
        )
        .unwrap();
        // 08:15 fails; no tick runs again inside its bucket.
        assert_eq!(m.run_once().await.failed, scopes);
        // 08:20 fails too; the older failure stays behind, due.
        clock.set(datetime!(2026-03-05 08:20:30 UTC));
        assert_eq!(m.run_once().await.failed, scopes);
        // The next tick inside 08:20's bucket retries 08:20 (attempt 2).
        clock.set(datetime!(2026-03-05 08:20:40 UTC));
        let report = m.run_once().await;
        assert_eq!(
            (report.retried, report.succeeded),
            (scopes, scopes),
            "{scopes} scope(s)"
        );
        let newest = datetime!(2026-03-05 08:20 UTC);
        for row in rows_of(&store, "latest")
            .iter()
            .filter(|r| r.plan_time == newest)
        {
            assert_eq!((row.status, row.attempt), (Status::Success, 2));
        }
    }
}

#[tokio::test]
async fn every_plan_retries_of_one_scope_never_wait_behind_another_scopes_failures() {
    let now = datetime!(2026-03-05 12:00:30 UTC);
    let (_clock, store) = on_manual_clock(now);
    let bucket = datetime!(2026-03-05 12:00 UTC);
    let (a, b) = (Scope::new("t", "a"), Scope::new("t", "b"));
    // Scope a: five old failures; scope b: one, with a newer success.
    // Both scopes' current bucket already succeeded.
    let mut failures: Vec<PlanKey> = (6..=10)
        .map(|m| PlanKey {
            scope: a.clone(),
            plan_time: bucket - MIN * m,
        })
        .collect();
    failures.push(PlanKey {
        scope: b.clone(),
        plan_time: bucket - MIN * 5,
    });
    let request = |keys| ClaimRequest {
        job_name: "every",
        runner_id: "seed",
        max_attempts: 3,
        stale_timeout: Duration::from_secs(600),
        allow_stale_reentry: false,
        keys,
    };
    for outcome in store.claim(&request(&failures)).await.unwrap() {
        let failure = scheduler_core::Finish::failure(
            Duration::ZERO,
            scheduler_core::ErrorCode::HandlerError,
            "old failure",
            Duration::ZERO,
        );
        store
            .finish(outcome.lease().unwrap(), &failure)
            .await
            .unwrap();
    }
    let done: Vec<PlanKey> = [&a, &b]
        .map(|s| PlanKey {
            scope: s.clone(),
            plan_time: bucket,
        })
        .to_vec();
    for outcome in store.claim(&request(&done)).await.unwrap() {
        let ok = scheduler_core::Finish::success(Duration::ZERO, 0, Default::default());
        store.finish(outcome.lease().unwrap(), &ok).await.unwrap();
    }
    let ledger = Ledger::default();
    let m = manager(&store, "r1");
    m.register(
        recording_job("every", Scopes::fixed([a.clone(), b.clone()]), &ledger)
            .catch_up(CatchUpMode::EveryPlan)
            .catch_up_window(60 * MIN)
            .max_plans_per_tick(1),
    )
    .unwrap();
    let report = m.run_once().await;
    assert_eq!(report.retried, 2, "one per scope: {report:?}");
    let mut ran = ledger.lock().unwrap().clone();
    ran.sort();
    assert_eq!(
        ran,
        vec![(a, bucket - MIN * 10, 2), (b, bucket - MIN * 5, 2)],
        "each scope's oldest failure"
    );
}

#[tokio::test]
async fn an_operator_retry_runs_once_whatever_the_catch_up_rules_say() {
    for mode in [CatchUpMode::LatestOnly, CatchUpMode::EveryPlan] {
        let (clock, store) = on_manual_clock(T0);
        let ledger = Ledger::default();
        let m = manager(&store, "r1");
        m.register(
            fails_first_attempt("digest", Scopes::global(), &ledger)
                .cadence(MIN)
                .max_attempts(1)
                .catch_up(mode)
                .catch_up_window(5 * MIN)
                .max_plans_per_tick(1),
        )
        .unwrap();
        assert_eq!(m.run_once().await.failed, 1, "{mode:?}: attempts used up");
        let old = rows_of(&store, "digest")[0].clone();
        // Half an hour on: newer buckets ran, the failure is outside the
        // window, and latest_only would never look at it again.
        clock.advance(30 * MIN);
        m.run_once().await;
        let repaired = store.retry_execution(old.id).await.unwrap();
        assert_eq!(repaired.max_attempts, 2);
        let report = m.run_once().await;
        assert_eq!(report.retried, 1, "{mode:?}: {report:?}");
        let row = store.get_execution(old.id).await.unwrap().unwrap();
        assert_eq!((row.status, row.attempt), (Status::Success, 2), "{mode:?}");
        assert_eq!(m.run_once().await.retried, 0, "{mode:?}: once, not again");
    }
}
