//! A tiny in-test [`LeaseStore`] for the manager's unit tests. They cannot
//! use scheduler-memory: it links its own copy of this crate, whose types
//! are not this one's. It does only what the units under test call
//! (heartbeats and terminal writes) and records how it was called.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use time::macros::datetime;
use time::OffsetDateTime;
use tokio::sync::{Notify, Semaphore};
use uuid::Uuid;

use crate::error::StoreError;
use crate::model::{
    Announcement, ClaimOutcome, ClaimRequest, Finish, LatestExecution, Lease, RetryDue, RetryRead,
    Scope,
};
use crate::store::LeaseStore;

/// The fake's store time, which never moves.
pub(super) const NOW: OffsetDateTime = datetime!(2026-03-05 12:00 UTC);

/// Answers heartbeats and terminal writes; every other method panics.
#[derive(Debug, Default)]
pub(super) struct FakeStore {
    /// The size of each `finish_many` batch, in call order.
    pub(super) batches: Mutex<Vec<usize>>,
    /// Notified as each `finish_many` call begins.
    pub(super) writing: Notify,
    /// When set, each `finish_many` call waits for a permit before it
    /// answers: how a test holds a batch "in flight".
    pub(super) gate: Option<Semaphore>,
    /// Tokens whose lease is gone: heartbeats and writes answer
    /// `LeaseLost`.
    pub(super) lost: Mutex<HashSet<Uuid>>,
    /// When true, heartbeats fail as a store outage would.
    pub(super) down: std::sync::atomic::AtomicBool,
    /// The execution id of each heartbeat, in call order.
    pub(super) heartbeats: Mutex<Vec<Uuid>>,
}

impl FakeStore {
    /// A store whose `finish_many` calls wait for [`FakeStore::gate`]
    /// permits.
    pub(super) fn gated() -> Self {
        FakeStore {
            gate: Some(Semaphore::new(0)),
            ..Default::default()
        }
    }

    fn lease_result(&self, lease: &Lease) -> Result<(), StoreError> {
        if self.lost.lock().unwrap().contains(&lease.token) {
            Err(StoreError::LeaseLost { id: lease.id })
        } else {
            Ok(())
        }
    }
}

/// A fresh lease of the global scope at [`NOW`].
pub(super) fn lease() -> Lease {
    Lease {
        id: Uuid::now_v7(),
        token: Uuid::new_v4(),
        job_name: "job".into(),
        scope: Scope::global(),
        plan_time: NOW,
        attempt: 1,
        max_attempts: 3,
        started_at: NOW,
        stale_after: NOW + Duration::from_secs(60),
    }
}

#[async_trait]
impl LeaseStore for FakeStore {
    async fn now(&self) -> Result<OffsetDateTime, StoreError> {
        Ok(NOW)
    }

    async fn claim(&self, _: &ClaimRequest<'_>) -> Result<Vec<ClaimOutcome>, StoreError> {
        unimplemented!("the units under test do not claim")
    }

    async fn heartbeat(
        &self,
        lease: &Lease,
        stale_timeout: Duration,
    ) -> Result<OffsetDateTime, StoreError> {
        self.heartbeats.lock().unwrap().push(lease.id);
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::backend_msg("the store is down"));
        }
        self.lease_result(lease).map(|()| NOW + stale_timeout)
    }

    async fn finish_many(&self, items: &[(&Lease, &Finish)]) -> Vec<Result<(), StoreError>> {
        self.batches.lock().unwrap().push(items.len());
        self.writing.notify_one();
        if let Some(gate) = &self.gate {
            gate.acquire()
                .await
                .expect("the gate is never closed")
                .forget();
        }
        items
            .iter()
            .map(|(lease, _)| self.lease_result(lease))
            .collect()
    }

    async fn sweep_stale(&self, _: &str, _: bool) -> Result<u64, StoreError> {
        unimplemented!("the units under test do not sweep")
    }

    async fn latest_executions(
        &self,
        _: &str,
        _: &[Scope],
    ) -> Result<Vec<Option<LatestExecution>>, StoreError> {
        unimplemented!("the units under test do not read history")
    }

    async fn retry_due(&self, _: &RetryRead<'_>) -> Result<Vec<RetryDue>, StoreError> {
        unimplemented!("the units under test do not read retries")
    }

    async fn announce(&self, _: &Announcement) -> Result<(), StoreError> {
        unimplemented!("the units under test do not announce")
    }

    async fn controls(
        &self,
        _: &crate::model::ControlRead,
    ) -> Result<Vec<crate::model::Control>, StoreError> {
        unimplemented!("the units under test do not read controls")
    }

    async fn update_control(
        &self,
        _: Uuid,
        _: &crate::model::ControlChange,
    ) -> Result<crate::model::Control, StoreError> {
        unimplemented!("the units under test do not change controls")
    }

    async fn schedules(&self) -> Result<Vec<crate::model::StoredSchedule>, StoreError> {
        Ok(Vec::new())
    }

    fn control_changes(&self) -> Option<tokio::sync::watch::Receiver<()>> {
        None
    }
}
