//! Claims: the request a replica sends for one job's due plans, and the
//! one vocabulary of how a claim of one key ends (won, retried, stolen,
//! conflicted), used alike by the state machine, the stores, the manager's
//! tick report, the metrics and the logs.

use std::fmt;
use std::time::Duration;

use uuid::Uuid;

use super::{name_problem, Execution, Lease, Origin, OverlapPolicy, PlanKey};
use crate::error::StoreError;

/// A batch claim for one job (`docs/contract.md` §4, the claim rows).
#[derive(Debug, Clone)]
pub struct ClaimRequest<'a> {
    /// The job.
    pub job_name: &'a str,
    /// The claiming replica.
    pub runner_id: &'a str,
    /// Copied into fresh rows. Must be at least 1; stores refuse a claim
    /// with a smaller value as [`StoreError::InvalidInput`].
    pub max_attempts: i32,
    /// The new lease lasts this long without a heartbeat.
    pub stale_timeout: Duration,
    /// Whether stale RUNNING rows may be stolen and `stale_timeout` rows retried.
    pub allow_stale_reentry: bool,
    /// The keys, in the order the caller wants them attempted.
    pub keys: &'a [PlanKey],
    /// Why these keys run and what to do while their scope is busy.
    pub steering: Steering,
    /// The leases of the job's runs that ended on the claiming replica and
    /// whose terminal writes are still in flight (`docs/contract.md` §11,
    /// "finishing runs"). Admission must not weigh a live run that matches
    /// one of them exactly (id **and** token): for the claimer it is over,
    /// and its row is RUNNING only until that write lands. A lease taken
    /// over since (a new token) matches none, so it still counts. Empty
    /// for a claimer with nothing finishing.
    pub finishing: &'a [LeaseRef],
}

/// One attempt's lease by identity: the execution's id and the lease token
/// of that attempt. A claim's [`finishing`](ClaimRequest::finishing) runs
/// are named this way, so that only the very attempt that ended matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseRef {
    /// The execution id.
    pub id: Uuid,
    /// The attempt's lease token.
    pub token: Uuid,
}

/// The steering of a claim (`docs/contract.md` §11): what the batch's keys
/// are, and the job's overlap policy, which the store applies under its
/// per-job lock with the active pauses ([`machine::admit`](crate::machine::admit)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Steering {
    /// What to do with a key of a scope that another execution of the job
    /// holds a live lease on.
    pub overlap: OverlapPolicy,
    /// Written into fresh rows; decides how a busy scope treats the key.
    pub origin: Origin,
    /// The trigger or backfill the keys belong to, written into fresh rows.
    pub control_id: Option<Uuid>,
    /// For a stored schedule, the version the keys were planned under: the
    /// store must claim nothing unless it is still the current version
    /// ([`ClaimOutcome::Superseded`]; `docs/contract.md` §12). `None` for
    /// a compiled-in job.
    pub schedule_version: Option<i64>,
}

impl Steering {
    /// Scheduled keys with runs allowed to overlap: a claim decided by the
    /// key's own row and the pauses alone.
    pub const NONE: Steering = Steering {
        overlap: OverlapPolicy::AllowAll,
        origin: Origin::Scheduled,
        control_id: None,
        schedule_version: None,
    };

    /// Scheduled keys under `overlap`.
    pub fn scheduled(overlap: OverlapPolicy) -> Steering {
        Steering {
            overlap,
            ..Steering::NONE
        }
    }

    /// Whether a claim planned under [`schedule_version`](Self::schedule_version)
    /// must claim nothing, the stored schedule being at `current` now
    /// (`None`: deleted): only for a stored schedule's claim, when the
    /// version changed or the schedule is gone.
    pub fn superseded(&self, current: Option<i64>) -> bool {
        self.schedule_version.is_some() && self.schedule_version != current
    }
}

impl ClaimRequest<'_> {
    /// Refuses a request no store can honour, before a store writes
    /// anything: `max_attempts` below 1, and a job name, runner id or scope
    /// that can never be stored (a NUL character, or longer than
    /// [`MAX_NAME_BYTES`](super::MAX_NAME_BYTES); see
    /// [`name_problem`]). Every store calls it first, so they refuse alike.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] naming the offending field.
    pub fn refuse_unstorable(&self) -> Result<(), StoreError> {
        if self.max_attempts < 1 {
            return Err(StoreError::InvalidInput(format!(
                "max_attempts must be at least 1, got {}",
                self.max_attempts
            )));
        }
        let problem = name_problem("job name", self.job_name)
            .or_else(|| name_problem("runner id", self.runner_id))
            .or_else(|| self.keys.iter().find_map(|k| k.scope.storage_problem()));
        match problem {
            Some(problem) => Err(StoreError::InvalidInput(problem)),
            None => Ok(()),
        }
    }
}

/// How a claim of one key ended, without its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClaimKind {
    /// No row existed; a fresh one was inserted with attempt 1.
    Won,
    /// A retry-eligible FAILED row went back to RUNNING.
    Retried,
    /// A stale RUNNING row of a reentrant job was taken over.
    Stolen,
    /// Nothing changed.
    Conflicted,
    /// A pause covers the key: nothing changed.
    Paused,
    /// Another execution of the scope holds a live lease and the overlap
    /// policy says wait: nothing changed.
    Busy,
    /// Another execution of the scope holds a live lease and the overlap
    /// policy says skip: a FAILED `overlap_skipped` row was written.
    Skipped,
    /// The stored schedule the keys were planned under changed or was
    /// deleted since: nothing changed.
    Superseded,
}

impl ClaimKind {
    /// Every kind, in this order.
    pub const ALL: [ClaimKind; 8] = [
        ClaimKind::Won,
        ClaimKind::Retried,
        ClaimKind::Stolen,
        ClaimKind::Conflicted,
        ClaimKind::Paused,
        ClaimKind::Busy,
        ClaimKind::Skipped,
        ClaimKind::Superseded,
    ];

    /// The word for it in metrics labels and logs: `won`, `retried`,
    /// `stolen`, `conflicted`, `paused`, `busy`, `skipped`, `superseded`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimKind::Won => "won",
            ClaimKind::Retried => "retried",
            ClaimKind::Stolen => "stolen",
            ClaimKind::Conflicted => "conflicted",
            ClaimKind::Paused => "paused",
            ClaimKind::Busy => "busy",
            ClaimKind::Skipped => "skipped",
            ClaimKind::Superseded => "superseded",
        }
    }

    /// Whether the key has a row after the claim: every kind but
    /// [`ClaimKind::Paused`], [`ClaimKind::Busy`] and
    /// [`ClaimKind::Superseded`] (a conflict means a row was there).
    pub fn row_exists(self) -> bool {
        !matches!(
            self,
            ClaimKind::Paused | ClaimKind::Busy | ClaimKind::Superseded
        )
    }
}

impl fmt::Display for ClaimKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a claim of one key ended, with what it yields: the [`Lease`] a store
/// returns to the claimer, or (in [`machine::claim`](crate::machine::claim))
/// the [`Execution`] row to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome<T = Lease> {
    /// No row existed; a fresh one was inserted with attempt 1.
    Won(T),
    /// A retry-eligible FAILED row went back to RUNNING.
    Retried(T),
    /// A stale RUNNING row of a reentrant job was taken over.
    Stolen(T),
    /// Nothing changed: a live lease elsewhere, SUCCESS, retry not yet due, or
    /// attempts exhausted. The expected, silent case for losing replicas.
    Conflicted,
    /// A pause covers the key: nothing changed.
    Paused,
    /// The scope is busy and the overlap policy says wait: nothing changed.
    Busy,
    /// The scope is busy and the overlap policy says skip: a FAILED
    /// `overlap_skipped` row was written, no lease granted.
    Skipped,
    /// The stored schedule the keys were planned under changed or was
    /// deleted since ([`Steering::superseded`]): nothing changed.
    Superseded,
}

impl<T> ClaimOutcome<T> {
    /// Which of the four it is.
    pub fn kind(&self) -> ClaimKind {
        match self {
            ClaimOutcome::Won(_) => ClaimKind::Won,
            ClaimOutcome::Retried(_) => ClaimKind::Retried,
            ClaimOutcome::Stolen(_) => ClaimKind::Stolen,
            ClaimOutcome::Conflicted => ClaimKind::Conflicted,
            ClaimOutcome::Paused => ClaimKind::Paused,
            ClaimOutcome::Busy => ClaimKind::Busy,
            ClaimOutcome::Skipped => ClaimKind::Skipped,
            ClaimOutcome::Superseded => ClaimKind::Superseded,
        }
    }

    /// The payload, when a lease was granted.
    pub fn get(&self) -> Option<&T> {
        match self {
            ClaimOutcome::Won(t) | ClaimOutcome::Retried(t) | ClaimOutcome::Stolen(t) => Some(t),
            _ => None,
        }
    }

    /// The same outcome for an outcome without payload; `None` for one
    /// that grants a lease.
    fn without_payload<U>(&self) -> Option<ClaimOutcome<U>> {
        match self {
            ClaimOutcome::Conflicted => Some(ClaimOutcome::Conflicted),
            ClaimOutcome::Paused => Some(ClaimOutcome::Paused),
            ClaimOutcome::Busy => Some(ClaimOutcome::Busy),
            ClaimOutcome::Skipped => Some(ClaimOutcome::Skipped),
            ClaimOutcome::Superseded => Some(ClaimOutcome::Superseded),
            _ => None,
        }
    }

    /// The same outcome with its payload mapped by `f`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> ClaimOutcome<U> {
        if let Some(other) = self.without_payload() {
            return other;
        }
        match self {
            ClaimOutcome::Won(t) => ClaimOutcome::Won(f(t)),
            ClaimOutcome::Retried(t) => ClaimOutcome::Retried(f(t)),
            ClaimOutcome::Stolen(t) => ClaimOutcome::Stolen(f(t)),
            _ => unreachable!("outcomes without payload returned above"),
        }
    }

    /// Splits off the payload: its kind and the payload, unless the claim
    /// conflicted.
    pub fn into_parts(self) -> (ClaimKind, Option<T>) {
        let kind = self.kind();
        match self {
            ClaimOutcome::Won(t) | ClaimOutcome::Retried(t) | ClaimOutcome::Stolen(t) => {
                (kind, Some(t))
            }
            _ => (kind, None),
        }
    }
}

impl ClaimOutcome {
    /// The lease, unless the claim conflicted.
    pub fn lease(&self) -> Option<&Lease> {
        self.get()
    }
}

impl ClaimOutcome<Execution> {
    /// What the claimer is told: the row's lease in place of the row.
    pub fn to_lease(&self) -> ClaimOutcome {
        self.clone()
            .map(|row| row.lease().expect("a claimed row is RUNNING"))
    }
}
