//! The replica registry (`docs/contract.md` §7, "The replica registry"):
//! what each manager announces about itself ([`Announcement`]), the row a
//! store keeps of it ([`Replica`]), the rule that turns the one into the
//! other ([`Announcement::apply`]), and how an operator tells a live
//! replica from a stopped or vanished one ([`Replica::state`]).

use std::fmt;
use std::time::Duration;

use time::OffsetDateTime;

use super::{bound_text, name_problem, RegisteredJob, MAX_NAME_BYTES};
use crate::error::StoreError;

/// How many refresh intervals a replica may stay silent and still count as
/// live. A manager refreshes at its first tick after an interval has passed,
/// and ticks at least every `tick_interval`, which is never longer than the
/// interval: its announcements are at most two intervals apart, so three
/// leave one to spare for a slow store.
pub const LIVE_WITHIN_REFRESHES: u32 = 3;

/// What a replica says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaInfo {
    /// The manager's runner id: the registry's key.
    pub runner_id: String,
    /// The host it runs on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// The version of this library it runs.
    pub version: String,
    /// How often it refreshes its announcement: what
    /// [`Replica::state`] measures silence in.
    pub refresh_interval: Duration,
    /// The jobs it registered, in registration order.
    pub jobs: Vec<RegisteredJob>,
    /// The kinds of stored schedules it can run
    /// ([`Manager::register_kind`](crate::Manager::register_kind)), sorted.
    pub kinds: Vec<String>,
}

impl ReplicaInfo {
    /// This information made storable: the host, version and every job's
    /// schedule text bounded with [`bound_text`] to [`MAX_NAME_BYTES`]
    /// (a host name or a cron expression is whatever the system or the
    /// code gave, and a cut copy is better than a replica missing from the
    /// registry). Job names and the runner id are not touched: the manager
    /// refused unstorable ones when they were registered or configured.
    pub fn bounded(mut self) -> Self {
        let bound = |text: &mut String| *text = bound_text(text, MAX_NAME_BYTES);
        bound(&mut self.host);
        bound(&mut self.version);
        for job in &mut self.jobs {
            bound(&mut job.schedule);
            if let super::ScheduleForm::Cron { expression, zone } = &mut job.schedule_form {
                bound(expression);
                bound(zone);
            }
        }
        self
    }
}

/// What an announcement says of the replica's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// It starts (its first tick): `started_at` is now.
    Started,
    /// It still runs (a refresh, or its jobs changed).
    Alive,
    /// It stopped cleanly (the end of `Manager::run`): `stopped_at` is now.
    Stopped,
}

impl Presence {
    /// `started`, `alive` or `stopped`: how SQL statements receive it.
    pub fn as_str(self) -> &'static str {
        match self {
            Presence::Started => "started",
            Presence::Alive => "alive",
            Presence::Stopped => "stopped",
        }
    }
}

/// One call of [`LeaseStore::announce`](crate::store::LeaseStore::announce):
/// a replica's information and what it says of its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// The replica, as it is now.
    pub replica: ReplicaInfo,
    /// Starting, alive or stopping.
    pub presence: Presence,
}

impl Announcement {
    /// Refuses an announcement a store could never hold, for every store
    /// alike: a runner id, host, version, job name, schedule text, cron
    /// expression or zone with a NUL character or over [`MAX_NAME_BYTES`]
    /// ([`name_problem`]). [`ReplicaInfo::bounded`] information from a
    /// manager always passes.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] naming the first problem.
    pub fn refuse_unstorable(&self) -> Result<(), StoreError> {
        let r = &self.replica;
        let problem = name_problem("runner id", &r.runner_id)
            .or_else(|| name_problem("host", &r.host))
            .or_else(|| name_problem("version", &r.version))
            .or_else(|| {
                r.jobs.iter().find_map(|job| {
                    let form = match &job.schedule_form {
                        super::ScheduleForm::Cron { expression, zone } => {
                            name_problem("cron expression", expression)
                                .or_else(|| name_problem("time zone", zone))
                        }
                        _ => None,
                    };
                    name_problem("job name", &job.name)
                        .or_else(|| name_problem("schedule", &job.schedule))
                        .or(form)
                })
            })
            .or_else(|| r.kinds.iter().find_map(|kind| name_problem("kind", kind)));
        match problem {
            Some(problem) => Err(StoreError::InvalidInput(problem)),
            None => Ok(()),
        }
    }

    /// The row a store keeps after this announcement at store time `now`,
    /// given the row it kept before (of the same runner id), if any: the
    /// rule every store follows, which the memory store applies as it is.
    ///
    /// The information is replaced whole. `last_seen_at` is `now`.
    /// `started_at` is `now` for [`Presence::Started`] or a replica not
    /// seen before, and kept otherwise (a runner id reused by a restarted
    /// process starts again). `stopped_at` is `now` for
    /// [`Presence::Stopped`] and cleared otherwise.
    pub fn apply(&self, previous: Option<&Replica>, now: OffsetDateTime) -> Replica {
        let started_at = match (self.presence, previous) {
            (Presence::Started, _) | (_, None) => now,
            (_, Some(previous)) => previous.started_at,
        };
        Replica {
            info: self.replica.clone(),
            started_at,
            last_seen_at: now,
            stopped_at: (self.presence == Presence::Stopped).then_some(now),
        }
    }
}

/// A replica as the store keeps it (see
/// [`ExecutionAudit::replicas`](crate::store::ExecutionAudit::replicas)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    /// What it last announced.
    pub info: ReplicaInfo,
    /// Store time of its start.
    pub started_at: OffsetDateTime,
    /// Store time of its last announcement.
    pub last_seen_at: OffsetDateTime,
    /// Store time of its clean stop; `None` while it runs or after it
    /// vanished.
    pub stopped_at: Option<OffsetDateTime>,
}

/// Whether a replica runs, as far as the registry can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReplicaState {
    /// Seen within [`LIVE_WITHIN_REFRESHES`] refresh intervals.
    Live,
    /// Silent for longer, without a clean stop: crashed, killed, cut off
    /// from the store, or stopped while the store was down.
    Vanished,
    /// Stopped cleanly.
    Stopped,
}

impl ReplicaState {
    /// `live`, `vanished` or `stopped`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReplicaState::Live => "live",
            ReplicaState::Vanished => "vanished",
            ReplicaState::Stopped => "stopped",
        }
    }
}

impl fmt::Display for ReplicaState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Replica {
    /// Its state at store time `now`: [`ReplicaState::Stopped`] after a
    /// clean stop, [`ReplicaState::Live`] when last seen within
    /// [`LIVE_WITHIN_REFRESHES`] of its refresh intervals (a replica seen
    /// "later" than `now`, by a store clock that went back, is live), else
    /// [`ReplicaState::Vanished`].
    pub fn state(&self, now: OffsetDateTime) -> ReplicaState {
        if self.stopped_at.is_some() {
            return ReplicaState::Stopped;
        }
        let silence = self
            .info
            .refresh_interval
            .saturating_mul(LIVE_WITHIN_REFRESHES);
        if now - self.last_seen_at <= silence {
            ReplicaState::Live
        } else {
            ReplicaState::Vanished
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::model::{RegisteredJob, ScheduleForm};

    const T: OffsetDateTime = datetime!(2026-03-05 12:00 UTC);

    fn info() -> ReplicaInfo {
        ReplicaInfo {
            runner_id: "r1".into(),
            host: "h".into(),
            pid: 7,
            version: "0.1.0".into(),
            refresh_interval: Duration::from_secs(15),
            jobs: vec![RegisteredJob {
                name: "j".into(),
                ..Default::default()
            }],
            kinds: vec!["k".into()],
        }
    }

    fn announce(presence: Presence) -> Announcement {
        Announcement {
            replica: info(),
            presence,
        }
    }

    #[test]
    fn a_start_resets_started_at_and_a_refresh_keeps_it() {
        let first = announce(Presence::Alive).apply(None, T);
        assert_eq!((first.started_at, first.last_seen_at), (T, T));
        let later = T + Duration::from_secs(20);
        let alive = announce(Presence::Alive).apply(Some(&first), later);
        assert_eq!((alive.started_at, alive.last_seen_at), (T, later));
        let restarted = announce(Presence::Started).apply(Some(&alive), later);
        assert_eq!(restarted.started_at, later);
        let stopped = announce(Presence::Stopped).apply(Some(&alive), later);
        assert_eq!((stopped.started_at, stopped.stopped_at), (T, Some(later)));
        let again = announce(Presence::Alive).apply(Some(&stopped), later);
        assert_eq!(again.stopped_at, None);
    }

    #[test]
    fn silence_of_three_intervals_is_still_live_and_more_is_vanished() {
        let r = announce(Presence::Alive).apply(None, T);
        assert_eq!(r.state(T - Duration::from_secs(5)), ReplicaState::Live);
        assert_eq!(r.state(T + Duration::from_secs(45)), ReplicaState::Live);
        assert_eq!(
            r.state(T + Duration::from_secs(45) + Duration::from_micros(1)),
            ReplicaState::Vanished
        );
        let stopped = announce(Presence::Stopped).apply(None, T);
        assert_eq!(stopped.state(T), ReplicaState::Stopped);
    }

    #[test]
    fn unstorable_text_is_refused_and_bounded_text_passes() {
        let mut a = announce(Presence::Alive);
        a.replica.host = format!("h\0{}", "é".repeat(MAX_NAME_BYTES));
        a.replica.jobs[0].schedule_form = ScheduleForm::Cron {
            expression: "0".repeat(MAX_NAME_BYTES + 1),
            zone: "UTC".into(),
        };
        assert!(matches!(
            a.refuse_unstorable(),
            Err(StoreError::InvalidInput(m)) if m.contains("host")
        ));
        a.replica = a.replica.bounded();
        assert!(a.refuse_unstorable().is_ok());
        assert_eq!(
            a.replica.host.len(),
            MAX_NAME_BYTES - 1,
            "cut on a boundary"
        );
        assert!(!a.replica.host.contains('\0'));
        a.replica.kinds[0] = "k\0".into();
        assert!(
            matches!(a.refuse_unstorable(), Err(StoreError::InvalidInput(m)) if m.contains("kind"))
        );
        a.replica.kinds[0] = "k".into();
        a.replica.jobs[0].name = "j\0".into();
        assert!(a.refuse_unstorable().is_err(), "names are refused, not cut");
    }
}
