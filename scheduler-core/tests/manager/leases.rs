//! Leases: takeovers of stale leases, lost leases cancelling their handler, run
//! timeouts, heartbeats that must go on (or stop), and queued leases confirmed
//! before they start.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scheduler_core::store::CountingStore;
use scheduler_core::time::TimeControl;
use scheduler_core::{
    CatchUpMode, Clock, Finish, JobOutput, JobSpec, LeaseStore, LeaseStoreExt, RunContext, Scopes,
    Status,
};
use scheduler_memory::MemoryLeaseStore;
use time::macros::datetime;
use tokio::sync::Notify;

use crate::common::{
    blocking_job, capped_manager, claim_as, dead_runners_lease, global_at, hanging_job, manager,
    on_manual_clock, on_tokio_clock, recording_job, row, rows_of, spawn_run_once, Ledger, MIN, T0,
};

#[tokio::test]
async fn a_stale_lease_is_taken_over_and_the_old_runners_success_is_rejected() {
    let (clock, store) = on_manual_clock(T0);
    let (gate, started) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let slow = manager(&store, "slow");
    slow.register(blocking_job("report", &gate, &started).allow_stale_reentry(true))
        .unwrap();
    let slow_run = spawn_run_once(&slow);
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
    let taken = row(&store, first.id).await;
    assert_eq!(taken.attempt, 2);
    assert_ne!(taken.lease_token, first.lease_token);
    assert_eq!(taken.runner_id.as_deref(), Some("fast"));
    assert_eq!(taken.status, Status::Success);

    gate.notify_one();
    let late = slow_run.await.unwrap();
    assert_eq!((late.succeeded, late.lease_lost), (0, 1), "{late:?}");
    let after = row(&store, first.id).await;
    assert_eq!(after, taken, "the late SUCCESS changed nothing");
}

#[tokio::test]
async fn a_tick_closes_a_dead_runners_lease_and_runs_the_current_plan() {
    for reentrant in [false, true] {
        let (clock, store) = on_manual_clock(T0);
        let job = format!("cleanup_{reentrant}");
        let dead_plan = datetime!(2026-03-05 12:00 UTC);
        let dead_id = dead_runners_lease(&store, &clock, &job, reentrant, dead_plan).await;
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
        let closed = row(&store, dead_id).await;
        assert_eq!(closed.status, Status::Failed);
        assert_eq!(closed.error_code.as_deref(), Some("stale_timeout"));
        let current = ledger.lock().unwrap()[0].1;
        assert_eq!(current, datetime!(2026-03-05 12:10 UTC));
    }
}

#[tokio::test(start_paused = true)]
async fn a_handler_ignoring_cancellation_is_stopped_at_run_timeout() {
    let (_, store) = on_tokio_clock(T0);
    let m = manager(&store, "r1");
    let dropped = Arc::new(AtomicUsize::new(0));
    m.register(
        hanging_job("hangs", &dropped)
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

#[tokio::test(start_paused = true)]
async fn losing_the_lease_cancels_the_handler_and_writes_nothing() {
    let (clock, store) = on_tokio_clock(T0);
    let m = manager(&store, "r1");
    let dropped = Arc::new(AtomicUsize::new(0));
    m.register(
        hanging_job("victim", &dropped)
            .cadence(MIN)
            .allow_stale_reentry(true)
            .run_timeout(Duration::from_secs(50))
            .stale_timeout(Duration::from_secs(60))
            .heartbeat_interval(Duration::from_secs(10)),
    )
    .unwrap();
    let run = spawn_run_once(&m);
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

#[tokio::test(start_paused = true)]
async fn a_replica_torn_down_without_cleanup_stops_heartbeating() {
    // Dropping `run` (a crash, as far as the store can tell) must take the
    // lease keepers and the handler with it, so the lease goes stale and
    // another replica can close it.
    let (_, store) = on_tokio_clock(T0);
    let crashed = manager(&store, "crashed");
    let handler_alive = Arc::new(AtomicUsize::new(0));
    crashed
        .register(
            hanging_job("endless", &handler_alive)
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
    let history = claim_as(
        &store,
        job,
        "earlier",
        Duration::from_secs(60),
        true,
        &global_at(datetime!(2026-03-05 12:00 UTC)),
    )
    .await;
    let ok = Finish::success(Duration::ZERO, 0, Default::default());
    store.finish(&history[0], &ok).await.unwrap();

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
    let run = spawn_run_once(&m);
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

/// A stalled sweep holds up no claim of a job whose swept rows wait for an
/// operator: the sweep runs beside the claim. A job that allows stale
/// re-entry sweeps first, since this tick's retry read must find the rows
/// the sweep makes due, so its run starts once the sweep is through.
#[tokio::test(start_paused = true)]
async fn a_stalled_sweep_holds_up_only_the_claims_of_reentrant_jobs() {
    const STALL: Duration = Duration::from_secs(30);
    for reentrant in [false, true] {
        let (_clock, store) = on_tokio_clock(T0);
        let stalling = Arc::new(CountingStore::new(store).with_sweep_delay(STALL));
        let m = capped_manager(stalling, "r1", 1);
        let started = Arc::new(Mutex::new(None));
        let s = started.clone();
        let job = JobSpec::new("report", Scopes::global(), move |_ctx: RunContext| {
            let s = s.clone();
            async move {
                *s.lock().unwrap() = Some(tokio::time::Instant::now());
                Ok(JobOutput::default())
            }
        })
        .cadence(MIN)
        .allow_stale_reentry(reentrant);
        m.register(job).unwrap();
        let ticked = tokio::time::Instant::now();
        assert_eq!(m.run_once().await.succeeded, 1);
        let waited = started.lock().unwrap().expect("the plan ran") - ticked;
        if reentrant {
            assert!(waited >= STALL, "reentrant: started after {waited:?}");
        } else {
            assert!(waited < STALL, "not reentrant: started after {waited:?}");
        }
    }
}
