//! [`LeaseStore`]: the coordination methods the manager calls.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::StoreError;
use uuid::Uuid;

#[cfg(doc)]
use crate::model::Steering;
use crate::model::{
    Announcement, ClaimOutcome, ClaimRequest, Control, ControlChange, ControlRead, Finish,
    LatestExecution, Lease, RetryDue, RetryRead, Scope, StoredSchedule,
};

/// The coordination side of a store: what the manager of every replica
/// calls, tick after tick. The store is the only coordinator between
/// replicas.
///
/// # Contract
///
/// Every implementation:
///
/// - must be safe to share between tasks and replicas (`Send + Sync`,
///   usable as `Arc<dyn LeaseStore>`);
/// - must make every method one atomic statement or transaction, decided on
///   the rows as they are at that moment: the rules are the pure functions
///   of [`crate::machine`] (`docs/contract.md` §4), and the conformance
///   suite (the `scheduler-conformance` crate) holds every store to them;
/// - must append the record of every attempt a transition ends to the
///   attempts log ([`machine::ended_attempt`](crate::machine::ended_attempt),
///   `docs/contract.md` §3 and §4) in that same statement or transaction,
///   once: a finish's, a sweep's and a takeover's; read back through
///   [`ExecutionAudit::attempts`](super::ExecutionAudit::attempts);
/// - must use **store time** for every instant it writes or compares, never
///   the caller's clock, and must return every instant in UTC at
///   microsecond precision;
/// - must refuse, with [`StoreError::InvalidInput`] and before anything is
///   written, a string that can never be stored
///   ([`ClaimRequest::refuse_unstorable`] decides, for every store alike),
///   and must never answer [`StoreError::Backend`] (transient) for an input
///   no retry can cure.
///
/// # Cancellation
///
/// The manager may drop any of these futures (shutdown, a timeout). A
/// dropped call must leave the store consistent: it either took effect
/// whole or not at all, and the caller must assume either. A claim that
/// committed after its future was dropped leaves leases nobody runs; they go
/// stale and are swept like those of a crashed replica, which the rules
/// already allow for.
///
/// # Wrappers
///
/// A store that wraps another (metrics, fault injection, counting) must
/// forward **every** method. This trait has no provided methods, so a
/// wrapper cannot silently fall back to a default path that production
/// does not use; wrappers in this workspace deny
/// `clippy::missing_trait_methods` to keep it so.
#[async_trait]
pub trait LeaseStore: Send + Sync + fmt::Debug {
    /// Store time: the clock every decision uses.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store cannot be reached.
    async fn now(&self) -> Result<OffsetDateTime, StoreError>;

    /// Claims every key of `request` for one job, and must return exactly
    /// one outcome per key, in the order of `request.keys`.
    ///
    /// First, for a stored schedule's claim
    /// (`request.steering.schedule_version` set), under the job's lock
    /// described next, the store must read the stored schedule named
    /// `request.job_name` and, when [`Steering::superseded`] says so (its
    /// version changed, or it was deleted), answer
    /// [`ClaimOutcome::Superseded`] for every key and change nothing
    /// (`docs/contract.md` §12).
    ///
    /// Then admission ([`machine::admit`](crate::machine::admit),
    /// `docs/contract.md` §11): under a lock per job that every claim and
    /// [`ExecutionAudit::add_control`](super::ExecutionAudit::add_control)
    /// of the job take, the store must read the job's pauses in force and
    /// the live RUNNING rows of the batch's scopes, each with its lease
    /// token (admission must not weigh a row matching one of
    /// `request.finishing` by id and token: the claimer's own run, whose
    /// terminal write is in flight), and decide each key:
    /// [`ClaimOutcome::Paused`] and [`ClaimOutcome::Busy`] change nothing;
    /// a skip inserts [`machine::skipped`](crate::machine::skipped) when the
    /// key has no row ([`ClaimOutcome::Skipped`], else
    /// [`ClaimOutcome::Conflicted`]); a replace claims the key and, when that
    /// grants a lease, ends the runs it names
    /// ([`machine::cancel_for_overlap`](crate::machine::cancel_for_overlap),
    /// logging [`Ending::Overlap`](crate::machine::Ending::Overlap)); the
    /// rest are claimed as follows.
    ///
    /// For each key the store must apply [`machine::claim`](crate::machine::claim)
    /// atomically: insert a fresh RUNNING row (attempt 1, id v7, token v4);
    /// or, for a retry-eligible FAILED row or a stealable stale RUNNING
    /// row, move it to RUNNING with attempt + 1 and a new token; or change
    /// nothing. A takeover ([`ClaimOutcome::Stolen`]) appends the attempt
    /// it takes over to the attempts log
    /// ([`Ending::Steal`](crate::machine::Ending::Steal)). Among any number of concurrent claimers of one key, exactly
    /// one must get a lease. Duplicate keys within one batch must not both
    /// win. The whole batch should cost one transaction (or at most two
    /// statements), however many keys it has.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] for unstorable names (nothing is
    /// claimed); [`StoreError::Backend`] when the store fails, in which
    /// case no key may be left claimed without the caller knowing it,
    /// except that a commit whose acknowledgement was lost may leave leases
    /// that simply go stale.
    async fn claim(&self, request: &ClaimRequest<'_>) -> Result<Vec<ClaimOutcome>, StoreError>;

    /// Extends a live lease: `heartbeat_at = now`, `stale_after = now +
    /// stale_timeout`, only if the row matches id **and** token **and** is
    /// RUNNING. Must return the new `stale_after`.
    ///
    /// # Errors
    /// [`StoreError::LeaseLost`] when the guard does not match (nothing
    /// changed); [`StoreError::Backend`] when the store fails.
    async fn heartbeat(
        &self,
        lease: &Lease,
        stale_timeout: Duration,
    ) -> Result<OffsetDateTime, StoreError>;

    /// Writes the terminal state of each lease of `items`, each guarded
    /// like [`heartbeat`](LeaseStore::heartbeat), at store time
    /// ([`machine::finish`](crate::machine::finish)): a success, or a
    /// failure with `next_retry_at = now + retry_after` while `attempt <
    /// max_attempts`, else null. Must return one result per item, in
    /// order; the guard is per item, so one lost lease does not fail the
    /// others, and an item whose lease an earlier item of the same batch
    /// ended is [`StoreError::LeaseLost`]. Each item written appends the
    /// attempt it ended to the attempts log
    /// ([`Ending::Finish`](crate::machine::Ending::Finish)), with its write;
    /// a lost one appends nothing. Stores should write the whole
    /// batch in one statement or transaction: the manager sends the
    /// terminal writes of executions that end close together through here,
    /// which is what lets a replica finish thousands of plans per second.
    /// [`LeaseStoreExt::finish`](super::LeaseStoreExt::finish) writes one.
    ///
    /// # Errors
    /// Per item: [`StoreError::LeaseLost`] when its guard does not match;
    /// [`StoreError::InvalidInput`] for a value the store can never hold
    /// (that item alone); when the whole batch fails, every item carries a
    /// [`StoreError::Backend`].
    async fn finish_many(&self, items: &[(&Lease, &Finish)]) -> Vec<Result<(), StoreError>>;

    /// Closes every RUNNING row of `job_name` whose `stale_after` is before
    /// store time: FAILED, `finished_at = now`, `error_code =
    /// stale_timeout`, and `next_retry_at` null when the job allows stale
    /// re-entry, else [`NEVER`](crate::machine::NEVER)
    /// ([`machine::sweep`](crate::machine::sweep)), appending each closed
    /// row's attempt to the attempts log
    /// ([`Ending::Sweep`](crate::machine::Ending::Sweep)). Rows of other
    /// jobs and live leases must be untouched. Must return how many rows it
    /// closed.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store fails.
    async fn sweep_stale(
        &self,
        job_name: &str,
        allow_stale_reentry: bool,
    ) -> Result<u64, StoreError>;

    /// The latest execution (highest plan time) of each scope, in the order
    /// of `scopes`, in one round trip however many scopes there are.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store fails.
    async fn latest_executions(
        &self,
        job_name: &str,
        scopes: &[Scope],
    ) -> Result<Vec<Option<LatestExecution>>, StoreError>;

    /// FAILED plans of `read.job_name` whose retry is due at store time:
    /// those with `plan_time >= read.since`, and those an operator retried
    /// ([`RetryDue::operator_retry`]) whatever their plan time. The answer
    /// must equal [`machine::retry_due`](crate::machine::retry_due) over
    /// the job's rows: ordered by plan time, then scope (bytewise).
    ///
    /// The limit is **per scope**, and per kind: at most
    /// `read.per_scope_limit` operator retries and as many others of each
    /// `(job, scope)`, the oldest plan times of each. A global limit would let one scope's many old
    /// failures crowd every other scope's retries out of the answer, and a
    /// retry the job's catch-up rules would run could then wait forever.
    /// This is what keeps retries of older plans from being stranded once a
    /// newer plan ran (`docs/contract.md` §5).
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store fails.
    async fn retry_due(&self, read: &RetryRead<'_>) -> Result<Vec<RetryDue>, StoreError>;

    /// Records a replica's announcement in the replica registry
    /// (`docs/contract.md` §7, "The replica registry"): one upsert of the
    /// row keyed by `announcement.replica.runner_id`, whatever the state of
    /// the row, applying [`Announcement::apply`] at store time. Idempotent:
    /// announcing again replaces the information and moves `last_seen_at`,
    /// and never adds a second row for the runner id. The manager calls it
    /// at its first tick, then at most once per refresh interval, and when
    /// `run` stops cleanly; never per job.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] for unstorable text
    /// ([`Announcement::refuse_unstorable`]; nothing is written);
    /// [`StoreError::Backend`] when the store fails.
    async fn announce(&self, announcement: &Announcement) -> Result<(), StoreError>;

    /// The controls `read` selects ([`ControlRead::selects`]): every
    /// active one of its jobs, and those that ended since its bound,
    /// ordered by `created_at`, then id. The manager reads its jobs'
    /// controls once per tick.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store fails, or a stored row cannot
    /// be read back.
    async fn controls(&self, read: &ControlRead) -> Result<Vec<Control>, StoreError>;

    /// Applies `change` to control `id` at store time
    /// ([`ControlChange::apply`]), atomically, and must return the updated
    /// control. A replica ends a trigger or a backfill it completed, or
    /// rejects one it cannot honour, and moves a backfill's cursor; an
    /// operator resumes a pause or cancels.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown id; [`StoreError::Conflict`]
    /// when the control is not active or an advance lost the race (nothing
    /// changes); [`StoreError::InvalidInput`] as [`ControlChange::apply`]
    /// says; [`StoreError::Backend`] when the store fails.
    async fn update_control(&self, id: Uuid, change: &ControlChange)
        -> Result<Control, StoreError>;

    /// Every stored schedule (`docs/contract.md` §12), ordered by name
    /// (bytewise). The manager reads them once per tick; an operator's
    /// tool reads one with it.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store fails, or a stored definition
    /// cannot be read back.
    async fn schedules(&self) -> Result<Vec<StoredSchedule>, StoreError>;

    /// A wake-up channel for controls and stored schedules: a receiver that is marked changed
    /// whenever a control or a stored schedule of this store may have been
    /// added, changed or deleted (spurious changes are allowed), or `None`
    /// when the store has none.
    /// [`Manager::run`](crate::Manager::run) asks once and ticks at once on
    /// a change, so a trigger or a resume takes effect within milliseconds
    /// instead of at the next tick. Correctness never depends on it: pauses
    /// are enforced by the claim, and every tick reads the controls anyway.
    /// Must not block; a store may start a background task the first time
    /// (PostgreSQL: `LISTEN` on its own connection), which must end when
    /// every receiver is dropped. Must be called inside a tokio runtime.
    fn control_changes(&self) -> Option<tokio::sync::watch::Receiver<()>>;
}
