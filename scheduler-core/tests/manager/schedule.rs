//! When the loop wakes and what it plans: exact wake-ups for cadences and cron
//! occurrences, spread, and cron catch-up after an outage or at first start.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use scheduler_core::{CatchUpMode, JobSpec, Scope, Scopes};
use time::macros::datetime;
use time::OffsetDateTime;

use crate::common::{
    manager, on_manual_clock, recording_job, spawn_run, start_recording_job, waking_manager,
    Ledger, Starts, MIN,
};

#[tokio::test(start_paused = true)]
async fn the_loop_wakes_when_the_next_plan_becomes_eligible() {
    let (clock, m) = waking_manager(
        datetime!(2026-03-05 12:00:00.5 UTC),
        Duration::from_secs(3600),
    );
    let starts = Starts::default();
    m.register(
        start_recording_job("exact", Scopes::global(), &clock, &starts)
            .cadence(Duration::from_secs(10))
            .schedule_delay(Duration::from_secs(2)),
    )
    .unwrap();
    let (stop, run) = spawn_run(&m);
    tokio::time::sleep(Duration::from_secs(35)).await;
    stop.notify_one();
    let report = run.await.unwrap();
    // 11:59:50 at start, then 12:00:00 (due 12:00:02), :10, :20, :30 -> 5 runs.
    assert_eq!(report.succeeded, 5, "{report:?}");
    // How long after its plan became due (plan time + schedule delay) each run started.
    let lateness: Vec<time::Duration> = starts
        .lock()
        .unwrap()
        .iter()
        .map(|(plan, start)| *start - (*plan + Duration::from_secs(2)))
        .collect();
    for late in &lateness[1..] {
        assert!(
            *late >= time::Duration::ZERO && *late <= time::Duration::milliseconds(5),
            "{lateness:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_tick_does_not_wake_the_loop_before_the_next_plan_is_due() {
    let (clock, m) = waking_manager(
        datetime!(2026-03-05 12:00:30 UTC),
        Duration::from_secs(3600),
    );
    let starts = Starts::default();
    // Each tick spends 10 s resolving the scopes: a tick as slow as a
    // store on a loaded host makes it, on tokio's clock.
    let resolutions = Arc::new(AtomicUsize::new(0));
    let scopes = Scopes::dynamic({
        let resolutions = resolutions.clone();
        move |_| {
            resolutions.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                Ok(vec![Scope::global()])
            }
        }
    });
    m.register(start_recording_job("slow_tick", scopes, &clock, &starts).cadence(MIN))
        .unwrap();
    let (stop, run) = spawn_run(&m);
    // Ticks at 12:00:30 (12:00 due) and just after 12:01:00 (12:01 due),
    // each 10 s long; none in between, which could only find nothing due.
    tokio::time::sleep(Duration::from_secs(45)).await;
    stop.notify_one();
    assert_eq!(run.await.unwrap().succeeded, 2);
    assert_eq!(resolutions.load(Ordering::SeqCst), 2, "one tick per plan");
}

#[tokio::test(start_paused = true)]
async fn spread_staggers_scope_starts_inside_the_window() {
    let (clock, m) = waking_manager(
        datetime!(2026-03-05 12:00:00.5 UTC),
        Duration::from_secs(3600),
    );
    let starts = Starts::default();
    let tenants = Scopes::fixed((0..20).map(|i| Scope::new("tenant", format!("{i}"))));
    m.register(
        start_recording_job("spread", tenants, &clock, &starts)
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
    m.register(weekday_digest("digest", &ledger).catch_up_window(Duration::from_secs(3600)))
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
        weekday_digest("digest_sunday", &ledger).catch_up_window(Duration::from_secs(3600)),
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
    m.register(weekday_digest("daily_digest", &ledger)).unwrap();
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
        weekday_digest("digest", &ledger)
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
    let starts = Starts::default();
    m.register(
        start_recording_job("dst", Scopes::global(), &clock, &starts)
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

/// The README's example: a recording job on weekdays at 09:00 in Berlin.
fn weekday_digest(name: &str, ledger: &Ledger) -> JobSpec {
    recording_job(name, Scopes::global(), ledger).cron("0 9 * * MON-FRI", "Europe/Berlin")
}
