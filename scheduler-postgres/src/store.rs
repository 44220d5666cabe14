//! [`PgLeaseStore`]: construction, store time, and the thin trait impls,
//! which hand each non-trivial operation to its module.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use scheduler_core::machine::{self, Ending};
use scheduler_core::model::{Control, ControlChange, ControlRead, NewControl, Progress};
use scheduler_core::time::to_micros;
use scheduler_core::{
    Announcement, Attempt, ClaimOutcome, ClaimRequest, Clock, Execution, ExecutionAudit,
    ExecutionFilter, Finish, LatestExecution, Lease, LeaseStore, PlannedAt, Prune, Replica,
    RetryDue, RetryRead, ScheduleWrite, Scope, ScopeSummary, StoreError, StoredSchedule,
};
use sqlx_core::query::{query, Query};
use sqlx_core::row::Row;
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_postgres::types::PgInterval;
use sqlx_postgres::{PgArguments, PgPool, Postgres};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::options::PgStoreOptions;
use crate::rows::{self, backend, interval};
use crate::schema;
use crate::statements::Statements;
use crate::store_time::TimeOffset;
use crate::{claim, connect, controls, finish, operator, partitions, reads, replicas, schedules};

/// The PostgreSQL store. Cheap to clone (clones share the pool).
#[derive(Clone)]
pub struct PgLeaseStore {
    pool: PgPool,
    pub(crate) sql: Arc<Statements>,
    offset: TimeOffset,
    /// A test's clock ([`PgStoreOptions::clock`]); `None` in production,
    /// where the server's `now()` is store time.
    clock: Option<Arc<dyn Clock>>,
}

impl fmt::Debug for PgLeaseStore {
    // By hand: nothing of the connection options (which hold the password)
    // may show up in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgLeaseStore")
            .field("table", &self.sql.table.display)
            .field("pool_size", &self.pool.size())
            .field("time_offset", &self.offset.get())
            .field("client_clock", &self.clock)
            .finish()
    }
}

impl PgLeaseStore {
    /// Connects to `url` with the default options and migrates.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] for a malformed URL (the message never
    /// repeats the URL); [`StoreError::Backend`] when the server cannot be
    /// reached or the migration fails; [`StoreError::SchemaTooNew`] when a
    /// newer version of this library migrated the table.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, &PgStoreOptions::default()).await
    }

    /// Connects to `url` with `options`, opening one connection to check
    /// the server is there, and migrates unless told not to. The pool tests
    /// each connection before handing it out, so connections the server
    /// dropped are replaced.
    ///
    /// A server that cannot be reached fails the call at once (or after
    /// [`acquire_timeout`](PgStoreOptions::acquire_timeout) when nothing
    /// answers), with a message that names the server's address and the
    /// cause: connection refused, a host name that does not resolve, a TLS
    /// failure, a refused login, a missing database.
    ///
    /// # Errors
    /// As [`connect`](Self::connect), and [`StoreError::InvalidInput`] for
    /// schema or table names that are not plain identifiers, or a URL
    /// parameter holding a secret the driver does not read (libpq's
    /// `sslpassword`).
    pub async fn connect_with(url: &str, options: &PgStoreOptions) -> Result<Self, StoreError> {
        let sql = Arc::new(options.statements()?);
        let (pool, connect) = options.pool(url)?;
        // On a connection of its own: the pool would retry a refused
        // connection until its acquire timeout and then report only that
        // it timed out.
        connect::check(&connect, options.acquire_timeout).await?;
        let pool = pool
            .connect_with(connect)
            .await
            .map_err(backend("connect"))?;
        let store = PgLeaseStore {
            pool,
            sql,
            offset: TimeOffset::default(),
            clock: options.clock.clone(),
        };
        if options.migrate_on_connect {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Builds the store without reaching the server, for a service that
    /// must start while its database is down: connections are opened when
    /// a call needs one, so each call fails (after `acquire_timeout`) until
    /// the server answers, and a [`Manager`](scheduler_core::Manager) on
    /// the store keeps ticking, backing off, until it does. Unless told not
    /// to ([`PgStoreOptions::migrate_on_connect`]), the first connection
    /// opened migrates before any statement runs on it; a failed migration
    /// fails that call and is tried again with the next connection.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] for a malformed URL (the message never
    /// repeats the URL), a URL parameter holding a secret the driver does
    /// not read (libpq's `sslpassword`), or schema or table names that are
    /// not plain identifiers. Nothing else is checked until the first call.
    pub fn connect_lazy_with(url: &str, options: &PgStoreOptions) -> Result<Self, StoreError> {
        let sql = Arc::new(options.statements()?);
        let (mut pool, connect) = options.pool(url)?;
        if options.migrate_on_connect {
            let migrated = Arc::new(AtomicBool::new(false));
            let sql = sql.clone();
            pool = pool.after_connect(move |conn, _| {
                let (sql, migrated) = (sql.clone(), migrated.clone());
                Box::pin(async move {
                    // Connections opened together may both migrate: the
                    // migration is idempotent and serialised by its lock.
                    if !migrated.load(Ordering::SeqCst) {
                        schema::migrate(&sql.table, conn)
                            .await
                            .map_err(|e| sqlx_core::Error::Configuration(Box::new(e)))?;
                        migrated.store(true, Ordering::SeqCst);
                    }
                    Ok(())
                })
            });
        }
        Ok(PgLeaseStore {
            pool: pool.connect_lazy_with(connect),
            sql,
            offset: TimeOffset::default(),
            clock: options.clock.clone(),
        })
    }

    /// A store on the caller's pool and the default table. Does not migrate:
    /// call [`migrate`](Self::migrate) once at start-up.
    pub fn from_pool(pool: PgPool) -> Self {
        Self::from_pool_with(pool, &PgStoreOptions::default())
            .expect("the default table name is valid")
    }

    /// A store on the caller's pool and the schema, table and
    /// [`clock`](PgStoreOptions::clock) of `options` (their connection
    /// settings do not apply: the pool has its own). Does not migrate.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] for names that are not plain identifiers.
    pub fn from_pool_with(pool: PgPool, options: &PgStoreOptions) -> Result<Self, StoreError> {
        Ok(PgLeaseStore {
            pool,
            sql: Arc::new(options.statements()?),
            offset: TimeOffset::default(),
            clock: options.clock.clone(),
        })
    }

    /// Uses `offset` for store time from now on: for tests, which move it
    /// forward instead of waiting.
    pub fn with_time_offset(mut self, offset: TimeOffset) -> Self {
        self.offset = offset;
        self
    }

    /// The store-time offset handle (shared with clones of this store).
    pub fn time_offset(&self) -> &TimeOffset {
        &self.offset
    }

    /// The pool the store runs on.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The table, as the statements name it (`"schema"."table"`).
    pub fn qualified_table(&self) -> &str {
        &self.sql.table.display
    }

    /// Creates the schema (if one was given and is missing), the table, its
    /// constraints and indexes, or adopts them if they exist; records the
    /// version in [`MIGRATIONS_TABLE`](crate::MIGRATIONS_TABLE). Idempotent,
    /// and safe to run from many replicas at once: one transaction under a
    /// PostgreSQL advisory lock.
    ///
    /// # Errors
    /// [`StoreError::SchemaTooNew`] when the recorded version is newer than
    /// [`SCHEMA_VERSION`](crate::SCHEMA_VERSION) (nothing is changed);
    /// [`StoreError::Backend`] when the server fails or refuses (e.g.
    /// missing privileges).
    ///
    /// With [`PgStoreOptions::partitioned`], a table that does not exist is
    /// created partitioned, and the partitions of the current store time
    /// and the [`PARTITIONS_AHEAD`](crate::PARTITIONS_AHEAD) after it are
    /// created ([`create_partitions`](Self::create_partitions)); an existing
    /// unpartitioned table is refused with [`StoreError::InvalidInput`].
    pub async fn migrate(&self) -> Result<(), StoreError> {
        schema::migrate(&self.sql.table, &self.pool).await?;
        self.create_partitions().await.map(drop)
    }

    /// For a store built with [`PgStoreOptions::partitioned`]: creates the
    /// partition of the current store time and the
    /// [`PARTITIONS_AHEAD`](crate::PARTITIONS_AHEAD) after it, those
    /// missing, and returns how many it created (0 for an unpartitioned
    /// store, which has none to create). [`migrate`](Self::migrate) and
    /// every prune call it; a service that prunes less often than every
    /// few partitions' length can call it on a cadence of its own. Plans no
    /// partition covers land in the DEFAULT partition, so a late call
    /// costs retention speed, never an insert.
    ///
    /// A range the DEFAULT partition already holds rows of is left there
    /// (PostgreSQL refuses a partition that would take rows from it), and a
    /// partition whose creation cannot get the table's lock within 100 ms
    /// is left to the next call, so that claims never queue long behind it.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the server fails or refuses (e.g.
    /// missing privileges).
    pub async fn create_partitions(&self) -> Result<usize, StoreError> {
        match self.sql.table.partitioned {
            Some(interval) => partitions::create_ahead(self, interval).await,
            None => Ok(0),
        }
    }

    /// Counts the tally of ended FAILED rows again from the executions table
    /// (`sql/tally_rebuild.sql`; `docs/contract.md` §10, "Operator reads"),
    /// in one transaction that holds the table's SHARE lock: writes wait
    /// for it, reads do not. Triggers keep the tally on every write, the
    /// seed's too, so this is only needed after a change they cannot see:
    /// a partition detached or truncated by hand, or writes made with
    /// triggers disabled. Migration 8 runs the same statements as its
    /// backfill.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the server fails or refuses (e.g.
    /// missing privileges).
    pub async fn rebuild_tally(&self) -> Result<(), StoreError> {
        let err = crate::rows::backend("rebuild tally");
        let mut tx = self.pool().begin().await.map_err(err)?;
        sqlx_core::raw_sql::raw_sql(AssertSqlSafe(Arc::clone(&self.sql.tally_rebuild)))
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        tx.commit().await.map_err(err)
    }

    /// A statement that computes store time, with its `$1` bound now.
    pub(crate) fn statement(&self, sql: &Arc<str>) -> Query<'static, Postgres, PgArguments> {
        self.statement_at(sql, self.store_time())
    }

    /// A statement with `$1` bound to `time`, a value of
    /// [`store_time`](Self::store_time): several statements of one
    /// transaction share one store time by sharing it.
    pub(crate) fn statement_at(
        &self,
        sql: &Arc<str>,
        time: PgInterval,
    ) -> Query<'static, Postgres, PgArguments> {
        query(AssertSqlSafe(Arc::clone(sql))).bind(time)
    }

    /// The value of `$1`, the one time parameter of every statement that
    /// computes store time: the offset added to the server's `now()`, or,
    /// on a client clock, the instant itself.
    pub(crate) fn store_time(&self) -> PgInterval {
        match &self.clock {
            None => self.offset.interval(),
            Some(clock) => self.offset.since_epoch(clock.as_ref()),
        }
    }
}

#[async_trait]
impl LeaseStore for PgLeaseStore {
    async fn now(&self) -> Result<OffsetDateTime, StoreError> {
        let row = self
            .statement(&self.sql.now)
            .fetch_one(&self.pool)
            .await
            .map_err(backend("now"))?;
        let now: OffsetDateTime = row.try_get(0).map_err(backend("now"))?;
        Ok(to_micros(now))
    }

    async fn claim(&self, request: &ClaimRequest<'_>) -> Result<Vec<ClaimOutcome>, StoreError> {
        claim::claim(self, request).await
    }

    async fn heartbeat(
        &self,
        lease: &Lease,
        stale_timeout: Duration,
    ) -> Result<OffsetDateTime, StoreError> {
        let row = self
            .statement(&self.sql.heartbeat)
            .bind(lease.id)
            .bind(lease.token)
            .bind(interval("stale_timeout", stale_timeout)?)
            .bind(lease.plan_time)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend("heartbeat"))?;
        match row {
            Some(row) => rows::instant(&row, "stale_after"),
            None => Err(StoreError::LeaseLost { id: lease.id }),
        }
    }

    async fn finish_many(&self, items: &[(&Lease, &Finish)]) -> Vec<Result<(), StoreError>> {
        finish::finish_many(self, items).await
    }

    async fn sweep_stale(
        &self,
        job_name: &str,
        allow_stale_reentry: bool,
    ) -> Result<u64, StoreError> {
        if job_name.contains('\0') {
            return Ok(0);
        }
        let err = backend("sweep");
        let logged = Ending::Sweep.columns();
        let row = self
            .statement(&self.sql.sweep)
            .bind(job_name)
            .bind(machine::STALE_SWEEP_MSG)
            .bind(machine::swept_retry_at(allow_stale_reentry))
            .bind(logged.outcome.as_str())
            .bind(logged.error_code)
            .bind(logged.error_msg)
            .bind(logged.duration_ms)
            .fetch_one(&self.pool)
            .await
            .map_err(err)?;
        let closed: i64 = row.try_get("closed").map_err(err)?;
        Ok(u64::try_from(closed).unwrap_or(0))
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
        controls::update_control(self, id, change).await
    }

    async fn schedules(&self) -> Result<Vec<StoredSchedule>, StoreError> {
        schedules::schedules(self).await
    }

    fn control_changes(&self) -> Option<tokio::sync::watch::Receiver<()>> {
        Some(controls::changes(self))
    }
}

#[async_trait]
impl ExecutionAudit for PgLeaseStore {
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
        controls::add_control(self, control).await
    }

    async fn control_progress(&self, id: Uuid) -> Result<Progress, StoreError> {
        controls::control_progress(self, id).await
    }

    async fn write_schedule(
        &self,
        name: &str,
        write: &ScheduleWrite,
    ) -> Result<Option<StoredSchedule>, StoreError> {
        schedules::write_schedule(self, name, write).await
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use sqlx_postgres::{PgConnectOptions, PgPoolOptions};

    use super::*;

    #[test]
    fn debug_output_names_the_table_but_no_connection_details() {
        let rt = tokio_runtime();
        let _guard = rt.enter();
        let pool = PgPoolOptions::new().connect_lazy_with(
            PgConnectOptions::from_str("postgres://u:s3cret@127.0.0.1:1/db").unwrap(),
        );
        let store = PgLeaseStore::from_pool(pool);
        let shown = format!("{store:?}");
        assert!(shown.contains("sys_cron_executions"), "{shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn malformed_urls_are_invalid_input_without_echoing_the_password() {
        let rt = tokio_runtime();
        let err = rt
            .block_on(PgLeaseStore::connect(
                "postgres://u:s3cret@127.0.0.1:notaport/db",
            ))
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
        assert!(!err.to_string().contains("s3cret"), "{err}");
        let err = rt
            .block_on(PgLeaseStore::connect_with(
                "postgres://127.0.0.1/db",
                &PgStoreOptions::new().table("no-dashes"),
            ))
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
        // The lazy constructor checks the same, without a server.
        let err = PgLeaseStore::connect_lazy_with(
            "postgres://u:s3cret@127.0.0.1:notaport/db",
            &PgStoreOptions::new(),
        )
        .unwrap_err();
        assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
        assert!(!err.to_string().contains("s3cret"), "{err}");
        let err = PgLeaseStore::connect_lazy_with(
            "postgres://127.0.0.1/db",
            &PgStoreOptions::new().table("no-dashes"),
        )
        .unwrap_err();
        assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
    }

    /// What the process logs while `f` runs, at every level.
    fn logged(f: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Lines(Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Lines {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let bytes = lines.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    /// The driver ignores parameters it does not know and logs each with
    /// its value: a secret one (libpq's sslpassword) is refused before the
    /// driver sees it, by both constructors, and neither the error nor the
    /// log shows it.
    #[test]
    fn a_secret_parameter_the_driver_ignores_is_refused_unlogged() {
        let rt = tokio_runtime();
        let _guard = rt.enter();
        for url in [
            "postgres://u@127.0.0.1:1/db?sslpassword=pw-0a1b2c3d",
            "postgres://u@127.0.0.1:1/db?sslmode=require&SSLPassword=pw-0a1b2c3d",
            "postgres://u@127.0.0.1:1/db?Password=pw-0a1b2c3d",
        ] {
            let mut errors = Vec::new();
            let log = logged(|| {
                errors.push(
                    PgLeaseStore::connect_lazy_with(url, &PgStoreOptions::new()).unwrap_err(),
                );
                errors.push(
                    rt.block_on(PgLeaseStore::connect_with(url, &PgStoreOptions::new()))
                        .unwrap_err(),
                );
            });
            for err in &errors {
                assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
                assert!(err.to_string().contains("is not supported"), "{err}");
                assert!(!format!("{err} {err:?}").contains("pw-0a1b2c3d"), "{err:?}");
            }
            assert!(!log.contains("pw-0a1b2c3d"), "{log}");
        }
        // What the refusal prevents: the driver logging a parameter it
        // ignores, value and all (which also shows the capture works).
        let log = logged(|| {
            PgLeaseStore::connect_lazy_with(
                "postgres://u@127.0.0.1:1/db?connect_timeout=7",
                &PgStoreOptions::new(),
            )
            .unwrap();
        });
        assert!(
            log.contains("ignoring unrecognized connect parameter") && log.contains('7'),
            "{log}"
        );
        // The password parameter is one the driver reads.
        PgLeaseStore::connect_lazy_with(
            "postgres://u@127.0.0.1:1/db?password=pw-0a1b2c3d",
            &PgStoreOptions::new(),
        )
        .unwrap();
    }

    fn tokio_runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }
}
