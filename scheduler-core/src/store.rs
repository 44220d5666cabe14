//! The execution record (the contract, `docs/contract.md` §3) and the
//! [`LeaseStore`] trait every backend implements.
//!
//! A store is the only coordinator between replicas: every method is one
//! atomic statement or transaction, decided from the row as it is at that
//! moment, with **store time** (never the caller's clock). The pure rules the
//! statements must encode live in [`crate::machine`]; the shared conformance
//! suite (`conformance` feature) holds every store to them.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::StoreError;
use crate::machine;
use crate::spec::{name_problem, Scope};

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
}

impl ErrorCode {
    /// The text stored in the `error_code` column.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::HandlerError => "handler_error",
            ErrorCode::HandlerPanic => "handler_panic",
            ErrorCode::RunTimeout => "run_timeout",
            ErrorCode::Canceled => "canceled",
            ErrorCode::LeaseLost => "lease_lost",
            ErrorCode::StaleTimeout => "stale_timeout",
        }
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
    pub job_name: String,
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
    /// it, [`machine::NEVER`] that only an operator may run it again.
    pub next_retry_at: Option<OffsetDateTime>,
    /// The replica holding, or last holding, the lease.
    pub runner_id: Option<String>,
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
    /// At most [`machine::MAX_ERROR_MSG_BYTES`] bytes, without NUL characters.
    pub error_msg: Option<String>,
    /// When the row was inserted.
    pub created_at: OffsetDateTime,
    /// When the row last changed.
    pub updated_at: OffsetDateTime,
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
    pub job_name: String,
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

/// One key of a batch claim.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlanKey {
    /// The scope.
    pub scope: Scope,
    /// The plan time (microsecond precision).
    pub plan_time: OffsetDateTime,
}

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
}

impl ClaimRequest<'_> {
    /// Refuses a request no store can honour, before a store writes
    /// anything: `max_attempts` below 1, and a job name, runner id or scope
    /// that can never be stored (a NUL character, or longer than
    /// [`MAX_NAME_BYTES`](crate::spec::MAX_NAME_BYTES); see
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

/// The outcome of claiming one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// No row existed; a fresh one was inserted with attempt 1.
    Won(Lease),
    /// A retry-eligible FAILED row went back to RUNNING.
    Retried(Lease),
    /// A stale RUNNING row of a reentrant job was taken over.
    Stolen(Lease),
    /// Nothing changed: a live lease elsewhere, SUCCESS, retry not yet due, or
    /// attempts exhausted. The expected, silent case for losing replicas.
    Conflicted,
}

impl ClaimOutcome {
    /// The lease, unless the claim conflicted.
    pub fn lease(&self) -> Option<&Lease> {
        match self {
            ClaimOutcome::Won(l) | ClaimOutcome::Retried(l) | ClaimOutcome::Stolen(l) => Some(l),
            ClaimOutcome::Conflicted => None,
        }
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

/// A FAILED plan whose retry is due (see [`LeaseStore::retry_due`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryDue {
    /// The scope.
    pub scope: Scope,
    /// The failed plan time.
    pub plan_time: OffsetDateTime,
    /// An operator asked for this retry ([`LeaseStore::retry_execution`]:
    /// its error code is [`machine::OPERATOR_RETRY_CODE`]). It runs once
    /// whatever the job's catch-up mode and window say.
    pub operator_retry: bool,
}

/// A terminal write. Built only through [`Finish::success`] and
/// [`Finish::failure`], which enforce the `result` and `error_msg` limits, so
/// no store can be handed a value that would make the write itself fail.
#[derive(Debug, Clone, PartialEq)]
pub struct Finish {
    pub(crate) outcome: FinishOutcome,
    pub(crate) duration_ms: i32,
}

/// The two kinds of terminal write. Exhaustive on purpose: a new kind must
/// break every store at compile time, not at run time.
#[derive(Debug, Clone, PartialEq)]
pub enum FinishOutcome {
    /// The handler returned `Ok`.
    Success {
        /// From the handler.
        rows_affected: i64,
        /// Within the size limit.
        result: Map<String, Value>,
    },
    /// The attempt failed.
    Failure {
        /// Why.
        error_code: ErrorCode,
        /// Within the length limit, NUL-free.
        error_msg: String,
        /// `next_retry_at = now + retry_after` while attempts remain.
        retry_after: Duration,
    },
}

impl Finish {
    /// A successful run. An oversized result is replaced by a small marker
    /// (`docs/contract.md` §7): the handler's effects already happened, so
    /// the row must still become SUCCESS.
    pub fn success(duration: Duration, rows_affected: i64, result: Map<String, Value>) -> Self {
        Finish {
            outcome: FinishOutcome::Success {
                rows_affected,
                result: machine::bound_result(result),
            },
            duration_ms: duration_ms(duration),
        }
    }

    /// A failed attempt; the message is cut to the limit on a character
    /// boundary and stripped of NUL characters.
    pub fn failure(
        duration: Duration,
        error_code: ErrorCode,
        error_msg: &str,
        retry_after: Duration,
    ) -> Self {
        Finish {
            outcome: FinishOutcome::Failure {
                error_code,
                error_msg: machine::bound_error_msg(error_msg),
                retry_after,
            },
            duration_ms: duration_ms(duration),
        }
    }

    /// What the write records.
    pub fn outcome(&self) -> &FinishOutcome {
        &self.outcome
    }

    /// The handler's run time in whole milliseconds (saturating).
    pub fn duration_ms(&self) -> i32 {
        self.duration_ms
    }
}

fn duration_ms(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

/// Filters for [`LeaseStore::list_executions`]. Results come newest plan time
/// first (ties by id, descending).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecutionFilter {
    /// Only this job.
    pub job_name: Option<String>,
    /// Only this scope.
    pub scope: Option<Scope>,
    /// Only this status.
    pub status: Option<Status>,
    /// Only plan times at or after this instant.
    pub plan_time_from: Option<OffsetDateTime>,
    /// At most this many rows; `None` means no limit.
    pub limit: Option<usize>,
}

/// What an operator needs to know about one `(job, scope)` (see
/// [`LeaseStore::scope_summaries`]). Counts are over all of the scope's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeSummary {
    /// The job.
    pub job_name: String,
    /// The scope.
    pub scope: Scope,
    /// The row with the highest plan time.
    pub latest: LatestExecution,
    /// The highest plan time that ended SUCCESS.
    pub last_success_plan_time: Option<OffsetDateTime>,
    /// When that row finished.
    pub last_success_finished_at: Option<OffsetDateTime>,
    /// RUNNING rows whose lease is live (`stale_after >= now`).
    pub running: u64,
    /// RUNNING rows whose lease went stale (`stale_after < now`), not yet swept.
    pub stale: u64,
    /// FAILED rows with attempts left, other than `stale_timeout` ones:
    /// retries pending (due now or later).
    pub retry_pending: u64,
    /// The earliest `next_retry_at` among them (null counts as due now).
    pub next_retry_at: Option<OffsetDateTime>,
    /// FAILED rows with no attempt left.
    pub exhausted: u64,
    /// FAILED `stale_timeout` rows with attempts left: retried automatically
    /// for reentrant jobs, waiting for an operator otherwise.
    pub stale_timeout: u64,
}

impl ScopeSummary {
    /// Summarises one scope's rows (any order; at least one row) at store
    /// time `now`: the reference every store's summary must equal.
    pub fn of_rows(rows: &[Execution], now: OffsetDateTime) -> Option<ScopeSummary> {
        let latest = rows.iter().max_by_key(|r| r.plan_time)?;
        let last_success = rows
            .iter()
            .filter(|r| r.status == Status::Success)
            .max_by_key(|r| r.plan_time);
        let mut summary = ScopeSummary {
            job_name: latest.job_name.clone(),
            scope: latest.scope.clone(),
            latest: latest.latest_view(),
            last_success_plan_time: last_success.map(|r| r.plan_time),
            last_success_finished_at: last_success.and_then(|r| r.finished_at),
            running: 0,
            stale: 0,
            retry_pending: 0,
            next_retry_at: None,
            exhausted: 0,
            stale_timeout: 0,
        };
        for r in rows {
            let stale_code = r.error_code.as_deref() == Some(ErrorCode::StaleTimeout.as_str());
            match r.status {
                Status::Running if r.stale_after.is_some_and(|s| s < now) => summary.stale += 1,
                Status::Running => summary.running += 1,
                Status::Failed if r.attempt >= r.max_attempts => summary.exhausted += 1,
                Status::Failed if stale_code => summary.stale_timeout += 1,
                Status::Failed => {
                    summary.retry_pending += 1;
                    let due = r.next_retry_at.unwrap_or(now);
                    summary.next_retry_at = Some(summary.next_retry_at.map_or(due, |d| d.min(due)));
                }
                Status::Success => {}
            }
        }
        Some(summary)
    }
}

/// The storage side of the scheduler: leases and audit rows.
///
/// Implementations must be safe to share between tasks and replicas
/// (`Send + Sync`, usable as `Arc<dyn LeaseStore>`), must make every method
/// one atomic statement or transaction, and must use **store time** for
/// every instant they write or compare. Every instant they return must be in
/// UTC at microsecond precision.
///
/// Strings that can never be stored (a NUL byte in a job name or scope) must
/// be refused with [`StoreError::InvalidInput`] before anything is written.
#[async_trait]
pub trait LeaseStore: Send + Sync + fmt::Debug {
    /// Store time: the clock every decision uses.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store cannot be reached.
    async fn now(&self) -> Result<OffsetDateTime, StoreError>;

    /// Claims every key of `request` for one job, and must return exactly one
    /// outcome per key, in the order of `request.keys`.
    ///
    /// For each key the store must apply [`machine::claim`] atomically: insert
    /// a fresh RUNNING row (attempt 1, id v7, token v4); or, for a
    /// retry-eligible FAILED row or a stealable stale RUNNING row, move it to
    /// RUNNING with attempt + 1 and a new token; or change nothing. Among any
    /// number of concurrent claimers of one key, exactly one must see a lease.
    /// The whole batch should cost one transaction (or at most two
    /// statements), however many keys it has. Duplicate keys within one batch
    /// must not both win.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] for unstorable names (nothing is
    /// claimed); [`StoreError::Backend`] when the store fails, in which case
    /// no key may be left claimed without the caller knowing it, except that a
    /// commit whose acknowledgement was lost may leave leases that simply go
    /// stale.
    async fn claim(&self, request: &ClaimRequest<'_>) -> Result<Vec<ClaimOutcome>, StoreError>;

    /// Extends a live lease: `heartbeat_at = now`, `stale_after = now +
    /// stale_timeout`, only if the row matches id **and** token **and** is
    /// RUNNING. Returns the new `stale_after`.
    ///
    /// # Errors
    /// [`StoreError::LeaseLost`] when the guard does not match;
    /// [`StoreError::Backend`] when the store fails.
    async fn heartbeat(
        &self,
        lease: &Lease,
        stale_timeout: Duration,
    ) -> Result<OffsetDateTime, StoreError>;

    /// Writes the terminal state of a live lease, guarded like
    /// [`heartbeat`](LeaseStore::heartbeat), at store time
    /// ([`machine::finish`]). A failure sets `next_retry_at = now +
    /// retry_after` while `attempt < max_attempts`, else null.
    ///
    /// # Errors
    /// [`StoreError::LeaseLost`] when the guard does not match (nothing
    /// changed); [`StoreError::Backend`] when the store fails.
    async fn finish(&self, lease: &Lease, finish: &Finish) -> Result<(), StoreError>;

    /// [`finish`](LeaseStore::finish) for several leases at once, and must
    /// return one result per item, in order, each exactly what `finish`
    /// would have returned for it (the guard is per lease: one lost lease
    /// does not fail the others). Stores should write the whole batch in
    /// one statement or transaction: the manager sends the terminal writes
    /// of executions that end close together through here, which is what
    /// lets a replica finish thousands of plans per second. The default
    /// calls `finish` for each item in turn.
    ///
    /// # Errors
    /// Per item, as [`finish`](LeaseStore::finish); when the whole batch
    /// fails, every item carries a [`StoreError::Backend`].
    async fn finish_many(&self, items: &[(&Lease, &Finish)]) -> Vec<Result<(), StoreError>> {
        let mut results = Vec::with_capacity(items.len());
        for (lease, finish) in items {
            results.push(self.finish(lease, finish).await);
        }
        results
    }

    /// Closes every RUNNING row of `job_name` whose `stale_after` is before
    /// store time: FAILED, `finished_at = now`, `error_code = stale_timeout`,
    /// and `next_retry_at` null when the job allows stale re-entry, else
    /// [`machine::NEVER`] ([`machine::sweep`]). Rows of other jobs and live
    /// leases must be untouched. Returns how many rows were closed.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store fails.
    async fn sweep_stale(
        &self,
        job_name: &str,
        allow_stale_reentry: bool,
    ) -> Result<u64, StoreError>;

    /// The latest execution (highest plan time) of each scope, in the order of
    /// `scopes`, in one round trip however many scopes there are.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store fails.
    async fn latest_executions(
        &self,
        job_name: &str,
        scopes: &[Scope],
    ) -> Result<Vec<Option<LatestExecution>>, StoreError>;

    /// FAILED plans of `job_name` whose retry is due at store time
    /// ([`machine::retry_eligible`] with `allow_stale_reentry`): those with
    /// `plan_time >= since`, and those an operator retried
    /// ([`RetryDue::operator_retry`]) whatever their plan time. Ordered by
    /// plan time, then scope (bytewise).
    ///
    /// `limit` is **per scope**, and per kind: at most `limit` operator
    /// retries and `limit` others of each `(job, scope)`, the oldest plan
    /// times of each. A global limit would let one scope's many old failures
    /// crowd every other scope's retries out of the answer, and a retry the
    /// job's catch-up rules would run could then wait forever. This is what
    /// keeps retries of older plans from being stranded once a newer plan
    /// ran (`docs/contract.md` §5).
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store fails.
    async fn retry_due(
        &self,
        job_name: &str,
        since: OffsetDateTime,
        allow_stale_reentry: bool,
        limit: usize,
    ) -> Result<Vec<RetryDue>, StoreError>;

    /// One execution by id.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store fails.
    async fn get_execution(&self, id: Uuid) -> Result<Option<Execution>, StoreError>;

    /// Executions matching `filter`, newest plan time first.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store fails.
    async fn list_executions(&self, filter: &ExecutionFilter)
        -> Result<Vec<Execution>, StoreError>;

    /// One [`ScopeSummary`] per `(job, scope)` that has rows (of `job_name`
    /// only, when given), ordered by job name then scope, computed at store
    /// time; each must equal [`ScopeSummary::of_rows`] over that scope's rows.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store fails.
    async fn scope_summaries(
        &self,
        job_name: Option<&str>,
    ) -> Result<Vec<ScopeSummary>, StoreError>;

    /// An operator's repair ([`machine::operator_retry`]): makes a FAILED
    /// execution eligible to run again on the next tick, granting one more
    /// attempt when none is left, even when the sweep closed it
    /// (`stale_timeout`) for a job that forbids stale re-entry. Returns the
    /// updated row.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown id; [`StoreError::Conflict`]
    /// for a RUNNING or SUCCESS row (nothing changes);
    /// [`StoreError::Backend`] when the store fails.
    async fn retry_execution(&self, id: Uuid) -> Result<Execution, StoreError>;

    /// Deletes up to `limit` terminal rows (SUCCESS or FAILED) whose
    /// `finished_at` is before `finished_before`, oldest first, in one
    /// statement, and returns how many it deleted. With `dry_run`, deletes
    /// nothing and returns how many rows match in all (ignoring `limit`).
    /// A pruned FAILED plan inside a job's catch-up window would be planned
    /// again, so callers keep `finished_before` older than every window.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store fails.
    async fn prune_finished(
        &self,
        finished_before: OffsetDateTime,
        limit: usize,
        dry_run: bool,
    ) -> Result<u64, StoreError>;
}

/// A store that counts the calls made to another, per method: what a tick
/// costs, for tests and benchmarks. Every call is forwarded unchanged.
#[derive(Debug)]
pub struct CountingStore {
    inner: std::sync::Arc<dyn LeaseStore>,
    calls: std::sync::Mutex<std::collections::BTreeMap<&'static str, u64>>,
}

impl CountingStore {
    /// Counts the calls made to `inner`.
    pub fn new(inner: std::sync::Arc<dyn LeaseStore>) -> Self {
        CountingStore {
            inner,
            calls: Default::default(),
        }
    }

    /// The counts since the last `take`, by method name, and resets them.
    pub fn take(&self) -> std::collections::BTreeMap<&'static str, u64> {
        std::mem::take(&mut *self.calls.lock().expect("counts lock"))
    }

    fn count(&self, method: &'static str) {
        *self
            .calls
            .lock()
            .expect("counts lock")
            .entry(method)
            .or_default() += 1;
    }
}

#[async_trait]
impl LeaseStore for CountingStore {
    async fn now(&self) -> Result<OffsetDateTime, StoreError> {
        self.count("now");
        self.inner.now().await
    }

    async fn claim(&self, request: &ClaimRequest<'_>) -> Result<Vec<ClaimOutcome>, StoreError> {
        self.count("claim");
        self.inner.claim(request).await
    }

    async fn heartbeat(
        &self,
        lease: &Lease,
        stale_timeout: Duration,
    ) -> Result<OffsetDateTime, StoreError> {
        self.count("heartbeat");
        self.inner.heartbeat(lease, stale_timeout).await
    }

    async fn finish(&self, lease: &Lease, finish: &Finish) -> Result<(), StoreError> {
        self.count("finish");
        self.inner.finish(lease, finish).await
    }

    async fn finish_many(&self, items: &[(&Lease, &Finish)]) -> Vec<Result<(), StoreError>> {
        self.count("finish_many");
        self.inner.finish_many(items).await
    }

    async fn sweep_stale(
        &self,
        job_name: &str,
        allow_stale_reentry: bool,
    ) -> Result<u64, StoreError> {
        self.count("sweep_stale");
        self.inner.sweep_stale(job_name, allow_stale_reentry).await
    }

    async fn latest_executions(
        &self,
        job_name: &str,
        scopes: &[Scope],
    ) -> Result<Vec<Option<LatestExecution>>, StoreError> {
        self.count("latest_executions");
        self.inner.latest_executions(job_name, scopes).await
    }

    async fn retry_due(
        &self,
        job_name: &str,
        since: OffsetDateTime,
        allow_stale_reentry: bool,
        limit: usize,
    ) -> Result<Vec<RetryDue>, StoreError> {
        self.count("retry_due");
        self.inner
            .retry_due(job_name, since, allow_stale_reentry, limit)
            .await
    }

    async fn get_execution(&self, id: Uuid) -> Result<Option<Execution>, StoreError> {
        self.count("get_execution");
        self.inner.get_execution(id).await
    }

    async fn list_executions(
        &self,
        filter: &ExecutionFilter,
    ) -> Result<Vec<Execution>, StoreError> {
        self.count("list_executions");
        self.inner.list_executions(filter).await
    }

    async fn scope_summaries(
        &self,
        job_name: Option<&str>,
    ) -> Result<Vec<ScopeSummary>, StoreError> {
        self.count("scope_summaries");
        self.inner.scope_summaries(job_name).await
    }

    async fn retry_execution(&self, id: Uuid) -> Result<Execution, StoreError> {
        self.count("retry_execution");
        self.inner.retry_execution(id).await
    }

    async fn prune_finished(
        &self,
        finished_before: OffsetDateTime,
        limit: usize,
        dry_run: bool,
    ) -> Result<u64, StoreError> {
        self.count("prune_finished");
        self.inner
            .prune_finished(finished_before, limit, dry_run)
            .await
    }
}
