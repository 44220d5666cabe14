//! Pauses: a paused job runs nothing but is still swept; a resume catches
//! up by the job's rules, or skips what the pause missed; a pause of one
//! scope; a pause that runs out by itself.

use std::sync::Arc;
use std::time::Duration;

use scheduler_core::model::ControlAction;
use scheduler_core::store::CountingStore;
use scheduler_core::time::TimeControl;
use scheduler_core::{CatchUpMode, ManagerOptions, Scope, Scopes, Status};
use time::macros::datetime;

use crate::common::{
    add_control, capped_manager, dead_runners_lease, manager, manager_with, on_manual_clock,
    on_tokio_clock, pause, plans_of, recording_job, resume, row, rows_of, start_recording_job,
    Ledger, Starts, MIN, T0,
};

#[tokio::test]
async fn a_paused_job_runs_nothing_and_its_dead_leases_are_still_swept() {
    let (clock, store) = on_manual_clock(T0);
    let dead = dead_runners_lease(
        &store,
        &clock,
        "paused",
        false,
        datetime!(2026-03-05 12:00 UTC),
    )
    .await;
    let held = pause(&store, "paused", None).await;
    let counting = Arc::new(CountingStore::new(store.clone()));
    let m = capped_manager(counting.clone(), "r1", 64);
    let ledger = Ledger::default();
    m.register(recording_job("paused", Scopes::global(), &ledger))
        .unwrap();
    let report = m.run_once().await;
    assert_eq!((report.swept, report.won), (1, 0), "{report:?}");
    let swept = row(&store, dead).await;
    assert_eq!(
        (swept.status, swept.error_code.as_deref()),
        (Status::Failed, Some("stale_timeout"))
    );
    clock.advance(5 * MIN);
    assert_eq!(m.run_once().await, Default::default());
    assert!(ledger.lock().unwrap().is_empty());
    assert_eq!(rows_of(&store, "paused").len(), 1, "only the swept row");
    let calls = counting.take();
    assert_eq!(
        calls.get("claim"),
        None,
        "a paused job is not even planned: {calls:?}"
    );
    resume(&store, held.id, false).await;
    assert_eq!(m.run_once().await.succeeded, 1);
}

#[tokio::test]
async fn after_a_resume_latest_only_runs_the_newest_missed_plan_only() {
    let (clock, store) = on_manual_clock(T0);
    let ledger = Ledger::default();
    let m = manager(&store, "r1");
    m.register(recording_job("latest", Scopes::global(), &ledger))
        .unwrap();
    assert_eq!(m.run_once().await.succeeded, 1);
    let held = pause(&store, "latest", None).await;
    clock.advance(10 * MIN);
    assert_eq!(m.run_once().await.won, 0);
    resume(&store, held.id, false).await;
    assert_eq!(m.run_once().await.succeeded, 1);
    assert_eq!(
        plans_of(&ledger, &Scope::global()),
        [
            datetime!(2026-03-05 12:00 UTC),
            datetime!(2026-03-05 12:10 UTC)
        ]
    );
}

#[tokio::test]
async fn after_a_resume_every_plan_replays_the_missed_plans_within_its_window() {
    let (clock, store) = on_manual_clock(T0);
    let ledger = Ledger::default();
    let m = manager(&store, "r1");
    m.register(
        recording_job("every", Scopes::global(), &ledger)
            .catch_up(CatchUpMode::EveryPlan)
            .catch_up_window(5 * MIN)
            .max_plans_per_tick(10),
    )
    .unwrap();
    m.run_once().await;
    let held = pause(&store, "every", None).await;
    clock.advance(10 * MIN); // 12:10:30
    m.run_once().await;
    resume(&store, held.id, false).await;
    assert_eq!(m.run_once().await.succeeded, 5);
    // The window reaches back to 12:05:30: 12:01 to 12:05 are not replayed.
    let expected: Vec<_> = [0, 6, 7, 8, 9, 10]
        .into_iter()
        .map(|m| datetime!(2026-03-05 12:00 UTC) + time::Duration::minutes(m))
        .collect();
    assert_eq!(plans_of(&ledger, &Scope::global()), expected);
}

#[tokio::test]
async fn a_resume_that_skips_what_was_missed_runs_none_of_the_paused_plans() {
    let (clock, store) = on_manual_clock(T0);
    let ledger = Ledger::default();
    let m = manager(&store, "r1");
    m.register(recording_job("latest", Scopes::global(), &ledger))
        .unwrap();
    m.register(
        recording_job("every", Scopes::global(), &ledger)
            .catch_up(CatchUpMode::EveryPlan)
            .catch_up_window(30 * MIN)
            // Fewer than the window holds: the cursor must jump past it.
            .max_plans_per_tick(3),
    )
    .unwrap();
    assert_eq!(m.run_once().await.succeeded, 2, "12:00 of both");
    let latest = pause(&store, "latest", None).await;
    let every = pause(&store, "every", None).await;
    clock.advance(10 * MIN); // 12:10:30
    resume(&store, latest.id, true).await;
    resume(&store, every.id, true).await;
    let report = m.run_once().await;
    assert_eq!(report.won, 0, "12:10 is inside the pause: {report:?}");
    clock.advance(MIN); // 12:11:30
    assert_eq!(m.run_once().await.succeeded, 2, "12:11 of both");
    clock.advance(MIN); // 12:12:30
    assert_eq!(m.run_once().await.succeeded, 2, "12:12 of both");
    for job in ["latest", "every"] {
        let plans: Vec<_> = rows_of(&store, job).iter().map(|r| r.plan_time).collect();
        assert_eq!(
            plans,
            [
                datetime!(2026-03-05 12:00 UTC),
                datetime!(2026-03-05 12:11 UTC),
                datetime!(2026-03-05 12:12 UTC)
            ],
            "{job}"
        );
    }
}

#[tokio::test]
async fn a_pause_of_one_scope_holds_that_scope_only() {
    let (clock, store) = on_manual_clock(T0);
    let (a, b) = (Scope::new("tenant", "a"), Scope::new("tenant", "b"));
    let ledger = Ledger::default();
    let m = manager(&store, "r1");
    m.register(recording_job(
        "tenants",
        Scopes::fixed([a.clone(), b.clone()]),
        &ledger,
    ))
    .unwrap();
    let held = pause(&store, "tenants", Some(a.clone())).await;
    let report = m.run_once().await;
    assert_eq!(
        (report.succeeded, report.paused),
        (1, 0),
        "a is left out of planning, not refused: {report:?}"
    );
    clock.advance(MIN);
    m.run_once().await;
    assert!(plans_of(&ledger, &a).is_empty());
    assert_eq!(plans_of(&ledger, &b).len(), 2);
    resume(&store, held.id, false).await;
    m.run_once().await;
    assert_eq!(plans_of(&ledger, &a), [datetime!(2026-03-05 12:01 UTC)]);
}

#[tokio::test(start_paused = true)]
async fn a_pause_with_an_end_runs_out_by_itself_and_the_loop_wakes_then() {
    let (clock, store) = on_tokio_clock(datetime!(2026-03-05 12:00:00.5 UTC));
    let m = manager_with(
        store.clone(),
        ManagerOptions {
            runner_id: "r1".into(),
            tick_interval: Duration::from_secs(3600),
            ..Default::default()
        },
    );
    let until = datetime!(2026-03-05 12:03:30 UTC);
    let (catch_up, skip) = (Starts::default(), Starts::default());
    for (job, starts, skip_missed) in [("catch_up", &catch_up, false), ("skip", &skip, true)] {
        let held = ControlAction::Pause {
            until: Some(until),
            skip_missed,
        };
        add_control(&store, job, None, held).await;
        m.register(start_recording_job(job, Scopes::global(), &clock, starts).cadence(MIN))
            .unwrap();
    }
    m.run(tokio::time::sleep(Duration::from_secs(5 * 60))).await;
    let at = |m: i64| datetime!(2026-03-05 12:00 UTC) + time::Duration::minutes(m);
    let catch_up = catch_up.lock().unwrap().clone();
    let plans: Vec<_> = catch_up.iter().map(|(plan, _)| *plan).collect();
    assert_eq!(plans, [at(3), at(4), at(5)]);
    let late = catch_up[0].1 - until;
    assert!(
        late >= time::Duration::ZERO && late <= time::Duration::milliseconds(5),
        "12:03 starts as the pause runs out: {catch_up:?}"
    );
    let plans: Vec<_> = skip.lock().unwrap().iter().map(|(plan, _)| *plan).collect();
    assert_eq!(plans, [at(4), at(5)], "the plans of the pause are skipped");
}
