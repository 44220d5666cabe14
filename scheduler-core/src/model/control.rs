//! Steering a schedule at run time (`docs/contract.md` §11): the controls an
//! operator stores beside the executions (a pause, a trigger, a backfill),
//! the origin that tells an execution of a trigger or a backfill from a
//! scheduled one, and the overlap policy that decides what a claim does
//! while another run of the same scope holds a live lease.
//!
//! Controls are rows of one table, written by an operator
//! ([`ExecutionAudit::add_control`](crate::store::ExecutionAudit::add_control))
//! and read by every replica at every tick
//! ([`LeaseStore::controls`](crate::store::LeaseStore::controls)); nothing
//! of them lives in one replica's memory.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{name_problem, Scope};
use crate::error::StoreError;

/// Why an execution exists, as stored in the executions table's nullable
/// `origin` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Planned by the job's schedule (the column is NULL, as on every row
    /// the Go seed writes).
    #[default]
    Scheduled,
    /// An operator's trigger: run now, outside the schedule.
    Trigger,
    /// An instant of an operator's backfill.
    Backfill,
}

impl Origin {
    /// The stored text: `None` for [`Origin::Scheduled`], `trigger`,
    /// `backfill`.
    pub fn column(self) -> Option<&'static str> {
        match self {
            Origin::Scheduled => None,
            Origin::Trigger => Some("trigger"),
            Origin::Backfill => Some("backfill"),
        }
    }

    /// Reads the stored text; text another version wrote reads as
    /// [`Origin::Trigger`] (an ad-hoc run, which planning ignores).
    pub fn from_column(text: Option<&str>) -> Origin {
        match text {
            None => Origin::Scheduled,
            Some("backfill") => Origin::Backfill,
            Some(_) => Origin::Trigger,
        }
    }

    /// The word shown to operators: `scheduled`, `trigger`, `backfill`.
    pub fn as_str(self) -> &'static str {
        self.column().unwrap_or("scheduled")
    }

    /// Asked for by an operator rather than planned: a trigger or a
    /// backfill.
    pub fn is_ad_hoc(self) -> bool {
        self != Origin::Scheduled
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a claim does with a key of a scope while another execution of that
/// `(job, scope)` holds a live lease (`docs/contract.md` §11, "Overlap").
/// Enforced by the store's claim, under a per-job lock, so it holds across
/// every replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverlapPolicy {
    /// The plan is not started; it is recorded as a FAILED row with code
    /// `overlap_skipped` that nothing retries by itself.
    Skip,
    /// The newest waiting plan of the scope waits; older waiting ones are
    /// skipped as with [`OverlapPolicy::Skip`].
    BufferOne,
    /// Every plan waits its turn and starts once the scope is free: what a
    /// single replica always did, so the default.
    #[default]
    BufferAll,
    /// The running execution is cancelled through its lease (FAILED,
    /// `overlap_canceled`) and the new one starts.
    CancelOther,
    /// Runs overlap freely.
    AllowAll,
}

impl OverlapPolicy {
    /// Every policy, in this order.
    pub const ALL: [OverlapPolicy; 5] = [
        OverlapPolicy::Skip,
        OverlapPolicy::BufferOne,
        OverlapPolicy::BufferAll,
        OverlapPolicy::CancelOther,
        OverlapPolicy::AllowAll,
    ];

    /// `skip`, `buffer_one`, `buffer_all`, `cancel_other`, `allow_all`.
    pub fn as_str(self) -> &'static str {
        match self {
            OverlapPolicy::Skip => "skip",
            OverlapPolicy::BufferOne => "buffer_one",
            OverlapPolicy::BufferAll => "buffer_all",
            OverlapPolicy::CancelOther => "cancel_other",
            OverlapPolicy::AllowAll => "allow_all",
        }
    }
}

impl fmt::Display for OverlapPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OverlapPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        OverlapPolicy::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                format!("unknown overlap policy {s:?}: expected skip, buffer_one, buffer_all, cancel_other or allow_all")
            })
    }
}

/// What a control asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ControlAction {
    /// No replica starts a new execution of the target while the pause is
    /// active: no fresh claim, no retry, no takeover.
    Pause {
        /// The pause ends by itself at this instant (store time).
        #[serde(with = "time::serde::rfc3339::option")]
        until: Option<OffsetDateTime>,
        /// Plans that came due while paused are dropped instead of caught
        /// up (set at the pause, or by the resume).
        skip_missed: bool,
    },
    /// Run the target once now, outside the schedule.
    Trigger,
    /// Run every planned instant of the target in `[from, to)`.
    Backfill {
        /// The first instant (inclusive).
        #[serde(with = "time::serde::rfc3339")]
        from: OffsetDateTime,
        /// The end (exclusive); never after store time at creation.
        #[serde(with = "time::serde::rfc3339")]
        to: OffsetDateTime,
    },
}

impl ControlAction {
    /// `pause`, `trigger` or `backfill`: the stored `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            ControlAction::Pause { .. } => "pause",
            ControlAction::Trigger => "trigger",
            ControlAction::Backfill { .. } => "backfill",
        }
    }
}

/// Where a control is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlState {
    /// In force (a pause whose `until` passed is still stored as active,
    /// but no longer pauses: see [`Control::pauses`]).
    Active,
    /// Finished: a pause resumed, a trigger whose runs were all claimed, a
    /// backfill whose every instant was claimed.
    Done,
    /// Cancelled by an operator.
    Cancelled,
    /// Refused by a replica (e.g. a trigger for a scope the job does not
    /// have); the reason says why.
    Rejected,
}

impl ControlState {
    /// `active`, `done`, `cancelled`, `rejected`: the stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            ControlState::Active => "active",
            ControlState::Done => "done",
            ControlState::Cancelled => "cancelled",
            ControlState::Rejected => "rejected",
        }
    }

    /// Reads the stored text.
    pub fn parse(text: &str) -> Option<ControlState> {
        [
            ControlState::Active,
            ControlState::Done,
            ControlState::Cancelled,
            ControlState::Rejected,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

impl fmt::Display for ControlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The most bytes of an operator's note a store keeps (longer notes are
/// cut at a character boundary).
pub const MAX_NOTE_BYTES: usize = 1024;

/// A control to store ([`ExecutionAudit::add_control`](crate::store::ExecutionAudit::add_control)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewControl {
    /// The job.
    pub job_name: String,
    /// One scope, or `None` for every scope of the job.
    pub scope: Option<Scope>,
    /// Why, and who: free text, shown to operators (escaped).
    pub note: String,
    /// What it asks for.
    pub action: ControlAction,
}

impl NewControl {
    /// Refuses a control no store can hold, before anything is written: a
    /// job name or scope that can never be stored ([`name_problem`]), a
    /// NUL character in the note, a backfill whose range is empty or
    /// inverted.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] naming the field.
    pub fn refuse_unstorable(&self) -> Result<(), StoreError> {
        let mut problem = name_problem("job name", &self.job_name)
            .or_else(|| self.scope.as_ref().and_then(Scope::storage_problem));
        if problem.is_none() && self.note.contains('\0') {
            problem = Some("the note contains a NUL character".to_owned());
        }
        if let ControlAction::Backfill { from, to } = self.action {
            if from >= to {
                problem = Some(format!(
                    "backfill range is empty or inverted: from {from} is not before to {to}"
                ));
            }
        }
        match problem {
            Some(p) => Err(StoreError::InvalidInput(p)),
            None => Ok(()),
        }
    }

    /// The note as stored: at most [`MAX_NOTE_BYTES`] bytes.
    pub fn stored_note(&self) -> String {
        super::bound_text(&self.note, MAX_NOTE_BYTES)
    }
}

/// A stored control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    /// UUID v7, minted by the store.
    pub id: Uuid,
    /// The job.
    pub job_name: String,
    /// One scope, or `None` for every scope.
    pub scope: Option<Scope>,
    /// The operator's note.
    pub note: String,
    /// What it asks for.
    pub action: ControlAction,
    /// Where it is in its life.
    pub state: ControlState,
    /// Why it ended, when a replica or an operator said so.
    pub reason: Option<String>,
    /// Store time of the request.
    pub created_at: OffsetDateTime,
    /// Store time it ended, unless active.
    pub ended_at: Option<OffsetDateTime>,
    /// A backfill's progress: every instant before it has been claimed for
    /// every target scope. Starts at `from`.
    pub cursor: Option<OffsetDateTime>,
    /// Store time of the last change.
    pub updated_at: OffsetDateTime,
}

impl Control {
    /// Still in force.
    pub fn is_active(&self) -> bool {
        self.state == ControlState::Active
    }

    /// Whether it targets `scope` (its own scope, or every scope).
    pub fn covers(&self, scope: &Scope) -> bool {
        self.scope.as_ref().is_none_or(|s| s == scope)
    }

    /// Whether this is a pause in force at store time `now`: active, and
    /// its `until`, if any, not reached.
    pub fn pauses(&self, now: OffsetDateTime) -> bool {
        matches!(self.action, ControlAction::Pause { until, .. }
            if self.is_active() && until.is_none_or(|u| now < u))
    }

    /// Whether it steers at store time `now`: a pause in force
    /// ([`pauses`](Self::pauses); one whose `until` passed is still stored
    /// as active, but pauses nothing), an active trigger or backfill.
    pub fn in_force(&self, now: OffsetDateTime) -> bool {
        match self.action {
            ControlAction::Pause { .. } => self.pauses(now),
            _ => self.is_active(),
        }
    }

    /// The window of plan times a pause that ended (or ran out) with
    /// `skip_missed` drops: `[created_at, end)`; `None` for any other
    /// control, or a pause still in force at `now`.
    pub fn skip_window(&self, now: OffsetDateTime) -> Option<(OffsetDateTime, OffsetDateTime)> {
        let ControlAction::Pause { until, skip_missed } = self.action else {
            return None;
        };
        if !skip_missed || self.pauses(now) {
            return None;
        }
        let end = match (self.ended_at, until) {
            (Some(ended), Some(until)) => ended.min(until),
            (Some(ended), None) => ended,
            (None, until) => until?,
        };
        Some((self.created_at, end))
    }

    /// The plan time of a trigger's runs: its creation instant, one
    /// microsecond later when that falls on an instant of the schedule
    /// (`on_grid`), so that a trigger never takes a scheduled plan's key.
    pub fn trigger_plan_time(&self, on_grid: impl Fn(OffsetDateTime) -> bool) -> OffsetDateTime {
        if on_grid(self.created_at) {
            self.created_at + time::Duration::microseconds(1)
        } else {
            self.created_at
        }
    }

    /// `job` or `job scope`: how operators name what it targets.
    pub fn target(&self) -> String {
        match &self.scope {
            Some(scope) => format!("{} {scope}", self.job_name),
            None => self.job_name.clone(),
        }
    }
}

/// A read of controls ([`LeaseStore::controls`](crate::store::LeaseStore::controls)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlRead {
    /// Only these jobs; `None` for every job.
    pub jobs: Option<Vec<String>>,
    /// Also the controls that ended at or after this instant (active ones
    /// are always read); `None` for active ones only.
    pub ended_since: Option<OffsetDateTime>,
}

impl ControlRead {
    /// Whether `control` answers this read: the reference every store's
    /// answer must equal (ordered by `created_at`, then id).
    pub fn selects(&self, control: &Control) -> bool {
        let job = self
            .jobs
            .as_ref()
            .is_none_or(|jobs| jobs.contains(&control.job_name));
        let when = control.is_active()
            || matches!((self.ended_since, control.ended_at), (Some(since), Some(ended)) if ended >= since);
        job && when
    }
}

/// A change a replica or an operator makes to an active control
/// ([`LeaseStore::update_control`](crate::store::LeaseStore::update_control)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlChange {
    /// End it, in `state` (not [`ControlState::Active`]), with an optional
    /// reason; for a pause, `skip_missed: Some(..)` replaces its flag (a
    /// resume that skips what was missed).
    End {
        /// The final state.
        state: ControlState,
        /// Why.
        reason: Option<String>,
        /// A pause's new `skip_missed`.
        skip_missed: Option<bool>,
    },
    /// Move a backfill's cursor from `from` (what the caller read) to `to`:
    /// a compare-and-set, so two replicas never move it past an instant
    /// neither claimed.
    Advance {
        /// The cursor the caller read.
        from: OffsetDateTime,
        /// The new cursor; at or after the backfill's `to` it is done.
        to: OffsetDateTime,
    },
}

impl ControlChange {
    /// Applies the change to `control` at store time `now`: the reference
    /// every store's update must equal. A backfill advanced to (or past)
    /// its end becomes [`ControlState::Done`].
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the control is no longer active, or
    /// an advance's `from` is not its cursor (nothing changes);
    /// [`StoreError::InvalidInput`] for an end in the active state, an
    /// advance of a control that is not a backfill, or a reason with a
    /// NUL character.
    pub fn apply(&self, control: &Control, now: OffsetDateTime) -> Result<Control, StoreError> {
        if !control.is_active() {
            return Err(StoreError::Conflict(format!(
                "control {} is {}, not active",
                control.id, control.state
            )));
        }
        let mut next = control.clone();
        next.updated_at = now;
        match self {
            ControlChange::End {
                state,
                reason,
                skip_missed,
            } => {
                if *state == ControlState::Active {
                    return Err(StoreError::InvalidInput(
                        "a control ends in done, cancelled or rejected".into(),
                    ));
                }
                if reason.as_deref().is_some_and(|r| r.contains('\0')) {
                    return Err(StoreError::InvalidInput(
                        "the reason contains a NUL character".into(),
                    ));
                }
                next.state = *state;
                next.reason = reason
                    .as_deref()
                    .map(|r| super::bound_text(r, MAX_NOTE_BYTES));
                next.ended_at = Some(now);
                if let (ControlAction::Pause { skip_missed: s, .. }, Some(new)) =
                    (&mut next.action, skip_missed)
                {
                    *s = *new;
                }
            }
            ControlChange::Advance { from, to } => {
                let ControlAction::Backfill { to: end, .. } = control.action else {
                    return Err(StoreError::InvalidInput(format!(
                        "control {} is a {}, not a backfill",
                        control.id,
                        control.action.kind()
                    )));
                };
                if control.cursor != Some(*from) {
                    return Err(StoreError::Conflict(format!(
                        "backfill {} moved on: its cursor is no longer {from}",
                        control.id
                    )));
                }
                next.cursor = Some(*to);
                if *to >= end {
                    next.state = ControlState::Done;
                    next.ended_at = Some(now);
                }
            }
        }
        Ok(next)
    }
}

/// How far the executions of a trigger or a backfill got
/// ([`ExecutionAudit::control_progress`](crate::store::ExecutionAudit::control_progress)):
/// its rows (`control_id` = the control's id) by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// SUCCESS rows.
    pub succeeded: u64,
    /// FAILED rows (with or without a retry to come).
    pub failed: u64,
    /// RUNNING rows.
    pub running: u64,
}

impl Progress {
    /// Counts `rows` (the control's rows, any order): the reference.
    pub fn of_rows<'a>(rows: impl IntoIterator<Item = &'a super::Execution>) -> Progress {
        let mut p = Progress::default();
        for r in rows {
            match r.status {
                super::Status::Success => p.succeeded += 1,
                super::Status::Failed => p.failed += 1,
                super::Status::Running => p.running += 1,
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn control(action: ControlAction) -> Control {
        Control {
            id: Uuid::nil(),
            job_name: "j".into(),
            scope: None,
            note: String::new(),
            action,
            state: ControlState::Active,
            reason: None,
            created_at: datetime!(2026-01-01 10:00 UTC),
            ended_at: None,
            cursor: None,
            updated_at: datetime!(2026-01-01 10:00 UTC),
        }
    }

    #[test]
    fn a_pause_holds_until_its_end_and_then_skips_its_window_only_when_asked() {
        let until = datetime!(2026-01-01 11:00 UTC);
        let pause = control(ControlAction::Pause {
            until: Some(until),
            skip_missed: true,
        });
        assert!(pause.pauses(datetime!(2026-01-01 10:59 UTC)));
        assert!(!pause.pauses(until));
        assert_eq!(pause.skip_window(datetime!(2026-01-01 10:59 UTC)), None);
        assert_eq!(pause.skip_window(until), Some((pause.created_at, until)));
        let resumed = ControlChange::End {
            state: ControlState::Done,
            reason: None,
            skip_missed: Some(false),
        }
        .apply(&pause, datetime!(2026-01-01 10:30 UTC))
        .unwrap();
        assert!(!resumed.pauses(datetime!(2026-01-01 10:31 UTC)));
        assert_eq!(resumed.skip_window(until), None);
    }

    #[test]
    fn an_advance_is_a_compare_and_set_that_ends_the_backfill() {
        let from = datetime!(2026-01-01 00:00 UTC);
        let to = datetime!(2026-01-01 01:00 UTC);
        let mut backfill = control(ControlAction::Backfill { from, to });
        backfill.cursor = Some(from);
        let now = datetime!(2026-01-02 00:00 UTC);
        let mid = datetime!(2026-01-01 00:30 UTC);
        let moved = ControlChange::Advance { from, to: mid }
            .apply(&backfill, now)
            .unwrap();
        assert_eq!(
            (moved.cursor, moved.state),
            (Some(mid), ControlState::Active)
        );
        assert!(matches!(
            ControlChange::Advance { from, to: mid }.apply(&moved, now),
            Err(StoreError::Conflict(_))
        ));
        let done = ControlChange::Advance { from: mid, to }
            .apply(&moved, now)
            .unwrap();
        assert_eq!((done.state, done.ended_at), (ControlState::Done, Some(now)));
        assert!(matches!(
            ControlChange::Advance { from: to, to }.apply(&done, now),
            Err(StoreError::Conflict(_))
        ));
    }

    #[test]
    fn bad_controls_are_refused_before_anything_is_stored() {
        let at = datetime!(2026-01-01 00:00 UTC);
        let new = |action| NewControl {
            job_name: "j".into(),
            scope: None,
            note: "why".into(),
            action,
        };
        assert!(new(ControlAction::Trigger).refuse_unstorable().is_ok());
        for bad in [
            new(ControlAction::Backfill { from: at, to: at }),
            NewControl {
                note: "a\0b".into(),
                ..new(ControlAction::Trigger)
            },
            NewControl {
                job_name: "j\0".into(),
                ..new(ControlAction::Trigger)
            },
        ] {
            assert!(matches!(
                bad.refuse_unstorable(),
                Err(StoreError::InvalidInput(_))
            ));
        }
        assert_eq!(
            "buffer_one".parse::<OverlapPolicy>(),
            Ok(OverlapPolicy::BufferOne)
        );
        assert!("forbid".parse::<OverlapPolicy>().is_err());
        assert_eq!(
            Origin::from_column(Origin::Backfill.column()),
            Origin::Backfill
        );
        assert_eq!(Origin::from_column(None), Origin::Scheduled);
    }
}
