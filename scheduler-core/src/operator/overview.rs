//! [`Operator::overview`]: every job and what steers it, as `scheduler
//! status` and the dashboard show them: compiled-in jobs from the live
//! replicas' announcements, stored schedules, jobs with rows only and jobs
//! paused ahead of the deploy that brings them; the counts per scope; the
//! controls in force with their progress. [`Operator::missed_plans`]: the
//! plan times of a job's scopes that have no execution, missed or held
//! back by a pause.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use time::OffsetDateTime;

use super::{known_schedules, ControlProgress, Operator, OperatorError};
use crate::error::StoreError;
use crate::model::{
    Control, ControlAction, ControlRead, ControlState, RegisteredJob, Replica, ReplicaState, Scope,
    ScopeSummary, StoredSchedule,
};
use crate::plan::{next_plan_time, Schedule};

/// The most plan times [`Operator::missed_plans`] lists per scope; beyond
/// it the report says it stopped counting ([`MissedPlans::capped`]),
/// rather than listing millions.
pub const MAX_MISSED_PER_SCOPE: usize = 10_000;

/// What the operator sees at one store time: every job, the counts per
/// scope, and the controls in force.
#[derive(Debug)]
pub struct Overview {
    /// Store time of the read.
    pub store_time: OffsetDateTime,
    /// Every job, by name.
    pub jobs: Vec<JobOverview>,
    /// Per job and scope with rows, what the table says now, by job and
    /// scope.
    pub scopes: Vec<ScopeSummary>,
    /// The controls read: those in force, and the pauses the missed-plan
    /// window needs.
    pub controls: OverviewControls,
    /// The parts a store with an older schema could not give; the rest
    /// shows.
    pub notes: Vec<OverviewNote>,
    /// How far back the pauses that ended were read, if at all.
    missed_window: Option<Duration>,
}

impl Overview {
    /// The job `name`, if the overview has it.
    pub fn job(&self, name: &str) -> Option<&JobOverview> {
        self.jobs.iter().find(|j| j.name == name)
    }

    /// The missed-plan window it was read for
    /// ([`Operator::overview`]'s `missed_window`).
    pub fn missed_window(&self) -> Option<Duration> {
        self.missed_window
    }
}

/// A part of the overview the store could not read (a schema older than
/// the registry, the stored schedules or the controls): the rest still
/// shows.
#[derive(Debug)]
pub struct OverviewNote {
    /// What is missing: `registered jobs`, `stored schedules`, or
    /// `pauses, triggers and backfills`.
    pub unshown: &'static str,
    /// Why.
    pub error: StoreError,
}

impl fmt::Display for OverviewNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} are not shown: {}", self.unshown, self.error)
    }
}

/// One job as the registry, the stored schedules and the table know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOverview {
    /// The job's name.
    pub name: String,
    /// How the most recently started live replica that runs the job
    /// registered it; `None` when no live replica does.
    pub registration: Option<RegisteredJob>,
    /// The runner ids of the live replicas that registered it.
    pub replicas: Vec<String>,
    /// Live replicas registered it with different schedules (a rolling
    /// deploy that changes it, say).
    pub schedules_differ: bool,
    /// How many of its scopes have rows.
    pub scopes_with_rows: usize,
    /// The stored schedule of this name, if there is one.
    pub stored: Option<StoredSchedule>,
    /// How many live replicas registered the stored schedule's kind.
    pub with_kind: usize,
}

impl JobOverview {
    fn empty(name: &str) -> JobOverview {
        JobOverview {
            name: name.to_owned(),
            registration: None,
            replicas: Vec::new(),
            schedules_differ: false,
            scopes_with_rows: 0,
            stored: None,
            with_kind: 0,
        }
    }

    /// Where the job comes from: `stored v3` (a stored schedule, with the
    /// version the replicas announce when it is not the current one),
    /// `code` (compiled in), or `-` (rows or controls only).
    pub fn source(&self) -> String {
        let announced = self.registration.as_ref().map(|r| r.stored_version);
        match (&self.stored, announced) {
            (Some(s), Some(Some(v))) if v != s.version => {
                format!("stored v{} (replicas on v{v})", s.version)
            }
            (Some(s), _) => format!("stored v{}", s.version),
            (None, Some(Some(v))) => format!("stored v{v} (deleted)"),
            (None, Some(None)) => "code".to_owned(),
            (None, None) => "-".to_owned(),
        }
    }

    /// [`source`](Self::source) in one word: `"stored"`, `"code"`, or
    /// `None` (rows or controls only).
    pub fn source_kind(&self) -> Option<&'static str> {
        match (&self.stored, &self.registration) {
            (Some(_), _) => Some("stored"),
            (None, Some(r)) if r.stored_version.is_some() => Some("stored"),
            (None, Some(_)) => Some("code"),
            (None, None) => None,
        }
    }

    /// Its schedule: a stored schedule's current definition first, whatever
    /// version the replicas announced, else the registration's; `None`
    /// for a custom planner, a form this version cannot read, or a job
    /// known by rows or controls only.
    pub fn schedule(&self) -> Option<Schedule> {
        match (&self.stored, &self.registration) {
            (Some(s), _) => Schedule::from_form(&s.definition.schedule),
            (None, Some(r)) => Schedule::from_form(&r.schedule_form),
            (None, None) => None,
        }
    }

    /// Its schedule in words, from the same source as
    /// [`schedule`](Self::schedule) (a registration's words name a custom
    /// planner too).
    pub fn schedule_words(&self) -> Option<String> {
        match (&self.stored, &self.registration) {
            (Some(s), _) => Schedule::from_form(&s.definition.schedule).map(|p| p.describe()),
            (None, Some(r)) => Some(r.schedule.clone()),
            (None, None) => None,
        }
    }

    /// Its next plan time after store time `now`: for a stored schedule,
    /// the first at or after its current version was stored that becomes
    /// eligible after `now`; for a compiled-in job, as
    /// [`next_plan_time`] says.
    pub fn next_plan_time(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        match (&self.stored, &self.registration) {
            (Some(stored), _) => {
                let schedule = Schedule::from_form(&stored.definition.schedule)?;
                let delay = stored.definition.options.schedule_delay;
                let after = (now - delay + time::Duration::microseconds(1)).max(stored.updated_at);
                schedule.at_or_after(after)
            }
            (None, Some(r)) => next_plan_time(r, now),
            (None, None) => None,
        }
    }
}

/// A control in force, with a trigger's or a backfill's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlInForce {
    /// The control as stored.
    pub control: Control,
    /// `None` for a pause.
    pub progress: Option<ControlProgress>,
}

/// How much of a job the pauses in force cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseExtent {
    /// A pause of every scope.
    WholeJob,
    /// Pauses of this many single scopes.
    Scopes(usize),
}

/// The controls an overview read: those in force, with the progress of
/// triggers and backfills, and every pause read (the ones that ended
/// inside the missed-plan window included).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OverviewControls {
    /// In force at store time, by job, in the store's order (oldest
    /// first).
    in_force: BTreeMap<String, Vec<ControlInForce>>,
    /// Every pause read, ended or not: the windows that held plans back.
    pauses: Vec<Control>,
}

impl OverviewControls {
    /// Every control in force, by job, each job's oldest first.
    pub fn in_force(&self) -> impl Iterator<Item = &ControlInForce> + '_ {
        self.in_force.values().flatten()
    }

    /// The controls in force of `job`, oldest first.
    pub fn of<'a>(&'a self, job: &str) -> impl Iterator<Item = &'a ControlInForce> + 'a {
        self.in_force.get(job).into_iter().flatten()
    }

    /// The pauses in force of `job`, oldest first.
    pub fn pauses_of<'a>(&'a self, job: &str) -> impl Iterator<Item = &'a Control> + 'a {
        self.of(job)
            .map(|c| &c.control)
            .filter(|c| matches!(c.action, ControlAction::Pause { .. }))
    }

    /// Whether a pause in force covers `scope` of `job`.
    pub fn paused(&self, job: &str, scope: &Scope) -> bool {
        self.pauses_of(job).any(|c| c.covers(scope))
    }

    /// How much of `job` the pauses in force cover; `None` when none does.
    pub fn pause_extent(&self, job: &str) -> Option<PauseExtent> {
        let mut scopes = 0;
        for pause in self.pauses_of(job) {
            if pause.scope.is_none() {
                return Some(PauseExtent::WholeJob);
            }
            scopes += 1;
        }
        (scopes > 0).then_some(PauseExtent::Scopes(scopes))
    }

    /// Whether a pause of `job` covering `scope` held back the plan that
    /// became eligible at `eligible`: the pause was stored at or before
    /// that instant and had not ended (been resumed, cancelled, or run out
    /// at its `until`) by then. A rejected pause never paused anything.
    /// Pauses that ended before the overview's missed-plan window were not
    /// read.
    pub fn held_back(&self, job: &str, scope: &Scope, eligible: OffsetDateTime) -> bool {
        self.pauses.iter().any(|c| {
            let ControlAction::Pause { until, .. } = c.action else {
                return false;
            };
            let end = match (c.ended_at, until) {
                (Some(ended), Some(until)) => Some(ended.min(until)),
                (ended, until) => ended.or(until),
            };
            c.job_name == job
                && c.state != ControlState::Rejected
                && c.covers(scope)
                && c.created_at <= eligible
                && end.is_none_or(|end| eligible < end)
        })
    }
}

/// The plan times of one scope inside the missed-plan window that have no
/// execution: those a pause held back, and the others, missed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissedPlans {
    /// The job.
    pub job: String,
    /// The scope.
    pub scope: Scope,
    /// Missed: no execution, and no pause held them back. Oldest first;
    /// with `paused`, at most [`MAX_MISSED_PER_SCOPE`].
    pub plans: Vec<OffsetDateTime>,
    /// No execution because a pause of the scope held them back, oldest
    /// first.
    pub paused: Vec<OffsetDateTime>,
    /// More plan times fell in the window than the report looks at.
    pub capped: bool,
}

impl Operator {
    /// Every job of `job` (all when `None`) with what steers it, at store
    /// time: jobs a live replica registered, stored schedules (run by a
    /// replica or not yet), jobs with rows only, and jobs with controls
    /// only (paused ahead of the deploy that brings them). With
    /// `missed_window`, the pauses that ended inside it are read too, for
    /// [`missed_plans`](Self::missed_plans).
    ///
    /// A store whose schema predates the replica registry, the stored
    /// schedules or the controls still gives the rest: each part it could
    /// not read is an [`OverviewNote`].
    ///
    /// # Errors
    /// [`OperatorError::Store`] when store time, the scope summaries or a
    /// control's progress cannot be read.
    pub async fn overview(
        &self,
        job: Option<&str>,
        missed_window: Option<Duration>,
    ) -> Result<Overview, OperatorError> {
        let now = self.store.now().await?;
        let scopes = self.store.scope_summaries(job).await?;
        let mut notes = Vec::new();
        let mut tolerate = |unshown, error| {
            notes.push(OverviewNote { unshown, error });
        };
        let replicas = self.store.replicas().await.unwrap_or_else(|e| {
            tolerate("registered jobs", e);
            Vec::new()
        });
        let stored = self.store.schedules().await.unwrap_or_else(|e| {
            tolerate("stored schedules", e);
            Vec::new()
        });
        let read = ControlRead {
            jobs: job.map(|j| vec![j.to_owned()]),
            ended_since: missed_window.map(|w| now - w),
        };
        let read = self.store.controls(&read).await.unwrap_or_else(|e| {
            tolerate("pauses, triggers and backfills", e);
            Vec::new()
        });
        let controls = self.controls_read(read, &replicas, now).await?;
        let jobs = jobs(&replicas, &scopes, &stored, &controls, job, now);
        Ok(Overview {
            store_time: now,
            jobs,
            scopes,
            controls,
            notes,
            missed_window,
        })
    }

    /// The plan times of `schedule` in the overview's missed-plan window
    /// that have no execution, per scope of `job` with rows: those a pause
    /// held back, and the others, missed. `delay` is the job's schedule
    /// delay (a plan becomes eligible that long after its plan time). At
    /// most [`MAX_MISSED_PER_SCOPE`] plan times are looked at, the oldest;
    /// the executions are read at once.
    ///
    /// # Errors
    /// [`OperatorError::Refused`] for an overview read without a
    /// missed-plan window (its ended pauses were not read);
    /// [`OperatorError::Store`] when the executions cannot be read.
    pub async fn missed_plans(
        &self,
        overview: &Overview,
        job: &str,
        schedule: &Schedule,
        delay: Duration,
    ) -> Result<Vec<MissedPlans>, OperatorError> {
        let Some(window) = overview.missed_window else {
            return Err(OperatorError::Refused(
                "the overview was read without a missed-plan window".to_owned(),
            ));
        };
        let now = overview.store_time;
        let from = now - window;
        let newest = schedule.at_or_before(now - delay);
        let mut expected = newest
            .map(|n| schedule.between(from, n, MAX_MISSED_PER_SCOPE + 1))
            .unwrap_or_default();
        let capped = expected.len() > MAX_MISSED_PER_SCOPE;
        expected.truncate(MAX_MISSED_PER_SCOPE);
        let mut present: BTreeMap<Scope, BTreeSet<OffsetDateTime>> = BTreeMap::new();
        for p in self.store.plan_times_since(job, from).await? {
            present.entry(p.scope).or_default().insert(p.plan_time);
        }
        let none = BTreeSet::new();
        Ok(overview
            .scopes
            .iter()
            .filter(|s| s.job_name == job)
            .map(|s| {
                let present = present.get(&s.scope).unwrap_or(&none);
                let (paused, plans) = expected
                    .iter()
                    .copied()
                    .filter(|t| !present.contains(t))
                    .partition(|t| overview.controls.held_back(job, &s.scope, *t + delay));
                MissedPlans {
                    job: job.to_owned(),
                    scope: s.scope.clone(),
                    plans,
                    paused,
                    capped,
                }
            })
            .collect())
    }

    /// `controls` as [`OverviewControls`]: the pauses among them, and those
    /// in force at `now` with their progress.
    async fn controls_read(
        &self,
        controls: Vec<Control>,
        replicas: &[Replica],
        now: OffsetDateTime,
    ) -> Result<OverviewControls, OperatorError> {
        let schedules = known_schedules(replicas);
        let mut read = OverviewControls::default();
        for control in controls {
            if matches!(control.action, ControlAction::Pause { .. }) {
                read.pauses.push(control.clone());
            }
            if control.in_force(now) {
                let progress = self.progress(&control, &schedules).await?;
                read.in_force
                    .entry(control.job_name.clone())
                    .or_default()
                    .push(ControlInForce { control, progress });
            }
        }
        Ok(read)
    }
}

/// Every job of `job` (all when `None`) that a live replica registered,
/// that has rows, a stored schedule or a control in force, by name.
fn jobs(
    replicas: &[Replica],
    summaries: &[ScopeSummary],
    stored: &[StoredSchedule],
    controls: &OverviewControls,
    job: Option<&str>,
    now: OffsetDateTime,
) -> Vec<JobOverview> {
    let mut live: Vec<&Replica> = replicas
        .iter()
        .filter(|r| r.state(now) == ReplicaState::Live)
        .collect();
    // Newest start first: its registration is the one shown.
    live.sort_by_key(|r| std::cmp::Reverse(r.started_at));
    let mut views: BTreeMap<&str, JobOverview> = BTreeMap::new();
    let wanted = |name: &str| job.is_none_or(|j| j == name);
    for replica in &live {
        for registered in replica.info.jobs.iter().filter(|j| wanted(&j.name)) {
            let view = views
                .entry(&registered.name)
                .or_insert_with(|| JobOverview {
                    registration: Some(registered.clone()),
                    ..JobOverview::empty(&registered.name)
                });
            view.schedules_differ |= view
                .registration
                .as_ref()
                .is_some_and(|shown| shown.schedule_form != registered.schedule_form);
            view.replicas.push(replica.info.runner_id.clone());
        }
    }
    for summary in summaries {
        views
            .entry(&summary.job_name)
            .or_insert_with(|| JobOverview::empty(&summary.job_name))
            .scopes_with_rows += 1;
    }
    // A stored schedule shows whether or not a replica runs it yet.
    for schedule in stored.iter().filter(|s| wanted(&s.name)) {
        let view = views
            .entry(&schedule.name)
            .or_insert_with(|| JobOverview::empty(&schedule.name));
        view.with_kind = live
            .iter()
            .filter(|r| r.info.kinds.contains(&schedule.definition.kind))
            .count();
        view.stored = Some(schedule.clone());
    }
    // A job paused ahead of the deploy that brings it has neither.
    for name in controls.in_force.keys() {
        views
            .entry(name)
            .or_insert_with(|| JobOverview::empty(name));
    }
    views.into_values().collect()
}
