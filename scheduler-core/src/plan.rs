//! Which plan times a tick attempts (the contract, `docs/contract.md` §5).
//! Pure: no I/O, no clock.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

mod cron;
pub use cron::CronSchedule;

use crate::clock::to_micros;
use crate::spec::Scope;
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

/// When a job's plans fall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Every `cadence`, on multiples of it since 0001-01-01T00:00:00Z (the
    /// seed's grid).
    Every(Duration),
    /// At the occurrences of a cron expression in a time zone.
    Cron(Arc<CronSchedule>),
}

impl Schedule {
    /// The newest plan time at or before `t`.
    pub fn at_or_before(&self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        match self {
            Schedule::Every(cadence) => Some(floor(t, *cadence)),
            Schedule::Cron(cron) => cron.at_or_before(t),
        }
    }

    /// The first plan time strictly after `t`.
    pub fn after(&self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        match self {
            Schedule::Every(cadence) => Some(floor(t, *cadence) + *cadence),
            Schedule::Cron(cron) => cron.after(t),
        }
    }

    /// The first plan time at or after `t`.
    pub fn at_or_after(&self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        match self {
            Schedule::Every(cadence) => Some(ceil(t, *cadence)),
            Schedule::Cron(cron) => cron.at_or_after(t),
        }
    }

    /// Every plan time in `[from, to]`, oldest first, at most `limit`.
    pub fn between(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        limit: usize,
    ) -> Vec<OffsetDateTime> {
        let mut plans = Vec::new();
        let mut next = self.at_or_after(from);
        while let Some(t) = next.filter(|&t| t <= to && plans.len() < limit) {
            plans.push(t);
            // A zero cadence (only valid with a custom planner) never advances.
            next = self.after(t).filter(|&n| n > t);
        }
        plans
    }
}

/// The planning options of a job, copied out of its [`JobSpec`](crate::spec::JobSpec).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planning {
    /// When plans fall.
    pub schedule: Schedule,
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
    /// Each scope's plans become eligible a stable offset inside
    /// `[0, spread)` later (see [`scope_offset`]); zero means no offset.
    pub spread: Duration,
}

/// A scope's stable offset inside `[0, spread)`, from a hash of the job
/// name and the scope, so that thousands of scopes do not all start at the
/// same millisecond. The hash (64-bit FNV-1a over `job \0 kind \0 id`) is
/// fixed here, not taken from `std`, so every replica and every version of
/// this library computes the same offsets.
pub fn scope_offset(job: &str, scope: &Scope, spread: Duration) -> Duration {
    let spread_us = u64::try_from(spread.as_micros()).unwrap_or(u64::MAX);
    if spread_us == 0 {
        return Duration::ZERO;
    }
    let hash = stable_hash(&[
        job.as_bytes(),
        b"\0",
        scope.kind.as_bytes(),
        b"\0",
        scope.id.as_bytes(),
    ]);
    Duration::from_micros(hash % spread_us)
}

/// 64-bit FNV-1a over the concatenated parts: fixed here, not taken from
/// `std`, so every replica and every version of this library agrees on it.
pub fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &byte in *part {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
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

/// The newest plan time that is eligible at `now` for a scope with `offset`
/// (see [`scope_offset`]): the newest at or before `now - schedule_delay -
/// offset`. `None` when the schedule has no such occurrence.
pub fn latest_plan(
    planning: &Planning,
    now: OffsetDateTime,
    offset: Duration,
) -> Option<OffsetDateTime> {
    planning
        .schedule
        .at_or_before(now - planning.schedule_delay - offset)
}

/// The store-time instant at which the scope's next plan becomes eligible:
/// when the manager should wake up for it.
pub fn next_eligible(
    planning: &Planning,
    now: OffsetDateTime,
    offset: Duration,
) -> Option<OffsetDateTime> {
    let eligible = now - planning.schedule_delay - offset;
    Some(planning.schedule.after(eligible)? + planning.schedule_delay + offset)
}

/// The oldest plan time `every_plan` still replays at `now`:
/// `now - catch_up_window`, but never later than the newest eligible plan.
/// (The seed used `now - window` alone, so a window shorter than the
/// schedule delay plus one cadence silently excluded even the newest
/// bucket, and such a job never ran.) A zero window means "only the newest".
pub fn oldest_allowed(
    planning: &Planning,
    now: OffsetDateTime,
    offset: Duration,
) -> Option<OffsetDateTime> {
    let newest = latest_plan(planning, now, offset)?;
    Some(if planning.catch_up_window.is_zero() {
        newest
    } else {
        (now - planning.catch_up_window).min(newest)
    })
}

/// How late a scope with no history may still start a cron occurrence:
/// 60 s after the moment it became eligible.
///
/// A job deployed (or a scope added) on a Sunday must not run Friday's
/// 09:00 occurrence at once; like Kubernetes CronJob and Temporal
/// Schedules, it starts with the next occurrence. The grace lets an
/// occurrence that fell due moments before the start (a deploy at 09:00:20)
/// still run. A cadence job's current bucket is at most one cadence old
/// and still runs at start, as it always has.
pub const FIRST_RUN_GRACE: Duration = Duration::from_secs(60);

/// The plan times to attempt for one scope (`docs/contract.md` §5).
///
/// `after` is the newest plan time known to exist for the scope (its latest
/// execution, whatever its state): the cursor starts at the next plan time.
/// `None` means the scope has no execution at all: then a cron occurrence
/// that became eligible more than [`FIRST_RUN_GRACE`] ago is not run.
/// `retries` are plan times of this scope that are FAILED with their retry
/// due (the latest execution itself, when it is retry-eligible, and older
/// ones that [`LeaseStore::retry_due`](crate::store::LeaseStore::retry_due)
/// reported); `operator_retries` are those an operator asked for, which run
/// whatever the rules below say (an operator overriding the catch-up rules
/// gets one run).
///
/// `latest_only` attempts only the newest plan, and a retry only when it is
/// that plan. For a cron schedule, whose newest occurrence can be days old,
/// `latest_only` also skips it when it is older than a non-zero
/// `catch_up_window`, so a restart after a long outage does not fire a
/// stale occurrence.
///
/// Apart from operator retries, the result is made of plan times of the
/// schedule (retries are stored plan times), never after `now -
/// schedule_delay - offset`, never before the catch-up window. It is
/// strictly increasing, and at most `max_plans_per_tick` long when that is
/// set (operator retries first when they alone would exceed it).
pub fn plan_scope(
    planning: &Planning,
    now: OffsetDateTime,
    offset: Duration,
    after: Option<OffsetDateTime>,
    retries: &[OffsetDateTime],
    operator_retries: &[OffsetDateTime],
) -> Vec<OffsetDateTime> {
    let now = to_micros(now);
    let cap = match (planning.catch_up, planning.max_plans_per_tick) {
        (CatchUpMode::EveryPlan, n) if n > 0 => n,
        _ => usize::MAX,
    };
    let Some(newest) = latest_plan(planning, now, offset) else {
        return finish(operator_retries.to_vec(), Vec::new(), cap);
    };
    let is_cron = matches!(planning.schedule, Schedule::Cron(_));
    let eligible_at = newest + planning.schedule_delay + offset;
    let too_late_to_start = after.is_none() && is_cron && now - eligible_at > FIRST_RUN_GRACE;
    let plans = match planning.catch_up {
        CatchUpMode::LatestOnly => {
            let done = after.is_some_and(|a| a >= newest) && !retries.contains(&newest);
            let stale = is_cron
                && !planning.catch_up_window.is_zero()
                && newest < now - planning.catch_up_window;
            if done || stale || too_late_to_start {
                Vec::new()
            } else {
                vec![newest]
            }
        }
        CatchUpMode::EveryPlan => {
            let oldest = oldest_allowed(planning, now, offset).unwrap_or(newest);
            let mut plans: Vec<OffsetDateTime> = retries
                .iter()
                .copied()
                .filter(|&t| t >= oldest && t <= newest)
                .collect();
            let start = match after {
                Some(a) => planning.schedule.after(a),
                None if too_late_to_start => None,
                None => Some(newest),
            };
            if let (Some(s), Some(o)) = (start, planning.schedule.at_or_after(oldest)) {
                // Only `cap` plans survive, so generating more is waste.
                plans.extend(planning.schedule.between(s.max(o), newest, cap));
            }
            plans
        }
    };
    finish(operator_retries.to_vec(), plans, cap)
}

/// Operator retries first (up to `cap`), then `plans` up to `cap` in all,
/// merged in plan order without duplicates.
fn finish(
    mut forced: Vec<OffsetDateTime>,
    mut plans: Vec<OffsetDateTime>,
    cap: usize,
) -> Vec<OffsetDateTime> {
    forced.sort_unstable();
    forced.dedup();
    forced.truncate(cap);
    plans.sort_unstable();
    plans.dedup();
    plans.retain(|t| forced.binary_search(t).is_err());
    plans.truncate(cap - forced.len());
    forced.extend(plans);
    forced.sort_unstable();
    forced
}

/// What [`plan_scope`] needs from a scope's latest execution: the plan time
/// the cursor starts after, and that same plan time again as a retry when
/// the row is retry-eligible at `now` (the seed keeps its cursor on it).
pub fn cursor_from(
    latest: Option<&LatestExecution>,
    now: OffsetDateTime,
    allow_stale_reentry: bool,
) -> (Option<OffsetDateTime>, Option<OffsetDateTime>) {
    match latest {
        None => (None, None),
        Some(view) => (
            Some(view.plan_time),
            view.retry_eligible(now, allow_stale_reentry)
                .then_some(view.plan_time),
        ),
    }
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
            schedule: Schedule::Every(cadence),
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
        assert!(
            plan_scope(&latest_only, now, Duration::ZERO, Some(newest), &[old], &[]).is_empty()
        );
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
                schedule: Schedule::Every(c),
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
}
