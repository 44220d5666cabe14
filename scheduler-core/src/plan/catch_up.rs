//! Which plan times a tick attempts for one scope (`docs/contract.md` §5):
//! the catch-up modes, their windows, retries and a cron job's first start.

use std::time::Duration;

use time::OffsetDateTime;

use super::{CatchUpMode, Planning, Schedule};
use crate::model::LatestExecution;
use crate::time::to_micros;

/// The newest plan time that is eligible at `now` for a scope with `offset`
/// (see [`scope_offset`](super::scope_offset)): the newest at or before `now - schedule_delay -
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
