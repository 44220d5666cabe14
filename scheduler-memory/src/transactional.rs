//! Transactional jobs on the memory store (`docs/contract.md` §13): the
//! in-memory stand-in of a database transaction, so that the jobs and
//! tests written for PostgreSQL's and SQLite's transactional jobs have a
//! store with nothing to install.
//!
//! The "database" is one key-value table, the **effects** table
//! ([`MemoryLeaseStore::effects`]). A transactional job's closure reads
//! and writes it through a [`MemoryTx`]; when the closure returns `Ok`, its
//! writes and the run's guarded SUCCESS are applied together under the
//! store's lock, or not at all: an error, a lease taken over, a store
//! failure or a cancelled run leaves the table as it was.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use scheduler_core::machine::{self, Ending};
use scheduler_core::{BoxError, Finish, JobOutput, JobSpec, RunContext, Scopes};
use serde_json::Value;

use crate::MemoryLeaseStore;

/// A transactional job's view of the effects table: reads see the table
/// with this run's own writes; the writes land with the run's SUCCESS.
#[derive(Debug, Clone, Default)]
pub struct MemoryTx {
    table: BTreeMap<String, Value>,
}

impl MemoryTx {
    /// The value at `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.table.get(key)
    }

    /// Sets `key` to `value`; returns the value it replaces.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) -> Option<Value> {
        self.table.insert(key.into(), value)
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.table.remove(key)
    }
}

impl MemoryLeaseStore {
    /// The effects table as committed: what transactional jobs' runs wrote
    /// with their SUCCESS.
    pub fn effects(&self) -> BTreeMap<String, Value> {
        self.lock().effects.clone()
    }

    /// A job whose `handler` writes its effects through a [`MemoryTx`],
    /// committed together with the run's guarded SUCCESS (id, lease token,
    /// RUNNING) under the store's lock: both or neither. The handler runs
    /// under that lock, so it must be quick and must not block; it is the
    /// stand-in of PostgreSQL's and SQLite's transactional jobs for tests.
    ///
    /// When the handler fails or panics, or the run was cancelled (timeout,
    /// lease lost, shutdown) by the time it returns, nothing of it lands
    /// and the failure is recorded as for any job. When the guard finds the
    /// lease lost, nothing lands and the run is lease-lost.
    pub fn transactional_job<F>(self: &Arc<Self>, name: &str, scopes: Scopes, handler: F) -> JobSpec
    where
        F: Fn(&RunContext, &mut MemoryTx) -> Result<JobOutput, BoxError> + Send + Sync + 'static,
    {
        let store = Arc::clone(self);
        let handler = Arc::new(handler);
        JobSpec::new(name, scopes, move |ctx: RunContext| {
            let (store, handler) = (store.clone(), handler.clone());
            async move { store.commit_run(&ctx, &*handler, Instant::now()) }
        })
    }

    /// Runs `handler` and, on `Ok`, writes its effects and the guarded
    /// SUCCESS, all under one lock.
    fn commit_run<F>(
        &self,
        ctx: &RunContext,
        handler: &F,
        started: Instant,
    ) -> Result<JobOutput, BoxError>
    where
        F: Fn(&RunContext, &mut MemoryTx) -> Result<JobOutput, BoxError>,
    {
        let now = self.check()?;
        let mut rows = self.lock();
        let mut tx = MemoryTx {
            table: rows.effects.clone(),
        };
        let output = handler(ctx, &mut tx)?;
        if ctx.is_cancelled() {
            return Err("the run was cancelled before its commit; nothing written".into());
        }
        let lease = ctx.lease();
        let finish = Finish::success(
            started.elapsed(),
            output.rows_affected,
            output.result.clone(),
        );
        let key = rows
            .key_of
            .get(&lease.id)
            .cloned()
            .ok_or(scheduler_core::StoreError::LeaseLost { id: lease.id })?;
        let row = &rows.by_key[&key];
        let done = machine::finish(row, lease.token, now, &finish)?;
        let ended = machine::ended_attempt(row, Ending::Finish(&finish), now);
        rows.log(ended);
        rows.put(key, done);
        rows.effects = tx.table;
        Ok(output.committed())
    }
}
