//! A [`LeaseStore`] on PostgreSQL (via sqlx): the store a fleet of replicas
//! coordinates through, on the seed's own `sys_cron_executions` table, so
//! Rust and Go replicas can share it during a migration. (The seed is the Go
//! scheduler this design was ported from; the contract, `docs/contract.md`
//! §1, says what the two share and §8 how they differ.)
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use scheduler_core::{ExecutionAudit, JobOutput, JobSpec, Manager, ManagerOptions, Scopes};
//! use scheduler_postgres::{PgLeaseStore, PgStoreOptions};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // Connects, then creates or adopts the table (idempotent, advisory-locked).
//! let store = PgLeaseStore::connect_with(
//!     "postgres://scheduler@127.0.0.1:5432/app",
//!     &PgStoreOptions::new()
//!         .schema("scheduler")
//!         .application_name("billing-1"),
//! )
//! .await?;
//! let manager = Manager::new(
//!     Arc::new(store),
//!     ManagerOptions {
//!         runner_id: "billing-1".into(),
//!         ..Default::default()
//!     },
//! ).expect("valid manager options");
//! manager.register(
//!     JobSpec::new("rollup", Scopes::global(), |ctx| async move {
//!         println!("rolling up {} at {}", ctx.scope(), ctx.plan_time());
//!         Ok(JobOutput::rows(42))
//!     })
//!     .cadence(Duration::from_secs(300)),
//! )?;
//! let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! manager
//!     .run(async {
//!         let _ = stopped.await;
//!     })
//!     .await;
//! # Ok(()) }
//! ```
//!
//! # Decisions
//!
//! - **Store time** is the server's `now()` in every statement (one instant
//!   per statement, or per transaction for a claim), plus a [`TimeOffset`]
//!   that is zero unless a test moves it. The process clock is never read:
//!   the server is the one clock every replica agrees on, whatever their
//!   hosts' clocks say. Tests alone may give the store a client clock
//!   instead ([`PgStoreOptions::clock`]), so that its rows carry instants
//!   they chose exactly and can be compared field by field with the memory
//!   and SQLite stores'.
//! - **Migrations** are embedded and versioned in our own table
//!   ([`MIGRATIONS_TABLE`], one row per executions table), run in one
//!   transaction under an advisory lock. [`PgLeaseStore::connect`] runs them
//!   (unless [`PgStoreOptions::migrate_on_connect`] says not to);
//!   [`PgLeaseStore::from_pool`] does not: call [`PgLeaseStore::migrate`].
//!   Version 1 is the seed's DDL with `IF NOT EXISTS`, so a table the seed
//!   created is adopted unchanged.
//! - **A batch claim** is one transaction of at most two statements: an
//!   `INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING` for fresh
//!   keys, then, only for the keys that conflicted, one guarded
//!   `UPDATE ... FROM unnest(...)` for retries and takeovers. Keys are sent in
//!   one canonical order so that concurrent batches lock rows in the same
//!   order. Should PostgreSQL still pick a deadlock victim (possible only
//!   between batches reclaiming the same rows), that claim fails with a
//!   [`StoreError::Backend`] and changes nothing.
//! - **Many terminal writes** ([`LeaseStore::finish_many`]) are one
//!   `UPDATE ... FROM unnest(...)` of parallel plain arrays (ids, tokens,
//!   and the values `finish` binds) at one store time, setting exactly what
//!   `finish` sets for each item's kind and `RETURNING` the items it wrote;
//!   every other item lost its lease. An empty batch (or one whose every
//!   item is refused before sending) makes no round trip. Batches above
//!   5,000 leases are cut into statements of 5,000. Duplicates are
//!   resolved as calling `finish` item by item would: the first item of an
//!   `(id, token)` is written, later ones are told
//!   [`StoreError::LeaseLost`]. A retry delay no interval can hold is
//!   [`StoreError::InvalidInput`] for that item alone; a value the server
//!   refuses (SQLSTATE class 22, such as a retry time past the largest
//!   timestamp) fails the statement without writing anything, and that
//!   chunk is then finished item by item so only the items `finish` would
//!   fail do; any other failure of a statement is a
//!   [`StoreError::Backend`] for every item of its chunk.
//! - **Connection loss**: calls in flight fail with [`StoreError::Backend`];
//!   the pool tests connections before handing them out, so later calls get
//!   fresh ones once the server is reachable.
//! - **A claim with `max_attempts < 1`** is refused with
//!   [`StoreError::InvalidInput`]: the table's check constraint could never
//!   hold its row (job registration refuses such specs anyway).
//! - **Scope summaries** are one statement: one pass groups and counts the
//!   rows, then the latest and last SUCCESS row of each scope are read back
//!   by the unique key.
//! - **An operator's retry** is one transaction: `SELECT ... FOR UPDATE`,
//!   [`machine::operator_retry`] applied in Rust at that statement's store
//!   time (so the rule lives in one place), and an `UPDATE` guarded on
//!   `status = 'FAILED'`.
//! - **Pruning** deletes at most `limit` rows per statement, oldest
//!   `finished_at` first, through the partial index on `finished_at`, so a
//!   large table is never locked for long; a dry run is one `count(*)`.
//! - **Strings with NUL** can never be stored: a claim refuses them with
//!   [`StoreError::InvalidInput`]; a read finds nothing for them, as the
//!   memory store does.
#![warn(missing_docs)]

mod rows;
mod schema;

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use scheduler_core::machine::FreshIds;
use scheduler_core::time::to_micros;
use scheduler_core::{
    machine, ClaimOutcome, ClaimRequest, Clock, Execution, ExecutionAudit, ExecutionFilter, Finish,
    FinishOutcome, LatestExecution, Lease, LeaseStore, RetryDue, Scope, ScopeSummary, Status,
    StoreError, TimeControl,
};
use serde_json::{Map, Value};
use sqlx_core::query::{query, Query};
use sqlx_core::query_builder::QueryBuilder;
use sqlx_core::row::Row;
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_core::transaction::Transaction;
use sqlx_core::types::Json;
use sqlx_postgres::types::PgInterval;
use sqlx_postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions, Postgres};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::rows::{backend, interval};
use crate::schema::{Sql, TimeSource};
pub use crate::schema::{DEFAULT_TABLE, MIGRATIONS_TABLE, SCHEMA_VERSION};

/// An offset added to the server's `now()` (or to a test's client clock,
/// [`PgStoreOptions::clock`]) to give store time: zero in production, moved
/// forward by tests (it implements [`TimeControl`], so it is what a
/// conformance `Harness` advances).
///
/// Clones share one offset, so several stores built with the same handle
/// (replicas in one test) agree on store time.
#[derive(Debug, Clone, Default)]
pub struct TimeOffset {
    micros: Arc<AtomicI64>,
}

impl TimeOffset {
    /// A zero offset.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current offset.
    pub fn get(&self) -> Duration {
        // Never negative: it only ever advances.
        Duration::from_micros(u64::try_from(self.micros.load(Ordering::SeqCst)).unwrap_or(0))
    }

    fn interval(&self) -> PgInterval {
        PgInterval {
            months: 0,
            days: 0,
            microseconds: self.micros.load(Ordering::SeqCst),
        }
    }

    /// `$1` for a store on a client clock: the clock's reading plus the
    /// offset, as microseconds since the Unix epoch (see
    /// [`PgStoreOptions::clock`]).
    fn since_epoch(&self, clock: &dyn Clock) -> PgInterval {
        // Every OffsetDateTime (years -9999..=9999) is within ±3.2e17 µs,
        // far inside i64 and inside PostgreSQL's interval.
        let read = to_micros(clock.now()).unix_timestamp_nanos() / 1_000;
        PgInterval {
            months: 0,
            days: 0,
            microseconds: i64::try_from(read)
                .unwrap_or(i64::MAX)
                .saturating_add(self.micros.load(Ordering::SeqCst)),
        }
    }
}

impl TimeControl for TimeOffset {
    fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        let _ = self
            .micros
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |m| {
                Some(m.saturating_add(by))
            });
    }
}

/// Where the table lives and, for [`PgLeaseStore::connect_with`], how to
/// connect. Names are checked when the store is built.
#[derive(Debug, Clone)]
pub struct PgStoreOptions {
    schema: Option<String>,
    table: String,
    application_name: Option<String>,
    max_connections: u32,
    acquire_timeout: Duration,
    migrate_on_connect: bool,
    clock: Option<Arc<dyn Clock>>,
}

impl Default for PgStoreOptions {
    fn default() -> Self {
        PgStoreOptions {
            schema: None,
            table: DEFAULT_TABLE.to_owned(),
            application_name: None,
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
            migrate_on_connect: true,
            clock: None,
        }
    }
}

impl PgStoreOptions {
    /// The defaults: table [`DEFAULT_TABLE`] found through the connection's
    /// `search_path`, 10 connections, a 10 s acquire timeout, migrations on
    /// connect.
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts the table in `schema` (created by [`PgLeaseStore::migrate`] if
    /// missing) instead of resolving it through the `search_path`. Must be a
    /// plain identifier (`[A-Za-z_][A-Za-z0-9_]*`, at most 63 bytes); it is
    /// used exactly as given, quoted.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// The table's name instead of [`DEFAULT_TABLE`]; a plain identifier, as
    /// for [`schema`](Self::schema). Its constraints and indexes get names
    /// derived from it (the default table keeps the seed's names).
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// The `application_name` of the store's connections (shown in
    /// `pg_stat_activity`); by default the URL's, if any. `connect` only.
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = Some(name.into());
        self
    }

    /// The pool's size. `connect` only: a caller's pool keeps its own.
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = max;
        self
    }

    /// How long a call waits for a connection before failing with
    /// [`StoreError::Backend`] (while the server is unreachable, say).
    /// `connect` only.
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// Whether `connect` runs [`PgLeaseStore::migrate`], and a lazily
    /// connected store migrates on its first connection (default true).
    pub fn migrate_on_connect(mut self, migrate: bool) -> Self {
        self.migrate_on_connect = migrate;
        self
    }

    /// **For tests only**: store time is read from `clock` (say a
    /// [`ManualClock`](scheduler_core::ManualClock) shared with the memory
    /// and SQLite stores) instead of the server's `now()`, so rows carry
    /// exactly the instants a test chose. Differential tests need that to
    /// compare rows field by field across stores; the server clock gives
    /// instants no test can predict.
    ///
    /// Every statement then computes store time as `'epoch'::timestamptz +
    /// $1::interval`, `$1` bound to the clock's reading (plus the
    /// [`TimeOffset`], if a test moves that too) in microseconds since the
    /// Unix epoch; a claim reads the clock once for both of its statements.
    /// The statement texts are chosen when the store is built. Production
    /// must never set this: the server is the only clock every replica
    /// shares, and replicas on their own hosts' clocks would disagree about
    /// which leases are stale and which retries are due.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }
}

/// The PostgreSQL store. Cheap to clone (clones share the pool).
#[derive(Clone)]
pub struct PgLeaseStore {
    pool: PgPool,
    sql: Arc<Sql>,
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
            .field("table", &self.sql.table_display)
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
    /// # Errors
    /// As [`connect`](Self::connect), and [`StoreError::InvalidInput`] for
    /// schema or table names that are not plain identifiers.
    pub async fn connect_with(url: &str, options: &PgStoreOptions) -> Result<Self, StoreError> {
        let sql = Arc::new(options.sql()?);
        let (pool, connect) = options.pool(url)?;
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
    /// repeats the URL) or schema or table names that are not plain
    /// identifiers. Nothing else is checked until the first call.
    pub fn connect_lazy_with(url: &str, options: &PgStoreOptions) -> Result<Self, StoreError> {
        let sql = Arc::new(options.sql()?);
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
                        sql.migrate(conn)
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
        PgLeaseStore {
            pool,
            sql: Arc::new(Sql::new(None, DEFAULT_TABLE).expect("the default table name is valid")),
            offset: TimeOffset::default(),
            clock: None,
        }
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
            sql: Arc::new(options.sql()?),
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
        &self.sql.table_display
    }

    /// Creates the schema (if one was given and is missing), the table, its
    /// constraints and indexes, or adopts them if they exist; records the
    /// version in [`MIGRATIONS_TABLE`]. Idempotent, and safe to run from
    /// many replicas at once: one transaction under a PostgreSQL advisory
    /// lock.
    ///
    /// # Errors
    /// [`StoreError::SchemaTooNew`] when the recorded version is newer than
    /// [`SCHEMA_VERSION`] (nothing is changed); [`StoreError::Backend`] when
    /// the server fails or refuses (e.g. missing privileges).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.sql.migrate(&self.pool).await
    }

    /// A statement that computes store time, with its `$1` bound now.
    fn statement(&self, sql: &Arc<str>) -> Query<'static, Postgres, PgArguments> {
        self.statement_at(sql, self.store_time())
    }

    /// A statement with `$1` bound to `time`, a value of
    /// [`store_time`](Self::store_time): several statements of one
    /// transaction share one store time by sharing it.
    fn statement_at(
        &self,
        sql: &Arc<str>,
        time: PgInterval,
    ) -> Query<'static, Postgres, PgArguments> {
        query(AssertSqlSafe(Arc::clone(sql))).bind(time)
    }

    /// The value of `$1`, the one time parameter of every statement that
    /// computes store time: the offset added to the server's `now()`, or,
    /// on a client clock, the instant itself.
    fn store_time(&self) -> PgInterval {
        match &self.clock {
            None => self.offset.interval(),
            Some(clock) => self.offset.since_epoch(clock.as_ref()),
        }
    }
}

impl PgStoreOptions {
    /// The statements for these options' table and time source.
    /// The pool's settings and the server's address from `url`.
    fn pool(&self, url: &str) -> Result<(PgPoolOptions, PgConnectOptions), StoreError> {
        let mut connect = PgConnectOptions::from_str(url).map_err(|e| {
            StoreError::InvalidInput(format!("invalid postgres connection url: {e}"))
        })?;
        if let Some(name) = &self.application_name {
            connect = connect.application_name(name);
        }
        let pool = PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.acquire_timeout)
            .test_before_acquire(true);
        Ok((pool, connect))
    }

    fn sql(&self) -> Result<Sql, StoreError> {
        let time = match self.clock {
            None => TimeSource::Server,
            Some(_) => TimeSource::Client,
        };
        Sql::with_time(self.schema.as_deref(), &self.table, time)
    }
}

/// The smallest microsecond instant at or after `t`: a bound that keeps
/// `row >= t` (and `row < t`) exact for rows stored at microsecond precision.
fn ceil_micros(t: OffsetDateTime) -> OffsetDateTime {
    let down = to_micros(t);
    if down < t {
        down + Duration::from_micros(1)
    } else {
        down
    }
}

fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Ends a transaction that wrote nothing, releasing its row locks now
/// rather than whenever the connection is next used. A failed rollback is
/// not worth reporting over the answer the caller is about to get: the
/// server rolls back a transaction whose connection is lost.
async fn abandon(tx: Transaction<'_, Postgres>) {
    if let Err(e) = tx.rollback().await {
        tracing::debug!(error = %e, "postgres rollback of an abandoned transaction failed");
    }
}

/// The row an operator's retry writes: `row` with exactly the fields the
/// `operator_retry` statement sets taken from `repaired`. Equal to
/// `repaired` as long as [`machine::operator_retry`] changes no other
/// field, which a unit test holds it to (and, in debug builds, every call).
fn operator_retry_write(row: &Execution, repaired: &Execution) -> Execution {
    Execution {
        max_attempts: repaired.max_attempts,
        next_retry_at: repaired.next_retry_at,
        error_code: repaired.error_code.clone(),
        error_msg: repaired.error_msg.clone(),
        updated_at: repaired.updated_at,
        ..row.clone()
    }
}

/// The most leases one `finish_many` statement writes: larger batches are
/// cut into statements of this many, which bounds a statement's size (at
/// most about 100 MB even were every result and message as long as
/// allowed; a few hundred kB for typical ones).
const FINISH_MANY_CHUNK: usize = 5_000;

/// The values a terminal write binds, encoded once for `finish` and
/// `finish_many` alike.
struct FinishValues<'a> {
    duration_ms: i32,
    outcome: OutcomeValues<'a>,
}

enum OutcomeValues<'a> {
    Success {
        rows_affected: i64,
        result: Json<&'a Map<String, Value>>,
    },
    Failure {
        error_code: &'static str,
        error_msg: &'a str,
        retry_after: PgInterval,
    },
}

impl<'a> FinishValues<'a> {
    /// # Errors
    /// [`StoreError::InvalidInput`] for a retry delay no interval can hold.
    fn of(finish: &'a Finish) -> Result<Self, StoreError> {
        let outcome = match finish.outcome() {
            FinishOutcome::Success {
                rows_affected,
                result,
            } => OutcomeValues::Success {
                rows_affected: *rows_affected,
                result: Json(result),
            },
            FinishOutcome::Failure {
                error_code,
                error_msg,
                retry_after,
            } => OutcomeValues::Failure {
                error_code: error_code.as_str(),
                error_msg,
                retry_after: interval("retry_after", *retry_after)?,
            },
        };
        Ok(FinishValues {
            duration_ms: finish.duration_ms(),
            outcome,
        })
    }
}

/// The items of one `finish_many` call that present one lease (id and
/// token), in call order, and the values of the first, the one written.
struct SameLease<'a> {
    items: Vec<usize>,
    values: FinishValues<'a>,
}

impl PgLeaseStore {
    /// One terminal write on its own statement: what a batch falls back to,
    /// item by item, when the server refuses one of its values.
    async fn finish_one(&self, lease: &Lease, finish: &Finish) -> Result<(), StoreError> {
        let values = FinishValues::of(finish)?;
        let statement = match values.outcome {
            OutcomeValues::Success {
                rows_affected,
                result,
            } => self
                .statement(&self.sql.finish_success)
                .bind(lease.id)
                .bind(lease.token)
                .bind(values.duration_ms)
                .bind(rows_affected)
                .bind(result),
            OutcomeValues::Failure {
                error_code,
                error_msg,
                retry_after,
            } => self
                .statement(&self.sql.finish_failure)
                .bind(lease.id)
                .bind(lease.token)
                .bind(values.duration_ms)
                .bind(error_code)
                .bind(error_msg)
                .bind(retry_after),
        };
        let done = statement
            .execute(&self.pool)
            .await
            .map_err(backend("finish"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::LeaseLost { id: lease.id });
        }
        Ok(())
    }

    /// One `finish_many` statement writing the first item of each of
    /// `chunk`'s leases. Returns the positions in `chunk` of the leases it
    /// finished.
    async fn finish_chunk(
        &self,
        items: &[(&Lease, &Finish)],
        chunk: &[SameLease<'_>],
    ) -> Result<Vec<usize>, sqlx_core::Error> {
        let n = chunk.len();
        let mut ids = Vec::with_capacity(n);
        let mut tokens = Vec::with_capacity(n);
        let mut statuses = Vec::with_capacity(n);
        let mut durations = Vec::with_capacity(n);
        let mut rows_affected = Vec::with_capacity(n);
        let mut results = Vec::with_capacity(n);
        let mut error_codes = Vec::with_capacity(n);
        let mut error_msgs = Vec::with_capacity(n);
        let mut retry_afters = Vec::with_capacity(n);
        for SameLease { items: at, values } in chunk {
            let lease = items[at[0]].0;
            ids.push(lease.id);
            tokens.push(lease.token);
            durations.push(values.duration_ms);
            match &values.outcome {
                OutcomeValues::Success {
                    rows_affected: rows,
                    result,
                } => {
                    statuses.push(Status::Success.as_str());
                    rows_affected.push(Some(*rows));
                    results.push(Some(Json(result.0)));
                    error_codes.push(None);
                    error_msgs.push(None);
                    retry_afters.push(None);
                }
                OutcomeValues::Failure {
                    error_code,
                    error_msg,
                    retry_after,
                } => {
                    statuses.push(Status::Failed.as_str());
                    rows_affected.push(None);
                    results.push(None);
                    error_codes.push(Some(*error_code));
                    error_msgs.push(Some(*error_msg));
                    retry_afters.push(Some(*retry_after));
                }
            }
        }
        let written = self
            .statement(&self.sql.finish_many)
            .bind(ids)
            .bind(tokens)
            .bind(statuses)
            .bind(durations)
            .bind(rows_affected)
            .bind(results)
            .bind(error_codes)
            .bind(error_msgs)
            .bind(retry_afters)
            .fetch_all(&self.pool)
            .await?;
        written
            .iter()
            .map(|row| {
                let ord: i64 = row.try_get("ord")?;
                usize::try_from(ord - 1)
                    .ok()
                    .filter(|&p| p < n)
                    .ok_or_else(|| {
                        sqlx_core::Error::Protocol(format!(
                            "finish many returned ordinal {ord} of {n}"
                        ))
                    })
            })
            .collect()
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
        request.refuse_unstorable()?;
        let stale = interval("stale_timeout", request.stale_timeout)?;
        let keys = request.keys;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let plan_times: Vec<OffsetDateTime> = keys.iter().map(|k| to_micros(k.plan_time)).collect();
        let key = |i: usize| (&keys[i].scope.kind, &keys[i].scope.id, plan_times[i]);

        // One canonical order (so concurrent batches take row locks in the
        // same order), duplicates dropped: the first occurrence of a key is
        // the one that may win, the others are told Conflicted.
        let mut unique: Vec<usize> = (0..keys.len()).collect();
        unique.sort_by(|&a, &b| key(a).cmp(&key(b)).then(a.cmp(&b)));
        unique.dedup_by(|later, first| key(*later) == key(*first));
        let fresh: Vec<FreshIds> = unique.iter().map(|_| FreshIds::mint()).collect();
        let kinds = |at: &[usize]| -> Vec<&str> {
            at.iter()
                .map(|&p| keys[unique[p]].scope.kind.as_str())
                .collect()
        };
        let ids = |at: &[usize]| -> Vec<&str> {
            at.iter()
                .map(|&p| keys[unique[p]].scope.id.as_str())
                .collect()
        };
        let times = |at: &[usize]| -> Vec<OffsetDateTime> {
            at.iter().map(|&p| plan_times[unique[p]]).collect()
        };
        let tokens = |at: &[usize]| -> Vec<Uuid> { at.iter().map(|&p| fresh[p].token).collect() };
        let lease = |p: usize, id, token, attempt, max_attempts, started_at, stale_after| Lease {
            id,
            token,
            job_name: request.job_name.to_owned(),
            scope: keys[unique[p]].scope.clone(),
            plan_time: plan_times[unique[p]],
            attempt,
            max_attempts,
            started_at,
            stale_after,
        };

        let err = backend("claim");
        let all: Vec<usize> = (0..unique.len()).collect();
        let mut decided: Vec<Option<ClaimOutcome>> = vec![None; unique.len()];
        // One transaction: a failure of the second statement must not leave
        // the first one's leases behind unknown to the caller, and both
        // statements decide at the same store time, as machine::claim does.
        let mut tx = self.pool.begin().await.map_err(err)?;
        // Read once: on a client clock both statements then decide at one
        // instant, as they do at the transaction's `now()` on the server's.
        let at = self.store_time();
        let inserted = self
            .statement_at(&self.sql.insert_fresh, at)
            .bind(request.job_name)
            .bind(request.runner_id)
            .bind(request.max_attempts)
            .bind(stale)
            .bind(kinds(&all))
            .bind(ids(&all))
            .bind(times(&all))
            .bind(fresh.iter().map(|f| f.id).collect::<Vec<Uuid>>())
            .bind(tokens(&all))
            .fetch_all(&mut *tx)
            .await
            .map_err(err)?;
        let position: HashMap<Uuid, usize> =
            fresh.iter().enumerate().map(|(p, f)| (f.id, p)).collect();
        for row in &inserted {
            let id: Uuid = row.try_get("id").map_err(err)?;
            let p = *position
                .get(&id)
                .ok_or_else(|| StoreError::backend_msg("postgres claim returned an unknown id"))?;
            let won = lease(
                p,
                id,
                fresh[p].token,
                1,
                request.max_attempts,
                rows::instant(row, "started_at")?,
                rows::instant(row, "stale_after")?,
            );
            decided[p] = Some(ClaimOutcome::Won(won));
        }

        let conflicted: Vec<usize> = (0..unique.len())
            .filter(|&p| decided[p].is_none())
            .collect();
        if !conflicted.is_empty() {
            let reclaimed = self
                .statement_at(&self.sql.reclaim, at)
                .bind(request.job_name)
                .bind(request.runner_id)
                .bind(stale)
                .bind(request.allow_stale_reentry)
                .bind(kinds(&conflicted))
                .bind(ids(&conflicted))
                .bind(times(&conflicted))
                .bind(tokens(&conflicted))
                .fetch_all(&mut *tx)
                .await
                .map_err(err)?;
            for row in &reclaimed {
                let p = conflicted[rows::ordinal(row, conflicted.len())?];
                let taken = lease(
                    p,
                    row.try_get("id").map_err(err)?,
                    row.try_get("lease_token").map_err(err)?,
                    row.try_get("attempt").map_err(err)?,
                    row.try_get("max_attempts").map_err(err)?,
                    rows::instant(row, "started_at")?,
                    rows::instant(row, "stale_after")?,
                );
                decided[p] = Some(match rows::status(row, "old_status")? {
                    Status::Failed => ClaimOutcome::Retried(taken),
                    _ => ClaimOutcome::Stolen(taken),
                });
            }
        }
        tx.commit().await.map_err(err)?;

        let mut outcomes = vec![ClaimOutcome::Conflicted; keys.len()];
        for (p, decision) in decided.into_iter().enumerate() {
            if let Some(outcome) = decision {
                outcomes[unique[p]] = outcome;
            }
        }
        Ok(outcomes)
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
            .fetch_optional(&self.pool)
            .await
            .map_err(backend("heartbeat"))?;
        match row {
            Some(row) => rows::instant(&row, "stale_after"),
            None => Err(StoreError::LeaseLost { id: lease.id }),
        }
    }

    async fn finish_many(&self, items: &[(&Lease, &Finish)]) -> Vec<Result<(), StoreError>> {
        let mut results: Vec<Option<Result<(), StoreError>>> =
            std::iter::repeat_with(|| None).take(items.len()).collect();
        // Values that can never be bound are refused item by item, as
        // `finish` refuses them, before anything is sent.
        let mut encoded: Vec<(usize, FinishValues<'_>)> = Vec::with_capacity(items.len());
        for (i, (_, finish)) in items.iter().enumerate() {
            match FinishValues::of(finish) {
                Ok(values) => encoded.push((i, values)),
                Err(refused) => results[i] = Some(Err(refused)),
            }
        }
        // One canonical order (by lease, so that concurrent batches lock
        // rows in the same order), and each (id, token) sent once, with the
        // values of its first item: that item is written, the later ones
        // are told LeaseLost, which is what `finish` called item by item
        // answers (the first write ends the lease, the next finds it
        // terminal). Items with the same id but different tokens are all
        // sent; at most one of them can match the row.
        let lease_of = |i: usize| (items[i].0.id, items[i].0.token);
        encoded.sort_by_key(|(i, _)| (lease_of(*i), *i));
        let mut leases: Vec<SameLease<'_>> = Vec::with_capacity(encoded.len());
        for (i, values) in encoded {
            match leases.last_mut() {
                Some(same) if lease_of(same.items[0]) == lease_of(i) => same.items.push(i),
                _ => leases.push(SameLease {
                    items: vec![i],
                    values,
                }),
            }
        }

        for chunk in leases.chunks(FINISH_MANY_CHUNK) {
            match self.finish_chunk(items, chunk).await {
                // Leases not written stay undecided: LeaseLost below.
                Ok(written) => {
                    for p in written {
                        results[chunk[p].items[0]] = Some(Ok(()));
                    }
                }
                // A value the server refuses (a retry time past the largest
                // timestamp, say) fails the whole statement, which then
                // wrote nothing: finishing the chunk's items one by one, in
                // call order, confines the failure to the items `finish`
                // fails.
                Err(e) if rows::refused_value(&e) => {
                    tracing::debug!(
                        error = %e,
                        "postgres refused a value of a batch; finishing it one by one"
                    );
                    let mut one_by_one: Vec<usize> =
                        chunk.iter().flat_map(|same| same.items.clone()).collect();
                    one_by_one.sort_unstable();
                    for i in one_by_one {
                        let (lease, finish) = items[i];
                        results[i] = Some(self.finish_one(lease, finish).await);
                    }
                }
                Err(e) => {
                    let message = format!("postgres finish many: {e}");
                    let source = Arc::new(e);
                    for i in chunk.iter().flat_map(|same| &same.items) {
                        results[*i] = Some(Err(StoreError::Backend {
                            message: message.clone(),
                            source: Some(Box::new(Arc::clone(&source))),
                        }));
                    }
                }
            }
        }
        results
            .into_iter()
            .zip(items)
            .map(|(result, (lease, _))| {
                result.unwrap_or_else(|| Err(StoreError::LeaseLost { id: lease.id }))
            })
            .collect()
    }

    async fn sweep_stale(
        &self,
        job_name: &str,
        allow_stale_reentry: bool,
    ) -> Result<u64, StoreError> {
        if job_name.contains('\0') {
            return Ok(0);
        }
        let done = self
            .statement(&self.sql.sweep)
            .bind(job_name)
            .bind(machine::STALE_SWEEP_MSG)
            .bind(machine::swept_retry_at(allow_stale_reentry))
            .execute(&self.pool)
            .await
            .map_err(backend("sweep"))?;
        Ok(done.rows_affected())
    }

    async fn latest_executions(
        &self,
        job_name: &str,
        scopes: &[Scope],
    ) -> Result<Vec<Option<LatestExecution>>, StoreError> {
        let mut views = vec![None; scopes.len()];
        let asked: Vec<usize> = (0..scopes.len())
            .filter(|&i| scopes[i].storage_problem().is_none())
            .collect();
        if asked.is_empty() || job_name.contains('\0') {
            return Ok(views);
        }
        let kinds: Vec<&str> = asked.iter().map(|&i| scopes[i].kind.as_str()).collect();
        let ids: Vec<&str> = asked.iter().map(|&i| scopes[i].id.as_str()).collect();
        let found = query(AssertSqlSafe(Arc::clone(&self.sql.latest)))
            .bind(job_name)
            .bind(kinds)
            .bind(ids)
            .fetch_all(&self.pool)
            .await
            .map_err(backend("latest executions"))?;
        for row in &found {
            views[asked[rows::ordinal(row, asked.len())?]] = Some(rows::latest(row)?);
        }
        Ok(views)
    }

    async fn retry_due(
        &self,
        job_name: &str,
        since: OffsetDateTime,
        allow_stale_reentry: bool,
        limit: usize,
    ) -> Result<Vec<RetryDue>, StoreError> {
        if job_name.contains('\0') {
            return Ok(Vec::new());
        }
        let err = backend("retry due");
        let found = self
            .statement(&self.sql.retry_due)
            .bind(job_name)
            .bind(ceil_micros(since))
            .bind(allow_stale_reentry)
            .bind(limit_param(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(err)?;
        found
            .iter()
            .map(|row| {
                let get = |c| row.try_get::<String, _>(c).map_err(err);
                Ok(RetryDue {
                    scope: Scope::new(get("scope_kind")?, get("scope_id")?),
                    plan_time: rows::instant(row, "plan_time")?,
                    operator_retry: row.try_get("operator_retry").map_err(err)?,
                })
            })
            .collect()
    }
}

#[async_trait]
impl ExecutionAudit for PgLeaseStore {
    async fn get_execution(&self, id: Uuid) -> Result<Option<Execution>, StoreError> {
        let row = query(AssertSqlSafe(Arc::clone(&self.sql.get)))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend("get execution"))?;
        row.as_ref().map(rows::execution).transpose()
    }

    async fn list_executions(
        &self,
        filter: &ExecutionFilter,
    ) -> Result<Vec<Execution>, StoreError> {
        let nul = filter.job_name.as_ref().is_some_and(|j| j.contains('\0'))
            || filter
                .scope
                .as_ref()
                .is_some_and(|s| s.storage_problem().is_some());
        if nul {
            return Ok(Vec::new());
        }
        // Only fixed fragments are appended; every value is bound.
        let mut sql = QueryBuilder::<Postgres>::new(self.sql.select_all.as_str());
        sql.push(" WHERE true");
        if let Some(job) = &filter.job_name {
            sql.push(" AND job_name = ").push_bind(job.clone());
        }
        if let Some(scope) = &filter.scope {
            sql.push(" AND scope_kind = ").push_bind(scope.kind.clone());
            sql.push(" AND scope_id = ").push_bind(scope.id.clone());
        }
        if let Some(status) = filter.status {
            sql.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(from) = filter.plan_time_from {
            sql.push(" AND plan_time >= ").push_bind(ceil_micros(from));
        }
        sql.push(" ORDER BY plan_time DESC, id DESC");
        if let Some(limit) = filter.limit {
            sql.push(" LIMIT ").push_bind(limit_param(limit));
        }
        let found = sql
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(backend("list executions"))?;
        found.iter().map(rows::execution).collect()
    }

    async fn scope_summaries(
        &self,
        job_name: Option<&str>,
    ) -> Result<Vec<ScopeSummary>, StoreError> {
        // One statement (one snapshot, one store time) whatever the number
        // of jobs and scopes; see schema::summaries for how it classifies.
        let found = match job_name {
            // No stored name has a NUL: nothing to summarise, as the memory
            // store would answer.
            Some(job) if job.contains('\0') => return Ok(Vec::new()),
            Some(job) => {
                self.statement(&self.sql.summaries_job)
                    .bind(job)
                    .fetch_all(&self.pool)
                    .await
            }
            None => {
                self.statement(&self.sql.summaries_all)
                    .fetch_all(&self.pool)
                    .await
            }
        }
        .map_err(backend("scope summaries"))?;
        found.iter().map(rows::summary).collect()
    }

    async fn retry_execution(&self, id: Uuid) -> Result<Execution, StoreError> {
        let err = backend("retry execution");
        // One transaction: the row stays locked from the read the rule
        // decides on to the write, so no claim, finish or prune interleaves,
        // and the rule is applied at the store time of that read.
        let mut tx = self.pool.begin().await.map_err(err)?;
        let locked = self
            .statement(&self.sql.lock_for_retry)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(err)?;
        let Some(locked) = locked else {
            abandon(tx).await;
            return Err(StoreError::NotFound { id });
        };
        let row = rows::execution(&locked)?;
        let now = rows::instant(&locked, "store_now")?;
        // The rule grants attempt + 1 when no attempt is left; past the
        // largest INTEGER (a row of another writer could hold it) there is
        // no attempt to grant, and the rule's arithmetic must not overflow.
        if row.status == Status::Failed && row.attempt == i32::MAX {
            abandon(tx).await;
            return Err(StoreError::Conflict(format!(
                "its attempt {} is the largest storable; no further attempt can be granted",
                row.attempt
            )));
        }
        // The rule itself lives in the core: a RUNNING or SUCCESS row is
        // refused with its reason, and nothing is written.
        let repaired = match machine::operator_retry(&row, now) {
            Ok(repaired) => repaired,
            Err(why) => {
                abandon(tx).await;
                return Err(StoreError::Conflict(why.to_owned()));
            }
        };
        debug_assert_eq!(operator_retry_write(&row, &repaired), repaired);
        // max_attempts >= attempt + 1 > attempt when the rule grants an
        // attempt, else unchanged: the attempt check constraint holds.
        let written = query(AssertSqlSafe(Arc::clone(&self.sql.operator_retry)))
            .bind(id)
            .bind(repaired.max_attempts)
            .bind(repaired.next_retry_at)
            .bind(repaired.error_code.as_deref())
            .bind(repaired.error_msg.as_deref())
            .bind(repaired.updated_at)
            .fetch_optional(&mut *tx)
            .await
            .map_err(err)?;
        let Some(written) = written else {
            // Unreachable under the row lock; said plainly should it ever be.
            abandon(tx).await;
            return Err(StoreError::Conflict(
                "it stopped being FAILED while it was being repaired".to_owned(),
            ));
        };
        let stored = rows::execution(&written)?;
        tx.commit().await.map_err(err)?;
        Ok(stored)
    }

    async fn prune_finished(
        &self,
        finished_before: OffsetDateTime,
        limit: usize,
        dry_run: bool,
    ) -> Result<u64, StoreError> {
        let err = backend("prune");
        // Rows are stored at microsecond precision, so `finished_at < t`
        // is `finished_at < ceil_micros(t)`, whatever the driver does with
        // the nanoseconds of `t`.
        let before = ceil_micros(finished_before);
        if dry_run {
            let row = query(AssertSqlSafe(Arc::clone(&self.sql.prune_count)))
                .bind(before)
                .fetch_one(&self.pool)
                .await
                .map_err(err)?;
            let matching: i64 = row.try_get(0).map_err(err)?;
            return Ok(u64::try_from(matching).unwrap_or(0));
        }
        // One bounded statement (see schema.rs): callers loop until it
        // deletes nothing.
        let done = query(AssertSqlSafe(Arc::clone(&self.sql.prune)))
            .bind(before)
            .bind(limit_param(limit))
            .execute(&self.pool)
            .await
            .map_err(err)?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn lower_bounds_round_up_to_the_next_microsecond() {
        let exact = datetime!(2026-01-01 00:00:00.000001 UTC);
        assert_eq!(ceil_micros(exact), exact);
        assert_eq!(
            ceil_micros(datetime!(2026-01-01 00:00:00.0000011 UTC)),
            datetime!(2026-01-01 00:00:00.000002 UTC)
        );
    }

    /// The operator-retry statement writes five fields; the rule must change
    /// no other, whatever the FAILED row looks like.
    #[test]
    fn operator_retry_changes_only_the_fields_the_statement_writes() {
        let t0 = datetime!(2026-03-01 12:00 UTC);
        let later = datetime!(2026-03-01 13:00 UTC);
        let failed = Execution {
            id: Uuid::now_v7(),
            job_name: "job".into(),
            scope: Scope::new("tenant", "a"),
            plan_time: t0,
            status: Status::Failed,
            attempt: 2,
            max_attempts: 3,
            next_retry_at: Some(t0),
            runner_id: Some("r1".into()),
            lease_token: Uuid::new_v4(),
            heartbeat_at: Some(t0),
            stale_after: Some(t0),
            started_at: Some(t0),
            finished_at: Some(t0),
            duration_ms: Some(5),
            rows_affected: Some(9),
            result: serde_json::Map::from_iter([("k".to_owned(), 1.into())]),
            error_code: Some("handler_error".into()),
            error_msg: Some("boom".into()),
            created_at: t0,
            updated_at: t0,
        };
        let shapes = [
            failed.clone(),
            Execution {
                attempt: 3,
                error_code: Some("stale_timeout".into()),
                next_retry_at: None,
                ..failed.clone()
            },
            Execution {
                attempt: 7,
                max_attempts: 7,
                error_code: None,
                error_msg: None,
                finished_at: None,
                ..failed.clone()
            },
        ];
        for row in &shapes {
            let repaired = machine::operator_retry(row, later).unwrap();
            assert_eq!(operator_retry_write(row, &repaired), repaired, "{row:?}");
            assert!(
                repaired.max_attempts > repaired.attempt,
                "an attempt is left"
            );
        }
    }

    #[test]
    fn time_offsets_are_shared_by_clones_and_saturate() {
        let offset = TimeOffset::new();
        let clone = offset.clone();
        clone.advance(Duration::from_secs(90));
        assert_eq!(offset.get(), Duration::from_secs(90));
        assert_eq!(offset.interval().microseconds, 90_000_000);
        offset.advance(Duration::MAX);
        assert_eq!(offset.interval().microseconds, i64::MAX);
    }

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

    fn tokio_runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }
}
