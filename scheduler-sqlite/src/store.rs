//! [`SqliteLeaseStore`]: its connections, how a call runs on them, and the
//! thin trait impls, which hand each non-trivial operation to its module.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{named_params, Connection, Transaction, TransactionBehavior};
use scheduler_core::machine::{self, Ending};
use scheduler_core::model::{Control, ControlChange, ControlRead, NewControl, Progress};
use scheduler_core::time::{later, to_micros};
use scheduler_core::{
    Announcement, Attempt, ClaimOutcome, ClaimRequest, Clock, Execution, ExecutionAudit,
    ExecutionFilter, Finish, LatestExecution, Lease, LeaseStore, PlannedAt, Prune, Replica,
    RetryDue, RetryRead, ScheduleWrite, Scope, ScopeSummary, StoreError, StoredSchedule,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::attempts::{self, Ended, Swept};
use crate::codec::{micros, uuid_text};
use crate::error::{lease_lost, Failure, Location};
use crate::options::SqliteStoreOptions;
use crate::schema;
use crate::statements::SQL;
use crate::worker::Worker;
use crate::{claim, controls, finish, operator, reads, replicas, schedules};

/// The SQLite store. Share it behind an `Arc`; every process on the host
/// may open its own store on the same file.
///
/// Dropping it closes its connections, after waiting for the call each one
/// is running (at most [`max_lock_wait`](SqliteStoreOptions::max_lock_wait) plus
/// a busy timeout when the database is locked).
pub struct SqliteLeaseStore {
    // Declared before `writer` so it is dropped (and closed) first: the
    // writer then closes last, which checkpoints the WAL into the file.
    reader: Option<Worker>,
    writer: Worker,
    shared: Arc<Shared>,
}

/// What every job sent to a worker needs.
pub(crate) struct Shared {
    /// Marked changed by every control this store adds or changes, and by
    /// every write of a stored schedule, so the
    /// managers of this process wake at once; other processes' changes are
    /// seen at their next tick (SQLite has no notification between
    /// processes).
    changes: tokio::sync::watch::Sender<()>,
    pub(crate) location: Location,
    clock: Arc<dyn Clock>,
    pub(crate) max_lock_wait: Duration,
}

impl Shared {
    pub(crate) fn now(&self) -> OffsetDateTime {
        // A custom clock may carry nanoseconds; stores keep microseconds.
        to_micros(self.clock.now())
    }
}

impl std::fmt::Debug for SqliteLeaseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteLeaseStore")
            .field("database", &self.shared.location.0)
            .field("reader_connection", &self.reader.is_some())
            .finish_non_exhaustive()
    }
}

impl SqliteLeaseStore {
    /// Opens (creating if missing) the database file at `path` with the
    /// default [`SqliteStoreOptions`].
    ///
    /// # Errors
    /// As [`SqliteStoreOptions::open`].
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        SqliteStoreOptions::new(path).open().await
    }

    /// Opens the database a URL names: `sqlite:PATH`, `sqlite://PATH` or
    /// `sqlite::memory:` (see [`SqliteStoreOptions::from_url`]).
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] for a URL of another form; otherwise as
    /// [`SqliteStoreOptions::open`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        SqliteStoreOptions::from_url(url)?.open().await
    }

    pub(crate) async fn open_with(options: SqliteStoreOptions) -> Result<Self, StoreError> {
        let writer_options = options.clone();
        let writer = Worker::start("scheduler-sqlite-writer", move || {
            writer_options.open_writer()
        })
        .await?;
        let mut store = SqliteLeaseStore {
            reader: None,
            writer,
            shared: Arc::new(Shared {
                changes: tokio::sync::watch::Sender::new(()),
                location: options.location(),
                clock: options.clock.clone(),
                max_lock_wait: options.max_lock_wait,
            }),
        };
        store.migrate().await?;
        // The reader opens after the migration so it never sees a file
        // without the table.
        if let Some(path) = options.path().map(Path::to_owned) {
            store.reader = Some(
                Worker::start("scheduler-sqlite-reader", move || {
                    options.open_reader(&path)
                })
                .await?,
            );
        }
        Ok(store)
    }

    /// Brings the schema to [`SCHEMA_VERSION`](crate::SCHEMA_VERSION). Idempotent, safe to run
    /// from several processes at once, and a no-op (no write lock) when
    /// nothing is missing. [`open`](Self::open) already runs it.
    ///
    /// # Errors
    /// [`StoreError::SchemaTooNew`] when the database is newer than this
    /// code; [`StoreError::Backend`] when the store fails.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let shared = self.shared.clone();
        self.writer
            .call(move |conn| {
                shared.location.retry_busy(shared.max_lock_wait, || {
                    schema::migrate(conn, micros(shared.now()))
                })
            })
            .await
    }

    /// Counts the tally of ended FAILED rows again from the executions table
    /// (`sql/tally_rebuild.sql`; `docs/contract.md` §10, "Operator reads"),
    /// in one IMMEDIATE transaction. Triggers keep the tally on every
    /// write, another process's too, so this is only needed after writes
    /// made without them. Migration 8 runs the same statements as its
    /// backfill.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store fails.
    pub async fn rebuild_tally(&self) -> Result<(), StoreError> {
        self.write(|tx, _| {
            tx.execute_batch(&crate::statements::SQL.tally_rebuild)?;
            Ok(())
        })
        .await
    }

    /// Runs `op` in one IMMEDIATE transaction on the writer connection,
    /// retried whole while the database is busy.
    pub(crate) async fn write<T, F>(&self, mut op: F) -> Result<T, StoreError>
    where
        F: FnMut(&Transaction<'_>, OffsetDateTime) -> Result<T, Failure> + Send + 'static,
        T: Send + 'static,
    {
        let shared = self.shared.clone();
        self.writer
            .call(move |conn| {
                shared.location.retry_busy(shared.max_lock_wait, || {
                    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    // Store time is read under the write lock, so the
                    // instants of successive writes, from any process,
                    // follow commit order as far as the host clock does.
                    let out = op(&tx, shared.now())?;
                    tx.commit()?;
                    Ok(out)
                })
            })
            .await
    }

    /// Runs `op` on the writer connection, outside any transaction, for a
    /// call that opens its own (a transactional job's run): it gets the
    /// store's clock and busy budget, and holds the writer until it returns.
    pub(crate) async fn on_writer<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut Connection, &Shared) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let shared = self.shared.clone();
        self.writer.call(move |conn| op(conn, &shared)).await
    }

    /// Runs the single-statement read `op` on the reader connection (the
    /// writer's for `:memory:`).
    pub(crate) async fn read<T, F>(&self, mut op: F) -> Result<T, StoreError>
    where
        F: FnMut(&Connection, OffsetDateTime) -> Result<T, Failure> + Send + 'static,
        T: Send + 'static,
    {
        let shared = self.shared.clone();
        self.reader
            .as_ref()
            .unwrap_or(&self.writer)
            .call(move |conn| {
                shared
                    .location
                    .retry_busy(shared.max_lock_wait, || op(conn, shared.now()))
            })
            .await
    }
}

#[async_trait]
impl LeaseStore for SqliteLeaseStore {
    async fn now(&self) -> Result<OffsetDateTime, StoreError> {
        Ok(self.shared.now())
    }

    async fn claim(&self, request: &ClaimRequest<'_>) -> Result<Vec<ClaimOutcome>, StoreError> {
        claim::claim(self, request).await
    }

    async fn heartbeat(
        &self,
        lease: &Lease,
        stale_timeout: Duration,
    ) -> Result<OffsetDateTime, StoreError> {
        let (id, token) = (lease.id, uuid_text(lease.token));
        self.write(move |tx, now| {
            let stale_after = later(now, stale_timeout);
            let changed = tx.prepare_cached(&SQL.heartbeat)?.execute(named_params! {
                ":id": uuid_text(id),
                ":token": token,
                ":now": micros(now),
                ":stale_after": micros(stale_after),
            })?;
            if changed == 1 {
                Ok(stale_after)
            } else {
                Err(lease_lost(id))
            }
        })
        .await
    }

    async fn finish_many(&self, items: &[(&Lease, &Finish)]) -> Vec<Result<(), StoreError>> {
        finish::finish_many(self, items).await
    }

    async fn sweep_stale(
        &self,
        job_name: &str,
        allow_stale_reentry: bool,
    ) -> Result<u64, StoreError> {
        let job = job_name.to_owned();
        let next_retry_at = machine::swept_retry_at(allow_stale_reentry).map(micros);
        let ended = Ended::of(Ending::Sweep);
        self.write(move |tx, now| {
            let closed = tx
                .prepare_cached(&SQL.sweep)?
                .query_map(
                    named_params! {
                        ":job": job,
                        ":now": micros(now),
                        ":next_retry_at": next_retry_at,
                        ":stale_msg": machine::STALE_SWEEP_MSG,
                    },
                    Swept::read,
                )?
                .collect::<Result<Vec<_>, _>>()?;
            for swept in &closed {
                attempts::log_swept(tx, now, swept, &ended)?;
            }
            Ok(closed.len() as u64)
        })
        .await
    }

    async fn latest_executions(
        &self,
        job_name: &str,
        scopes: &[Scope],
    ) -> Result<Vec<Option<LatestExecution>>, StoreError> {
        reads::latest_executions(self, job_name, scopes).await
    }

    async fn retry_due(&self, read: &RetryRead<'_>) -> Result<Vec<RetryDue>, StoreError> {
        reads::retry_due(self, read).await
    }

    async fn announce(&self, announcement: &Announcement) -> Result<(), StoreError> {
        replicas::announce(self, announcement).await
    }

    async fn controls(&self, read: &ControlRead) -> Result<Vec<Control>, StoreError> {
        controls::controls(self, read).await
    }

    async fn update_control(
        &self,
        id: Uuid,
        change: &ControlChange,
    ) -> Result<Control, StoreError> {
        let updated = controls::update_control(self, id, change).await?;
        self.shared.changes.send_replace(());
        Ok(updated)
    }

    async fn schedules(&self) -> Result<Vec<StoredSchedule>, StoreError> {
        schedules::schedules(self).await
    }

    fn control_changes(&self) -> Option<tokio::sync::watch::Receiver<()>> {
        Some(self.shared.changes.subscribe())
    }
}

#[async_trait]
impl ExecutionAudit for SqliteLeaseStore {
    async fn get_execution(&self, id: Uuid) -> Result<Option<Execution>, StoreError> {
        reads::get_execution(self, id).await
    }

    async fn attempts_of(&self, ids: &[Uuid]) -> Result<Vec<Vec<Attempt>>, StoreError> {
        reads::attempts_of(self, ids).await
    }

    async fn list_executions(
        &self,
        filter: &ExecutionFilter,
    ) -> Result<Vec<Execution>, StoreError> {
        reads::list_executions(self, filter).await
    }

    async fn scope_summaries(
        &self,
        job_name: Option<&str>,
    ) -> Result<Vec<ScopeSummary>, StoreError> {
        reads::scope_summaries(self, job_name).await
    }

    async fn plan_times_since(
        &self,
        job_name: &str,
        from: OffsetDateTime,
    ) -> Result<Vec<PlannedAt>, StoreError> {
        reads::plan_times_since(self, job_name, from).await
    }

    async fn retry_execution(&self, id: Uuid) -> Result<Execution, StoreError> {
        operator::retry_execution(self, id).await
    }

    async fn prune_finished(&self, prune: &Prune) -> Result<u64, StoreError> {
        operator::prune_finished(self, prune).await
    }

    async fn replicas(&self) -> Result<Vec<Replica>, StoreError> {
        replicas::replicas(self).await
    }

    async fn add_control(&self, control: &NewControl) -> Result<Control, StoreError> {
        let stored = controls::add_control(self, control).await?;
        self.shared.changes.send_replace(());
        Ok(stored)
    }

    async fn control_progress(&self, id: Uuid) -> Result<Progress, StoreError> {
        controls::control_progress(self, id).await
    }

    async fn write_schedule(
        &self,
        name: &str,
        write: &ScheduleWrite,
    ) -> Result<Option<StoredSchedule>, StoreError> {
        let written = schedules::write_schedule(self, name, write).await?;
        self.shared.changes.send_replace(());
        Ok(written)
    }
}
