//! [`Operator`]'s requests: steering a schedule at run time
//! (`docs/contract.md` §11): pause and resume, trigger now, backfill a
//! range, cancel, list; stored schedules (§12): create, update, delete,
//! get, list; and retention (prune).
//!
//! Every request is checked before anything is stored, against what the
//! live replicas announced of the job (the replica registry,
//! `docs/contract.md` §7): a trigger or a backfill of a job no live replica
//! runs is refused (nobody would run it, and a typo would wait forever),
//! while a pause of such a job is stored with a warning, so that a job can
//! be paused ahead of the deploy that brings it.

use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{SpecError, StoreError};
use crate::job::validate_definition;
use crate::model::{
    name_problem, Control, ControlAction, ControlChange, ControlRead, ControlState, NewControl,
    Prune, RegisteredJob, Replica, ReplicaState, ScheduleDefinition, ScheduleWrite, Scope,
    StoredSchedule,
};
use crate::plan::Schedule;
use crate::store::ExecutionAudit;
use crate::time::Rfc3339;

/// The most planned instants a backfill may cover (per scope) unless the
/// operator confirms a larger one ([`Backfill::confirm_large`]).
pub const MAX_BACKFILL_INSTANTS: usize = 100_000;

/// Why an operator's request was not carried out.
#[derive(Debug, Error)]
pub enum OperatorError {
    /// The request makes no sense as asked (an unknown job or scope, an
    /// inverted range, ...); nothing was stored. The message says what to
    /// do instead.
    #[error("{0}")]
    Refused(String),
    /// No control has this id.
    #[error("no control with id {0}")]
    UnknownControl(Uuid),
    /// A stored schedule's definition breaks a rule; the error names the
    /// field. Nothing was stored.
    #[error(transparent)]
    Invalid(#[from] SpecError),
    /// The store failed or refused (see [`StoreError`]).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a control targets: a job, or one scope of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The job's name.
    pub job: String,
    /// One scope, or `None` for every scope.
    pub scope: Option<Scope>,
}

impl Target {
    /// Every scope of `job`.
    pub fn job(job: impl Into<String>) -> Self {
        Target {
            job: job.into(),
            scope: None,
        }
    }

    /// One scope of `job`.
    pub fn scope(job: impl Into<String>, scope: Scope) -> Self {
        Target {
            job: job.into(),
            scope: Some(scope),
        }
    }

    fn describe(&self) -> String {
        match &self.scope {
            Some(scope) => format!("job {:?} scope {scope}", self.job),
            None => format!("job {:?}", self.job),
        }
    }
}

/// A backfill request: every planned instant of the target in `[from, to)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backfill {
    /// The first instant (inclusive).
    pub from: OffsetDateTime,
    /// The end (exclusive); must not be after store time.
    pub to: OffsetDateTime,
    /// Allow more than [`MAX_BACKFILL_INSTANTS`] instants.
    pub confirm_large: bool,
}

/// A stored control, and what the operator should know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Steered {
    /// The control as stored.
    pub control: Control,
    /// Warnings, e.g. that no live replica runs the job yet.
    pub warnings: Vec<String>,
    /// For a backfill: the planned instants per scope it covers (counted
    /// up to the limit, or whole when confirmed).
    pub instants: Option<usize>,
}

/// A stored schedule as written, and what the operator should know about
/// it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The schedule as now stored.
    pub schedule: StoredSchedule,
    /// Warnings, e.g. that no live replica has registered its kind yet.
    pub warnings: Vec<String>,
}

/// What [`Operator::prune`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    /// Terminal rows deleted.
    pub rows: u64,
    /// Prune calls made (batches, the last of which found nothing).
    pub calls: u64,
    /// The longest single call: how long the table was worked on at once.
    pub longest_call: Duration,
    /// Time spent pausing between calls ([`Operator::prune`]'s nice ratio).
    pub paused: Duration,
}

/// Steers schedules through a store; cheap to clone.
#[derive(Debug, Clone)]
pub struct Operator {
    pub(super) store: Arc<dyn ExecutionAudit>,
}

impl Operator {
    /// An operator over `store`.
    pub fn new(store: Arc<dyn ExecutionAudit>) -> Self {
        Operator { store }
    }

    /// Pauses `target` with a note (why, who), until `until` if given.
    /// With `skip_missed`, plans that come due while paused are dropped
    /// when the pause ends by itself (a resume may say otherwise).
    ///
    /// # Errors
    /// [`OperatorError::Refused`] for an `until` not after store time;
    /// [`OperatorError::Store`] with [`StoreError::Conflict`] when the
    /// target is already paused.
    pub async fn pause(
        &self,
        target: &Target,
        note: &str,
        until: Option<OffsetDateTime>,
        skip_missed: bool,
    ) -> Result<Steered, OperatorError> {
        let now = self.store.now().await?;
        if let Some(until) = until.filter(|&u| u <= now) {
            return Err(OperatorError::Refused(format!(
                "--until {} is not in the future (store time is {})",
                Rfc3339(until),
                Rfc3339(now)
            )));
        }
        let mut warnings = Vec::new();
        if self.registered(&target.job, now).await?.is_none() {
            warnings.push(format!(
                "no live replica runs job {:?}: the pause is stored and applies when one does",
                target.job
            ));
        }
        let control = self
            .add(target, note, ControlAction::Pause { until, skip_missed })
            .await?;
        Ok(Steered {
            control,
            warnings,
            instants: None,
        })
    }

    /// Ends the pause of exactly `target` (the whole job, or the one
    /// scope), and returns it. With `skip_missed`, the plans that came due
    /// while paused are dropped; without, they follow the job's catch-up
    /// rules.
    ///
    /// # Errors
    /// [`OperatorError::Refused`] when no pause of that target is in force.
    pub async fn resume(
        &self,
        target: &Target,
        skip_missed: bool,
    ) -> Result<Control, OperatorError> {
        let now = self.store.now().await?;
        let active = self.active(&target.job).await?;
        let Some(pause) = active
            .iter()
            .find(|c| c.scope == target.scope && c.pauses(now))
        else {
            let hint = match active.iter().find(|c| c.pauses(now)) {
                Some(other) => format!(" ({} is paused: resume that)", other.target()),
                None => String::new(),
            };
            return Err(OperatorError::Refused(format!(
                "{} is not paused{hint}",
                target.describe()
            )));
        };
        self.end(
            pause.id,
            ControlState::Done,
            Some("resumed".to_owned()),
            Some(skip_missed),
        )
        .await
    }

    /// Runs `target` once now, outside its schedule (for every scope, or
    /// the one).
    ///
    /// # Errors
    /// [`OperatorError::Refused`] for a job no live replica runs, a scope
    /// the job's fixed list does not have, or a paused target.
    pub async fn trigger(&self, target: &Target, note: &str) -> Result<Steered, OperatorError> {
        let now = self.store.now().await?;
        let job = self.runnable(target, now).await?;
        if let Some(scope) = &target.scope {
            if !job.scope_list.is_empty() && !job.scope_list.contains(scope) {
                return Err(OperatorError::Refused(format!(
                    "job {:?} has no scope {scope} (it has {})",
                    target.job, job.scopes
                )));
            }
        }
        if let Some(pause) = self
            .active(&target.job)
            .await?
            .into_iter()
            .find(|c| c.pauses(now) && target.scope.as_ref().is_none_or(|s| c.covers(s)))
        {
            return Err(OperatorError::Refused(format!(
                "{} is paused (control {}); resume it first",
                pause.target(),
                pause.id
            )));
        }
        let control = self.add(target, note, ControlAction::Trigger).await?;
        Ok(Steered {
            control,
            warnings: Vec::new(),
            instants: None,
        })
    }

    /// Runs every planned instant of `target` in `[from, to)`, paced by
    /// the job's per-tick cap. Instants that already succeeded do not run
    /// again; asking twice never runs an instant twice.
    ///
    /// # Errors
    /// [`OperatorError::Refused`] for a job no live replica runs, a job
    /// with a custom planner, an empty or inverted range, a range ending
    /// after store time, a range with no planned instant, or more than
    /// [`MAX_BACKFILL_INSTANTS`] instants without `confirm_large`.
    pub async fn backfill(
        &self,
        target: &Target,
        range: &Backfill,
        note: &str,
    ) -> Result<Steered, OperatorError> {
        let now = self.store.now().await?;
        let job = self.runnable(target, now).await?;
        if range.from >= range.to {
            return Err(OperatorError::Refused(format!(
                "the backfill range is empty or inverted: --from {} is not before --to {}",
                Rfc3339(range.from),
                Rfc3339(range.to)
            )));
        }
        if range.to > now {
            return Err(OperatorError::Refused(format!(
                "--to {} is after store time {}: a backfill covers the past; later plans run on schedule",
                Rfc3339(range.to),
                Rfc3339(now)
            )));
        }
        let Some(schedule) = Schedule::from_form(&job.schedule_form) else {
            return Err(OperatorError::Refused(format!(
                "job {:?} is planned by {}: it has no instants to backfill",
                target.job, job.schedule
            )));
        };
        let limit = if range.confirm_large {
            usize::MAX
        } else {
            MAX_BACKFILL_INSTANTS + 1
        };
        let last = range.to - time::Duration::microseconds(1);
        let instants = schedule.between(range.from, last, limit).len();
        if instants == 0 {
            return Err(OperatorError::Refused(format!(
                "job {:?} ({}) has no planned instant in [{}, {})",
                target.job,
                job.schedule,
                Rfc3339(range.from),
                Rfc3339(range.to)
            )));
        }
        if instants > MAX_BACKFILL_INSTANTS && !range.confirm_large {
            return Err(OperatorError::Refused(format!(
                "the range holds more than {MAX_BACKFILL_INSTANTS} instants of job {:?} per scope; \
                 narrow it, or confirm a backfill this large",
                target.job
            )));
        }
        let control = self
            .add(
                target,
                note,
                ControlAction::Backfill {
                    from: range.from,
                    to: range.to,
                },
            )
            .await?;
        Ok(Steered {
            control,
            warnings: Vec::new(),
            instants: Some(instants),
        })
    }

    /// Cancels an active control: a pause ends (as a resume without
    /// skipping), a trigger or backfill stops claiming new runs (runs
    /// already started finish).
    ///
    /// # Errors
    /// [`OperatorError::UnknownControl`]; [`OperatorError::Store`] with
    /// [`StoreError::Conflict`] when it already ended.
    pub async fn cancel(&self, id: Uuid, reason: Option<String>) -> Result<Control, OperatorError> {
        self.end(id, ControlState::Cancelled, reason, None).await
    }

    /// The controls `read` selects (see [`ControlRead`]).
    ///
    /// # Errors
    /// [`OperatorError::Store`] when the store fails.
    pub async fn list(&self, read: &ControlRead) -> Result<Vec<Control>, OperatorError> {
        Ok(self.store.controls(read).await?)
    }

    /// Creates the stored schedule `name` (`docs/contract.md` §12). A kind
    /// that no live replica has registered is allowed, with a warning, so
    /// that a schedule can be created ahead of the deploy that brings its
    /// kind: it runs once a replica with the kind is up.
    ///
    /// # Errors
    /// [`OperatorError::Invalid`] naming the field for a definition the
    /// rules refuse; [`OperatorError::Refused`] for the name of a
    /// compiled-in job a live replica runs; [`OperatorError::Store`] with
    /// [`StoreError::Conflict`] when the name exists.
    pub async fn create_schedule(
        &self,
        name: &str,
        definition: &ScheduleDefinition,
    ) -> Result<Written, OperatorError> {
        self.write_schedule(name, ScheduleWrite::Create(definition.clone()))
            .await
    }

    /// Replaces the definition of the stored schedule `name`, which must
    /// still be at `version` (the one the operator read): it applies from
    /// its next plan on every replica.
    ///
    /// # Errors
    /// As [`create_schedule`](Self::create_schedule); a
    /// [`StoreError::Conflict`] naming the current version when another
    /// writer got there first, or when there is no such schedule.
    pub async fn update_schedule(
        &self,
        name: &str,
        version: i64,
        definition: &ScheduleDefinition,
    ) -> Result<Written, OperatorError> {
        let write = ScheduleWrite::Update {
            version,
            definition: definition.clone(),
        };
        self.write_schedule(name, write).await
    }

    /// Deletes the stored schedule `name` (at `version`, when given): it
    /// stops planning on every replica; its history stays.
    ///
    /// # Errors
    /// [`OperatorError::Store`] with [`StoreError::Conflict`] when there is
    /// no such schedule or it is at another version.
    pub async fn delete_schedule(
        &self,
        name: &str,
        version: Option<i64>,
    ) -> Result<(), OperatorError> {
        self.store
            .write_schedule(name, &ScheduleWrite::Delete { version })
            .await?;
        Ok(())
    }

    /// The stored schedule `name`, if there is one.
    ///
    /// # Errors
    /// [`OperatorError::Store`] when the store fails.
    pub async fn schedule(&self, name: &str) -> Result<Option<StoredSchedule>, OperatorError> {
        Ok(self
            .store
            .schedules()
            .await?
            .into_iter()
            .find(|s| s.name == name))
    }

    /// Retention: deletes the terminal rows finished before
    /// `finished_before` (and the replica registry's rows last seen
    /// before it), oldest first, in calls of at most `batch` rows
    /// ([`ExecutionAudit::prune_finished`]) until one finds nothing. After
    /// each call that deleted rows it pauses `nice_ratio` times as long as
    /// the call took (gh-ost's "nice ratio"): the prune then takes at most
    /// `1 / (1 + nice_ratio)` of the database's time for itself, so a
    /// fleet claiming meanwhile keeps its latency on a large table
    /// (`docs/contract.md` §10, "Retention at scale"). 0 never pauses.
    ///
    /// Dropping the future stops between or inside calls; every call
    /// already made stays done (each is a statement of its own).
    ///
    /// # Errors
    /// [`OperatorError::Refused`] for a zero `batch` or a `nice_ratio`
    /// that is negative or not finite (nothing deleted); [`OperatorError::Store`] when a
    /// call fails (the calls before it stay done).
    pub async fn prune(
        &self,
        finished_before: OffsetDateTime,
        batch: usize,
        nice_ratio: f64,
    ) -> Result<Pruned, OperatorError> {
        if batch == 0 {
            return Err(OperatorError::Refused(
                "a prune batch must be at least 1 row".to_owned(),
            ));
        }
        if !(nice_ratio.is_finite() && nice_ratio >= 0.0) {
            return Err(OperatorError::Refused(format!(
                "a prune's nice ratio must be a finite number, 0 or more (got {nice_ratio})"
            )));
        }
        let mut done = Pruned {
            rows: 0,
            calls: 0,
            longest_call: Duration::ZERO,
            paused: Duration::ZERO,
        };
        loop {
            let started = tokio::time::Instant::now();
            let rows = self
                .store
                .prune_finished(&Prune::batch(finished_before, batch))
                .await?;
            let took = started.elapsed();
            done.calls += 1;
            done.rows += rows;
            done.longest_call = done.longest_call.max(took);
            // A batch can come back short when a row changed under it (a
            // claim retried it meanwhile), so only an empty one ends it.
            if rows == 0 {
                return Ok(done);
            }
            let pause = took.mul_f64(nice_ratio);
            tokio::time::sleep(pause).await;
            done.paused += pause;
        }
    }

    /// Every stored schedule, by name.
    ///
    /// # Errors
    /// [`OperatorError::Store`] when the store fails.
    pub async fn schedules(&self) -> Result<Vec<StoredSchedule>, OperatorError> {
        Ok(self.store.schedules().await?)
    }

    async fn write_schedule(
        &self,
        name: &str,
        write: ScheduleWrite,
    ) -> Result<Written, OperatorError> {
        let (ScheduleWrite::Create(definition) | ScheduleWrite::Update { definition, .. }) = &write
        else {
            unreachable!("deletes do not come here");
        };
        if name.trim().is_empty() {
            return Err(OperatorError::Invalid(SpecError::new(
                name,
                "name",
                "must not be empty or blank",
            )));
        }
        if let Some(problem) = name_problem("schedule name", name) {
            return Err(OperatorError::Invalid(SpecError::new(
                name, "name", problem,
            )));
        }
        validate_definition(name, definition)?;
        let now = self.store.now().await?;
        let live: Vec<Replica> = self
            .store
            .replicas()
            .await?
            .into_iter()
            .filter(|r| r.state(now) == ReplicaState::Live)
            .collect();
        if let Some(replica) = live.iter().find(|r| {
            r.info
                .jobs
                .iter()
                .any(|j| j.name == name && j.stored_version.is_none())
        }) {
            return Err(OperatorError::Refused(format!(
                "a compiled-in job named {name:?} runs on replica {:?}: a stored schedule needs another name",
                replica.info.runner_id
            )));
        }
        let mut warnings = Vec::new();
        if !live.iter().any(|r| r.info.kinds.contains(&definition.kind)) {
            warnings.push(format!(
                "no live replica has registered kind {:?} yet: the schedule is stored and runs once a replica with that kind is up",
                definition.kind
            ));
        }
        let schedule = self
            .store
            .write_schedule(name, &write)
            .await?
            .expect("a create or update stores the schedule");
        Ok(Written { schedule, warnings })
    }

    /// The job as the most recently seen live replica announced it.
    async fn registered(
        &self,
        job: &str,
        now: OffsetDateTime,
    ) -> Result<Option<RegisteredJob>, OperatorError> {
        let replicas = self.store.replicas().await?;
        Ok(replicas
            .into_iter()
            .filter(|r| r.state(now) == ReplicaState::Live)
            .filter_map(|r| {
                let seen = r.last_seen_at;
                r.info
                    .jobs
                    .into_iter()
                    .find(|j| j.name == job)
                    .map(|j| (seen, j))
            })
            .max_by_key(|(seen, _)| *seen)
            .map(|(_, j)| j))
    }

    /// The job, when a live replica runs it; refused otherwise.
    async fn runnable(
        &self,
        target: &Target,
        now: OffsetDateTime,
    ) -> Result<RegisteredJob, OperatorError> {
        self.registered(&target.job, now).await?.ok_or_else(|| {
            OperatorError::Refused(format!(
                "no live replica runs job {:?}: nobody would run it (see `scheduler replicas`)",
                target.job
            ))
        })
    }

    async fn active(&self, job: &str) -> Result<Vec<Control>, OperatorError> {
        Ok(self
            .store
            .controls(&ControlRead {
                jobs: Some(vec![job.to_owned()]),
                ended_since: None,
            })
            .await?)
    }

    async fn add(
        &self,
        target: &Target,
        note: &str,
        action: ControlAction,
    ) -> Result<Control, OperatorError> {
        Ok(self
            .store
            .add_control(&NewControl {
                job_name: target.job.clone(),
                scope: target.scope.clone(),
                note: note.to_owned(),
                action,
            })
            .await?)
    }

    async fn end(
        &self,
        id: Uuid,
        state: ControlState,
        reason: Option<String>,
        skip_missed: Option<bool>,
    ) -> Result<Control, OperatorError> {
        let change = ControlChange::End {
            state,
            reason,
            skip_missed,
        };
        match self.store.update_control(id, &change).await {
            Err(StoreError::NotFound { .. }) => Err(OperatorError::UnknownControl(id)),
            other => Ok(other?),
        }
    }
}
