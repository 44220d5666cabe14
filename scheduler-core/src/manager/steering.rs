//! Steering at run time: the controls a tick reads once for all its jobs
//! ([`LeaseStore::controls`](crate::store::LeaseStore::controls)), what
//! they mean for one job ([`JobControls`]: the pauses in force, the plan
//! times a resume skipped), and the claims of its triggers and backfills,
//! which come after the job's scheduled plans.
//!
//! A pause is exact because the store's claim refuses what it covers
//! ([`ClaimKind::Paused`](crate::model::ClaimKind::Paused)); the manager
//! leaves paused jobs and scopes out of planning only to save the work.
//! Skipping what a pause missed, on the other hand, is the manager's
//! alone: the store does not know which plans a resume dropped.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::task::JoinSet;
use tracing::{info, warn};

use super::tick::{StoreClock, TickOutcome};
use super::{Manager, Registered, TickReport};
use crate::error::StoreError;
use crate::model::{
    Control, ControlAction, ControlChange, ControlRead, ControlState, Origin, PlanKey, Scope,
    Steering,
};
use crate::plan;

/// The shortest look-back of a tick's control read: pauses that ended
/// within the last day are read whatever the jobs' schedules.
const MIN_CONTROL_LOOKBACK: Duration = Duration::from_secs(86_400);

/// The controls of one tick, for every job.
pub(super) struct TickControls {
    controls: Arc<Vec<Control>>,
    /// Read by this tick. After a failed read the tick goes on with the
    /// last good read's pauses and skip windows (a stale pause only delays
    /// plans, and forgetting a window would run plans a resume dropped),
    /// but claims for no trigger or backfill: one cancelled or finished
    /// since must not start runs.
    fresh: bool,
}

/// What the controls of a tick say about one job.
pub(super) struct JobControls<'a> {
    /// The pauses in force.
    pauses: Vec<&'a Control>,
    /// The windows of plan times that pauses ended with `skip_missed`
    /// drop: the scope they cover (`None` for every scope), start, end.
    skips: Vec<(Option<&'a Scope>, OffsetDateTime, OffsetDateTime)>,
    /// Active triggers, oldest first (none after a failed read).
    triggers: Vec<&'a Control>,
    /// Active backfills, oldest first (none after a failed read).
    backfills: Vec<&'a Control>,
    /// The read was this tick's.
    fresh: bool,
}

impl TickControls {
    /// What the controls say about `job` at store time `now`.
    pub(super) fn of_job(&self, job: &str, now: OffsetDateTime) -> JobControls<'_> {
        let mut view = JobControls {
            pauses: Vec::new(),
            skips: Vec::new(),
            triggers: Vec::new(),
            backfills: Vec::new(),
            fresh: self.fresh,
        };
        for control in self.controls.iter().filter(|c| c.job_name == job) {
            if control.pauses(now) {
                view.pauses.push(control);
            } else if let Some((from, to)) = control.skip_window(now) {
                view.skips.push((control.scope.as_ref(), from, to));
            } else if self.fresh && control.is_active() {
                match control.action {
                    ControlAction::Trigger => view.triggers.push(control),
                    ControlAction::Backfill { .. } => view.backfills.push(control),
                    ControlAction::Pause { .. } => {}
                }
            }
        }
        view
    }
}

impl JobControls<'_> {
    /// A pause of every scope of the job is in force.
    pub(super) fn job_paused(&self) -> bool {
        self.pauses.iter().any(|p| p.scope.is_none())
    }

    /// A pause covering `scope` is in force.
    pub(super) fn scope_paused(&self, scope: &Scope) -> bool {
        self.pauses.iter().any(|p| p.covers(scope))
    }

    /// When the first of the pauses in force runs out by itself, if any
    /// does: the loop wakes then.
    pub(super) fn pause_ends(&self) -> Option<OffsetDateTime> {
        self.pauses
            .iter()
            .filter_map(|p| match p.action {
                ControlAction::Pause { until, .. } => until,
                _ => None,
            })
            .min()
    }

    /// `scopes` without the paused ones.
    pub(super) fn without_paused<'s>(&self, scopes: &'s [Scope]) -> Vec<&'s Scope> {
        scopes
            .iter()
            .filter(|s| self.pauses.is_empty() || !self.scope_paused(s))
            .collect()
    }

    /// The job has triggers or backfills to claim.
    pub(super) fn has_ad_hoc(&self) -> bool {
        !self.triggers.is_empty() || !self.backfills.is_empty()
    }

    /// Whether some pause ended with `skip_missed` (planning then drops
    /// the plans of its window).
    pub(super) fn skips_any(&self) -> bool {
        !self.skips.is_empty()
    }

    /// How many windows of skipped plans there are.
    pub(super) fn skip_count(&self) -> usize {
        self.skips.len()
    }

    /// The end of the latest-ending window of skipped plans that holds the
    /// scheduled plan of `scope` at `plan_time`, if one does.
    pub(super) fn skip_end(
        &self,
        scope: &Scope,
        plan_time: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        self.skips
            .iter()
            .filter(|(s, from, to)| {
                s.is_none_or(|s| s == scope) && *from <= plan_time && plan_time < *to
            })
            .map(|(_, _, to)| *to)
            .max()
    }
}

/// The oldest end of a control a tick reads: a pause that ended (or ran
/// out) with `skip_missed` before it cannot hold a plan any job would plan
/// now. Planning reaches back the catch-up window, or to the newest plan
/// (which, for a cron schedule, can be days old), whichever is further;
/// and at least [`MIN_CONTROL_LOOKBACK`].
fn controls_since(jobs: &[Arc<Registered>], now: OffsetDateTime) -> OffsetDateTime {
    let reach = jobs
        .iter()
        .filter(|j| j.spec.planner.is_none())
        .map(|j| {
            let planning = j.spec.planning();
            // The largest spread offset is the earliest newest plan.
            let newest = plan::latest_plan(&planning, now, planning.spread)
                .map_or(Duration::ZERO, |t| {
                    Duration::try_from(now - t).unwrap_or_default()
                });
            planning.catch_up_window.max(newest)
        })
        .fold(MIN_CONTROL_LOOKBACK, Duration::max);
    time::Duration::try_from(reach)
        .ok()
        .and_then(|d| now.checked_sub(d))
        .unwrap_or(time::PrimitiveDateTime::MIN.assume_utc())
}

/// A backfill's work for one tick: the keys to claim and the instants
/// they belong to.
struct BackfillStep {
    /// Keys not known to have a row, cut to the room left this tick.
    keys: Vec<PlanKey>,
    /// The instants from the cursor on that the step looked at, in order.
    instants: Vec<OffsetDateTime>,
    /// How much of the tick's room the step took: its keys, and those it
    /// left for a scope busy here (they are its to claim later).
    taken: usize,
}

impl Manager {
    /// Reads the controls of every registered job in one call (none when
    /// there is no job). A failed read counts as an error and yields the
    /// last good read, marked stale (see [`TickControls`]).
    pub(super) async fn read_controls(
        &self,
        jobs: &[Arc<Registered>],
        now: OffsetDateTime,
        out: &mut TickOutcome,
    ) -> TickControls {
        if jobs.is_empty() {
            return TickControls {
                controls: Arc::default(),
                fresh: true,
            };
        }
        let read = ControlRead {
            jobs: Some(jobs.iter().map(|j| j.spec.name.clone()).collect()),
            ended_since: Some(controls_since(jobs, now)),
        };
        let last = &self.inner.last_controls;
        match self.inner.store.controls(&read).await {
            Ok(controls) => {
                let controls = Arc::new(controls);
                *last.lock().expect("controls lock") = controls.clone();
                TickControls {
                    controls,
                    fresh: true,
                }
            }
            Err(e) => {
                warn!(error = %e, "control read failed; going on with the last read's pauses, claiming no trigger or backfill");
                out.report.errors += 1;
                TickControls {
                    controls: last.lock().expect("controls lock").clone(),
                    fresh: false,
                }
            }
        }
    }

    /// Claims the job's active triggers, each in a batch of its own: one
    /// run per target scope, at the trigger's plan time
    /// ([`Control::trigger_plan_time`], off the schedule's instants so it
    /// never takes a scheduled plan's key; one microsecond after its
    /// creation for a custom planner). A trigger is done once every target
    /// has a row.
    pub(super) async fn claim_triggers(
        &self,
        job: &Arc<Registered>,
        scopes: &[Scope],
        controls: &JobControls<'_>,
        clock: StoreClock,
        tasks: &mut JoinSet<TickReport>,
        out: &mut TickOutcome,
    ) {
        let spec = &job.spec;
        for trigger in &controls.triggers {
            let Some(targets) = self.targets(trigger, scopes, out).await else {
                continue;
            };
            // A custom planner's plans cannot be known ahead, and tend to
            // fall on round instants, as a trigger made at a round time
            // does: its runs then always take the next microsecond.
            let plan_time = trigger.trigger_plan_time(|t| {
                spec.planner.is_some() || spec.schedule.at_or_after(t) == Some(t)
            });
            // A paused target waits for its pause to end (the store would
            // refuse it), a busy one for its run here to end.
            let unpaused: Vec<PlanKey> = targets
                .iter()
                .filter(|s| !controls.scope_paused(s))
                .map(|scope| PlanKey {
                    scope: scope.clone(),
                    plan_time,
                })
                .collect();
            let keys = self.not_busy_here(job, unpaused, out);
            let steering = Steering {
                overlap: spec.overlap,
                origin: Origin::Trigger,
                control_id: Some(trigger.id),
                ..Steering::NONE
            };
            let Some(ended) = self
                .claim_and_start(job, keys, steering, clock, tasks, out)
                .await
            else {
                continue;
            };
            if ended.len() == targets.len() && ended.iter().all(|(_, kind)| kind.row_exists()) {
                let done = ControlChange::End {
                    state: ControlState::Done,
                    reason: None,
                    skip_missed: None,
                };
                if self.change_control(trigger, &done, out).await {
                    info!(control = %trigger.id, target = %trigger.target(), runs = targets.len(), "trigger done: every target has its run");
                }
            } else {
                out.backlog = true;
            }
        }
    }

    /// Claims the job's active backfills, oldest first: after the
    /// scheduled and trigger keys, at most `backfill_per_tick` keys per
    /// tick in all (and within free capacity), instant by instant from each
    /// backfill's cursor, every instant for every target scope. A
    /// backfill whose target is paused waits for the pause to end. The
    /// cursor moves past the instants whose every key has a row (a
    /// compare-and-set: a replica that lost the race leaves it).
    pub(super) async fn claim_backfills(
        &self,
        job: &Arc<Registered>,
        scopes: &[Scope],
        controls: &JobControls<'_>,
        clock: StoreClock,
        tasks: &mut JoinSet<TickReport>,
        out: &mut TickOutcome,
    ) {
        if controls.fresh {
            // Forget what was known of backfills that ended.
            let mut memo = job.backfilled.lock().expect("backfill lock");
            memo.retain(|id, _| controls.backfills.iter().any(|b| b.id == *id));
        }
        let spec = &job.spec;
        let mut room = spec.backfill_per_tick;
        for backfill in &controls.backfills {
            let ControlAction::Backfill { from, to } = backfill.action else {
                continue;
            };
            if spec.planner.is_some() {
                let reason = "a backfill runs the instants of the job's schedule, and this job has a custom planner instead";
                self.reject(backfill, reason.to_owned(), out).await;
                continue;
            }
            let Some(targets) = self.targets(backfill, scopes, out).await else {
                continue;
            };
            if targets.iter().any(|s| controls.scope_paused(s)) {
                continue;
            }
            room = room.min(self.free_capacity());
            if room == 0 {
                out.backlog = true;
                return;
            }
            let cursor = backfill.cursor.unwrap_or(from);
            let mut step = self.backfill_step(job, backfill, cursor, to, &targets, room);
            step.keys = self.not_busy_here(job, step.keys, out);
            room -= step.taken;
            let steering = Steering {
                overlap: spec.overlap,
                origin: Origin::Backfill,
                control_id: Some(backfill.id),
                ..Steering::NONE
            };
            let Some(ended) = self
                .claim_and_start(job, step.keys, steering, clock, tasks, out)
                .await
            else {
                continue;
            };
            let through = {
                let mut memo = job.backfilled.lock().expect("backfill lock");
                let have = memo.entry(backfill.id).or_default();
                have.extend(
                    ended
                        .into_iter()
                        .filter(|(_, kind)| kind.row_exists())
                        .map(|(key, _)| key),
                );
                // The instants, from the cursor, whose every key has a row.
                step.instants
                    .iter()
                    .take_while(|&&t| {
                        targets.iter().all(|scope| {
                            have.contains(&PlanKey {
                                scope: scope.clone(),
                                plan_time: t,
                            })
                        })
                    })
                    .last()
                    .copied()
            };
            let next = match (step.instants.is_empty(), through) {
                // Nothing of the schedule is left before the end.
                (true, _) => to,
                (false, Some(last)) => match spec.schedule.after(last) {
                    Some(n) if n < to => last + time::Duration::MICROSECOND,
                    _ => to,
                },
                (false, None) => {
                    out.backlog = true;
                    continue;
                }
            };
            self.advance(job, backfill, cursor, next, out).await;
        }
    }

    /// The keys of `backfill` to claim this tick, from `cursor` (inclusive)
    /// to `to` (exclusive), at most `room` of them, leaving out the keys
    /// known to have a row: so a backfill with more target scopes than
    /// `backfill_per_tick` still moves on, tick after tick.
    fn backfill_step(
        &self,
        job: &Registered,
        backfill: &Control,
        cursor: OffsetDateTime,
        to: OffsetDateTime,
        targets: &[Scope],
        room: usize,
    ) -> BackfillStep {
        let mut memo = job.backfilled.lock().expect("backfill lock");
        let have = memo.entry(backfill.id).or_default();
        // Another replica may have moved the cursor on.
        have.retain(|k| k.plan_time >= cursor);
        let mut step = BackfillStep {
            keys: Vec::new(),
            instants: Vec::new(),
            taken: 0,
        };
        let schedule = &job.spec.schedule;
        let mut next = schedule.at_or_after(cursor);
        while let Some(instant) = next.filter(|&t| t < to) {
            if step.taken == room {
                break;
            }
            step.instants.push(instant);
            for scope in targets {
                let key = PlanKey {
                    scope: scope.clone(),
                    plan_time: instant,
                };
                if have.contains(&key) {
                    continue;
                }
                if step.taken == room {
                    break;
                }
                step.taken += 1;
                step.keys.push(key);
            }
            // A zero cadence never advances; only custom planners have one,
            // and their backfills are rejected before this.
            next = schedule.after(instant).filter(|&n| n > instant);
        }
        step
    }

    /// Moves `backfill`'s cursor from `cursor` to `next` (done when `next`
    /// is its end). A conflict means another replica moved it first.
    async fn advance(
        &self,
        job: &Registered,
        backfill: &Control,
        cursor: OffsetDateTime,
        next: OffsetDateTime,
        out: &mut TickOutcome,
    ) {
        let change = ControlChange::Advance {
            from: cursor,
            to: next,
        };
        match self.inner.store.update_control(backfill.id, &change).await {
            Ok(moved) if moved.state == ControlState::Done => {
                job.backfilled
                    .lock()
                    .expect("backfill lock")
                    .remove(&backfill.id);
                info!(control = %backfill.id, target = %backfill.target(), "backfill done: every instant has its runs");
            }
            Ok(_) => out.backlog = true,
            Err(StoreError::Conflict(_) | StoreError::NotFound { .. }) => {}
            Err(e) => {
                warn!(error = %e, control = %backfill.id, "backfill cursor not moved; trying again next tick");
                out.report.errors += 1;
            }
        }
    }

    /// The scopes `control` targets among the job's `scopes` this tick:
    /// its own scope, or every scope (rotated to this replica's offset, as
    /// scheduled keys are). `None` when it can never be honoured, after
    /// rejecting it.
    async fn targets(
        &self,
        control: &Control,
        scopes: &[Scope],
        out: &mut TickOutcome,
    ) -> Option<Vec<Scope>> {
        let problem = match &control.scope {
            Some(scope) if scopes.contains(scope) => return Some(vec![scope.clone()]),
            Some(scope) => format!("scope {scope} is not among the job's scopes"),
            None if scopes.is_empty() => "the job has no scopes".to_owned(),
            None => {
                let mut all = scopes.to_vec();
                self.rotate(&mut all);
                return Some(all);
            }
        };
        self.reject(control, problem, out).await;
        None
    }

    /// Ends `control` as rejected, with `reason`; warns once, from the
    /// replica whose update did it.
    async fn reject(&self, control: &Control, reason: String, out: &mut TickOutcome) {
        let change = ControlChange::End {
            state: ControlState::Rejected,
            reason: Some(reason.clone()),
            skip_missed: None,
        };
        if self.change_control(control, &change, out).await {
            warn!(control = %control.id, kind = control.action.kind(), target = %control.target(), %reason, "control rejected");
        }
    }

    /// Applies `change` to `control`; whether this call made it. A
    /// conflict means another replica (or an operator) ended it first.
    async fn change_control(
        &self,
        control: &Control,
        change: &ControlChange,
        out: &mut TickOutcome,
    ) -> bool {
        match self.inner.store.update_control(control.id, change).await {
            Ok(_) => true,
            Err(StoreError::Conflict(_) | StoreError::NotFound { .. }) => false,
            Err(e) => {
                warn!(error = %e, control = %control.id, "control update failed; trying again next tick");
                out.report.errors += 1;
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;
    use uuid::Uuid;

    const NOW: OffsetDateTime = datetime!(2026-03-05 12:00:30 UTC);

    fn pause(scope: Option<Scope>, until: Option<OffsetDateTime>, skip_missed: bool) -> Control {
        Control {
            id: Uuid::now_v7(),
            job_name: "j".into(),
            scope,
            note: String::new(),
            action: ControlAction::Pause { until, skip_missed },
            state: ControlState::Active,
            reason: None,
            created_at: datetime!(2026-03-05 11:00 UTC),
            ended_at: None,
            cursor: None,
            updated_at: datetime!(2026-03-05 11:00 UTC),
        }
    }

    fn view(controls: Vec<Control>, fresh: bool) -> TickControls {
        TickControls {
            controls: Arc::new(controls),
            fresh,
        }
    }

    #[test]
    fn pauses_in_force_hold_their_scopes_and_wake_the_loop_when_they_run_out() {
        let a = Scope::new("tenant", "a");
        let b = Scope::new("tenant", "b");
        let until = datetime!(2026-03-05 13:00 UTC);
        let tick = view(
            vec![
                pause(Some(a.clone()), Some(until), false),
                Control {
                    job_name: "other".into(),
                    ..pause(None, None, false)
                },
            ],
            true,
        );
        let job = tick.of_job("j", NOW);
        assert!(!job.job_paused());
        assert!(job.scope_paused(&a) && !job.scope_paused(&b));
        assert_eq!(job.without_paused(&[a.clone(), b.clone()]), [&b]);
        assert_eq!(job.pause_ends(), Some(until));
        assert!(tick.of_job("other", NOW).job_paused());
        assert!(!tick.of_job("j", until).scope_paused(&a), "ran out");
    }

    #[test]
    fn a_pause_ended_with_skip_missed_drops_its_window_and_nothing_else() {
        let a = Scope::new("tenant", "a");
        let mut ended = pause(Some(a.clone()), None, true);
        ended.state = ControlState::Done;
        ended.ended_at = Some(datetime!(2026-03-05 11:30 UTC));
        let tick = view(vec![ended], false);
        let job = tick.of_job("j", NOW);
        assert!(job.skips_any());
        let inside = datetime!(2026-03-05 11:10 UTC);
        assert_eq!(
            job.skip_end(&a, inside),
            Some(datetime!(2026-03-05 11:30 UTC))
        );
        assert_eq!(job.skip_end(&a, datetime!(2026-03-05 11:30 UTC)), None);
        assert_eq!(job.skip_end(&Scope::new("tenant", "b"), inside), None);
    }

    #[test]
    fn a_stale_read_keeps_pauses_but_claims_no_trigger() {
        let mut trigger = pause(None, None, false);
        trigger.action = ControlAction::Trigger;
        let stale = view(vec![trigger.clone()], false);
        assert!(!stale.of_job("j", NOW).has_ad_hoc());
        assert!(view(vec![trigger], true).of_job("j", NOW).has_ad_hoc());
    }
}
