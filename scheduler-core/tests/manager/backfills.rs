//! Backfills: every instant of the range once for every scope, a few keys
//! per tick, instants already run left alone; progress kept in the store
//! across a restart; overlapping backfills on two replicas; a job without a
//! schedule refuses them.

use std::collections::BTreeSet;
use std::time::Duration;

use scheduler_core::model::{Control, ControlAction, ControlState, Origin};
use scheduler_core::{Manager, Scope, Scopes, TickReport};
use scheduler_memory::MemoryLeaseStore;
use time::macros::datetime;
use time::OffsetDateTime;

use crate::common::{
    add_control, control, manager, on_manual_clock, recording_job, rows_of, Ledger, T0,
};

/// `n` tenants.
fn tenants(n: usize) -> Vec<Scope> {
    (0..n)
        .map(|i| Scope::new("tenant", format!("t{i}")))
        .collect()
}

/// The minutes of 11:00 + `from` up to, not including, 11:00 + `to`.
fn minutes(from: i64, to: i64) -> Vec<OffsetDateTime> {
    (from..to)
        .map(|m| datetime!(2026-03-05 11:00 UTC) + time::Duration::minutes(m))
        .collect()
}

/// Stores a backfill of every scope of `job` over 11:00 + `[from, to)`
/// minutes.
async fn backfill(store: &MemoryLeaseStore, job: &str, from: i64, to: i64) -> Control {
    let at = |m| datetime!(2026-03-05 11:00 UTC) + time::Duration::minutes(m);
    let range = ControlAction::Backfill {
        from: at(from),
        to: at(to),
    };
    add_control(store, job, None, range).await
}

/// Ticks `managers` in turn until every control of `ids` is done (at most
/// `limit` ticks in all); the reports, in order.
async fn until_done(
    store: &MemoryLeaseStore,
    managers: &[&Manager],
    ids: &[uuid::Uuid],
    limit: usize,
) -> Vec<TickReport> {
    let mut reports = Vec::new();
    for m in managers.iter().cycle().take(limit) {
        reports.push(m.run_once().await);
        let mut done = true;
        for id in ids {
            done &= control(store, *id).await.state == ControlState::Done;
        }
        if done {
            return reports;
        }
    }
    panic!("not done after {limit} ticks: {reports:?}");
}

/// Each (scope, plan time) the ledger holds, checking it ran only once.
fn ran_once(ledger: &Ledger) -> BTreeSet<(Scope, OffsetDateTime)> {
    let runs = ledger.lock().unwrap().clone();
    let once: BTreeSet<_> = runs.iter().map(|(s, t, _)| (s.clone(), *t)).collect();
    assert_eq!(once.len(), runs.len(), "a plan ran twice: {runs:?}");
    once
}

/// Every (scope, instant) pair.
fn every_key(scopes: &[Scope], instants: &[OffsetDateTime]) -> BTreeSet<(Scope, OffsetDateTime)> {
    instants
        .iter()
        .flat_map(|t| scopes.iter().map(move |s| (s.clone(), *t)))
        .collect()
}

#[tokio::test]
async fn a_backfill_runs_every_instant_once_for_every_scope_a_few_keys_per_tick() {
    let (clock, store) = on_manual_clock(datetime!(2026-03-05 11:03:30 UTC));
    let scopes = tenants(2);
    let ledger = Ledger::default();
    let m = manager(&store, "r1");
    m.register(
        recording_job("rollup", Scopes::fixed(scopes.clone()), &ledger).backfill_per_tick(5),
    )
    .unwrap();
    assert_eq!(m.run_once().await.succeeded, 2, "11:03 runs on schedule");
    clock.set(T0);
    assert_eq!(m.run_once().await.succeeded, 2, "then 12:00");
    let range = backfill(&store, "rollup", 0, 10).await;
    let reports = until_done(&store, &[&m], &[range.id], 10).await;
    let claims: Vec<(u64, u64)> = reports.iter().map(|r| (r.won, r.conflicted)).collect();
    // Five keys a tick, in instant order; both 11:03 keys conflict.
    assert_eq!(claims, [(5, 0), (3, 2), (5, 0), (5, 0)]);
    let mut expected = every_key(&scopes, &minutes(0, 10));
    expected.extend(every_key(&scopes, &[T0 - Duration::from_secs(30)]));
    assert_eq!(ran_once(&ledger), expected);
    for row in rows_of(&store, "rollup") {
        let scheduled = row.plan_time == datetime!(2026-03-05 11:03 UTC)
            || row.plan_time == datetime!(2026-03-05 12:00 UTC);
        let expected = match scheduled {
            true => (Origin::Scheduled, None),
            false => (Origin::Backfill, Some(range.id)),
        };
        assert_eq!((row.origin, row.control_id), expected, "{row:?}");
    }
    let done = control(&store, range.id).await;
    assert_eq!(done.cursor, Some(datetime!(2026-03-05 11:10 UTC)));
}

#[tokio::test]
async fn a_backfill_goes_on_from_its_stored_cursor_after_a_restart() {
    let (_clock, store) = on_manual_clock(T0);
    let scopes = tenants(2);
    let ledger = Ledger::default();
    let start = |runner: &str| {
        let m = manager(&store, runner);
        m.register(
            recording_job("rollup", Scopes::fixed(scopes.clone()), &ledger).backfill_per_tick(3),
        )
        .unwrap();
        m
    };
    let first = start("r1");
    first.run_once().await;
    let range = backfill(&store, "rollup", 0, 6).await;
    assert_eq!(first.run_once().await.won, 3);
    // 11:00 for both scopes, and 11:01 for one of them.
    assert_eq!(
        control(&store, range.id).await.cursor,
        Some(datetime!(2026-03-05 11:00:00.000001 UTC))
    );
    drop(first);
    let second = start("r2");
    let reports = until_done(&store, &[&second], &[range.id], 10).await;
    // A new replica knows nothing yet: it asks for the 12:00 plans of both
    // scopes, and of the backfill only the key of the instant half taken.
    assert_eq!(reports[0].conflicted, 2 + 1, "{reports:?}");
    let mut expected = every_key(&scopes, &minutes(0, 6));
    expected.extend(every_key(&scopes, &[datetime!(2026-03-05 12:00 UTC)]));
    assert_eq!(ran_once(&ledger), expected);
}

#[tokio::test]
async fn a_backfill_of_more_scopes_than_keys_per_tick_still_moves_on() {
    let (_clock, store) = on_manual_clock(T0);
    let scopes = tenants(7);
    let ledger = Ledger::default();
    let m = manager(&store, "r1");
    m.register(recording_job("wide", Scopes::fixed(scopes.clone()), &ledger).backfill_per_tick(3))
        .unwrap();
    m.run_once().await;
    let range = backfill(&store, "wide", 0, 3).await;
    let reports = until_done(&store, &[&m], &[range.id], 20).await;
    assert_eq!(reports.len(), 7, "21 keys, 3 a tick");
    assert!(reports.iter().all(|r| r.won == 3 && r.conflicted == 0));
    let mut expected = every_key(&scopes, &minutes(0, 3));
    expected.extend(every_key(&scopes, &[datetime!(2026-03-05 12:00 UTC)]));
    assert_eq!(ran_once(&ledger), expected);
}

#[tokio::test]
async fn two_overlapping_backfills_on_two_replicas_never_run_an_instant_twice() {
    let (_clock, store) = on_manual_clock(T0);
    let scopes = tenants(2);
    let ledger = Ledger::default();
    let replica = |runner: &str| {
        let m = manager(&store, runner);
        m.register(
            recording_job("rollup", Scopes::fixed(scopes.clone()), &ledger).backfill_per_tick(4),
        )
        .unwrap();
        m
    };
    let (a, b) = (replica("a"), replica("b"));
    a.run_once().await;
    let early = backfill(&store, "rollup", 0, 6).await;
    let late = backfill(&store, "rollup", 3, 9).await;
    until_done(&store, &[&a, &b], &[early.id, late.id], 20).await;
    let mut expected = every_key(&scopes, &minutes(0, 9));
    expected.extend(every_key(&scopes, &[datetime!(2026-03-05 12:00 UTC)]));
    assert_eq!(ran_once(&ledger), expected);
    let by = |id| {
        rows_of(&store, "rollup")
            .iter()
            .filter(|r| r.control_id == Some(id))
            .count()
    };
    assert_eq!(
        by(early.id) + by(late.id),
        18,
        "each instant's row names one of them"
    );
}

#[tokio::test]
async fn a_backfill_of_a_job_without_a_schedule_is_rejected() {
    let (_clock, store) = on_manual_clock(T0);
    let ledger = Ledger::default();
    let m = manager(&store, "r1");
    m.register(
        recording_job("custom", Scopes::global(), &ledger)
            .cadence(Duration::ZERO)
            .planner(|_, now, _| vec![now]),
    )
    .unwrap();
    let range = backfill(&store, "custom", 0, 10).await;
    assert_eq!(m.run_once().await.won, 1, "the planner's plan only");
    let ended = control(&store, range.id).await;
    assert_eq!(ended.state, ControlState::Rejected);
    assert!(
        ended.reason.as_deref().unwrap().contains("custom planner"),
        "{ended:?}"
    );
}
