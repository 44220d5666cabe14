//! The lease state machine of the contract (`docs/contract.md` §4) as pure
//! functions over a row value ([`crate::model`]); it imports nothing but the
//! model.
//!
//! Part of the store-author interface: store implementations and their
//! tests use it; it is not covered by semver (see the crate docs).
//!
//! Each function decides one transition from the row as it is and store time
//! `now`, and returns the new row (or why nothing changes). The memory store
//! applies these directly; the SQL stores encode the same guards and effects
//! in their statements, and differential tests hold them to these functions.

mod steering;

pub use steering::{
    admit, cancel_for_overlap, skipped, Admission, LiveRun, OVERLAP_CANCELED_MSG,
    OVERLAP_SKIPPED_MSG,
};

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Map;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::StoreError;
use crate::model::{
    bound_error_msg, Attempt, AttemptOutcome, ClaimOutcome, ClaimRequest, ErrorCode, Execution,
    Finish, FinishOutcome, LatestExecution, PlanKey, RetryDue, RetryRead, Scope, Status,
};
use crate::time::later;

/// The `error_msg` a sweep writes on the rows it closes.
pub const STALE_SWEEP_MSG: &str = "lease went stale: no heartbeat before stale_after";

/// The `error_msg` the attempts log records for an attempt whose stale lease
/// a claim took over before any sweep closed it ([`Ending::Steal`]).
pub const STALE_STEAL_MSG: &str = "lease went stale: taken over by another runner before a sweep";

/// The `error_code` an operator's retry leaves on a FAILED row (the earlier
/// code is named in `error_msg`; the attempts log keeps its message). Not
/// `stale_timeout`, so the retry is allowed even for a job that forbids
/// stale re-entry.
pub const OPERATOR_RETRY_CODE: &str = "operator_retry";

/// The `next_retry_at` of a FAILED row that only an operator may run again:
/// 9999-12-31T23:59:59.999999Z, "never" in every store's instant type.
///
/// The sweep writes it on the rows it closes for a job that forbids stale
/// re-entry. Our own retry rule already refuses those rows by their
/// `stale_timeout` code; the sentinel also keeps replicas of the Go seed
/// off them when they share the table, since the seed's retry branch treats
/// a NULL `next_retry_at` as due now and does not look at the code. An
/// operator's [`operator_retry`] replaces it with the time of the repair.
pub const NEVER: OffsetDateTime = time::macros::datetime!(9999-12-31 23:59:59.999999 UTC);

/// Whether a FAILED row may be claimed again now (`docs/contract.md` §4, claim retry).
///
/// It must be FAILED with attempts left and its retry due (`next_retry_at`
/// null or not after `now`); and a row the sweep closed (`stale_timeout`)
/// of a job that forbids stale re-entry is never retried automatically: the
/// run may have had effects, so only an operator may repeat it.
pub fn retry_eligible(
    status: Status,
    attempt: i32,
    max_attempts: i32,
    next_retry_at: Option<OffsetDateTime>,
    error_code: Option<&str>,
    now: OffsetDateTime,
    allow_stale_reentry: bool,
) -> bool {
    status == Status::Failed
        && attempt < max_attempts
        && next_retry_at.is_none_or(|at| at <= now)
        && (allow_stale_reentry || error_code != Some(ErrorCode::StaleTimeout.as_str()))
}

/// Whether a RUNNING row's lease may be taken over now (`docs/contract.md` §4,
/// claim steal).
pub fn steal_eligible(row: &Execution, now: OffsetDateTime, allow_stale_reentry: bool) -> bool {
    row.status == Status::Running
        && allow_stale_reentry
        && row.attempt < row.max_attempts
        && row.stale_after.is_some_and(|s| s < now)
}

/// `retry_eligible(now, allow_stale_reentry)` on each type that carries the
/// fields the rule reads: a whole row, and the view planning keeps of one.
macro_rules! retry_eligible_on {
    ($($ty:ty: $what:literal),*) => {$(
        impl $ty {
            #[doc = concat!("[`retry_eligible`] for this ", $what, ".")]
            pub fn retry_eligible(&self, now: OffsetDateTime, allow_stale_reentry: bool) -> bool {
                retry_eligible(
                    self.status,
                    self.attempt,
                    self.max_attempts,
                    self.next_retry_at,
                    self.error_code.as_deref(),
                    now,
                    allow_stale_reentry,
                )
            }
        }
    )*};
}

retry_eligible_on!(LatestExecution: "view", Execution: "row");

/// What [`LeaseStore::retry_due`](crate::store::LeaseStore::retry_due)
/// answers for `read` over `rows` (the job's rows, in any order) at store
/// time `now`: the reference every store's answer must equal.
///
/// Retry-eligible FAILED rows with `plan_time >= read.since`, and the
/// forced ones ([`RetryDue::forced`]: an operator's retry, a trigger's or a
/// backfill's run) whatever their plan time; at most `read.per_scope_limit`
/// of each kind (forced or not) per scope, the oldest; ordered by plan
/// time, then scope (bytewise), then forced last.
pub fn retry_due<'a>(
    rows: impl IntoIterator<Item = &'a Execution>,
    read: &RetryRead<'_>,
    now: OffsetDateTime,
) -> Vec<RetryDue> {
    let since = read.since;
    let mut due: Vec<RetryDue> = rows
        .into_iter()
        .filter(|r| r.retry_eligible(now, read.allow_stale_reentry))
        .map(|r| RetryDue {
            scope: r.scope.clone(),
            plan_time: r.plan_time,
            operator_retry: r.error_code.as_deref() == Some(OPERATOR_RETRY_CODE),
            origin: r.origin,
        })
        .filter(|d| d.forced() || d.plan_time >= since)
        .collect();
    due.sort_by(|a, b| {
        (a.plan_time, &a.scope, a.forced()).cmp(&(b.plan_time, &b.scope, b.forced()))
    });
    let mut taken: HashMap<(Scope, bool), usize> = HashMap::new();
    due.retain(|d| {
        let n = taken.entry((d.scope.clone(), d.forced())).or_default();
        *n += 1;
        *n <= read.per_scope_limit
    });
    due
}

/// The identifiers a claimer mints before it knows whether it will insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreshIds {
    /// The id of a fresh row (UUID v7).
    pub id: Uuid,
    /// The new lease token (UUID v4).
    pub token: Uuid,
}

impl FreshIds {
    /// Mints a v7 id and a v4 token from a cryptographic random source:
    /// the thread-local CSPRNG (`uuid`'s `fast-rng`, seeded by the OS), so
    /// that a claim of thousands of keys makes no system call per id.
    pub fn mint() -> Self {
        FreshIds {
            id: Uuid::now_v7(),
            token: Uuid::new_v4(),
        }
    }
}

/// Decides a claim of `key` given the row stored for it (the claim rows of
/// `docs/contract.md` §4): the row to write, by how it was won, or
/// [`ClaimOutcome::Conflicted`] when nothing changes.
pub fn claim(
    existing: Option<&Execution>,
    request: &ClaimRequest<'_>,
    key: &PlanKey,
    now: OffsetDateTime,
    ids: FreshIds,
) -> ClaimOutcome<Execution> {
    match existing {
        None => ClaimOutcome::Won(with_new_lease(
            Execution {
                id: ids.id,
                job_name: request.job_name.into(),
                scope: key.scope.clone(),
                plan_time: key.plan_time,
                attempt: 1,
                max_attempts: request.max_attempts,
                rows_affected: None,
                result: Map::new(),
                created_at: now,
                // Set by `with_new_lease`, like every other lease field.
                status: Status::Running,
                next_retry_at: None,
                runner_id: None,
                lease_token: ids.token,
                heartbeat_at: None,
                stale_after: None,
                started_at: None,
                finished_at: None,
                duration_ms: None,
                error_code: None,
                error_msg: None,
                updated_at: now,
                origin: request.steering.origin,
                control_id: request.steering.control_id,
            },
            request,
            ids,
            now,
        )),
        Some(row) => {
            let retry = row.retry_eligible(now, request.allow_stale_reentry);
            if !retry && !steal_eligible(row, now, request.allow_stale_reentry) {
                return ClaimOutcome::Conflicted;
            }
            let reclaimed = with_new_lease(
                Execution {
                    attempt: row.attempt + 1,
                    ..row.clone()
                },
                request,
                ids,
                now,
            );
            if retry {
                ClaimOutcome::Retried(reclaimed)
            } else {
                ClaimOutcome::Stolen(reclaimed)
            }
        }
    }
}

/// `row` under a new lease for `request`'s runner: RUNNING, a new token,
/// the liveness and start instants reset, and the previous attempt's
/// outcome (finish, duration, retry time, error) cleared. What a fresh
/// claim, a retry and a takeover all write.
fn with_new_lease(
    row: Execution,
    request: &ClaimRequest<'_>,
    ids: FreshIds,
    now: OffsetDateTime,
) -> Execution {
    Execution {
        status: Status::Running,
        runner_id: Some(request.runner_id.into()),
        lease_token: ids.token,
        heartbeat_at: Some(now),
        stale_after: Some(later(now, request.stale_timeout)),
        started_at: Some(now),
        finished_at: None,
        duration_ms: None,
        next_retry_at: None,
        error_code: None,
        error_msg: None,
        updated_at: now,
        ..row
    }
}

/// The guard of every write to a live lease: the row must be RUNNING under
/// `token`. When it is not, the write changes nothing and the answer is
/// [`StoreError::LeaseLost`], the one way every layer says so.
fn guard(row: &Execution, token: Uuid) -> Result<(), StoreError> {
    if row.status == Status::Running && row.lease_token == token {
        Ok(())
    } else {
        Err(StoreError::LeaseLost { id: row.id })
    }
}

/// A heartbeat: extends the lease if token and status still match.
pub fn heartbeat(
    row: &Execution,
    token: Uuid,
    now: OffsetDateTime,
    stale_timeout: Duration,
) -> Result<Execution, StoreError> {
    guard(row, token)?;
    Ok(Execution {
        heartbeat_at: Some(now),
        stale_after: Some(later(now, stale_timeout)),
        updated_at: now,
        ..row.clone()
    })
}

/// A terminal write: SUCCESS, or FAILED with `next_retry_at` while attempts
/// remain, if token and status still match.
pub fn finish(
    row: &Execution,
    token: Uuid,
    now: OffsetDateTime,
    finish: &Finish,
) -> Result<Execution, StoreError> {
    guard(row, token)?;
    let done = Execution {
        finished_at: Some(now),
        duration_ms: Some(finish.duration_ms()),
        updated_at: now,
        ..row.clone()
    };
    Ok(match finish.outcome() {
        FinishOutcome::Success {
            rows_affected,
            result,
        } => Execution {
            status: Status::Success,
            rows_affected: Some(*rows_affected),
            result: result.clone(),
            next_retry_at: None,
            error_code: None,
            error_msg: None,
            ..done
        },
        FinishOutcome::Failure {
            error_code,
            error_msg,
            retry_after,
        } => Execution {
            status: Status::Failed,
            next_retry_at: (row.attempt < row.max_attempts).then(|| later(now, *retry_after)),
            error_code: Some(error_code.as_str().to_owned()),
            error_msg: Some(error_msg.clone()),
            ..done
        },
    })
}

/// The sweep of one row: a RUNNING row whose lease went stale becomes FAILED
/// with `stale_timeout`; anything else is untouched (`None`).
///
/// For a job that allows stale re-entry the row is due for a retry at once
/// (`next_retry_at` null); for one that does not, it waits for an operator
/// (`next_retry_at` = [`NEVER`]).
pub fn sweep(row: &Execution, now: OffsetDateTime, allow_stale_reentry: bool) -> Option<Execution> {
    let stale = row.status == Status::Running && row.stale_after.is_some_and(|s| s < now);
    stale.then(|| Execution {
        status: Status::Failed,
        finished_at: Some(now),
        next_retry_at: swept_retry_at(allow_stale_reentry),
        error_code: Some(ErrorCode::StaleTimeout.as_str().to_owned()),
        error_msg: Some(STALE_SWEEP_MSG.to_owned()),
        updated_at: now,
        ..row.clone()
    })
}

/// The `next_retry_at` a sweep writes: null (due now) when the job allows
/// stale re-entry, [`NEVER`] when only an operator may run the plan again.
pub fn swept_retry_at(allow_stale_reentry: bool) -> Option<OffsetDateTime> {
    (!allow_stale_reentry).then_some(NEVER)
}

/// An operator's repair of a FAILED row: due now (`next_retry_at = now`),
/// one more attempt granted when none is left, and the error code replaced
/// by [`OPERATOR_RETRY_CODE`] (naming the old code in `error_msg`,
/// [`operator_retry_msg`]) so even a non-reentrant job's `stale_timeout`
/// row runs again. A RUNNING or SUCCESS row is refused with the reason.
///
/// It ends no attempt, so it appends nothing to the attempts log: the
/// failure it repairs was logged when it happened.
pub fn operator_retry(row: &Execution, now: OffsetDateTime) -> Result<Execution, &'static str> {
    match row.status {
        Status::Running => {
            Err("it is RUNNING (its lease may still be live); wait for it to finish or go stale")
        }
        Status::Success => Err("it already succeeded"),
        Status::Failed if row.attempt == i32::MAX => Err("it has no attempt number left"),
        Status::Failed => Ok(Execution {
            max_attempts: row.max_attempts.max(row.attempt + 1),
            next_retry_at: Some(now),
            error_code: Some(OPERATOR_RETRY_CODE.to_owned()),
            error_msg: Some(operator_retry_msg(row)),
            updated_at: now,
            ..row.clone()
        }),
    }
}

/// The `error_msg` an operator's retry writes: that it is one, and the code
/// of the failure it repairs (`operator retry; last error: handler_error`).
/// The failure's own message stays in the attempts log, so it is not
/// copied here, and a row an operator already retried keeps its message:
/// repeated retries never nest one message inside the next.
pub fn operator_retry_msg(row: &Execution) -> String {
    match (row.error_code.as_deref(), &row.error_msg) {
        (Some(OPERATOR_RETRY_CODE), Some(msg)) => bound_error_msg(msg),
        (code, _) => bound_error_msg(&format!(
            "operator retry; last error: {}",
            code.unwrap_or("unknown")
        )),
    }
}

/// The transitions that end an attempt (`docs/contract.md` §4), each of
/// which appends one [`Attempt`] to the attempts log, in the same statement
/// or transaction as the transition itself ([`ended_attempt`]).
///
/// No other transition appends anything: a fresh claim and a heartbeat end
/// no attempt; a claim that retries a FAILED row starts a new attempt after
/// one whose failure was logged when it was written; an operator's retry
/// only makes a logged failure due again; a prune deletes an execution's
/// records with it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ending<'a> {
    /// [`finish`]: the runner wrote SUCCESS or FAILED.
    Finish(&'a Finish),
    /// [`sweep`]: the sweep closed the stale lease.
    Sweep,
    /// [`claim`] taking a stale lease over ([`ClaimOutcome::Stolen`]).
    Steal,
    /// [`cancel_for_overlap`]: a newer run of the scope replaced it.
    Overlap,
}

/// What an [`Ending`] records of how the attempt ended, beside the
/// attempt's own number, runner and start: the columns the SQL stores bind
/// for the record they append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndingColumns<'a> {
    /// How the attempt ended; a finish's is the status it wrote.
    pub outcome: AttemptOutcome,
    /// The error code: a failure's, `stale_timeout` for a sweep or a steal.
    pub error_code: Option<&'a str>,
    /// The message: a failure's (bounded), [`STALE_SWEEP_MSG`] or
    /// [`STALE_STEAL_MSG`].
    pub error_msg: Option<&'a str>,
    /// A finish's run time; none when the runner never reported one.
    pub duration_ms: Option<i32>,
}

impl<'a> Ending<'a> {
    /// What the record says of how the attempt ended.
    pub fn columns(self) -> EndingColumns<'a> {
        let stale = |outcome, msg| EndingColumns {
            outcome,
            error_code: Some(ErrorCode::StaleTimeout.as_str()),
            error_msg: Some(msg),
            duration_ms: None,
        };
        match self {
            Ending::Finish(finish) => {
                let c = finish.columns();
                EndingColumns {
                    outcome: match c.status {
                        Status::Success => AttemptOutcome::Success,
                        _ => AttemptOutcome::Failed,
                    },
                    error_code: c.error_code.map(ErrorCode::as_str),
                    error_msg: c.error_msg,
                    duration_ms: Some(c.duration_ms),
                }
            }
            Ending::Sweep => stale(AttemptOutcome::Swept, STALE_SWEEP_MSG),
            Ending::Steal => stale(AttemptOutcome::Stolen, STALE_STEAL_MSG),
            Ending::Overlap => EndingColumns {
                outcome: AttemptOutcome::Failed,
                error_code: Some(ErrorCode::OverlapCanceled.as_str()),
                error_msg: Some(OVERLAP_CANCELED_MSG),
                duration_ms: None,
            },
        }
    }
}

/// The record a transition that ends `row`'s current attempt at store time
/// `now` appends to the attempts log. `row` is the row as it was before the
/// transition: the attempt's number, runner and start are the ones the
/// attempt ran under; the rest is [`Ending::columns`].
///
/// A finish records its outcome (the status it wrote), error code, message
/// and duration; a sweep and a steal record `stale_timeout` with
/// [`STALE_SWEEP_MSG`] or [`STALE_STEAL_MSG`], and no duration, since the
/// runner never reported one.
pub fn ended_attempt(row: &Execution, ending: Ending<'_>, now: OffsetDateTime) -> Attempt {
    let c = ending.columns();
    Attempt {
        execution_id: row.id,
        attempt: row.attempt,
        runner_id: row.runner_id.clone(),
        started_at: row.started_at,
        ended_at: now,
        outcome: c.outcome,
        error_code: c.error_code.map(str::to_owned),
        error_msg: c.error_msg.map(str::to_owned),
        duration_ms: c.duration_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

    fn request(allow_stale_reentry: bool) -> ClaimRequest<'static> {
        ClaimRequest {
            finishing: &[],
            steering: crate::model::Steering::NONE,
            job_name: "job",
            runner_id: "r1",
            max_attempts: 2,
            stale_timeout: Duration::from_secs(60),
            allow_stale_reentry,
            keys: &[],
        }
    }

    fn key() -> PlanKey {
        PlanKey {
            scope: Scope::global(),
            plan_time: T0,
        }
    }

    /// A claim of `row`'s key at `at` by a reentrant job.
    fn reclaim(row: &Execution, at: OffsetDateTime) -> ClaimOutcome<Execution> {
        claim(Some(row), &request(true), &key(), at, FreshIds::mint())
    }

    fn fresh() -> Execution {
        match claim(None, &request(true), &key(), T0, FreshIds::mint()) {
            ClaimOutcome::Won(row) => row,
            other => panic!("expected a fresh claim, got {other:?}"),
        }
    }

    #[test]
    fn fresh_claim_sets_lease_fields() {
        let row = fresh();
        assert_eq!(row.status, Status::Running);
        assert_eq!(row.attempt, 1);
        assert_eq!(row.max_attempts, 2);
        assert_eq!(row.stale_after, Some(T0 + Duration::from_secs(60)));
        assert_eq!(row.started_at, Some(T0));
        assert_eq!(row.id.get_version_num(), 7);
        assert_eq!(row.lease_token.get_version_num(), 4);
    }

    #[test]
    fn live_lease_conflicts_and_stale_lease_is_stolen_only_when_reentrant() {
        let row = fresh();
        let later = T0 + Duration::from_secs(61);
        assert_eq!(reclaim(&row, T0), ClaimOutcome::Conflicted);
        assert_eq!(
            claim(Some(&row), &request(false), &key(), later, FreshIds::mint()),
            ClaimOutcome::Conflicted
        );
        let ids = FreshIds::mint();
        let ClaimOutcome::Stolen(stolen) = claim(Some(&row), &request(true), &key(), later, ids)
        else {
            panic!("expected a steal");
        };
        assert_eq!(stolen.attempt, 2);
        assert_eq!(stolen.id, row.id);
        assert_eq!(stolen.lease_token, ids.token);
        // attempts exhausted: no further steal
        let much_later = later + Duration::from_secs(120);
        assert_eq!(reclaim(&stolen, much_later), ClaimOutcome::Conflicted);
    }

    #[test]
    fn guarded_writes_reject_old_tokens_and_terminal_rows() {
        let row = fresh();
        let stolen = reclaim(&row, T0 + Duration::from_secs(61));
        let stolen = stolen.get().unwrap();
        let ok = Finish::success(Duration::ZERO, 1, Map::new());
        assert!(
            matches!(
                finish(stolen, row.lease_token, T0, &ok),
                Err(StoreError::LeaseLost { id }) if id == row.id
            ),
            "the old runner's late SUCCESS is rejected"
        );
        let done = finish(stolen, stolen.lease_token, T0, &ok).unwrap();
        assert_eq!(done.status, Status::Success);
        assert!(matches!(
            heartbeat(&done, done.lease_token, T0, Duration::from_secs(1)),
            Err(StoreError::LeaseLost { id }) if id == row.id
        ));
        assert!(sweep(&done, T0 + Duration::from_secs(3600), true).is_none());
    }

    #[test]
    fn failure_schedules_retry_only_while_attempts_remain() {
        let row = fresh();
        let fail = Finish::failure(
            Duration::from_millis(5),
            ErrorCode::HandlerError,
            "boom",
            Duration::from_secs(10),
        );
        let failed = finish(&row, row.lease_token, T0, &fail).unwrap();
        assert_eq!(failed.next_retry_at, Some(T0 + Duration::from_secs(10)));
        assert!(!failed.retry_eligible(T0 + Duration::from_secs(9), true));
        assert!(failed.retry_eligible(T0 + Duration::from_secs(10), true));
        let retried = reclaim(&failed, T0 + Duration::from_secs(10));
        let retried = retried.get().unwrap();
        assert_eq!((retried.attempt, retried.error_code.as_deref()), (2, None));
        let failed_again = finish(retried, retried.lease_token, T0, &fail).unwrap();
        assert_eq!(failed_again.next_retry_at, None);
        assert!(!failed_again.retry_eligible(T0 + Duration::from_secs(3600), true));
    }

    #[test]
    fn swept_row_of_non_reentrant_job_is_not_retried() {
        let row = fresh();
        let swept = sweep(&row, T0 + Duration::from_secs(61), false).unwrap();
        assert_eq!(swept.error_code.as_deref(), Some("stale_timeout"));
        assert_eq!(
            swept.next_retry_at,
            Some(NEVER),
            "never due, even for a reader that ignores the error code"
        );
        let later = T0 + Duration::from_secs(3600);
        assert!(!swept.retry_eligible(later, false));
        let reentrant = sweep(&row, T0 + Duration::from_secs(61), true).unwrap();
        assert_eq!(reentrant.next_retry_at, None, "due at once");
        assert!(reentrant.retry_eligible(later, true));
        assert!(
            sweep(&row, T0 + Duration::from_secs(60), true).is_none(),
            "stale means strictly past stale_after"
        );
    }

    #[test]
    fn operator_retry_grants_an_attempt_and_unblocks_stale_rows() {
        let row = fresh();
        let swept = sweep(&row, T0 + Duration::from_secs(61), false).unwrap();
        let exhausted = Execution {
            attempt: 2,
            ..swept
        };
        let later = T0 + Duration::from_secs(100);
        assert!(!exhausted.retry_eligible(later, false));
        let repaired = operator_retry(&exhausted, later).unwrap();
        assert_eq!((repaired.attempt, repaired.max_attempts), (2, 3));
        assert_eq!(repaired.next_retry_at, Some(later));
        assert_eq!(repaired.error_code.as_deref(), Some(OPERATOR_RETRY_CODE));
        assert_eq!(
            repaired.error_msg.as_deref(),
            Some("operator retry; last error: stale_timeout")
        );
        assert!(repaired.status == Status::Failed);
        assert!(operator_retry(&exhausted, later)
            .unwrap()
            .retry_eligible(later, false));
        assert!(operator_retry(&row, later).is_err(), "RUNNING is refused");
        let ok = Finish::success(Duration::ZERO, 0, Map::new());
        let done = finish(&row, row.lease_token, T0, &ok).unwrap();
        assert!(operator_retry(&done, later).is_err(), "SUCCESS is refused");
    }

    #[test]
    fn repeated_operator_retries_name_the_last_error_without_nesting() {
        let failed = |code: Option<&str>, msg: &str| Execution {
            error_code: code.map(str::to_owned),
            error_msg: Some(msg.to_owned()),
            ..sweep(&fresh(), T0 + Duration::from_secs(61), true).unwrap()
        };
        let later = T0 + Duration::from_secs(100);
        let once = operator_retry(&failed(Some("handler_error"), "boom"), later).unwrap();
        let expected = Some("operator retry; last error: handler_error");
        assert_eq!(once.error_msg.as_deref(), expected);
        let twice = operator_retry(&once, later).unwrap();
        assert_eq!(twice.error_msg.as_deref(), expected, "kept, not nested");
        let unknown = operator_retry(&failed(None, ""), later).unwrap();
        assert_eq!(
            unknown.error_msg.as_deref(),
            Some("operator retry; last error: unknown")
        );
        let long_code = "x".repeat(2 * crate::model::MAX_ERROR_MSG_BYTES);
        let bounded = operator_retry(&failed(Some(&long_code), ""), later).unwrap();
        assert!(bounded.error_msg.unwrap().len() <= crate::model::MAX_ERROR_MSG_BYTES);
    }

    #[test]
    fn each_ending_records_the_attempt_it_ends() {
        let row = fresh();
        let at = T0 + Duration::from_secs(5);
        let failure = Finish::failure(
            Duration::from_millis(9),
            ErrorCode::RunTimeout,
            "slow",
            Duration::ZERO,
        );
        let failed = ended_attempt(&row, Ending::Finish(&failure), at);
        assert_eq!(
            failed,
            Attempt {
                execution_id: row.id,
                attempt: 1,
                runner_id: Some("r1".into()),
                started_at: Some(T0),
                ended_at: at,
                outcome: AttemptOutcome::Failed,
                error_code: Some("run_timeout".to_owned()),
                error_msg: Some("slow".to_owned()),
                duration_ms: Some(9),
            }
        );
        let ok = Finish::success(Duration::from_millis(4), 1, Map::new());
        let succeeded = ended_attempt(&row, Ending::Finish(&ok), at);
        assert_eq!(
            (
                succeeded.outcome,
                succeeded.error_code,
                succeeded.error_msg,
                succeeded.duration_ms
            ),
            (AttemptOutcome::Success, None, None, Some(4))
        );
        for (ending, outcome, msg) in [
            (Ending::Sweep, AttemptOutcome::Swept, STALE_SWEEP_MSG),
            (Ending::Steal, AttemptOutcome::Stolen, STALE_STEAL_MSG),
        ] {
            let ended = ended_attempt(&row, ending, at);
            assert_eq!(
                (
                    ended.outcome,
                    ended.error_code.as_deref(),
                    ended.error_msg.as_deref(),
                    ended.duration_ms
                ),
                (outcome, Some("stale_timeout"), Some(msg), None)
            );
            assert_eq!((ended.attempt, ended.started_at), (1, Some(T0)));
        }
        for outcome in AttemptOutcome::ALL {
            assert_eq!(AttemptOutcome::parse(outcome.as_str()), Some(outcome));
        }
        assert_eq!(
            AttemptOutcome::Success.as_str(),
            Status::Success.as_str(),
            "a finish's outcome is the status it wrote"
        );
        assert_eq!(AttemptOutcome::Failed.as_str(), Status::Failed.as_str());
    }
}
