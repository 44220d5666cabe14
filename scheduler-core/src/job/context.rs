//! What a handler gets: [`RunContext`].

use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};
use uuid::Uuid;

use crate::error::StoreError;
use crate::model::{Lease, Scope};

/// Extends a running lease on the handler's demand. The manager's lease
/// keeper implements it; this layer only needs to call it, so jobs do not
/// depend on the manager.
pub(crate) trait Heartbeat: Send + Sync {
    /// One heartbeat of the lease, now.
    fn beat(&self) -> BoxFuture<'_, Result<(), StoreError>>;
}

/// What a handler gets: which run this is, its fencing token, a cancellation
/// signal and a way to extend its lease.
#[derive(Clone)]
pub struct RunContext {
    lease: Arc<Lease>,
    runner_id: Arc<str>,
    cancel: CancellationToken,
    heartbeat: Arc<dyn Heartbeat>,
    arguments: Arc<Map<String, Value>>,
}

impl std::fmt::Debug for RunContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunContext")
            .field("lease", &self.lease)
            .field("runner_id", &self.runner_id)
            .finish_non_exhaustive()
    }
}

impl RunContext {
    /// The context of one run of `lease` by `runner_id`: `cancel` fires
    /// when it should stop, `heartbeat` extends the lease on demand.
    pub(crate) fn new(
        lease: Arc<Lease>,
        runner_id: Arc<str>,
        cancel: CancellationToken,
        heartbeat: Arc<dyn Heartbeat>,
        arguments: Arc<Map<String, Value>>,
    ) -> Self {
        RunContext {
            lease,
            runner_id,
            cancel,
            heartbeat,
            arguments,
        }
    }

    /// The job's arguments: a stored schedule's
    /// ([`ScheduleDefinition::arguments`](crate::model::ScheduleDefinition::arguments),
    /// as of the version the run was claimed under), or what a compiled-in
    /// job set with [`JobSpec::arguments`](super::JobSpec::arguments);
    /// empty by default.
    pub fn arguments(&self) -> &Map<String, Value> {
        &self.arguments
    }

    /// The job's name.
    pub fn job_name(&self) -> &str {
        &self.lease.job_name
    }

    /// The scope this run is for.
    pub fn scope(&self) -> &Scope {
        &self.lease.scope
    }

    /// The plan time this run belongs to.
    pub fn plan_time(&self) -> OffsetDateTime {
        self.lease.plan_time
    }

    /// 1 for the first attempt, +1 for every retry or takeover.
    pub fn attempt(&self) -> i32 {
        self.lease.attempt
    }

    /// The replica running it.
    pub fn runner_id(&self) -> &str {
        &self.runner_id
    }

    /// The execution row's id.
    pub fn execution_id(&self) -> Uuid {
        self.lease.id
    }

    /// The lease token: a fencing token. Pass it to the systems the handler
    /// writes to, and have them refuse writes carrying an older token for
    /// the same execution, to make effects of a run whose lease was taken
    /// over impossible to apply twice.
    pub fn lease_token(&self) -> Uuid {
        self.lease.token
    }

    /// The whole lease.
    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// Resolves when the run should stop: lease lost, run timeout, or
    /// shutdown. The manager drops the handler's future soon after anyway;
    /// this lets a handler stop cleanly at a point of its choosing.
    pub fn cancelled(&self) -> WaitForCancellationFuture<'_> {
        self.cancel.cancelled()
    }

    /// Whether [`cancelled`](Self::cancelled) has fired.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Extends the lease now (the manager also does so every
    /// `heartbeat_interval`).
    ///
    /// # Errors
    /// [`StoreError::LeaseLost`] when the lease is gone (the run is then
    /// cancelled), [`StoreError::Backend`] when the store fails.
    pub async fn heartbeat(&self) -> Result<(), StoreError> {
        self.heartbeat.beat().await
    }
}
