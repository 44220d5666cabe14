//! The data model: pure values, no I/O, no clock, no async.
//!
//! - [`scope`]: [`Scope`] and the limits on every name a store keys rows by.
//! - [`attempt`]: the attempts log ([`Attempt`], [`AttemptOutcome`]): one
//!   record per ended attempt of an execution.
//! - [`execution`]: the execution row ([`Execution`]), its [`Status`] and
//!   [`ErrorCode`], the [`Lease`] it grants, and what planning reads of it.
//! - [`claim`]: [`ClaimRequest`], and [`ClaimOutcome`] / [`ClaimKind`], the
//!   one vocabulary of how a claim ends.
//! - [`finish`]: terminal writes ([`Finish`]) and the bounds that keep them
//!   storable.
//! - [`summary`]: operator reads ([`ExecutionFilter`], [`ScopeSummary`]).
//! - [`registration`]: a registered job as data ([`RegisteredJob`]), what
//!   a replica announces of each job.
//! - [`replica`]: the replica registry ([`Announcement`], [`Replica`]).
//! - [`stored`]: stored schedules as data ([`StoredSchedule`],
//!   [`ScheduleDefinition`], [`ScheduleWrite`]).
//! - [`control`]: steering at run time ([`Control`]: pause, trigger,
//!   backfill; [`Origin`], [`OverlapPolicy`]).
//!
//! Every other layer builds on this one: the state machine and planning
//! compute over these values, the store traits carry them, the manager
//! moves them around.

pub mod attempt;
pub mod claim;
pub mod control;
pub mod execution;
pub mod finish;
pub mod registration;
pub mod replica;
pub mod scope;
pub mod stored;
pub mod summary;

pub use attempt::{Attempt, AttemptOutcome};
pub use claim::{ClaimKind, ClaimOutcome, ClaimRequest, LeaseRef, Steering};
pub use control::{
    Control, ControlAction, ControlChange, ControlRead, ControlState, NewControl, Origin,
    OverlapPolicy, Progress, MAX_NOTE_BYTES,
};
pub use execution::{
    ErrorCode, Execution, LatestExecution, Lease, PlanKey, RetryDue, RetryRead, Status,
};
pub use finish::{
    bound_error_msg, bound_result, Finish, FinishColumns, FinishOutcome, MAX_ERROR_MSG_BYTES,
    MAX_RESULT_BYTES, RESULT_TOO_LARGE_KEY,
};
pub use registration::{
    jobs_from_json, jobs_to_json, CatchUpMode, RegisteredJob, ScheduleForm, ScopeCount,
    MAX_LISTED_SCOPES,
};
pub use replica::{
    Announcement, Presence, Replica, ReplicaInfo, ReplicaState, LIVE_WITHIN_REFRESHES,
};
pub use scope::{bound_text, name_problem, Name, Scope, MAX_NAME_BYTES};
pub use stored::{
    ScheduleDefinition, ScheduleOptions, ScheduleWrite, StoredSchedule, StoredScopes,
    DEFAULT_BACKFILL_PER_TICK, MAX_ARGUMENTS_BYTES, MAX_CATCH_UP_WINDOW, MAX_STORED_SCOPES,
};
pub use summary::{ExecutionFilter, PlannedAt, Prune, ScopeSummary};
