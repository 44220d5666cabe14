//! What a tick claims and runs: one execution per plan among replicas, capacity,
//! plan order within a scope, planners and scope providers, what a tick costs,
//! and handlers that fail, panic or write too much.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scheduler_core::model::{MAX_ERROR_MSG_BYTES, RESULT_TOO_LARGE_KEY};
use scheduler_core::time::TimeControl;
use scheduler_core::{
    BoxError, CatchUpMode, JobOutput, JobSpec, Manager, OverlapPolicy, PlanKey, RunContext, Scope,
    Scopes, Status,
};
use time::macros::datetime;
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::common::{
    blocking_job, capped_manager, claim_as, manager, on_manual_clock, panicking_job, recording_job,
    rows_of, spawn_run_once, Ledger, MIN, T0,
};

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

#[tokio::test]
async fn a_replica_claims_only_its_free_capacity() {
    let (_clock, store) = on_manual_clock(T0);
    let ledger = Ledger::default();
    let scopes = Scopes::fixed((0..5).map(|i| Scope::new("tenant", format!("{i}"))));
    let small = capped_manager(store.clone(), "small", 2);
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
async fn an_idle_tick_costs_two_store_calls_per_job_and_one_control_and_schedule_read_whatever_the_scope_count(
) {
    let (clock, store) = on_manual_clock(T0);
    let counting = Arc::new(scheduler_core::store::CountingStore::new(store.clone()));
    let m = capped_manager(counting.clone(), "r1", 5_000);
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
        .filter(|(m, _)| !["now", "controls", "schedules"].contains(*m))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(per_job, 2 * 2, "sweep + retry_due per job: {calls:?}");
    assert_eq!(calls.get("now"), Some(&1), "one store-time read per tick");
    assert_eq!(
        calls.get("controls"),
        Some(&1),
        "one control read per tick, whatever the number of jobs"
    );
    assert_eq!(
        calls.get("schedules"),
        Some(&1),
        "one stored-schedule read per tick"
    );
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
async fn a_panicking_handler_gives_failed_handler_panic_with_the_text() {
    let (_clock, store) = on_manual_clock(T0);
    let m = manager(&store, "r1");
    m.register(panicking_job("panics", "tenant table missing"))
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
    let run = spawn_run_once(&m);
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

/// A replica with less free capacity than due scopes plans on from where
/// its last tick stopped (`docs/contract.md` §7, round robin): scopes whose
/// claims another replica's runs keep answering `Busy` do not hold every
/// tick to the same first keys, so every free scope runs in the end.
#[tokio::test]
async fn a_capacity_bound_replica_works_round_robin_over_its_scopes() {
    let (_clock, store) = on_manual_clock(T0);
    let ledger = Ledger::default();
    let all: Vec<Scope> = (0..10)
        .map(|i| Scope::new("tenant", format!("{i}")))
        .collect();
    // Another replica still runs the previous minute's plan of scopes 0-7:
    // under buffer_all their current plans wait (Busy), tick after tick.
    let held: Vec<PlanKey> = all[..8]
        .iter()
        .map(|scope| PlanKey {
            scope: scope.clone(),
            plan_time: datetime!(2026-03-05 11:59 UTC),
        })
        .collect();
    claim_as(
        &store,
        "rr",
        "other",
        Duration::from_secs(600),
        false,
        &held,
    )
    .await;
    let m = capped_manager(store.clone(), "rr-1", 1);
    m.register(
        recording_job("rr", Scopes::fixed(all.clone()), &ledger).overlap(OverlapPolicy::BufferAll),
    )
    .unwrap();
    for _ in 0..2 * all.len() {
        m.run_once().await;
    }
    let ran: Vec<Scope> = ledger.lock().unwrap().iter().map(|r| r.0.clone()).collect();
    assert_eq!(ran.len(), 2, "each free scope ran once: {ran:?}");
    for free in &all[8..] {
        assert!(ran.contains(free), "{free:?} never ran: {ran:?}");
    }
}

/// A batch's scopes run side by side, a few to a task: a hundred handlers
/// that each wait until all hundred have started all succeed (had one
/// waited behind another, none would start and the run timeout, reached
/// at once on the paused clock, would fail them all), and they run in a
/// handful of tasks, not one per scope.
#[tokio::test(start_paused = true)]
async fn a_batchs_scopes_run_side_by_side_a_few_to_a_task() {
    const SCOPES: usize = 100;
    let (_clock, store) = on_manual_clock(T0);
    let m = capped_manager(store.clone(), "r1", SCOPES);
    let all_started = Arc::new(tokio::sync::Barrier::new(SCOPES));
    let most_tasks = Arc::new(AtomicUsize::new(0));
    let (started, tasks) = (all_started.clone(), most_tasks.clone());
    let scopes: Vec<Scope> = (0..SCOPES)
        .map(|i| Scope::new("tenant", format!("t{i:03}")))
        .collect();
    let job = JobSpec::new("fan", Scopes::fixed(scopes), move |_ctx: RunContext| {
        let (started, tasks) = (started.clone(), tasks.clone());
        async move {
            started.wait().await;
            let alive = tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks();
            tasks.fetch_max(alive, Ordering::SeqCst);
            Ok(JobOutput::default())
        }
    })
    .cadence(MIN);
    m.register(job).unwrap();
    let report = m.run_once().await;
    assert_eq!(report.succeeded, SCOPES as u64, "{report:?}");
    // 100 scopes at 32 a task are 4 tasks, plus the batch's heartbeats
    // and the completer's: 6 at most. One task per scope would be 101.
    let alive = most_tasks.load(Ordering::SeqCst);
    assert!(alive <= 6, "{alive} tasks alive for {SCOPES} scopes");
}
