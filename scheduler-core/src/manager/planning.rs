//! Planning a tick for one job: the store reads planning needs (due
//! retries, the newest row of scopes never seen) and the plan times of
//! each scope, from [`crate::plan`].

use std::sync::atomic::Ordering;
use std::time::Duration;

use time::OffsetDateTime;
use tracing::warn;

use super::steering::JobControls;
use super::tick::TickOutcome;
use super::{FastMap, Manager, Registered};
use crate::job::JobSpec;
use crate::model::{Origin, PlanKey, RetryRead, Scope};
use crate::plan::{self, CatchUpMode};

/// One scope's due retries, as [`LeaseStore::retry_due`](crate::store::LeaseStore::retry_due) reported them.
#[derive(Default)]
pub(super) struct ScopeRetries {
    /// Due by the job's own retry rules.
    due: Vec<OffsetDateTime>,
    /// Scheduled plans an operator asked to retry: run whatever the
    /// catch-up rules say.
    operator: Vec<OffsetDateTime>,
    /// Failed runs of triggers and backfills: run whatever the catch-up
    /// rules say, claimed with their origin.
    ad_hoc: Vec<(Origin, OffsetDateTime)>,
}

/// What the plans of a scope without retries or skipped windows depend
/// on, besides the job and the tick: its offset and its cursor.
type PlanInputs = (Duration, Option<OffsetDateTime>);

impl ScopeRetries {
    /// No retry of any kind is due.
    fn is_empty(&self) -> bool {
        self.due.is_empty() && self.operator.is_empty() && self.ad_hoc.is_empty()
    }
}

/// What a replica knows of a cadence job's scopes: per scope, the newest
/// scheduled plan time known to have a row in the store (see
/// [`Manager::plan_cadence`]).
///
/// Every scope of the job's list has an entry, made when the list is
/// first seen ([`Known::list`]), not as each scope is first learned: an
/// entry's name is a long-lived allocation, and names allocated a few
/// thousand per tick, between the tick's short-lived allocations, would
/// pin the memory of every tick in the allocator's heap (glibc's heap grew
/// to three times the replica's live memory over 100,000 scopes that
/// way). An entry without a time stands for a scope not known.
///
/// The times sit in a vector, the i-th scope of a list given to
/// [`Known::list`] twice in a row in slot i, so a tick's walk over the
/// list reads them by the scope's address in the list, without hashing:
/// over a million scopes, a lookup by name per scope made an idle tick
/// take ~220 ms of CPU, most of it cache misses in the map. A scope from elsewhere (a
/// claim's key, a row read back) is found by name.
#[derive(Default)]
pub(super) struct Known {
    /// Per scope, its slot in `newest`.
    slots: FastMap<Scope, usize>,
    /// Per slot, the newest plan time known to have a row; `None`: the
    /// scope is not known.
    newest: Vec<Option<OffsetDateTime>>,
    /// The list last given to [`Known::list`].
    listed: Option<std::sync::Arc<[Scope]>>,
    /// The i-th scope of `listed` has slot i: the list was realigned
    /// and names no scope twice.
    aligned: bool,
    /// `listed` was realigned (given twice in a row).
    realigned: bool,
}

impl Known {
    /// Makes an entry, not known yet, for each of `scopes` that has none;
    /// once the same list is given again (a fixed list is shared tick
    /// after tick), gives each of its scopes the slot of its position,
    /// keeping what is known. Scopes known and not in it keep slots after
    /// the list's. A provider that returns a new list every tick pays a
    /// lookup per scope, never a rebuild of the entries.
    pub(super) fn list(&mut self, scopes: &std::sync::Arc<[Scope]>) {
        let again = self
            .listed
            .as_ref()
            .is_some_and(|l| std::sync::Arc::ptr_eq(l, scopes));
        if !again {
            let more = scopes.len().saturating_sub(self.slots.len());
            self.slots.reserve(more);
            self.newest.reserve(more);
            for scope in scopes.iter() {
                if !self.slots.contains_key(scope) {
                    self.slots.insert(scope.clone(), self.newest.len());
                    self.newest.push(None);
                }
            }
            self.listed = Some(scopes.clone());
            self.aligned = false;
            self.realigned = false;
            return;
        }
        if self.realigned {
            return;
        }
        // New slots in place: the map's values are renumbered and the
        // times moved, never copied into a second map or vector (a second
        // map of a million names would raise the replica's peak memory by
        // half).
        const UNSET: usize = usize::MAX;
        let mut moved = vec![UNSET; self.newest.len()];
        let mut next = 0;
        for scope in scopes.iter() {
            // Every scope of the list has had an entry since the list was
            // first given, unless pruned since; then positions are not slots.
            let Some(&old) = self.slots.get(scope) else {
                continue;
            };
            // A list naming a scope twice: the first position is its slot.
            if moved[old] == UNSET {
                moved[old] = next;
                next += 1;
            }
        }
        self.aligned = next == scopes.len();
        for slot in moved.iter_mut().filter(|s| **s == UNSET) {
            *slot = next;
            next += 1;
        }
        for slot in self.slots.values_mut() {
            *slot = moved[*slot];
        }
        // The times follow their slots, cycle by cycle, in place.
        for start in 0..moved.len() {
            let mut at = start;
            let mut carried = self.newest[start];
            while moved[at] != UNSET {
                let to = std::mem::replace(&mut moved[at], UNSET);
                carried = std::mem::replace(&mut self.newest[to], carried);
                at = to;
            }
        }
        self.realigned = true;
    }

    /// The slot of `scope`: its position when it is an element of the
    /// listed list (found by its address: an index computed from it,
    /// checked to be that very element), else by name.
    fn slot(&self, scope: &Scope) -> Option<usize> {
        if let Some(list) = self.listed.as_ref().filter(|_| self.aligned) {
            let offset = (scope as *const Scope as usize).wrapping_sub(list.as_ptr() as usize);
            let i = offset / std::mem::size_of::<Scope>();
            if i < list.len() && std::ptr::eq(&list[i], scope) {
                return Some(i);
            }
        }
        self.slots.get(scope).copied()
    }

    /// The newest plan time of `scope` known to have a row, if any.
    pub(super) fn get(&self, scope: &Scope) -> Option<OffsetDateTime> {
        self.slot(scope).and_then(|i| self.newest[i])
    }

    /// Records that `scope` has a row at `plan_time` (keeping a newer one
    /// known already); copies the scope's name only when it has no entry.
    pub(super) fn set(&mut self, scope: &Scope, plan_time: OffsetDateTime) {
        let i = match self.slot(scope) {
            Some(i) => i,
            None => {
                self.slots.insert(scope.clone(), self.newest.len());
                self.newest.push(None);
                self.newest.len() - 1
            }
        };
        let newest = &mut self.newest[i];
        *newest = Some(newest.map_or(plan_time, |t| t.max(plan_time)));
    }

    /// Forgets scopes that are not among `scopes` once there are twice as
    /// many entries: scopes a provider no longer returns (deleted tenants)
    /// must not pin memory forever.
    fn prune(&mut self, scopes: &[&Scope]) {
        if self.slots.len() > scopes.len().saturating_mul(2) {
            let mut slots = FastMap::default();
            let mut newest = Vec::with_capacity(scopes.len());
            for &scope in scopes {
                if let Some(i) = self.slots.get(scope) {
                    if !slots.contains_key(scope) {
                        slots.insert(scope.clone(), newest.len());
                        newest.push(self.newest[*i]);
                    }
                }
            }
            self.slots = slots;
            self.newest = newest;
            self.listed = None;
        }
    }
}

/// What planning a tick for one job yields.
pub(super) struct Planned {
    /// Scheduled keys (operator retries of scheduled plans included),
    /// scope by scope in plan order.
    pub(super) keys: Vec<PlanKey>,
    /// Due retries of triggers' and backfills' failed runs, with their
    /// origin.
    pub(super) ad_hoc: Vec<(Origin, PlanKey)>,
    /// Scopes whose plans the per-tick cap cut: more may be due at once.
    pub(super) capped: Vec<Scope>,
}

/// The most plan times the spread of lower bounds adds per scope.
const MAX_SPREAD_PLANS: usize = 10_000;

/// The bounds of a job's [`LeaseStore::retry_due`](crate::store::LeaseStore::retry_due)
/// read, chosen so that the read can never starve a retry the job's
/// catch-up rules would run; `None` when the schedule has no occurrence
/// yet.
///
/// `since` is the oldest plan time any scope would retry: each scope's
/// newest plan (`latest_only`) or the start of its catch-up window
/// (`every_plan`). The per-scope limit is as many rows as a tick runs (1
/// for `latest_only`, the per-tick cap for `every_plan`), plus the plan
/// times between the earliest and the latest scope's own lower bound.
/// Spread offsets give scopes different bounds, and the rows of a scope
/// below its own bound come first in the answer (oldest first) without
/// being runnable; this many rows always reach past them.
fn retry_read<'a>(
    job_name: &'a str,
    planning: &plan::Planning,
    now: OffsetDateTime,
    offsets: &[Duration],
) -> Option<RetryRead<'a>> {
    let lower = |offset| match planning.catch_up {
        CatchUpMode::LatestOnly => plan::latest_plan(planning, now, offset),
        CatchUpMode::EveryPlan => plan::oldest_allowed(planning, now, offset),
    };
    let bounds: Vec<OffsetDateTime> = offsets.iter().filter_map(|&o| lower(o)).collect();
    let since = *bounds.iter().min()?;
    let until = *bounds.iter().max()?;
    let runs = match planning.catch_up {
        CatchUpMode::LatestOnly => 1,
        CatchUpMode::EveryPlan => planning.max_plans_per_tick.max(1),
    };
    let spread_plans = planning
        .schedule
        .between(since, until, MAX_SPREAD_PLANS)
        .len();
    Some(RetryRead {
        job_name,
        since,
        allow_stale_reentry: planning.allow_stale_reentry,
        per_scope_limit: runs.saturating_add(spread_plans),
    })
}

/// [`plan::plan_scope`] without the scheduled plans of `scope` a resume
/// skipped (a pause ended with `skip_missed`): they are dropped, never
/// claimed, forced retries excepted. `latest_only` then runs nothing
/// rather than an older plan. Once nothing newer than `after` is left but
/// skipped plans, `every_plan`'s cursor jumps to the end of their window,
/// so that a window holding more plans than a tick's cap does not hold
/// back the plans after it for good.
fn plan_unskipped(
    planning: &plan::Planning,
    now: OffsetDateTime,
    offset: Duration,
    mut after: Option<OffsetDateTime>,
    retries: &ScopeRetries,
    scope: &Scope,
    controls: &JobControls<'_>,
) -> Vec<OffsetDateTime> {
    let plan = |after| {
        plan::plan_scope(
            planning,
            now,
            offset,
            after,
            &retries.due,
            &retries.operator,
        )
    };
    if !controls.skips_any() {
        return plan(after);
    }
    let mut kept = Vec::new();
    // Each jump passes a window: one more round than there are windows.
    for _ in 0..=controls.skip_count() {
        let mut skipped_until = None;
        kept = plan(after);
        kept.retain(|t| {
            let end = (!retries.operator.contains(t))
                .then(|| controls.skip_end(scope, *t))
                .flatten();
            skipped_until = skipped_until.max(end);
            end.is_none()
        });
        let moved_on = kept.iter().any(|t| {
            after.is_none_or(|a| *t > a)
                && !retries.due.contains(t)
                && !retries.operator.contains(t)
        });
        let Some(end) = skipped_until else { break };
        if moved_on || planning.catch_up != CatchUpMode::EveryPlan {
            break;
        }
        // The last plan of the window: the cursor starts after it.
        let Some(jump) = planning
            .schedule
            .at_or_before(end - time::Duration::MICROSECOND)
            .filter(|j| after.is_none_or(|a| *j > a))
        else {
            break;
        };
        after = Some(jump);
    }
    kept
}

impl Manager {
    /// Keys for a cadence job, scope by scope in plan order, and the due
    /// retries of its triggers' and backfills' runs; `None` when a store
    /// read failed.
    ///
    /// An idle tick costs one statement here (`retry_due`) whatever the
    /// number of scopes: the newest plan time known to exist per scope is
    /// kept from earlier ticks, so only scopes never seen are read
    /// (`latest_executions`, once), and only due plans are claimed. The
    /// knowledge only ever skips asking for plans that exist; whether a plan
    /// may run is still decided by the store's claim.
    pub(super) async fn plan_cadence(
        &self,
        job: &Registered,
        scopes: &[&Scope],
        controls: &JobControls<'_>,
        now: OffsetDateTime,
        out: &mut TickOutcome,
    ) -> Option<Planned> {
        let spec = &job.spec;
        let store = &self.inner.store;
        let planning = spec.planning();
        let offset = |s: &Scope| plan::scope_offset(&spec.name, s, planning.spread);
        // Without a spread every scope has offset zero: the bounds that
        // depend on offsets alone are worked out once, not per scope (a
        // tick over a million scopes would otherwise spend most of its
        // time finding the same instant a million times).
        let offsets: Vec<Duration> = if planning.spread.is_zero() {
            vec![Duration::ZERO]
        } else {
            scopes.iter().map(|s| offset(s)).collect()
        };
        if let Some(due) = offsets
            .iter()
            .filter_map(|&o| plan::next_eligible(&planning, now, o))
            .min()
        {
            out.next_due = Some(out.next_due.map_or(due, |d| d.min(due)));
        }
        let Some(read) = retry_read(&spec.name, &planning, now, &offsets) else {
            // The schedule has no occurrence yet.
            return Some(Planned {
                keys: Vec::new(),
                ad_hoc: Vec::new(),
                capped: Vec::new(),
            });
        };
        let mut retries: FastMap<Scope, ScopeRetries> = FastMap::default();
        match store.retry_due(&read).await {
            Ok(due) => {
                for d in due {
                    let forced = d.forced();
                    let entry = retries.entry(d.scope).or_default();
                    if d.origin.is_ad_hoc() {
                        entry.ad_hoc.push((d.origin, d.plan_time));
                    } else if forced {
                        entry.operator.push(d.plan_time);
                    } else {
                        entry.due.push(d.plan_time);
                    }
                }
            }
            Err(e) => {
                warn!(error = %e, "retry-due read failed");
                out.report.errors += 1;
                return None;
            }
        }
        // Scopes never seen are read once: every_plan's cursor starts after
        // their newest row, and a cron job must tell a scope with no history
        // (which does not run an old occurrence, see FIRST_RUN_GRACE) from
        // one whose newest row this replica has not seen yet. A cadence
        // latest_only job needs neither: its claim of the newest bucket
        // decides.
        let needs_history = planning.catch_up == CatchUpMode::EveryPlan
            || matches!(planning.schedule, plan::Schedule::Cron(_));
        let unknown: Vec<Scope> = if needs_history {
            let known = job.known.lock().expect("known lock");
            scopes
                .iter()
                .filter(|s| known.get(s).is_none())
                .map(|s| (*s).clone())
                .collect()
        } else {
            Vec::new()
        };
        if !unknown.is_empty() {
            let views = match store.latest_executions(&spec.name, &unknown).await {
                Ok(views) => views,
                Err(e) => {
                    warn!(error = %e, "latest-execution read failed");
                    out.report.errors += 1;
                    return None;
                }
            };
            let mut known = job.known.lock().expect("known lock");
            for (scope, view) in unknown.into_iter().zip(views) {
                let (after, retry) =
                    plan::cursor_from(view.as_ref(), now, planning.allow_stale_reentry);
                if let Some(after) = after {
                    known.set(&scope, after);
                }
                retries.entry(scope).or_default().due.extend(retry);
            }
        }
        let mut known = job.known.lock().expect("known lock");
        known.prune(scopes);
        let mut planned = Planned {
            keys: Vec::new(),
            ad_hoc: Vec::new(),
            capped: Vec::new(),
        };
        let none = ScopeRetries::default();
        // A stored schedule's version plans from the instant it became
        // current: earlier plan times belong to earlier versions, whose
        // plans (and retries) are not made after a change; an operator's
        // retry still runs (docs/contract.md §12).
        let since = job.stored.map(|s| s.since);
        // Planning stops once the keys overflow this replica's free
        // capacity (the claim would cut the rest), and the next tick starts
        // from the scope whose keys overflowed: a tick costs what it can
        // claim, not the number of scopes, and a backlog of a million
        // scopes is worked through in rounds instead of being planned
        // over from the first scope each tick. Scopes left unplanned are
        // a backlog: tick again when a run ends.
        let free = self.free_capacity();
        let start = match scopes.len() {
            0 => 0,
            n => job.resume_at.load(Ordering::Relaxed) % n,
        };
        // The plans of the last scope without retries, by its offset and
        // cursor: without skipped windows they are all a scope's plans
        // depend on, and in a fan-out every scope shares them (no spread,
        // nothing run yet), so they are worked out once, not per scope.
        let mut shared: Option<(PlanInputs, Vec<OffsetDateTime>)> = None;
        for step in 0..scopes.len() {
            let at = (start + step) % scopes.len();
            let scope = scopes[at];
            let offset = offset(scope);
            let scope_retries = retries.get(scope).unwrap_or(&none);
            let mut after = known.get(scope);
            if let Some(since) = since {
                after = after.max(Some(since - time::Duration::MICROSECOND));
            }
            let plan = || {
                let mut plans = plan_unskipped(
                    &planning,
                    now,
                    offset,
                    after,
                    scope_retries,
                    scope,
                    controls,
                );
                if let Some(since) = since {
                    plans.retain(|t| *t >= since || scope_retries.operator.contains(t));
                }
                plans
            };
            let owned;
            let plans: &[OffsetDateTime] = if scope_retries.is_empty() && !controls.skips_any() {
                match &mut shared {
                    Some((inputs, plans)) if *inputs == (offset, after) => plans,
                    slot => &slot.insert(((offset, after), plan())).1,
                }
            } else {
                owned = plan();
                &owned
            };
            if planning.max_plans_per_tick > 0 && plans.len() >= planning.max_plans_per_tick {
                planned.capped.push(scope.clone());
            }
            planned.keys.extend(plans.iter().map(|&plan_time| PlanKey {
                scope: scope.clone(),
                plan_time,
            }));
            planned
                .ad_hoc
                .extend(scope_retries.ad_hoc.iter().map(|&(origin, plan_time)| {
                    let key = PlanKey {
                        scope: scope.clone(),
                        plan_time,
                    };
                    (origin, key)
                }));
            if planned.keys.len() > free {
                job.resume_at.store(at, Ordering::Relaxed);
                out.backlog = true;
                break;
            }
        }
        Some(planned)
    }

    /// Keys for a job with a custom planner, which is shown each scope's
    /// latest execution every tick, without the plans a resume skipped;
    /// `None` when the read failed.
    pub(super) async fn plan_custom(
        &self,
        spec: &JobSpec,
        scopes: &[&Scope],
        controls: &JobControls<'_>,
        now: OffsetDateTime,
        out: &mut TickOutcome,
    ) -> Option<Planned> {
        let scopes: Vec<Scope> = scopes.iter().map(|&s| s.clone()).collect();
        let views = match self
            .inner
            .store
            .latest_executions(&spec.name, &scopes)
            .await
        {
            Ok(views) => views,
            Err(e) => {
                warn!(error = %e, "latest-execution read failed");
                out.report.errors += 1;
                return None;
            }
        };
        let mut keys = Vec::new();
        let mut capped = Vec::new();
        for (scope, view) in scopes.iter().zip(&views) {
            let mut plans = spec.custom_plans(scope, now, view.as_ref());
            if spec.max_plans_per_tick > 0 && plans.len() >= spec.max_plans_per_tick {
                capped.push(scope.clone());
            }
            if controls.skips_any() {
                plans.retain(|t| controls.skip_end(scope, *t).is_none());
            }
            keys.extend(plans.into_iter().map(|plan_time| PlanKey {
                scope: scope.clone(),
                plan_time,
            }));
        }
        Some(Planned {
            keys,
            ad_hoc: Vec::new(),
            capped,
        })
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::plan::{Planning, Schedule};

    const MIN: Duration = Duration::from_secs(60);
    const NOW: OffsetDateTime = datetime!(2026-03-05 12:00:30 UTC);

    fn list_of(ids: &[u32]) -> std::sync::Arc<[Scope]> {
        ids.iter()
            .map(|i| Scope::new("t", format!("{i}")))
            .collect()
    }

    #[test]
    fn known_scopes_are_entered_once_per_list_and_unknown_until_learned() {
        let scopes = list_of(&[0, 1, 2]);
        let mut known = Known::default();
        known.list(&scopes);
        assert_eq!(known.slots.len(), 3, "an entry per scope of the list");
        assert!(
            scopes.iter().all(|s| known.get(s).is_none()),
            "none known yet"
        );
        known.set(&scopes[1], NOW);
        known.set(&scopes[1], NOW - MIN);
        assert_eq!(known.get(&scopes[1]), Some(NOW), "the newer time is kept");
        // The list's own scope (by address) and an equal one from elsewhere
        // (by name) are the same entry.
        assert_eq!(known.get(&Scope::new("t", "1")), Some(NOW));
        known.set(&Scope::new("t", "2"), NOW - MIN);
        assert_eq!(known.get(&scopes[2]), Some(NOW - MIN));
        // The same list again is realigned once, then left as it is.
        known.list(&scopes);
        assert!(known.aligned, "realigned when given again");
        let slots = known.newest.as_ptr();
        known.list(&scopes);
        assert_eq!(known.newest.as_ptr(), slots, "realigned once");
        // Another list keeps what is known: looked up by name while new,
        // then each scope at its new position.
        let reordered = list_of(&[2, 0, 1]);
        known.list(&reordered);
        assert!(!known.aligned, "a list given once is not realigned");
        assert_eq!(known.get(&reordered[0]), Some(NOW - MIN));
        known.list(&reordered);
        assert!(known.aligned);
        assert_eq!(known.newest[0], Some(NOW - MIN), "scope 2 in slot 0");
        assert_eq!(known.get(&reordered[0]), Some(NOW - MIN));
        assert_eq!(known.get(&reordered[1]), None);
        assert_eq!(known.get(&reordered[2]), Some(NOW));
        // A list naming a scope twice: positions are no longer slots.
        let twice = list_of(&[0, 0, 1]);
        known.list(&twice);
        known.list(&twice);
        assert!(!known.aligned, "positions are not slots");
        known.set(&twice[1], NOW);
        assert_eq!(known.get(&twice[0]), Some(NOW));
        assert_eq!(known.get(&twice[2]), Some(NOW), "scope 1's own time");
        assert_eq!(known.get(&reordered[0]), Some(NOW - MIN), "kept, unlisted");
        // Scopes gone from the provider are forgotten once twice as many
        // are known as listed.
        known.prune(&[&scopes[0]]);
        assert_eq!(known.slots.len(), 1);
        assert!(known.get(&scopes[2]).is_none());
        assert_eq!(known.get(&scopes[0]), Some(NOW));
    }

    fn planning(catch_up: CatchUpMode, window: Duration, per_tick: usize) -> Planning {
        Planning {
            schedule: Schedule::every(MIN),
            schedule_delay: Duration::ZERO,
            catch_up,
            catch_up_window: window,
            max_plans_per_tick: per_tick,
            allow_stale_reentry: true,
            spread: Duration::ZERO,
        }
    }

    fn read(planning: &Planning, offsets: &[Duration]) -> RetryRead<'static> {
        retry_read(JOB, planning, NOW, offsets).expect("a cadence always has a plan")
    }

    const JOB: &str = "job";

    /// What the read should be: `since` and the per-scope limit.
    fn expected(since: OffsetDateTime, per_scope_limit: usize) -> RetryRead<'static> {
        RetryRead {
            job_name: JOB,
            since,
            allow_stale_reentry: true,
            per_scope_limit,
        }
    }

    #[test]
    fn no_scopes_need_no_read() {
        let latest = planning(CatchUpMode::LatestOnly, Duration::ZERO, 0);
        assert_eq!(retry_read(JOB, &latest, NOW, &[]), None);
    }

    #[test]
    fn latest_only_without_spread_reads_from_the_newest_plan() {
        let latest = planning(CatchUpMode::LatestOnly, Duration::ZERO, 0);
        // The one run a tick makes, and the newest plan itself.
        let expected = expected(datetime!(2026-03-05 12:00 UTC), 2);
        assert_eq!(read(&latest, &[Duration::ZERO; 3]), expected);
    }

    #[test]
    fn latest_only_with_spread_reaches_back_to_the_earliest_scopes_plan() {
        let latest = planning(CatchUpMode::LatestOnly, Duration::ZERO, 0);
        // The 59 s offset's newest plan is 11:59; the others' is 12:00.
        let offsets = [
            Duration::ZERO,
            Duration::from_secs(30),
            Duration::from_secs(59),
        ];
        let expected = expected(datetime!(2026-03-05 11:59 UTC), 1 + 2);
        assert_eq!(read(&latest, &offsets), expected);
    }

    #[test]
    fn every_plan_reads_the_per_tick_cap_from_the_window_start() {
        let every = planning(CatchUpMode::EveryPlan, 10 * MIN, 5);
        // The window starts between plans: no plan lies at the bound.
        let expected = expected(datetime!(2026-03-05 11:50:30 UTC), 5);
        assert_eq!(read(&every, &[Duration::ZERO]), expected);
        let uncapped = planning(CatchUpMode::EveryPlan, 10 * MIN, 0);
        assert_eq!(
            read(&uncapped, &[Duration::ZERO]).per_scope_limit,
            1,
            "at least one row"
        );
    }

    #[test]
    fn every_plan_with_spread_adds_the_plans_between_the_scopes_bounds() {
        // A zero window starts each scope at its newest plan: 12:00 for
        // offset 0, 11:55 for offset 5 min.
        let every = planning(CatchUpMode::EveryPlan, Duration::ZERO, 5);
        // 11:55, 11:56, ..., 12:00.
        let expected = expected(datetime!(2026-03-05 11:55 UTC), 5 + 6);
        assert_eq!(read(&every, &[Duration::ZERO, 5 * MIN]), expected);
    }
}
