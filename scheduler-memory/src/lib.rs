//! An in-memory [`LeaseStore`] for tests and single-process use: the
//! scheduler's behaviour with nothing to install, and nothing kept when the
//! process ends.
//!
//! It applies the pure state machine of [`scheduler_core::machine`] under one
//! lock, so every call is atomic: a transition that ends an attempt appends
//! its record to the attempts log ([`machine::ended_attempt`]) under the
//! same lock, and a prune deletes an execution's records with it. Store
//! time comes from an injectable [`Clock`] (a `ManualClock`, or a
//! `TokioClock` that follows `tokio::time::pause`), so tests of your jobs
//! need not sleep; [`MemoryLeaseStore::set_failing`] makes every call
//! fail, for fault tests. For anything that must survive a restart, use
//! `scheduler-sqlite` (one host) or `scheduler-postgres` (a fleet): the
//! same jobs run unchanged on either.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use scheduler_core::{JobOutput, JobSpec, Manager, ManagerOptions, Scopes, Status};
//! use scheduler_memory::MemoryLeaseStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let store = Arc::new(MemoryLeaseStore::new());
//! let manager = Manager::new(store.clone(), ManagerOptions::default()).expect("valid manager options");
//! manager
//!     .register(
//!         JobSpec::new("rollup", Scopes::global(), |ctx| async move {
//!             println!("rolling up {} at {}", ctx.scope(), ctx.plan_time());
//!             Ok(JobOutput::rows(42))
//!         })
//!         .cadence(Duration::from_secs(300)),
//!     )
//!     .unwrap();
//! let report = manager.run_once().await;
//! assert_eq!(report.succeeded, 1);
//! assert_eq!(store.executions()[0].status, Status::Success);
//! # }
//! ```
#![warn(missing_docs)]

mod transactional;

pub use transactional::MemoryTx;

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use scheduler_core::job::apply_write;
use scheduler_core::machine::{self, Admission, Ending, FreshIds, LiveRun};
use scheduler_core::model::{
    Control, ControlAction, ControlChange, ControlRead, ControlState, NewControl, Origin, Progress,
};
use scheduler_core::time::{Clock, SystemClock};
use scheduler_core::{
    Announcement, Attempt, ClaimOutcome, ClaimRequest, Execution, ExecutionAudit, ExecutionFilter,
    Finish, LatestExecution, Lease, LeaseStore, PlannedAt, Prune, Replica, RetryDue, RetryRead,
    ScheduleWrite, Scope, ScopeSummary, Status, StoreError, StoredSchedule,
};
use time::OffsetDateTime;
use uuid::Uuid;

/// A map hashed with a fast seeded hasher: every claim and terminal write
/// looks rows up by key and by id, and SipHash would cost more than the
/// lookups. The per-process random seed keeps crafted names from colliding
/// on purpose.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A scope's key in the store: `job NUL kind NUL id`. No stored name holds
/// a NUL (one is refused as unstorable), so these strings sort as the
/// `(job_name, scope_kind, scope_id)` tuples they stand for, and one of
/// them hashes and compares as one string instead of three. Shared: each
/// scope's key is allocated once, for all of its rows.
type ScopeKey = Arc<str>;

/// A plan time as the keys and indexes hold it: nanoseconds since the
/// epoch, which sort as the instants do but compare as one integer.
type Nanos = i128;

/// `(scope name, plan time)`: the unique key `(job_name, scope_kind,
/// scope_id, plan_time)`, ordered as it.
type Key = (ScopeKey, Nanos);

fn nanos(t: OffsetDateTime) -> Nanos {
    t.unix_timestamp_nanos()
}

/// Writes the [`ScopeKey`] of `scope` of `job` into `buf`, which is reused
/// from key to key of a batch instead of allocating a name per key.
fn write_name<'b>(buf: &'b mut String, job: &str, scope: &Scope) -> &'b str {
    buf.clear();
    for (i, part) in [job, &scope.kind, &scope.id].into_iter().enumerate() {
        if i > 0 {
            buf.push('\0');
        }
        buf.push_str(part);
    }
    buf
}

/// A status index (the SQL stores' partial indexes on RUNNING and FAILED
/// rows): per job, its rows by plan time, then id (as a number, in the
/// id's order). Integers, not names, so that keeping it costs no string
/// comparisons; a row is reached through `key_of`.
type Index = FastMap<String, BTreeSet<(Nanos, u128)>>;

/// The rows, with the indexes the hot paths need: a claim or a terminal
/// write finds its row by hash, and sweeps and retry reads touch only a
/// job's RUNNING or FAILED rows from a plan time on, never its whole
/// history.
#[derive(Debug, Default)]
struct Rows {
    by_key: FastMap<Key, Execution>,
    /// Per scope, the plan times of its rows, oldest first: one scope's
    /// history in order (its newest rows, for `latest_executions`). The
    /// map's key is the scope's one shared [`ScopeKey`].
    plans: FastMap<ScopeKey, Vec<Nanos>>,
    key_of: FastMap<Uuid, Key>,
    running: Index,
    failed: Index,
    /// FAILED rows an operator retried, as the SQL stores' partial index.
    operator_retried: Index,
    /// The attempts log, by execution id and attempt number (the SQL
    /// stores' primary key), so one execution's records are contiguous and
    /// oldest first. The id as a number (in the id's order): compared as
    /// an integer, not as bytes by `memcmp`.
    attempts: BTreeMap<(u128, i32), Attempt>,
    /// The controls, by id (v7, so in creation order). Under the rows' lock:
    /// storing a pause and claiming exclude each other, as the SQL stores'
    /// per-job lock makes them.
    controls: BTreeMap<Uuid, Control>,
    /// The stored schedules, by name. Under the rows' lock too: a write
    /// and a claim of the same job exclude each other.
    schedules: BTreeMap<String, StoredSchedule>,
    /// The effects table of transactional jobs ([`MemoryTx`]).
    effects: BTreeMap<String, serde_json::Value>,
}

fn operator_retried(row: &Execution) -> bool {
    row.status == Status::Failed && row.error_code.as_deref() == Some(machine::OPERATOR_RETRY_CODE)
}

/// Adds (`add`) or removes `row`'s entry in `index`.
fn index_entry(index: &mut Index, row: &Execution, add: bool) {
    let entry = (nanos(row.plan_time), row.id.as_u128());
    if add {
        match index.get_mut(row.job_name.as_str()) {
            Some(rows) => rows.insert(entry),
            None => index
                .entry(row.job_name.to_string())
                .or_default()
                .insert(entry),
        };
    } else if let Some(rows) = index.get_mut(row.job_name.as_str()) {
        rows.remove(&entry);
    }
}

impl Rows {
    /// The key of the row of `name` (see [`write_name`]) at `plan_time`,
    /// sharing the scope's stored name; `None` when the scope has no row.
    fn key(&self, name: &str, plan_time: Nanos) -> Option<Key> {
        let (name, _) = self.plans.get_key_value(name)?;
        Some((name.clone(), plan_time))
    }

    /// Stores `row` under `key`, keeping every index in step.
    fn put(&mut self, key: Key, row: Execution) {
        // One lookup of the key, whether the row replaces one or is new.
        match self.by_key.entry(key) {
            Entry::Occupied(mut stored) => {
                let old = stored.get();
                if let Some(index) = Self::index_of(&mut self.running, &mut self.failed, old.status)
                {
                    index_entry(index, old, false);
                }
                if operator_retried(old) {
                    index_entry(&mut self.operator_retried, old, false);
                }
                Self::index(
                    &mut self.running,
                    &mut self.failed,
                    &mut self.operator_retried,
                    &row,
                );
                stored.insert(row);
            }
            Entry::Vacant(new) => {
                let key = new.key().clone();
                self.key_of.insert(row.id, key.clone());
                Self::index(
                    &mut self.running,
                    &mut self.failed,
                    &mut self.operator_retried,
                    &row,
                );
                new.insert(row);
                let times = self.plans.entry(key.0).or_default();
                // Plans mostly arrive newest last: appended, not searched for.
                match times.last() {
                    Some(&last) if last > key.1 => {
                        let at = times.partition_point(|&t| t < key.1);
                        times.insert(at, key.1);
                    }
                    _ => times.push(key.1),
                }
            }
        }
    }

    /// Enters `row` in the status indexes it belongs in (the fields are
    /// passed apart, as in [`Rows::index_of`]).
    fn index(running: &mut Index, failed: &mut Index, retried: &mut Index, row: &Execution) {
        if operator_retried(row) {
            index_entry(retried, row, true);
        }
        if let Some(index) = Self::index_of(running, failed, row.status) {
            index_entry(index, row, true);
        }
    }

    /// Deletes the row under `key` and its attempts log, keeping every
    /// index in step.
    fn remove(&mut self, key: &Key) {
        let Some(row) = self.by_key.remove(key) else {
            return;
        };
        self.key_of.remove(&row.id);
        if let Some(times) = self.plans.get_mut(&key.0) {
            if let Ok(at) = times.binary_search(&key.1) {
                times.remove(at);
            }
            if times.is_empty() {
                self.plans.remove(&key.0);
            }
        }
        if let Some(index) = Self::index_of(&mut self.running, &mut self.failed, row.status) {
            index_entry(index, &row, false);
        }
        index_entry(&mut self.operator_retried, &row, false);
        let logged: Vec<i32> = self.attempts_of(row.id).map(|a| a.attempt).collect();
        for attempt in logged {
            self.attempts.remove(&(row.id.as_u128(), attempt));
        }
    }

    /// Appends `ended` ([`machine::ended_attempt`]) to the attempts log. A
    /// record already there for that attempt number stays, as the SQL
    /// stores' `ON CONFLICT DO NOTHING` keeps it: the log never blocks a
    /// transition.
    fn log(&mut self, ended: Attempt) {
        self.attempts
            .entry((ended.execution_id.as_u128(), ended.attempt))
            .or_insert(ended);
    }

    /// The attempts log of execution `id`, oldest first.
    fn attempts_of(&self, id: Uuid) -> impl Iterator<Item = &Attempt> + '_ {
        self.attempts
            .range((id.as_u128(), i32::MIN)..=(id.as_u128(), i32::MAX))
            .map(|(_, attempt)| attempt)
    }

    /// Ends live run `id` for a newer one of its scope, if it still runs.
    fn cancel_for_overlap(&mut self, id: Uuid, now: OffsetDateTime) {
        let Some(key) = self.key_of.get(&id).cloned() else {
            return;
        };
        let row = &self.by_key[&key];
        if let Some(canceled) = machine::cancel_for_overlap(row, now) {
            let ended = machine::ended_attempt(row, Ending::Overlap, now);
            self.log(ended);
            self.put(key, canceled);
        }
    }

    /// The index of rows in `status`, if there is one (the fields are
    /// passed apart so that the caller may still read `by_key`).
    fn index_of<'i>(
        running: &'i mut Index,
        failed: &'i mut Index,
        status: Status,
    ) -> Option<&'i mut Index> {
        match status {
            Status::Running => Some(running),
            Status::Failed => Some(failed),
            Status::Success => None,
        }
    }

    /// The rows of `job` in `index` with a plan time at or after `since`,
    /// oldest plan first.
    fn of_job<'a>(
        &'a self,
        index: &'a Index,
        job: &str,
        since: OffsetDateTime,
    ) -> impl Iterator<Item = (Key, &'a Execution)> + 'a {
        index
            .get(job)
            .into_iter()
            .flat_map(move |rows| rows.range((nanos(since), 0)..))
            .map(|&(_, id)| {
                let key = &self.key_of[&Uuid::from_u128(id)];
                (key.clone(), &self.by_key[key])
            })
    }

    /// Every row, in key order (job, scope, plan time).
    fn in_key_order(&self) -> impl Iterator<Item = &Execution> + '_ {
        let mut keys: Vec<&Key> = self.by_key.keys().collect();
        keys.sort_unstable();
        keys.into_iter().map(|k| &self.by_key[k])
    }
}

/// The earliest instant: the start of a job's whole index range.
const MIN_INSTANT: OffsetDateTime = time::PrimitiveDateTime::MIN.assume_utc();

/// The in-memory store. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct MemoryLeaseStore {
    rows: Mutex<Rows>,
    /// The replica registry, by runner id (so in bytewise order).
    replicas: Mutex<BTreeMap<String, Replica>>,
    clock: Arc<dyn Clock>,
    failing: AtomicBool,
    /// Marked changed by every control added or changed: the managers on
    /// this store wake at once ([`LeaseStore::control_changes`]).
    changes: tokio::sync::watch::Sender<()>,
}

impl Default for MemoryLeaseStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryLeaseStore {
    /// An empty store on the host clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// An empty store whose store time is `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        MemoryLeaseStore {
            rows: Mutex::new(Rows::default()),
            replicas: Mutex::new(BTreeMap::new()),
            clock,
            failing: AtomicBool::new(false),
            changes: tokio::sync::watch::Sender::new(()),
        }
    }

    /// While `failing` is true every call returns [`StoreError::Backend`]
    /// and changes nothing, as an unreachable database would.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// Every row, in key order (job, scope, plan time): for tests and demos.
    pub fn executions(&self) -> Vec<Execution> {
        self.lock().in_key_order().cloned().collect()
    }

    /// Applies `edit` to the row with `id`, as an operator's manual repair
    /// would. Returns false when there is no such row.
    pub fn update_execution(&self, id: Uuid, edit: impl FnOnce(&mut Execution)) -> bool {
        let mut rows = self.lock();
        let Some(key) = rows.key_of.get(&id).cloned() else {
            return false;
        };
        let mut row = rows.by_key[&key].clone();
        edit(&mut row);
        rows.put(key, row);
        true
    }

    fn lock(&self) -> MutexGuard<'_, Rows> {
        // A panic while holding the lock cannot leave a half-applied
        // transition (rows are replaced whole), so poisoning is ignored.
        self.rows.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check(&self) -> Result<OffsetDateTime, StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::backend_msg("memory store: injected failure"));
        }
        Ok(self.clock.now())
    }

    /// Applies `apply` to the row of `lease` in `rows` (the caller holds
    /// the lock), and stores the row it returns, with the attempt it ended,
    /// if any, in the log. Returns the stored row's `stale_after`.
    fn guarded(
        &self,
        rows: &mut Rows,
        lease: &Lease,
        apply: impl FnOnce(
            &Execution,
            OffsetDateTime,
        ) -> Result<(Execution, Option<Attempt>), StoreError>,
    ) -> Result<Option<OffsetDateTime>, StoreError> {
        let now = self.check()?;
        let key = rows
            .key_of
            .get(&lease.id)
            .cloned()
            .ok_or(StoreError::LeaseLost { id: lease.id })?;
        let (updated, ended) = apply(&rows.by_key[&key], now)?;
        if let Some(ended) = ended {
            rows.log(ended);
        }
        let stale_after = updated.stale_after;
        rows.put(key, updated);
        Ok(stale_after)
    }
}

#[async_trait]
impl LeaseStore for MemoryLeaseStore {
    async fn now(&self) -> Result<OffsetDateTime, StoreError> {
        self.check()
    }

    async fn claim(&self, request: &ClaimRequest<'_>) -> Result<Vec<ClaimOutcome>, StoreError> {
        let now = self.check()?;
        request.refuse_unstorable()?;
        let mut rows = self.lock();
        let current = rows.schedules.get(request.job_name).map(|s| s.version);
        if request.steering.superseded(current) {
            return Ok(vec![ClaimOutcome::Superseded; request.keys.len()]);
        }
        let admissions = {
            let pauses: Vec<Control> = rows
                .controls
                .values()
                .filter(|c| c.job_name == request.job_name && c.pauses(now))
                .cloned()
                .collect();
            let live: Vec<LiveRun> = rows
                .of_job(&rows.running, request.job_name, MIN_INSTANT)
                .filter_map(|(_, row)| LiveRun::of(row, now))
                .collect();
            machine::admit(request, &pauses, &live, now)
        };
        let mut name = String::new();
        let outcomes = request
            .keys
            .iter()
            .zip(admissions)
            .map(|(key, admission)| {
                match admission {
                    Admission::Paused => return ClaimOutcome::Paused,
                    Admission::Busy => return ClaimOutcome::Busy,
                    _ => {}
                }
                let name = write_name(&mut name, request.job_name, &key.scope);
                let plan_time = nanos(key.plan_time);
                let stored = rows.key(name, plan_time);
                let old = stored.as_ref().and_then(|k| rows.by_key.get(k));
                // A scope's first row allocates its name, once.
                let k = || {
                    stored
                        .clone()
                        .unwrap_or_else(|| (Arc::from(name), plan_time))
                };
                match &admission {
                    Admission::Skip if old.is_some() => return ClaimOutcome::Conflicted,
                    Admission::Skip => {
                        rows.put(k(), machine::skipped(request, key, now, FreshIds::mint()));
                        return ClaimOutcome::Skipped;
                    }
                    _ => {}
                }
                let decision = machine::claim(old, request, key, now, FreshIds::mint());
                let stolen = match (&decision, old) {
                    (ClaimOutcome::Stolen(_), Some(old)) => {
                        Some(machine::ended_attempt(old, Ending::Steal, now))
                    }
                    _ => None,
                };
                if let Some(ended) = stolen {
                    rows.log(ended);
                }
                // The row is moved into the store, not copied: only its
                // lease goes back.
                let outcome = decision.map(|row| {
                    let lease = row.lease().expect("a claimed row is RUNNING");
                    rows.put(k(), row);
                    lease
                });
                if let (Some(_), Admission::Replace(ids)) = (outcome.get(), &admission) {
                    for id in ids {
                        rows.cancel_for_overlap(*id, now);
                    }
                }
                outcome
            })
            .collect();
        Ok(outcomes)
    }

    async fn heartbeat(
        &self,
        lease: &Lease,
        stale_timeout: Duration,
    ) -> Result<OffsetDateTime, StoreError> {
        let stale_after = self.guarded(&mut self.lock(), lease, |row, now| {
            Ok((
                machine::heartbeat(row, lease.token, now, stale_timeout)?,
                None,
            ))
        })?;
        Ok(stale_after.expect("a heartbeat sets stale_after"))
    }

    /// One item after the other, each its own atomic transition: the
    /// reference the SQL stores' batches are held to. The lock is taken
    /// once for the batch, which only makes the items' transitions
    /// atomic together as well.
    async fn finish_many(&self, items: &[(&Lease, &Finish)]) -> Vec<Result<(), StoreError>> {
        let mut rows = self.lock();
        items
            .iter()
            .map(|(lease, finish)| {
                self.guarded(&mut rows, lease, |row, now| {
                    let done = machine::finish(row, lease.token, now, finish)?;
                    let ended = machine::ended_attempt(row, Ending::Finish(finish), now);
                    Ok((done, Some(ended)))
                })
                .map(drop)
            })
            .collect()
    }

    async fn sweep_stale(
        &self,
        job_name: &str,
        allow_stale_reentry: bool,
    ) -> Result<u64, StoreError> {
        let now = self.check()?;
        let mut rows = self.lock();
        let swept: Vec<(Key, Execution, Attempt)> = rows
            .of_job(&rows.running, job_name, MIN_INSTANT)
            .filter_map(|(key, row)| {
                let swept = machine::sweep(row, now, allow_stale_reentry)?;
                Some((key, swept, machine::ended_attempt(row, Ending::Sweep, now)))
            })
            .collect();
        let closed = swept.len() as u64;
        for (key, row, ended) in swept {
            rows.log(ended);
            rows.put(key, row);
        }
        Ok(closed)
    }

    async fn latest_executions(
        &self,
        job_name: &str,
        scopes: &[Scope],
    ) -> Result<Vec<Option<LatestExecution>>, StoreError> {
        self.check()?;
        let rows = self.lock();
        let mut name = String::new();
        Ok(scopes
            .iter()
            .map(|scope| {
                let (name, times) = rows
                    .plans
                    .get_key_value(write_name(&mut name, job_name, scope))?;
                // A trigger's run is off the schedule's grid: planning never
                // sees it, so it cannot hide a plan (docs/contract.md §11).
                times
                    .iter()
                    .rev()
                    .map(|&t| &rows.by_key[&(name.clone(), t)])
                    .find(|row| row.origin != Origin::Trigger)
                    .map(Execution::latest_view)
            })
            .collect())
    }

    async fn retry_due(&self, read: &RetryRead<'_>) -> Result<Vec<RetryDue>, StoreError> {
        let now = self.check()?;
        let rows = self.lock();
        // The job's own retries from `since` on, and the forced ones (an
        // operator's, a trigger's, a backfill's) whatever their plan time
        // (the rule drops those of the first kind before `since`, and keeps
        // each row once).
        let since_on = rows.of_job(&rows.failed, read.job_name, read.since);
        let operator = rows
            .of_job(&rows.failed, read.job_name, MIN_INSTANT)
            .take_while(|(_, r)| r.plan_time < read.since)
            .filter(|(_, r)| operator_retried(r) || r.origin.is_ad_hoc());
        let failed = since_on.chain(operator).map(|(_, r)| r);
        Ok(machine::retry_due(failed, read, now))
    }

    async fn announce(&self, announcement: &Announcement) -> Result<(), StoreError> {
        let now = self.check()?;
        announcement.refuse_unstorable()?;
        let mut replicas = self.replicas.lock().unwrap_or_else(|e| e.into_inner());
        let runner_id = &announcement.replica.runner_id;
        let row = announcement.apply(replicas.get(runner_id), now);
        replicas.insert(runner_id.clone(), row);
        Ok(())
    }

    async fn controls(&self, read: &ControlRead) -> Result<Vec<Control>, StoreError> {
        self.check()?;
        let rows = self.lock();
        let mut out: Vec<Control> = rows
            .controls
            .values()
            .filter(|c| read.selects(c))
            .cloned()
            .collect();
        out.sort_by_key(|c| (c.created_at, c.id));
        Ok(out)
    }

    async fn update_control(
        &self,
        id: Uuid,
        change: &ControlChange,
    ) -> Result<Control, StoreError> {
        let now = self.check()?;
        let mut rows = self.lock();
        let current = rows.controls.get(&id).ok_or(StoreError::NotFound { id })?;
        let updated = change.apply(current, now)?;
        rows.controls.insert(id, updated.clone());
        self.changes.send_replace(());
        Ok(updated)
    }

    async fn schedules(&self) -> Result<Vec<StoredSchedule>, StoreError> {
        self.check()?;
        Ok(self.lock().schedules.values().cloned().collect())
    }

    fn control_changes(&self) -> Option<tokio::sync::watch::Receiver<()>> {
        Some(self.changes.subscribe())
    }
}

#[async_trait]
impl ExecutionAudit for MemoryLeaseStore {
    async fn get_execution(&self, id: Uuid) -> Result<Option<Execution>, StoreError> {
        self.check()?;
        let rows = self.lock();
        Ok(rows.key_of.get(&id).map(|k| rows.by_key[k].clone()))
    }

    async fn attempts_of(&self, ids: &[Uuid]) -> Result<Vec<Vec<Attempt>>, StoreError> {
        self.check()?;
        let rows = self.lock();
        Ok(ids
            .iter()
            .map(|&id| rows.attempts_of(id).cloned().collect())
            .collect())
    }

    async fn list_executions(
        &self,
        filter: &ExecutionFilter,
    ) -> Result<Vec<Execution>, StoreError> {
        self.check()?;
        let rows = self.lock();
        // Sorted and cut as references (the rows come in hash order, and
        // a row is a few hundred bytes to move), cloned once in the end.
        let mut out: Vec<&Execution> = rows
            .by_key
            .values()
            .filter(|r| filter.job_name.as_ref().is_none_or(|j| &r.job_name == j))
            .filter(|r| filter.scope.as_ref().is_none_or(|s| &r.scope == s))
            .filter(|r| filter.status.is_none_or(|s| r.status == s))
            .filter(|r| filter.plan_time_from.is_none_or(|t| r.plan_time >= t))
            .collect();
        out.sort_unstable_by_key(|r| std::cmp::Reverse((nanos(r.plan_time), r.id.as_u128())));
        if let Some(limit) = filter.limit {
            out.truncate(limit);
        }
        Ok(out.into_iter().cloned().collect())
    }

    async fn plan_times_since(
        &self,
        job_name: &str,
        from: OffsetDateTime,
    ) -> Result<Vec<PlannedAt>, StoreError> {
        self.check()?;
        let rows = self.lock();
        let mut out: Vec<PlannedAt> = rows
            .by_key
            .values()
            .filter(|r| r.job_name == job_name && r.plan_time >= from)
            .map(|r| PlannedAt {
                scope: r.scope.clone(),
                plan_time: r.plan_time,
            })
            .collect();
        out.sort();
        Ok(out)
    }

    async fn scope_summaries(
        &self,
        job_name: Option<&str>,
    ) -> Result<Vec<ScopeSummary>, StoreError> {
        let now = self.check()?;
        let rows = self.lock();
        let mut by_scope: BTreeMap<(&str, &Scope), Vec<Execution>> = BTreeMap::new();
        for row in rows.in_key_order() {
            if job_name.is_none_or(|j| j == row.job_name) {
                by_scope
                    .entry((row.job_name.as_str(), &row.scope))
                    .or_default()
                    .push(row.clone());
            }
        }
        Ok(by_scope
            .values()
            .filter_map(|rows| ScopeSummary::of_rows(rows, now))
            .collect())
    }

    async fn retry_execution(&self, id: Uuid) -> Result<Execution, StoreError> {
        let now = self.check()?;
        let mut rows = self.lock();
        let key = rows
            .key_of
            .get(&id)
            .cloned()
            .ok_or(StoreError::NotFound { id })?;
        let repaired = machine::operator_retry(&rows.by_key[&key], now)
            .map_err(|why| StoreError::Conflict(why.to_owned()))?;
        rows.put(key, repaired.clone());
        Ok(repaired)
    }

    async fn prune_finished(&self, prune: &Prune) -> Result<u64, StoreError> {
        self.check()?;
        let Prune {
            finished_before,
            limit,
            dry_run,
        } = *prune;
        let mut rows = self.lock();
        let mut old: Vec<(OffsetDateTime, Key)> = rows
            .by_key
            .iter()
            .filter(|(_, r)| r.status != Status::Running)
            .filter_map(|(k, r)| {
                r.finished_at
                    .filter(|f| *f < finished_before)
                    .map(|f| (f, k.clone()))
            })
            .collect();
        if dry_run {
            return Ok(old.len() as u64);
        }
        old.sort();
        old.truncate(limit);
        for (_, key) in &old {
            rows.remove(key);
        }
        self.replicas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, r| r.last_seen_at >= finished_before);
        Ok(old.len() as u64)
    }

    async fn replicas(&self) -> Result<Vec<Replica>, StoreError> {
        self.check()?;
        let replicas = self.replicas.lock().unwrap_or_else(|e| e.into_inner());
        Ok(replicas.values().cloned().collect())
    }

    async fn add_control(&self, control: &NewControl) -> Result<Control, StoreError> {
        let now = self.check()?;
        control.refuse_unstorable()?;
        let mut rows = self.lock();
        if let ControlAction::Pause { .. } = control.action {
            if let Some(held) = rows.controls.values().find(|c| {
                c.job_name == control.job_name && c.scope == control.scope && c.pauses(now)
            }) {
                return Err(StoreError::Conflict(format!(
                    "{} is already paused (control {})",
                    held.target(),
                    held.id
                )));
            }
        }
        let stored = Control {
            id: Uuid::now_v7(),
            job_name: control.job_name.clone(),
            scope: control.scope.clone(),
            note: control.stored_note(),
            action: control.action.clone(),
            state: ControlState::Active,
            reason: None,
            created_at: now,
            ended_at: None,
            cursor: match control.action {
                ControlAction::Backfill { from, .. } => Some(from),
                _ => None,
            },
            updated_at: now,
        };
        rows.controls.insert(stored.id, stored.clone());
        self.changes.send_replace(());
        Ok(stored)
    }

    async fn control_progress(&self, id: Uuid) -> Result<Progress, StoreError> {
        self.check()?;
        let rows = self.lock();
        Ok(Progress::of_rows(
            rows.by_key.values().filter(|r| r.control_id == Some(id)),
        ))
    }

    async fn write_schedule(
        &self,
        name: &str,
        write: &ScheduleWrite,
    ) -> Result<Option<StoredSchedule>, StoreError> {
        let now = self.check()?;
        let mut rows = self.lock();
        let written = apply_write(name, write, rows.schedules.get(name), now)?;
        match &written {
            Some(schedule) => rows.schedules.insert(name.to_owned(), schedule.clone()),
            None => rows.schedules.remove(name),
        };
        self.changes.send_replace(());
        Ok(written)
    }
}
