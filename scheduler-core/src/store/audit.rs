//! [`ExecutionAudit`]: the operator's reads and repairs, which the CLI and
//! dashboards call and the manager never does, the attempts log included.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use super::LeaseStore;
use crate::error::StoreError;
#[cfg(doc)]
use crate::model::Scope;
use crate::model::{
    Attempt, Control, Execution, ExecutionFilter, NewControl, PlannedAt, Progress, Prune, Replica,
    ScheduleWrite, ScopeSummary, StoredSchedule,
};

/// The audit side of a store: reading executions, their attempts and
/// summaries, an operator's retry, retention. Every store implements it beside
/// [`LeaseStore`], whose contract (atomicity, store time, bad input,
/// cancellation, wrappers forwarding every method) applies here too.
///
/// It extends [`LeaseStore`] so that an operator's tool holds one
/// `Arc<dyn ExecutionAudit>` and still reads store time (for "since" and
/// "older than" bounds) and can hand the store to a manager.
#[async_trait]
pub trait ExecutionAudit: LeaseStore {
    /// One execution by id.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store fails.
    async fn get_execution(&self, id: Uuid) -> Result<Option<Execution>, StoreError>;

    /// The attempts log of execution `id`, oldest first (by attempt
    /// number): one [`Attempt`] per attempt that ended, written by the
    /// transition that ended it (`docs/contract.md` §4,
    /// [`machine::ended_attempt`](crate::machine::ended_attempt)). Empty for
    /// an unknown (or pruned) execution. The attempt a RUNNING row is on
    /// has not ended, so it is not in the log yet.
    ///
    /// [`attempts_of`](ExecutionAudit::attempts_of) with one id; stores
    /// implement that one.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store fails.
    async fn attempts(&self, id: Uuid) -> Result<Vec<Attempt>, StoreError> {
        Ok(self.attempts_of(&[id]).await?.pop().unwrap_or_default())
    }

    /// The attempts log of each of `ids`, in the order of `ids`, each
    /// oldest first (as [`attempts`](ExecutionAudit::attempts)), in one
    /// round trip however many ids there are, each found through an index:
    /// what a page of executions needs. Must return exactly one list per
    /// id (an empty one for an unknown id; a repeated id gets its list
    /// again).
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store fails.
    async fn attempts_of(&self, ids: &[Uuid]) -> Result<Vec<Vec<Attempt>>, StoreError>;

    /// Executions matching `filter`, newest plan time first (ties by id,
    /// descending).
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store fails.
    async fn list_executions(&self, filter: &ExecutionFilter)
        -> Result<Vec<Execution>, StoreError>;

    /// One [`ScopeSummary`] per `(job, scope)` that has rows (of `job_name`
    /// only, when given), ordered by job name then scope, computed at store
    /// time; each must equal [`ScopeSummary::of_rows`] over that scope's
    /// rows.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store fails.
    async fn scope_summaries(
        &self,
        job_name: Option<&str>,
    ) -> Result<Vec<ScopeSummary>, StoreError>;

    /// Every execution of `job_name` planned at or after `from`, as its
    /// scope and plan time, in one read (one consistent view of the
    /// rows): what the missed-plan report (`scheduler status --every`)
    /// compares with the plans a schedule expected, for every scope of the
    /// job at once. Must list each such row once, ordered by scope (kind,
    /// then id, byte-wise, as `Scope`'s order) and then by plan time,
    /// oldest first; `from` is rounded up to whole microseconds, as
    /// [`ExecutionFilter::plan_time_from`] is. A store must cost in
    /// proportion to the job's scopes and the rows returned, not to the
    /// history before `from` (`docs/contract.md` §10, "Operator reads").
    /// A job name no row can have (one with a NUL) finds nothing.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store fails.
    async fn plan_times_since(
        &self,
        job_name: &str,
        from: OffsetDateTime,
    ) -> Result<Vec<PlannedAt>, StoreError>;

    /// An operator's repair ([`machine::operator_retry`](crate::machine::operator_retry)):
    /// makes a FAILED execution due at once, granting one more attempt when
    /// none is left, even when the sweep closed it (`stale_timeout`) for a
    /// job that forbids stale re-entry; the next tick of a replica running
    /// the job runs it once, whatever the job's catch-up rules. Must return
    /// the updated row. It ends no attempt, so it appends nothing to the
    /// attempts log.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown id; [`StoreError::Conflict`]
    /// for a RUNNING or SUCCESS row (nothing changes);
    /// [`StoreError::Backend`] when the store fails.
    async fn retry_execution(&self, id: Uuid) -> Result<Execution, StoreError>;

    /// Deletes up to `prune.limit` terminal rows (SUCCESS or FAILED) whose
    /// `finished_at` is before `prune.finished_before`, oldest first, in
    /// one statement, with their attempts logs, and must return how many
    /// rows it deleted. It also deletes, uncounted, the replica registry's
    /// rows of replicas last seen before `prune.finished_before` (stopped
    /// or gone that long ago). With
    /// `prune.dry_run`, deletes nothing and returns how many rows match in
    /// all (ignoring the limit). A pruned FAILED plan inside a job's catch-up window would
    /// be planned again, so callers keep `finished_before` older than every
    /// window.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store fails.
    async fn prune_finished(&self, prune: &Prune) -> Result<u64, StoreError>;

    /// Every replica the registry holds, live, stopped and vanished
    /// ([`Replica::state`](crate::model::Replica::state) tells which), each
    /// as [`LeaseStore::announce`] last left it, ordered by runner id
    /// (bytewise).
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store fails, or when a stored row
    /// cannot be read back.
    async fn replicas(&self) -> Result<Vec<Replica>, StoreError>;

    /// Stores an operator's control (`docs/contract.md` §11) at store time:
    /// a new id (v7), state active, `cursor` = `from` for a backfill, the
    /// note bounded ([`NewControl::stored_note`]). It must take the job's
    /// claim lock (see [`LeaseStore::claim`]), so that once a pause is
    /// stored no claim that commits after it grants a lease it covers.
    /// Must return the stored control.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] for what
    /// [`NewControl::refuse_unstorable`] refuses; [`StoreError::Conflict`]
    /// for a pause of a target (same job, same scope or all) that a pause
    /// in force already covers exactly (nothing is stored);
    /// [`StoreError::Backend`] when the store fails.
    async fn add_control(&self, control: &NewControl) -> Result<Control, StoreError>;

    /// How far the runs of control `id` (a trigger or a backfill) got:
    /// its rows (`control_id` = `id`) by status, through an index; zeros
    /// for an unknown id. Must equal [`Progress::of_rows`] over those rows.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store fails.
    async fn control_progress(&self, id: Uuid) -> Result<Progress, StoreError>;

    /// Applies `write` to the stored schedule `name` (`docs/contract.md`
    /// §12) and must return it as now stored (`None` once deleted). In one
    /// transaction: take the job's claim lock (the lock every
    /// [`LeaseStore::claim`] of job `name` takes), read the current row,
    /// decide with [`job::apply_write`](crate::job::apply_write) at store
    /// time read **after** the lock is held (so that every claim that
    /// planned under the previous version committed before this version's
    /// `updated_at`), and write the outcome. Must then mark the
    /// [`LeaseStore::control_changes`] channel changed (PostgreSQL: a
    /// `NOTIFY` in the same transaction).
    ///
    /// # Errors
    /// As [`job::apply_write`](crate::job::apply_write):
    /// [`StoreError::InvalidInput`] naming the field,
    /// [`StoreError::Conflict`] naming the current version; nothing is
    /// written then. [`StoreError::Backend`] when the store fails.
    async fn write_schedule(
        &self,
        name: &str,
        write: &ScheduleWrite,
    ) -> Result<Option<StoredSchedule>, StoreError>;
}
