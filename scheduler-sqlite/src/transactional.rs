//! Transactional jobs (`docs/contract.md` §13): a closure that writes its
//! effects in a transaction on the store's own database, which then writes
//! the run's guarded SUCCESS in the same transaction, so the effects and
//! the SUCCESS commit together or not at all.
//!
//! The store's writer connection lives on its own thread, so the closure is
//! sent there and runs on it, between the `BEGIN IMMEDIATE` and the
//! `COMMIT` of one transaction, with the same statements (`finish.sql`,
//! then `finish_log.sql`) that a one-item `finish_many` runs.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use rusqlite::{Connection, Transaction, TransactionBehavior};
use scheduler_core::{BoxError, Finish, JobOutput, JobSpec, RunContext, Scopes};

use crate::codec::uuid_text;
use crate::error::Failure;
use crate::finish::{finish_one, BoundColumns};
use crate::store::{Shared, SqliteLeaseStore};

/// How a transactional run ended on the writer thread.
enum Ended {
    /// The effects and the SUCCESS are committed.
    Committed(JobOutput),
    /// Rolled back: the closure's error, or why the commit was refused.
    Failed(BoxError),
    /// Rolled back: the closure panicked; the payload is re-raised in the
    /// job's task, where the manager records it as any handler's panic.
    Panicked(Box<dyn Any + Send>),
}

impl SqliteLeaseStore {
    /// A job whose `handler` writes its effects with the
    /// [`rusqlite::Transaction`](https://docs.rs/rusqlite/0.37/rusqlite/struct.Transaction.html) it is given, on this store's database,
    /// committed together with the run's guarded SUCCESS (id, lease token,
    /// RUNNING): both or neither. Register it with any manager on this
    /// store, and configure it like any [`JobSpec`] (cadence, retries,
    /// timeouts, reentrancy).
    ///
    /// Each run sends `handler` to the store's writer thread, which opens a
    /// `BEGIN IMMEDIATE` transaction (a busy database is waited for as by
    /// every write of the store), runs `handler`, and, when it returns `Ok`
    /// and the run was not cancelled meanwhile, writes the SUCCESS and the
    /// attempt's record in the attempts log in that transaction, commits,
    /// and answers the output marked
    /// [`committed`](JobOutput::committed) (the manager then writes nothing
    /// more). Otherwise the transaction rolls back, so none of the
    /// handler's writes remain, and:
    ///
    /// - an error of `handler` is the run's error (FAILED, retried as the
    ///   job says); a panic is caught on the writer thread, which stays in
    ///   service, and re-raised in the run's task, where the manager
    ///   records it as for any handler;
    /// - a lease taken over before the transaction began (another runner
    ///   stole it once stale, or the sweep closed it) fails the guard: the
    ///   handler's writes are rolled back and the run is reported lease
    ///   lost (the handler's error is [`StoreError::LeaseLost`]; the
    ///   manager's own terminal write is refused by the same guard). Once
    ///   the transaction has begun nobody can take the lease: taking it is
    ///   a write;
    /// - a run cancelled by the time `handler` returns (run timeout, lease
    ///   lost, shutdown) commits nothing, and a run cancelled before its
    ///   turn on the writer does not call `handler` at all.
    ///
    /// # What is exactly-once
    ///
    /// Exactly the writes `handler` makes through the transaction: they
    /// land once per plan, with the SUCCESS that ends its row, whatever
    /// the retries, takeovers and crashes (a process killed mid-transaction
    /// or at its commit leaves both or neither; a retry then runs the
    /// handler again on a clean slate). Everything else `handler` does,
    /// and anything a job does outside it, stays at-least-once: a
    /// rolled-back attempt is run again, so fence such effects with
    /// [`RunContext::lease_token`] as for any job.
    ///
    /// # The writer is held
    ///
    /// SQLite has one writer per database file: while `handler` runs, no
    /// other write of any process on this file can commit, and this
    /// store's own calls (claims, heartbeats, other runs' terminal writes,
    /// other transactional runs) wait behind it on the writer thread. Keep
    /// it short, with no network calls and no waiting: fetch what it needs
    /// before, in a normal job, or read it in the transaction. A handler
    /// that holds the writer longer than the other processes'
    /// [`max_lock_wait`](crate::SqliteStoreOptions::max_lock_wait) makes
    /// their writes fail, and one longer than the job's heartbeat interval
    /// delays this run's heartbeats.
    ///
    /// A run timeout cannot interrupt a handler already running (it is
    /// blocking code on the writer thread): the manager records the
    /// timeout at once and the transaction's commit is refused when the
    /// handler returns. Between that check and the `COMMIT` nothing can
    /// take the lease (the write lock is held), so a commit is never of a
    /// lost lease; a timeout that fires in that instant finds the row
    /// already SUCCESS and is reported lease lost, with the effects and
    /// the SUCCESS committed, once.
    ///
    /// Do not commit or roll back the transaction yourself (with
    /// `COMMIT`/`ROLLBACK` statements): a handler that ended it is refused
    /// as an error. Savepoints (`SAVEPOINT`/`RELEASE`) are fine.
    ///
    /// [`StoreError::LeaseLost`]: scheduler_core::StoreError::LeaseLost
    pub fn transactional_job<F>(self: &Arc<Self>, name: &str, scopes: Scopes, handler: F) -> JobSpec
    where
        F: Fn(&RunContext, &Transaction<'_>) -> Result<JobOutput, BoxError> + Send + Sync + 'static,
    {
        let store = Arc::clone(self);
        let handler = Arc::new(handler);
        JobSpec::new(name, scopes, move |ctx: RunContext| {
            let (store, handler) = (store.clone(), handler.clone());
            async move {
                let started = Instant::now();
                let ended = store
                    .on_writer(move |conn, shared| {
                        Ok(commit_run(conn, shared, &ctx, &*handler, started))
                    })
                    .await?;
                match ended {
                    Ended::Committed(output) => Ok(output),
                    Ended::Failed(e) => Err(e),
                    Ended::Panicked(payload) => panic::resume_unwind(payload),
                }
            }
        })
    }
}

/// On the writer thread: runs `handler` in one IMMEDIATE transaction and,
/// on `Ok`, writes the guarded SUCCESS and commits; anything else rolls the
/// transaction back (by dropping it).
fn commit_run<F>(
    conn: &mut Connection,
    shared: &Shared,
    ctx: &RunContext,
    handler: &F,
    started: Instant,
) -> Ended
where
    F: Fn(&RunContext, &Transaction<'_>) -> Result<JobOutput, BoxError>,
{
    if ctx.is_cancelled() {
        // It timed out or lost its lease while waiting for the writer.
        return Ended::Failed(CANCELLED.into());
    }
    let conn: &Connection = conn;
    // Only the BEGIN is retried while the database is busy: once the write
    // lock is ours, nothing else of this transaction waits for it, and the
    // handler must not run twice for one call.
    let tx = match shared.location.retry_busy(shared.max_lock_wait, move || {
        Ok(Transaction::new_unchecked(
            conn,
            TransactionBehavior::Immediate,
        )?)
    }) {
        Ok(tx) => tx,
        Err(e) => return Ended::Failed(Box::new(e)),
    };
    let output = match panic::catch_unwind(AssertUnwindSafe(|| handler(ctx, &tx))) {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => return Ended::Failed(e),
        Err(payload) => return Ended::Panicked(payload),
    };
    if tx.is_autocommit() {
        return Ended::Failed(
            "the transactional handler committed or rolled back the transaction itself; \
             its run is not recorded as a success"
                .into(),
        );
    }
    if ctx.is_cancelled() {
        return Ended::Failed(CANCELLED.into());
    }
    match write_success(&tx, shared, ctx, &output, started).and_then(|()| Ok(tx.commit()?)) {
        Ok(()) => Ended::Committed(output.committed()),
        // The transaction, if not committed, was dropped: rolled back.
        Err(failure) => Ended::Failed(Box::new(shared.location.error(failure))),
    }
}

/// The run's guarded SUCCESS and its attempt's record, in `tx`: what
/// `finish_many` writes for one item.
fn write_success(
    tx: &Transaction<'_>,
    shared: &Shared,
    ctx: &RunContext,
    output: &JobOutput,
    started: Instant,
) -> Result<(), Failure> {
    let lease = ctx.lease();
    let finish = Finish::success(
        started.elapsed(),
        output.rows_affected,
        output.result.clone(),
    );
    let columns = BoundColumns::of(&finish)?;
    // Store time is read under the write lock, after the handler, as
    // `finish_many` reads it for its writes.
    finish_one(
        tx,
        shared.now(),
        lease.id,
        &uuid_text(lease.token),
        &columns,
    )
}

/// Why a cancelled run commits nothing.
const CANCELLED: &str = "the run was cancelled (run timeout, lease lost or shutdown) \
                         before its commit; nothing of its transaction was written";
