//! Which plan times a tick attempts (SPEC §5). Pure: no I/O, no clock.

use std::time::Duration;

use time::OffsetDateTime;

use crate::clock::to_micros;
use crate::store::LatestExecution;

/// Microseconds from 0001-01-01T00:00:00Z (the seed language's zero time) to
/// the Unix epoch.
const ZERO_TO_UNIX_MICROS: i128 = 62_135_596_800 * 1_000_000;

/// How a job catches up on plans it missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CatchUpMode {
    /// Attempt only the latest bucket; missed buckets are never replayed (the
    /// handler keeps its own watermark).
    #[default]
    LatestOnly,
    /// Replay missed buckets oldest first, inside the catch-up window, at most
    /// `max_plans_per_tick` per tick.
    EveryPlan,
}

/// The planning options of a job, copied out of its [`JobSpec`](crate::spec::JobSpec).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planning {
    /// Plans fall on multiples of this since 0001-01-01T00:00:00Z.
    pub cadence: Duration,
    /// A plan becomes eligible this long after its plan time.
    pub schedule_delay: Duration,
    /// See [`CatchUpMode`].
    pub catch_up: CatchUpMode,
    /// How far back `every_plan` replays; zero means only the latest bucket.
    pub catch_up_window: Duration,
    /// The most plans attempted per scope and tick; 0 means no cap (allowed
    /// only for `latest_only` and custom planners).
    pub max_plans_per_tick: usize,
    /// Whether `stale_timeout` rows count as retry-eligible.
    pub allow_stale_reentry: bool,
}

fn micros_since_zero(t: OffsetDateTime) -> i128 {
    t.unix_timestamp_nanos().div_euclid(1_000) + ZERO_TO_UNIX_MICROS
}

fn from_micros_since_zero(micros: i128) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos((micros - ZERO_TO_UNIX_MICROS) * 1_000)
        .expect("a floored instant stays in range")
}

fn cadence_micros(cadence: Duration) -> i128 {
    i128::try_from(cadence.as_micros()).unwrap_or(i128::MAX)
}

/// Rounds `t` down to a multiple of `cadence` counted from
/// 0001-01-01T00:00:00Z, as the seed's `Truncate` does. For cadences that
/// divide a day this equals Unix-epoch flooring; a 7-day cadence starts on
/// Mondays. A cadence under one microsecond leaves `t` (normalised) as is.
pub fn floor(t: OffsetDateTime, cadence: Duration) -> OffsetDateTime {
    let step = cadence_micros(cadence);
    let micros = micros_since_zero(t);
    if step == 0 {
        return from_micros_since_zero(micros);
    }
    from_micros_since_zero(micros - micros.rem_euclid(step))
}

/// The first grid point at or after `t`.
pub fn ceil(t: OffsetDateTime, cadence: Duration) -> OffsetDateTime {
    let down = floor(t, cadence);
    if down < to_micros(t) {
        down + cadence
    } else {
        down
    }
}

/// The newest plan time that is eligible at `now`: `floor(now - delay)`.
pub fn latest_plan(planning: &Planning, now: OffsetDateTime) -> OffsetDateTime {
    floor(now - planning.schedule_delay, planning.cadence)
}

/// The store-time instant at which the next plan after the current latest
/// becomes eligible: when the manager should wake up next for this job.
pub fn next_eligible(planning: &Planning, now: OffsetDateTime) -> OffsetDateTime {
    latest_plan(planning, now) + planning.cadence + planning.schedule_delay
}

/// The plan times to attempt for one scope of a cadence job.
///
/// `latest` is the scope's latest execution; `retries` holds plan times of
/// this scope that the store reported FAILED with their retry due (see
/// [`LeaseStore::retry_due`](crate::store::LeaseStore::retry_due)). The
/// result is strictly increasing, on the cadence grid (retries are stored
/// plan times), never after `now - schedule_delay`, and at most
/// `max_plans_per_tick` long when that is set.
pub fn plan_scope(
    planning: &Planning,
    now: OffsetDateTime,
    latest: Option<&LatestExecution>,
    retries: &[OffsetDateTime],
) -> Vec<OffsetDateTime> {
    let now = to_micros(now);
    let newest = latest_plan(planning, now);
    match planning.catch_up {
        CatchUpMode::LatestOnly => vec![newest],
        CatchUpMode::EveryPlan => every_plan(planning, now, newest, latest, retries),
    }
}

fn every_plan(
    planning: &Planning,
    now: OffsetDateTime,
    newest: OffsetDateTime,
    latest: Option<&LatestExecution>,
    retries: &[OffsetDateTime],
) -> Vec<OffsetDateTime> {
    let cap = match planning.max_plans_per_tick {
        0 => usize::MAX,
        n => n,
    };
    let oldest_allowed = if planning.catch_up_window.is_zero() {
        newest
    } else {
        now - planning.catch_up_window
    };
    let in_window = |t: OffsetDateTime| t >= oldest_allowed && t <= newest;

    // Retry-due plans first in the candidate set: they are older than the
    // cursor's run, and the seed stranded them once a newer plan existed.
    let mut plans: Vec<OffsetDateTime> =
        retries.iter().copied().filter(|&t| in_window(t)).collect();

    let mut cursor = match latest {
        Some(view) if view.retry_eligible(now, planning.allow_stale_reentry) => {
            if in_window(view.plan_time) {
                plans.push(view.plan_time);
            }
            floor(view.plan_time, planning.cadence) + planning.cadence
        }
        Some(view) => floor(view.plan_time, planning.cadence) + planning.cadence,
        None => newest,
    };
    cursor = cursor.max(ceil(oldest_allowed, planning.cadence));
    plans.sort_unstable();
    plans.dedup();
    // Only `cap` plans survive, so generating more grid points than that is waste.
    let mut grid = Vec::new();
    while cursor <= newest && grid.len() < cap {
        grid.push(cursor);
        cursor += planning.cadence;
    }
    plans.extend(grid);
    plans.sort_unstable();
    plans.dedup();
    plans.truncate(cap);
    plans
}

/// Normalises a custom planner's output: microsecond precision, duplicates
/// dropped (first occurrence kept, so the planner's order stands), cut at
/// `max_plans_per_tick` when that is set.
pub fn normalise_custom(
    mut plans: Vec<OffsetDateTime>,
    max_plans_per_tick: usize,
) -> Vec<OffsetDateTime> {
    let mut seen = std::collections::HashSet::with_capacity(plans.len());
    plans = plans
        .into_iter()
        .map(to_micros)
        .filter(|t| seen.insert(*t))
        .collect();
    if max_plans_per_tick > 0 {
        plans.truncate(max_plans_per_tick);
    }
    plans
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Status;
    use proptest::prelude::*;
    use time::macros::datetime;
    use time::Weekday;

    const MIN: Duration = Duration::from_secs(60);

    fn planning(cadence: Duration, catch_up: CatchUpMode) -> Planning {
        Planning {
            cadence,
            schedule_delay: Duration::ZERO,
            catch_up,
            catch_up_window: Duration::ZERO,
            max_plans_per_tick: 0,
            allow_stale_reentry: true,
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
            plan_scope(&p, now, None, &[]),
            vec![datetime!(2026-03-05 12:30 UTC)]
        );
        assert_eq!(next_eligible(&p, now), datetime!(2026-03-05 12:35:30 UTC));
    }

    #[test]
    fn every_plan_replays_from_the_cursor_and_retries_in_place() {
        let mut p = planning(MIN, CatchUpMode::EveryPlan);
        p.catch_up_window = 10 * MIN;
        p.max_plans_per_tick = 3;
        let now = datetime!(2026-03-05 12:10:30 UTC);
        let done = view(datetime!(2026-03-05 12:05 UTC), Status::Success, 1);
        assert_eq!(
            plan_scope(&p, now, Some(&done), &[]),
            vec![
                datetime!(2026-03-05 12:06 UTC),
                datetime!(2026-03-05 12:07 UTC),
                datetime!(2026-03-05 12:08 UTC)
            ]
        );
        let failed = view(datetime!(2026-03-05 12:09 UTC), Status::Failed, 1);
        assert_eq!(
            plan_scope(&p, now, Some(&failed), &[]),
            vec![
                datetime!(2026-03-05 12:09 UTC),
                datetime!(2026-03-05 12:10 UTC)
            ]
        );
        // An older FAILED plan whose retry is due is not stranded by a newer row.
        let newest = view(datetime!(2026-03-05 12:10 UTC), Status::Success, 1);
        assert_eq!(
            plan_scope(&p, now, Some(&newest), &[datetime!(2026-03-05 12:02 UTC)]),
            vec![datetime!(2026-03-05 12:02 UTC)]
        );
        // A cursor older than the window moves up to the window's first bucket.
        let ancient = view(datetime!(2026-03-04 00:00 UTC), Status::Success, 1);
        assert_eq!(
            plan_scope(&p, now, Some(&ancient), &[])[0],
            datetime!(2026-03-05 12:01 UTC)
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
        (631_152_000_000_000i64..4_102_444_800_000_000i64).prop_map(|us| {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000).unwrap()
        })
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
                cadence: c,
                schedule_delay: c * delay_steps / 2,
                catch_up: CatchUpMode::EveryPlan,
                catch_up_window: c * window_steps,
                max_plans_per_tick: max_plans,
                allow_stale_reentry: true,
            };
            let newest = latest_plan(&p, now);
            let view = latest.map(|(steps, status, attempt, retry)| LatestExecution {
                plan_time: shift(newest, c, steps),
                status,
                attempt,
                max_attempts: 3,
                next_retry_at: retry.map(|s| shift(now, Duration::from_secs(1), s)),
                error_code: None,
            });
            let retries: Vec<_> = retry_steps.iter().map(|&k| newest - c * k).collect();
            let plans = plan_scope(&p, now, view.as_ref(), &retries);
            let oldest_allowed = if p.catch_up_window.is_zero() { newest } else { now - p.catch_up_window };
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
}
