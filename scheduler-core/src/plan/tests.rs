//! The planning layer's tests: the grid, offsets and catch-up planning.

use super::grid::{cadence_micros, micros_since_zero};
use super::*;
use crate::model::{LatestExecution, Scope, Status};
use proptest::prelude::*;
use std::sync::Arc;
use std::time::Duration;
use time::macros::datetime;
use time::OffsetDateTime;
use time::Weekday;

const MIN: Duration = Duration::from_secs(60);

fn planning(cadence: Duration, catch_up: CatchUpMode) -> Planning {
    Planning {
        schedule: Schedule::every(cadence),
        schedule_delay: Duration::ZERO,
        catch_up,
        catch_up_window: Duration::ZERO,
        max_plans_per_tick: 0,
        allow_stale_reentry: true,
        spread: Duration::ZERO,
    }
}

fn view(plan_time: OffsetDateTime, status: Status, attempt: i32) -> LatestExecution {
    LatestExecution {
        plan_time,
        status,
        attempt,
        max_attempts: 3,
        next_retry_at: None,
        error_code: None,
    }
}

/// Plans from a latest-execution view, as the manager does on a scope it
/// knows nothing about yet.
fn plan_from_view(
    p: &Planning,
    now: OffsetDateTime,
    view: Option<&LatestExecution>,
    older_retries: &[OffsetDateTime],
) -> Vec<OffsetDateTime> {
    let (after, retry) = cursor_from(view, now, p.allow_stale_reentry);
    let mut retries = older_retries.to_vec();
    retries.extend(retry);
    plan_scope(p, now, Duration::ZERO, after, &retries, &[])
}

#[test]
fn floor_matches_the_seed_for_5_minutes_7_minutes_and_7_days() {
    let t = datetime!(2026-03-05 12:34:56.789 UTC); // a Thursday
    assert_eq!(floor(t, 5 * MIN), datetime!(2026-03-05 12:30 UTC));
    // 7 minutes: Go's Truncate counts from year 1. 12:34 is minute
    // 1_065_138_514 since 0001-01-01, which is 6 (mod 7), so the bucket
    // starts at 12:28; Unix-epoch flooring would give 12:29.
    assert_eq!(floor(t, 7 * MIN), datetime!(2026-03-05 12:28 UTC));
    let unix_floor = t.unix_timestamp() - t.unix_timestamp().rem_euclid(7 * 60);
    assert_eq!(unix_floor, datetime!(2026-03-05 12:29 UTC).unix_timestamp());
    // A weekly bucket starts on a Monday (0001-01-01 was a Monday).
    let week = floor(t, 7 * 24 * 60 * MIN);
    assert_eq!(week, datetime!(2026-03-02 00:00 UTC));
    assert_eq!(week.weekday(), Weekday::Monday);
}

#[test]
fn floor_normalises_to_micros_and_keeps_grid_points() {
    let t = datetime!(2026-03-05 12:30:00 UTC);
    assert_eq!(floor(t, 5 * MIN), t);
    assert_eq!(ceil(t, 5 * MIN), t);
    assert_eq!(ceil(t + Duration::from_micros(1), 5 * MIN), t + 5 * MIN);
    assert_eq!(
        floor(datetime!(2026-03-05 12:30:00.0000019 UTC), Duration::ZERO),
        datetime!(2026-03-05 12:30:00.000001 UTC)
    );
}

#[test]
fn latest_only_attempts_the_delayed_bucket() {
    let mut p = planning(5 * MIN, CatchUpMode::LatestOnly);
    p.schedule_delay = Duration::from_secs(30);
    let now = datetime!(2026-03-05 12:35:10 UTC);
    assert_eq!(
        plan_from_view(&p, now, None, &[]),
        vec![datetime!(2026-03-05 12:30 UTC)]
    );
    assert_eq!(
        next_eligible(&p, now, Duration::ZERO),
        Some(datetime!(2026-03-05 12:35:30 UTC))
    );
    // Once that bucket exists, latest_only has nothing to do until a retry
    // of it falls due.
    let done = Some(datetime!(2026-03-05 12:30 UTC));
    assert!(plan_scope(&p, now, Duration::ZERO, done, &[], &[]).is_empty());
    assert_eq!(
        plan_scope(
            &p,
            now,
            Duration::ZERO,
            done,
            &[datetime!(2026-03-05 12:30 UTC)],
            &[]
        ),
        vec![datetime!(2026-03-05 12:30 UTC)]
    );
    // A spread offset delays the scope's buckets by the offset.
    let offset = Duration::from_secs(290);
    assert_eq!(
        plan_scope(&p, now, offset, None, &[], &[]),
        vec![datetime!(2026-03-05 12:25 UTC)]
    );
    assert_eq!(
        next_eligible(&p, now, offset),
        Some(datetime!(2026-03-05 12:35:20 UTC))
    );
}

#[test]
fn every_plan_replays_from_the_cursor_and_retries_in_place() {
    let mut p = planning(MIN, CatchUpMode::EveryPlan);
    p.catch_up_window = 10 * MIN;
    p.max_plans_per_tick = 3;
    let now = datetime!(2026-03-05 12:10:30 UTC);
    let done = view(datetime!(2026-03-05 12:05 UTC), Status::Success, 1);
    assert_eq!(
        plan_from_view(&p, now, Some(&done), &[]),
        vec![
            datetime!(2026-03-05 12:06 UTC),
            datetime!(2026-03-05 12:07 UTC),
            datetime!(2026-03-05 12:08 UTC)
        ]
    );
    let failed = view(datetime!(2026-03-05 12:09 UTC), Status::Failed, 1);
    assert_eq!(
        plan_from_view(&p, now, Some(&failed), &[]),
        vec![
            datetime!(2026-03-05 12:09 UTC),
            datetime!(2026-03-05 12:10 UTC)
        ]
    );
    // An older FAILED plan whose retry is due is not stranded by a newer row.
    let newest = view(datetime!(2026-03-05 12:10 UTC), Status::Success, 1);
    assert_eq!(
        plan_from_view(&p, now, Some(&newest), &[datetime!(2026-03-05 12:02 UTC)]),
        vec![datetime!(2026-03-05 12:02 UTC)]
    );
    // A cursor older than the window moves up to the window's first bucket.
    let ancient = view(datetime!(2026-03-04 00:00 UTC), Status::Success, 1);
    assert_eq!(
        plan_from_view(&p, now, Some(&ancient), &[])[0],
        datetime!(2026-03-05 12:01 UTC)
    );
}

#[test]
fn a_cron_scope_without_history_starts_with_the_next_occurrence() {
    let cron = CronSchedule::parse("0 9 * * MON-FRI", "Europe/Berlin").unwrap();
    for mode in [CatchUpMode::LatestOnly, CatchUpMode::EveryPlan] {
        let mut p = planning(MIN, mode);
        p.schedule = Schedule::Cron(Arc::new(cron.clone()));
        p.max_plans_per_tick = 1;
        p.catch_up_window = 7 * 24 * 60 * MIN;
        // Sunday: Friday's 09:00 (08:00 UTC) is two days old.
        let sunday = datetime!(2026-03-08 12:00 UTC);
        assert!(plan_scope(&p, sunday, Duration::ZERO, None, &[], &[]).is_empty());
        // With history, the catch-up rules decide as before.
        let thursday = Some(datetime!(2026-03-05 08:00 UTC));
        assert_eq!(
            plan_scope(&p, sunday, Duration::ZERO, thursday, &[], &[]),
            vec![datetime!(2026-03-06 08:00 UTC)],
            "{mode:?}"
        );
        // Monday 09:00:45 Berlin: inside the grace, the occurrence runs.
        let monday = datetime!(2026-03-09 08:00:45 UTC);
        assert_eq!(
            plan_scope(&p, monday, Duration::ZERO, None, &[], &[]),
            vec![datetime!(2026-03-09 08:00 UTC)]
        );
        let too_late = monday + FIRST_RUN_GRACE;
        assert!(plan_scope(&p, too_late, Duration::ZERO, None, &[], &[]).is_empty());
    }
    // A cadence job's current bucket runs at start, however old.
    let daily = planning(24 * 60 * MIN, CatchUpMode::LatestOnly);
    let evening = datetime!(2026-03-08 23:00 UTC);
    assert_eq!(
        plan_scope(&daily, evening, Duration::ZERO, None, &[], &[]),
        vec![datetime!(2026-03-08 00:00 UTC)]
    );
}

#[test]
fn operator_retries_run_whatever_the_catch_up_rules_say() {
    let now = datetime!(2026-03-05 12:10:30 UTC);
    let old = datetime!(2026-03-05 11:00 UTC);
    let latest_only = planning(MIN, CatchUpMode::LatestOnly);
    let newest = datetime!(2026-03-05 12:10 UTC);
    // The newest bucket exists: only the operator's retry runs.
    assert_eq!(
        plan_scope(&latest_only, now, Duration::ZERO, Some(newest), &[], &[old]),
        vec![old]
    );
    // An older plan that is merely due is not a latest_only plan.
    assert!(plan_scope(&latest_only, now, Duration::ZERO, Some(newest), &[old], &[]).is_empty());
    // every_plan: outside the window, and ahead of the cap.
    let mut every = planning(MIN, CatchUpMode::EveryPlan);
    every.catch_up_window = 5 * MIN;
    every.max_plans_per_tick = 2;
    let after = Some(datetime!(2026-03-05 12:00 UTC));
    assert_eq!(
        plan_scope(&every, now, Duration::ZERO, after, &[], &[old]),
        vec![old, datetime!(2026-03-05 12:06 UTC)]
    );
    let older = old - MIN;
    assert_eq!(
        plan_scope(&every, now, Duration::ZERO, after, &[], &[old, older, old]),
        vec![older, old],
        "deduplicated, cut at the cap"
    );
}

/// 64-bit FNV-1a of "rollup\0global\0global" mod one hour in µs,
/// computed independently (Python) from the published FNV constants.
const FNV_REFERENCE_OFFSET_US: u64 = 2_304_384_289;

#[test]
fn scope_offsets_are_stable_spread_and_inside_the_window() {
    let spread = Duration::from_secs(60);
    let a = Scope::new("tenant", "a");
    assert_eq!(
        scope_offset("job", &a, spread),
        scope_offset("job", &a, spread)
    );
    assert_eq!(scope_offset("job", &a, Duration::ZERO), Duration::ZERO);
    let offsets: std::collections::HashSet<Duration> = (0..1000)
        .map(|i| scope_offset("job", &Scope::new("tenant", format!("{i}")), spread))
        .collect();
    assert!(offsets.iter().all(|o| *o < spread));
    assert!(
        offsets.len() > 990,
        "offsets barely collide: {}",
        offsets.len()
    );
    let early = offsets.iter().filter(|o| **o < spread / 2).count();
    assert!(
        (400..600).contains(&early),
        "roughly uniform: {early} of 1000 in the first half"
    );
    // A fixed reference value: the hash must not change between versions.
    assert_eq!(
        scope_offset("rollup", &Scope::global(), Duration::from_secs(3600)),
        Duration::from_micros(FNV_REFERENCE_OFFSET_US)
    );
}

#[test]
fn custom_plans_are_normalised_deduplicated_and_cut() {
    let a = datetime!(2026-03-05 12:00:00.0000015 UTC);
    let b = datetime!(2026-03-05 11:00 UTC);
    let plans = normalise_custom(vec![a, b, a, b + MIN], 2);
    assert_eq!(plans, vec![datetime!(2026-03-05 12:00:00.000001 UTC), b]);
    assert_eq!(normalise_custom(vec![], 2), Vec::<OffsetDateTime>::new());
    assert_eq!(normalise_custom(vec![a, b, b + MIN], 0).len(), 3);
}

fn instant() -> impl Strategy<Value = OffsetDateTime> {
    // 1990 .. 2100, microsecond resolution.
    (631_152_000_000_000i64..4_102_444_800_000_000i64)
        .prop_map(|us| OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000).unwrap())
}

fn cadence() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (1u64..=3_600).prop_map(Duration::from_secs),
        (1u64..=10_000_000).prop_map(Duration::from_micros),
        Just(Duration::from_secs(7 * 86_400)),
    ]
}

fn shift(t: OffsetDateTime, step: Duration, by: i64) -> OffsetDateTime {
    let n = u32::try_from(by.unsigned_abs()).unwrap();
    if by >= 0 {
        t + step * n
    } else {
        t - step * n
    }
}

fn latest_view() -> impl Strategy<Value = Option<(i64, Status, i32, Option<i64>)>> {
    proptest::option::of((
        -50i64..5,
        prop_oneof![
            Just(Status::Running),
            Just(Status::Success),
            Just(Status::Failed)
        ],
        1i32..=3,
        proptest::option::of(-10i64..10),
    ))
}

proptest! {
    #[test]
    fn floor_equals_unix_flooring_for_cadences_dividing_a_day(
        t in instant(),
        divisor in prop::sample::select(vec![1u64, 2, 3, 5, 10, 15, 30, 60, 300, 600, 900, 3_600, 7_200, 21_600, 86_400]),
    ) {
        let c = Duration::from_secs(divisor);
        let unix_us = t.unix_timestamp_nanos() / 1_000;
        let step = i128::from(divisor) * 1_000_000;
        let expected = OffsetDateTime::from_unix_timestamp_nanos((unix_us - unix_us.rem_euclid(step)) * 1_000).unwrap();
        prop_assert_eq!(floor(t, c), expected);
    }

    #[test]
    fn floor_is_a_grid_point_at_most_one_cadence_below(t in instant(), c in cadence()) {
        let f = floor(t, c);
        prop_assert!(f <= t && t - f < c);
        prop_assert_eq!(floor(f, c), f);
        prop_assert_eq!(micros_since_zero(f) % cadence_micros(c), 0);
    }

    #[test]
    fn every_plan_is_increasing_unique_on_grid_eligible_in_window_and_capped(
        now in instant(),
        c in cadence(),
        delay_steps in 0u32..3,
        window_steps in 0u32..40,
        max_plans in 1usize..8,
        latest in latest_view(),
        retry_steps in proptest::collection::vec(0u32..50, 0..5),
    ) {
        let p = Planning {
            schedule: Schedule::every(c),
            schedule_delay: c * delay_steps / 2,
            catch_up: CatchUpMode::EveryPlan,
            catch_up_window: c * window_steps,
            max_plans_per_tick: max_plans,
            allow_stale_reentry: true,
            spread: Duration::ZERO,
        };
        let newest = latest_plan(&p, now, Duration::ZERO).unwrap();
        let view = latest.map(|(steps, status, attempt, retry)| LatestExecution {
            plan_time: shift(newest, c, steps),
            status,
            attempt,
            max_attempts: 3,
            next_retry_at: retry.map(|s| shift(now, Duration::from_secs(1), s)),
            error_code: None,
        });
        let retries: Vec<_> = retry_steps.iter().map(|&k| newest - c * k).collect();
        let plans = plan_from_view(&p, now, view.as_ref(), &retries);
        let oldest_allowed = if p.catch_up_window.is_zero() { newest } else { (now - p.catch_up_window).min(newest) };
        prop_assert!(plans.len() <= max_plans);
        prop_assert!(plans.windows(2).all(|w| w[0] < w[1]), "strictly increasing: {:?}", plans);
        for t in &plans {
            prop_assert_eq!(micros_since_zero(*t) % cadence_micros(c), 0, "on grid");
            prop_assert!(*t <= now - p.schedule_delay, "eligible");
            prop_assert!(*t >= oldest_allowed, "inside the window");
        }
        // Nothing eligible is skipped when there is no history: the latest runs.
        if view.is_none() && retries.is_empty() {
            prop_assert_eq!(plans, vec![newest]);
        }
    }
}
