//! Triggers: one run per target scope, off the schedule's instants, then
//! done; the scheduled plans untouched; a trigger for a scope the job does
//! not have rejected; a failed trigger run retried whatever the catch-up
//! rules say.

use scheduler_core::model::{ControlAction, ControlState, Origin};
use scheduler_core::time::TimeControl;
use scheduler_core::{
    BoxError, CatchUpMode, JobOutput, JobSpec, RunContext, Scope, Scopes, Status,
};
use time::macros::datetime;

use crate::common::{
    add_control, control, manager, on_manual_clock, record, recording_job, rows_of, Ledger, MIN, T0,
};

#[tokio::test]
async fn a_trigger_runs_once_for_every_scope_and_is_then_done() {
    let (clock, store) = on_manual_clock(T0);
    let scopes: Vec<Scope> = ["a", "b", "c"]
        .into_iter()
        .map(|id| Scope::new("tenant", id))
        .collect();
    let ledger = Ledger::default();
    let m = manager(&store, "r1");
    m.register(recording_job(
        "digest",
        Scopes::fixed(scopes.clone()),
        &ledger,
    ))
    .unwrap();
    assert_eq!(m.run_once().await.succeeded, 3, "the 12:00 plans");
    clock.advance(std::time::Duration::from_secs(10));
    let trigger = add_control(&store, "digest", None, ControlAction::Trigger).await;
    let report = m.run_once().await;
    assert_eq!((report.won, report.succeeded), (3, 3), "{report:?}");
    let runs: Vec<_> = rows_of(&store, "digest")
        .into_iter()
        .filter(|r| r.origin == Origin::Trigger)
        .collect();
    assert_eq!(runs.len(), 3);
    for (run, scope) in runs.iter().zip(&scopes) {
        assert_eq!(&run.scope, scope);
        assert_eq!(run.plan_time, datetime!(2026-03-05 12:00:40 UTC));
        assert_eq!(run.control_id, Some(trigger.id));
        assert_eq!(run.status, Status::Success);
    }
    assert_eq!(control(&store, trigger.id).await.state, ControlState::Done);
    clock.advance(std::time::Duration::from_secs(10));
    assert_eq!(m.run_once().await.won, 0, "a done trigger runs no more");
    assert_eq!(ledger.lock().unwrap().len(), 6);
}

#[tokio::test]
async fn a_trigger_on_a_scheduled_instant_leaves_that_plan_to_run() {
    let (clock, store) = on_manual_clock(T0);
    let ledger = Ledger::default();
    let m = manager(&store, "r1");
    m.register(recording_job("report", Scopes::global(), &ledger))
        .unwrap();
    m.run_once().await;
    // Exactly on the 12:01 plan.
    clock.set(datetime!(2026-03-05 12:01 UTC));
    let trigger = add_control(&store, "report", None, ControlAction::Trigger).await;
    let first = m.run_once().await;
    assert_eq!(
        first.won, 1,
        "the plan first; the trigger waits for its scope: {first:?}"
    );
    let second = m.run_once().await;
    assert_eq!(second.won, 1, "{second:?}");
    assert_eq!(control(&store, trigger.id).await.state, ControlState::Done);
    let rows: Vec<_> = rows_of(&store, "report")
        .into_iter()
        .map(|r| (r.plan_time, r.origin, r.status))
        .collect();
    assert_eq!(
        rows,
        [
            (
                datetime!(2026-03-05 12:00 UTC),
                Origin::Scheduled,
                Status::Success
            ),
            (
                datetime!(2026-03-05 12:01 UTC),
                Origin::Scheduled,
                Status::Success
            ),
            (
                datetime!(2026-03-05 12:01:00.000001 UTC),
                Origin::Trigger,
                Status::Success
            ),
        ]
    );
}

#[tokio::test]
async fn a_triggers_run_newer_than_missed_plans_does_not_hide_them() {
    let (clock, store) = on_manual_clock(T0);
    let ledger = Ledger::default();
    let every = |runner: &str| {
        let m = manager(&store, runner);
        m.register(
            recording_job("every", Scopes::global(), &ledger)
                .catch_up(CatchUpMode::EveryPlan)
                .catch_up_window(10 * MIN)
                .max_plans_per_tick(10),
        )
        .unwrap();
        m
    };
    every("r1").run_once().await;
    // 12:01 and 12:02 are missed; meanwhile a replica that plans nothing
    // of its own (a custom planner) runs a trigger just after its creation.
    clock.set(datetime!(2026-03-05 12:02:40 UTC));
    let trigger = add_control(&store, "every", None, ControlAction::Trigger).await;
    let other = manager(&store, "custom");
    other
        .register(
            recording_job("every", Scopes::global(), &ledger)
                .cadence(std::time::Duration::ZERO)
                .planner(|_, _, _| Vec::new()),
        )
        .unwrap();
    assert_eq!(other.run_once().await.succeeded, 1);
    assert_eq!(control(&store, trigger.id).await.state, ControlState::Done);
    // A replica that starts now still catches up from 12:00.
    clock.set(datetime!(2026-03-05 12:02:50 UTC));
    assert_eq!(every("r2").run_once().await.succeeded, 2);
    let plans: Vec<_> = rows_of(&store, "every")
        .into_iter()
        .map(|r| (r.plan_time, r.origin))
        .collect();
    assert_eq!(
        plans,
        [
            (datetime!(2026-03-05 12:00 UTC), Origin::Scheduled),
            (datetime!(2026-03-05 12:01 UTC), Origin::Scheduled),
            (datetime!(2026-03-05 12:02 UTC), Origin::Scheduled),
            (datetime!(2026-03-05 12:02:40.000001 UTC), Origin::Trigger),
        ]
    );
}

#[tokio::test]
async fn a_trigger_of_a_job_with_a_custom_planner_never_takes_a_planned_key() {
    let (_clock, store) = on_manual_clock(datetime!(2026-03-05 12:01 UTC));
    let ledger = Ledger::default();
    let m = manager(&store, "r1");
    m.register(
        recording_job("custom", Scopes::global(), &ledger)
            .cadence(std::time::Duration::ZERO)
            .planner(|_, now, _| vec![scheduler_core::plan::floor(now, MIN)]),
    )
    .unwrap();
    // Made at the very instant the planner plans.
    let trigger = add_control(&store, "custom", None, ControlAction::Trigger).await;
    m.run_once().await;
    m.run_once().await;
    assert_eq!(control(&store, trigger.id).await.state, ControlState::Done);
    let plans: Vec<_> = rows_of(&store, "custom")
        .into_iter()
        .map(|r| (r.plan_time, r.origin))
        .collect();
    assert_eq!(
        plans,
        [
            (datetime!(2026-03-05 12:01 UTC), Origin::Scheduled),
            (datetime!(2026-03-05 12:01:00.000001 UTC), Origin::Trigger),
        ]
    );
}

#[tokio::test]
async fn a_trigger_for_a_scope_the_job_does_not_have_is_rejected() {
    let (_clock, store) = on_manual_clock(T0);
    let ledger = Ledger::default();
    let m = manager(&store, "r1");
    m.register(recording_job(
        "digest",
        Scopes::fixed([Scope::new("tenant", "a")]),
        &ledger,
    ))
    .unwrap();
    let stray = Some(Scope::new("tenant", "zzz"));
    let trigger = add_control(&store, "digest", stray, ControlAction::Trigger).await;
    assert_eq!(m.run_once().await.won, 1, "the schedule runs on");
    let ended = control(&store, trigger.id).await;
    assert_eq!(ended.state, ControlState::Rejected);
    assert_eq!(
        ended.reason.as_deref(),
        Some("scope tenant/zzz is not among the job's scopes")
    );
    assert!(rows_of(&store, "digest")
        .iter()
        .all(|r| r.origin == Origin::Scheduled));
}

#[tokio::test]
async fn a_failed_trigger_run_is_retried_whatever_the_catch_up_rules_say() {
    let (clock, store) = on_manual_clock(T0);
    let ledger = Ledger::default();
    let m = manager(&store, "r1");
    m.register(
        fails_first_trigger_attempt("latest", &ledger)
            .retry_backoff(vec![std::time::Duration::from_secs(10)]),
    )
    .unwrap();
    m.run_once().await;
    clock.advance(std::time::Duration::from_secs(10));
    let trigger = add_control(&store, "latest", None, ControlAction::Trigger).await;
    assert_eq!(m.run_once().await.failed, 1);
    assert_eq!(
        control(&store, trigger.id).await.state,
        ControlState::Done,
        "every target has its run, failed or not"
    );
    // Two plans later, latest_only would only ever run 12:02.
    clock.advance(2 * MIN);
    let plan = m.run_once().await;
    assert_eq!(plan.won, 1, "12:02 first: {plan:?}");
    let retry = m.run_once().await;
    assert_eq!((retry.retried, retry.succeeded), (1, 1), "{retry:?}");
    let triggered = rows_of(&store, "latest")
        .into_iter()
        .find(|r| r.origin == Origin::Trigger)
        .unwrap();
    assert_eq!(
        (triggered.status, triggered.attempt, triggered.control_id),
        (Status::Success, 2, Some(trigger.id))
    );
}

/// A one-minute job on the global scope, recording each run, whose handler
/// fails the first attempt of every plan off the minute (a trigger's).
fn fails_first_trigger_attempt(name: &str, ledger: &Ledger) -> JobSpec {
    let ledger = ledger.clone();
    JobSpec::new(name, Scopes::global(), move |ctx: RunContext| {
        let ledger = ledger.clone();
        async move {
            record(&ledger, &ctx);
            if ctx.plan_time().second() != 0 && ctx.attempt() == 1 {
                return Err::<JobOutput, BoxError>("the first attempt fails".into());
            }
            Ok(JobOutput::rows(1))
        }
    })
    .cadence(MIN)
}

/// A running manager wakes on the store's control channel: a trigger runs
/// at once, not at the next tick an hour later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_wakes_a_running_manager_at_once() {
    let store = std::sync::Arc::new(scheduler_memory::MemoryLeaseStore::new());
    let took =
        scheduler_conformance::manager_wakes_at_once_for_a_trigger(store.clone(), &*store).await;
    eprintln!("trigger to run on a running manager: {took:?}");
}
