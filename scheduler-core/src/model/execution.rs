//! The execution record: one row per `(job, scope, plan time)`, the lease
//! **and** the audit record (`docs/contract.md` §3), and the views of it
//! that planning and leases need.

use std::fmt;

use serde_json::Map;
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{LeaseRef, Name, Origin, Scope};

/// The state of an execution. "Stale" is not a state: it is
/// [`Status::Running`] with `stale_after` in the past.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// A lease is (or was, if stale) held.
    Running,
    /// Terminal: the handler returned `Ok`. Never changes again.
    Success,
    /// The attempt failed; a later claim may retry it.
    Failed,
}

impl Status {
    /// The text stored in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "RUNNING",
            Status::Success => "SUCCESS",
            Status::Failed => "FAILED",
        }
    }

    /// Parses the stored text.
    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "RUNNING" => Some(Status::Running),
            "SUCCESS" => Some(Status::Success),
            "FAILED" => Some(Status::Failed),
            _ => None,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an execution failed, as stored in `error_code` (see
/// `docs/contract.md` §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The handler returned an error.
    HandlerError,
    /// The handler panicked.
    HandlerPanic,
    /// The handler ran past `run_timeout` and was stopped.
    RunTimeout,
    /// The manager shut down before the handler finished.
    Canceled,
    /// The lease was lost while running.
    LeaseLost,
    /// The sweep closed a RUNNING row whose lease went stale.
    StaleTimeout,
    /// The overlap policy `skip` (or `buffer_one`) recorded the plan
    /// without running it: another run of the scope held a live lease.
    OverlapSkipped,
    /// The overlap policy `cancel_other` ended this run through its lease
    /// so that a newer one of the scope could start.
    OverlapCanceled,
}

impl ErrorCode {
    /// Every code, in this order.
    pub const ALL: [ErrorCode; 8] = [
        ErrorCode::HandlerError,
        ErrorCode::HandlerPanic,
        ErrorCode::RunTimeout,
        ErrorCode::Canceled,
        ErrorCode::LeaseLost,
        ErrorCode::StaleTimeout,
        ErrorCode::OverlapSkipped,
        ErrorCode::OverlapCanceled,
    ];

    /// The text stored in the `error_code` column.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::HandlerError => "handler_error",
            ErrorCode::HandlerPanic => "handler_panic",
            ErrorCode::RunTimeout => "run_timeout",
            ErrorCode::Canceled => "canceled",
            ErrorCode::LeaseLost => "lease_lost",
            ErrorCode::StaleTimeout => "stale_timeout",
            ErrorCode::OverlapSkipped => "overlap_skipped",
            ErrorCode::OverlapCanceled => "overlap_canceled",
        }
    }

    /// Whether `code` (a stored `error_code`) marks a row the overlap
    /// policy ended without a run of its own: skipped or canceled.
    pub fn is_overlap(code: Option<&str>) -> bool {
        code == Some(ErrorCode::OverlapSkipped.as_str())
            || code == Some(ErrorCode::OverlapCanceled.as_str())
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One execution row: the lease **and** the audit record of one
/// `(job_name, scope, plan_time)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    /// UUID v7 minted by the first claimer.
    pub id: Uuid,
    /// The job's name.
    pub job_name: Name,
    /// The locking scope.
    pub scope: Scope,
    /// The canonical instant this run belongs to (microsecond precision).
    pub plan_time: OffsetDateTime,
    /// The row's state.
    pub status: Status,
    /// 1 for the first claim, +1 for every retry or takeover.
    pub attempt: i32,
    /// Copied from the job at the first claim.
    pub max_attempts: i32,
    /// When a FAILED row may be retried; `None` means as soon as a tick sees
    /// it, [`NEVER`](crate::machine::NEVER) that only an operator may run it again.
    pub next_retry_at: Option<OffsetDateTime>,
    /// The replica holding, or last holding, the lease.
    pub runner_id: Option<Name>,
    /// UUID v4, rotated on every claim; every write to a live lease presents it.
    pub lease_token: Uuid,
    /// Last heartbeat.
    pub heartbeat_at: Option<OffsetDateTime>,
    /// The lease is stale once store time passes this.
    pub stale_after: Option<OffsetDateTime>,
    /// When the current attempt was claimed.
    pub started_at: Option<OffsetDateTime>,
    /// When the row last became terminal.
    pub finished_at: Option<OffsetDateTime>,
    /// How long the handler ran, in milliseconds.
    pub duration_ms: Option<i32>,
    /// Rows affected, as reported by the handler.
    pub rows_affected: Option<i64>,
    /// A small JSON object from the handler; `{}` by default.
    pub result: Map<String, Value>,
    /// See [`ErrorCode`]; rows written by other writers may hold other codes.
    pub error_code: Option<String>,
    /// At most [`MAX_ERROR_MSG_BYTES`](super::MAX_ERROR_MSG_BYTES) bytes, without NUL characters.
    pub error_msg: Option<String>,
    /// When the row was inserted.
    pub created_at: OffsetDateTime,
    /// When the row last changed.
    pub updated_at: OffsetDateTime,
    /// Scheduled, or asked for by an operator (`origin` column, NULL for
    /// scheduled).
    pub origin: Origin,
    /// The trigger or backfill that asked for it (`control_id` column).
    pub control_id: Option<Uuid>,
}

impl Execution {
    /// The live lease this row grants, if it is RUNNING.
    pub fn lease(&self) -> Option<Lease> {
        (self.status == Status::Running).then(|| Lease {
            id: self.id,
            token: self.lease_token,
            job_name: self.job_name.clone(),
            scope: self.scope.clone(),
            plan_time: self.plan_time,
            attempt: self.attempt,
            max_attempts: self.max_attempts,
            started_at: self.started_at.unwrap_or(self.updated_at),
            stale_after: self.stale_after.unwrap_or(self.updated_at),
        })
    }

    /// What planning needs to know of this row.
    pub fn latest_view(&self) -> LatestExecution {
        LatestExecution {
            plan_time: self.plan_time,
            status: self.status,
            attempt: self.attempt,
            max_attempts: self.max_attempts,
            next_retry_at: self.next_retry_at,
            error_code: self.error_code.clone(),
        }
    }
}

/// A lease won by a claim: what the holder needs to heartbeat and finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The execution id.
    pub id: Uuid,
    /// The fencing token; only writes presenting it are accepted.
    pub token: Uuid,
    /// The job.
    pub job_name: Name,
    /// The scope.
    pub scope: Scope,
    /// The plan time.
    pub plan_time: OffsetDateTime,
    /// This attempt's number.
    pub attempt: i32,
    /// The row's attempt budget.
    pub max_attempts: i32,
    /// Store time of the claim.
    pub started_at: OffsetDateTime,
    /// Store time after which the lease may be stolen or swept.
    pub stale_after: OffsetDateTime,
}

impl Lease {
    /// This attempt's lease by identity.
    pub fn lease_ref(&self) -> LeaseRef {
        LeaseRef {
            id: self.id,
            token: self.token,
        }
    }
}

/// One key of a batch claim.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlanKey {
    /// The scope.
    pub scope: Scope,
    /// The plan time (microsecond precision).
    pub plan_time: OffsetDateTime,
}

impl PlanKey {
    /// The key of `plan_time` for each of `scopes`, in their order: what a
    /// tick claims when every scope is due at once.
    pub fn each(scopes: &[Scope], plan_time: OffsetDateTime) -> Vec<PlanKey> {
        scopes
            .iter()
            .map(|scope| PlanKey {
                scope: scope.clone(),
                plan_time,
            })
            .collect()
    }
}

/// What planning knows of a scope's latest execution (the inputs of
/// `docs/contract.md` §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestExecution {
    /// The newest plan time stored for the scope.
    pub plan_time: OffsetDateTime,
    /// Its status.
    pub status: Status,
    /// Its attempt.
    pub attempt: i32,
    /// Its attempt budget.
    pub max_attempts: i32,
    /// When it may be retried, if FAILED.
    pub next_retry_at: Option<OffsetDateTime>,
    /// Its error code, if any.
    pub error_code: Option<String>,
}

/// A read of one job's due retries ([`LeaseStore::retry_due`](crate::store::LeaseStore::retry_due)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryRead<'a> {
    /// The job.
    pub job_name: &'a str,
    /// The oldest plan time of the job's own retries to report (operator
    /// retries are reported whatever their plan time).
    pub since: OffsetDateTime,
    /// The job's `allow_stale_reentry`: whether `stale_timeout` rows count
    /// as retry-eligible.
    pub allow_stale_reentry: bool,
    /// At most this many rows of each kind per scope, the oldest.
    pub per_scope_limit: usize,
}

/// A FAILED plan whose retry is due (see [`LeaseStore::retry_due`](crate::store::LeaseStore::retry_due)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryDue {
    /// The scope.
    pub scope: Scope,
    /// The failed plan time.
    pub plan_time: OffsetDateTime,
    /// An operator asked for this retry ([`ExecutionAudit::retry_execution`](crate::store::ExecutionAudit::retry_execution):
    /// its error code is [`OPERATOR_RETRY_CODE`](crate::machine::OPERATOR_RETRY_CODE)). It runs once
    /// whatever the job's catch-up mode and window say.
    pub operator_retry: bool,
    /// The row's origin. A trigger's or a backfill's failed run is
    /// reported whatever its plan time, like an operator's retry, and runs
    /// whatever the catch-up rules say: an operator asked for it.
    pub origin: Origin,
}

impl RetryDue {
    /// Runs whatever the job's catch-up rules say: an operator asked for
    /// it (a retry, a trigger, a backfill).
    pub fn forced(&self) -> bool {
        self.operator_retry || self.origin.is_ad_hoc()
    }
}
