//! [`CountingStore`]: a wrapper that counts the calls made to a store, per
//! method: what a tick costs, for tests and benchmarks; and that may stall
//! the store's terminal writes, as a commit behind a slow fsync or a lock
//! does: how the manager tests and the dispatch benchmark show that a slow
//! terminal write does not delay the next plan of its scope
//! (`docs/contract.md` §7); and that may stall its sweeps, as the manager
//! tests show that a slow sweep does not delay a claim. Test support, part of the store-author
//! interface (not semver-stable).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{ExecutionAudit, LeaseStore};
use crate::error::StoreError;
use crate::model::{
    Announcement, Attempt, ClaimOutcome, ClaimRequest, Control, ControlChange, ControlRead,
    Execution, ExecutionFilter, Finish, LatestExecution, Lease, NewControl, PlannedAt, Progress,
    Prune, Replica, RetryDue, RetryRead, ScheduleWrite, Scope, ScopeSummary, StoredSchedule,
};

/// A store that counts the calls made to another, per method: what a tick
/// costs, for tests and benchmarks. Every call is forwarded unchanged, the
/// terminal writes after a [finish delay](Self::with_finish_delay), the
/// sweeps after a [sweep delay](Self::with_sweep_delay), the prune batches
/// after a [prune delay](Self::with_prune_delay).
#[derive(Debug)]
pub struct CountingStore {
    inner: Arc<dyn ExecutionAudit>,
    calls: Mutex<BTreeMap<&'static str, u64>>,
    finish_delay: Duration,
    sweep_delay: Duration,
    prune_delay: Duration,
}

impl CountingStore {
    /// Counts the calls made to `inner`.
    pub fn new(inner: Arc<dyn ExecutionAudit>) -> Self {
        CountingStore {
            inner,
            calls: Default::default(),
            finish_delay: Duration::ZERO,
            sweep_delay: Duration::ZERO,
            prune_delay: Duration::ZERO,
        }
    }

    /// Each terminal write ([`LeaseStore::finish_many`]) waits `delay`
    /// before it reaches the inner store, so its rows stay RUNNING
    /// meanwhile. The wait is on tokio's clock: a test on paused time
    /// stalls a write for as long as it likes without waiting.
    pub fn with_finish_delay(self, delay: Duration) -> Self {
        CountingStore {
            finish_delay: delay,
            ..self
        }
    }

    /// Each sweep ([`LeaseStore::sweep_stale`]) waits `delay` before it
    /// reaches the inner store, on tokio's clock (see
    /// [`with_finish_delay`](Self::with_finish_delay)).
    pub fn with_sweep_delay(self, delay: Duration) -> Self {
        CountingStore {
            sweep_delay: delay,
            ..self
        }
    }

    /// Each prune call ([`ExecutionAudit::prune_finished`]) waits `delay`
    /// before it reaches the inner store: a batch that costs the database
    /// time, on tokio's clock (see [`with_finish_delay`](Self::with_finish_delay)).
    pub fn with_prune_delay(self, delay: Duration) -> Self {
        CountingStore {
            prune_delay: delay,
            ..self
        }
    }

    /// The counts since the last `take`, by method name, and resets them.
    pub fn take(&self) -> BTreeMap<&'static str, u64> {
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
#[deny(clippy::missing_trait_methods)]
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

    async fn finish_many(&self, items: &[(&Lease, &Finish)]) -> Vec<Result<(), StoreError>> {
        self.count("finish_many");
        tokio::time::sleep(self.finish_delay).await;
        self.inner.finish_many(items).await
    }

    async fn sweep_stale(
        &self,
        job_name: &str,
        allow_stale_reentry: bool,
    ) -> Result<u64, StoreError> {
        self.count("sweep_stale");
        tokio::time::sleep(self.sweep_delay).await;
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

    async fn retry_due(&self, read: &RetryRead<'_>) -> Result<Vec<RetryDue>, StoreError> {
        self.count("retry_due");
        self.inner.retry_due(read).await
    }

    async fn announce(&self, announcement: &Announcement) -> Result<(), StoreError> {
        self.count("announce");
        self.inner.announce(announcement).await
    }

    async fn controls(&self, read: &ControlRead) -> Result<Vec<Control>, StoreError> {
        self.count("controls");
        self.inner.controls(read).await
    }

    async fn update_control(
        &self,
        id: Uuid,
        change: &ControlChange,
    ) -> Result<Control, StoreError> {
        self.count("update_control");
        self.inner.update_control(id, change).await
    }

    async fn schedules(&self) -> Result<Vec<StoredSchedule>, StoreError> {
        self.count("schedules");
        self.inner.schedules().await
    }

    fn control_changes(&self) -> Option<tokio::sync::watch::Receiver<()>> {
        self.count("control_changes");
        self.inner.control_changes()
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl ExecutionAudit for CountingStore {
    async fn get_execution(&self, id: Uuid) -> Result<Option<Execution>, StoreError> {
        self.count("get_execution");
        self.inner.get_execution(id).await
    }

    async fn attempts(&self, id: Uuid) -> Result<Vec<Attempt>, StoreError> {
        self.count("attempts");
        self.inner.attempts(id).await
    }

    async fn attempts_of(&self, ids: &[Uuid]) -> Result<Vec<Vec<Attempt>>, StoreError> {
        self.count("attempts_of");
        self.inner.attempts_of(ids).await
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

    async fn plan_times_since(
        &self,
        job_name: &str,
        from: OffsetDateTime,
    ) -> Result<Vec<PlannedAt>, StoreError> {
        self.count("plan_times_since");
        self.inner.plan_times_since(job_name, from).await
    }

    async fn retry_execution(&self, id: Uuid) -> Result<Execution, StoreError> {
        self.count("retry_execution");
        self.inner.retry_execution(id).await
    }

    async fn prune_finished(&self, prune: &Prune) -> Result<u64, StoreError> {
        self.count("prune_finished");
        tokio::time::sleep(self.prune_delay).await;
        self.inner.prune_finished(prune).await
    }

    async fn replicas(&self) -> Result<Vec<Replica>, StoreError> {
        self.count("replicas");
        self.inner.replicas().await
    }

    async fn add_control(&self, control: &NewControl) -> Result<Control, StoreError> {
        self.count("add_control");
        self.inner.add_control(control).await
    }

    async fn control_progress(&self, id: Uuid) -> Result<Progress, StoreError> {
        self.count("control_progress");
        self.inner.control_progress(id).await
    }

    async fn write_schedule(
        &self,
        name: &str,
        write: &ScheduleWrite,
    ) -> Result<Option<StoredSchedule>, StoreError> {
        self.count("write_schedule");
        self.inner.write_schedule(name, write).await
    }
}
