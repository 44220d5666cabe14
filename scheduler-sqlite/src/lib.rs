//! A [`LeaseStore`] on SQLite: the embedded backend, for one process or for
//! several processes on one host sharing a database file.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use scheduler_core::{ExecutionFilter, JobOutput, JobSpec, ExecutionAudit, Manager, ManagerOptions, Scopes, Status};
//! use scheduler_sqlite::SqliteLeaseStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! // Every process on the host that opens this file shares its jobs' leases.
//! let store = Arc::new(SqliteLeaseStore::open(dir.path().join("jobs.db")).await?);
//! // or: SqliteLeaseStore::connect("sqlite:jobs.db"), connect("sqlite::memory:")
//!
//! let manager = Manager::new(store.clone(), ManagerOptions::default()).expect("valid manager options");
//! manager.register(
//!     JobSpec::new("rollup", Scopes::global(), |ctx| async move {
//!         println!("rolling up {} at {}", ctx.scope(), ctx.plan_time());
//!         Ok(JobOutput::rows(42))
//!     })
//!     .cadence(Duration::from_secs(300)),
//! )?;
//! let report = manager.run_once().await;
//! assert_eq!(report.succeeded, 1);
//!
//! let rows = store.list_executions(&ExecutionFilter::default()).await?;
//! assert_eq!((rows[0].status, rows[0].rows_affected), (Status::Success, Some(42)));
//! # Ok(())
//! # }
//! ```
//!
//! # Where to go next
//!
//! - Several processes on one host may open the same file: each plan still
//!   runs once. For replicas on several hosts, use `scheduler-postgres`.
//! - [`SqliteStoreOptions`] sets the lock budget and an injected clock.
//! - The `scheduler` command (crate `scheduler-cli`) reads the same file:
//!   `scheduler status --database sqlite:jobs.db`.
//!
//! # Transactional jobs: exactly-once effects in this database
//!
//! A job whose effects are writes to this same database file (a rollup
//! table, a usage snapshot, a digest queue) can make them exactly-once:
//! [`SqliteLeaseStore::transactional_job`] runs its handler on the store's
//! writer thread with a [`rusqlite::Transaction`](https://docs.rs/rusqlite/0.37/rusqlite/struct.Transaction.html), writes the run's guarded
//! SUCCESS in that transaction, and commits both together. A failed,
//! panicking, timed-out or taken-over run rolls its writes back, and its
//! retry writes them again, once. What the handler does outside the
//! transaction (a request, a file, another database) stays at-least-once;
//! see the method for the rules, above all: the handler holds the
//! database's one writer while it runs, so keep it short and do slow work
//! elsewhere. The `transactional` example rolls up per tenant over a few
//! ticks.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use scheduler_core::{JobOutput, Manager, ManagerOptions, Scopes};
//! use scheduler_sqlite::rusqlite::params;
//! use scheduler_sqlite::SqliteLeaseStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = Arc::new(SqliteLeaseStore::open(dir.path().join("jobs.db")).await?);
//! let manager = Manager::new(store.clone(), ManagerOptions::default()).expect("valid manager options");
//! manager.register(
//!     store
//!         .transactional_job("snapshot", Scopes::global(), |ctx, tx| {
//!             // Every write made with `tx` commits with the run's SUCCESS,
//!             // or not at all.
//!             tx.execute_batch(
//!                 "CREATE TABLE IF NOT EXISTS snapshots (plan_time TEXT PRIMARY KEY, jobs INTEGER)",
//!             )?;
//!             let jobs: i64 =
//!                 tx.query_row("SELECT count(*) FROM sys_cron_executions", [], |r| r.get(0))?;
//!             tx.execute(
//!                 "INSERT INTO snapshots (plan_time, jobs) VALUES (?1, ?2)",
//!                 params![ctx.plan_time().to_string(), jobs],
//!             )?;
//!             Ok(JobOutput::rows(1))
//!         })
//!         .cadence(Duration::from_secs(3600)),
//! )?;
//! assert_eq!(manager.run_once().await.succeeded, 1);
//! # Ok(())
//! # }
//! ```
//!
//! # Design
//!
//! - **Threads.** Each connection lives on a dedicated thread fed by a
//!   command channel (sqlx's model), so blocking SQLite calls never run on
//!   the async runtime. A file database has a writer connection and a reader
//!   connection (WAL lets reads run beside a writer); `:memory:` has only one,
//!   since a second connection would open a different database. A worker that
//!   panics or stops answers [`StoreError::Backend`], never a hang.
//! - **Locking.** The journal is WAL with `synchronous=NORMAL`. Every
//!   transaction that writes starts with `BEGIN IMMEDIATE`, so it takes the
//!   write lock before reading anything and two processes can never deadlock
//!   upgrading read locks. A busy database is waited for (`busy_timeout`),
//!   then retried with backoff for up to
//!   [`max_lock_wait`](SqliteStoreOptions::max_lock_wait): contention is never
//!   reported as a lost claim, only as a [`StoreError::Backend`] once the
//!   budget is spent.
//! - **One transaction per call.** A batch claim is one IMMEDIATE
//!   transaction however many keys it has: per key, an
//!   `INSERT ... ON CONFLICT DO NOTHING`, and when the key exists, one
//!   guarded reclaim `UPDATE` whose `WHERE` is exactly [`machine::claim`]'s
//!   guards (the retry rule or the takeover rule). Duplicate keys within a
//!   batch see the first one's row, so only one of them wins. A batch of
//!   terminal writes ([`finish_many`]) is likewise one IMMEDIATE
//!   transaction, one commit: the guarded `UPDATE` of one lease per item, at
//!   one store time, each item answered on its own.
//! - **The attempts log** (`sys_cron_execution_attempts`, a `WITHOUT ROWID`
//!   table keyed by execution and attempt number) is appended in the
//!   transaction of the transition that ends an attempt: after a finish,
//!   read back from the row it wrote; after the sweep, from what its
//!   `RETURNING` names; before a takeover's reclaim, by an
//!   `INSERT ... SELECT` under the same takeover rule, since the reclaim's
//!   `RETURNING` sees only the new attempt. A prune deletes the logs of the
//!   rows it deletes in its transaction. [`attempts_of`] reads a page of
//!   executions' logs in one statement through the primary key.
//! - **Operator calls.** [`scope_summaries`] is one read statement
//!   (conditional aggregates per scope, then the latest and last SUCCESS
//!   rows by their unique key), equal to [`ScopeSummary::of_rows`] at one
//!   store time. [`retry_execution`] reads the row, applies
//!   [`machine::operator_retry`] and writes the result back in one
//!   IMMEDIATE transaction. [`prune_finished`] deletes through
//!   `idx_sys_cron_exec_finished` in one `DELETE`, oldest first, and their
//!   attempts logs by their ids, in one transaction.
//! - **The replica registry** is a table of its own, `sys_cron_replicas`
//!   (one row per runner id, its jobs as JSON text); an announcement is one
//!   upsert in an IMMEDIATE transaction, the read one statement in runner-id
//!   order.
//! - **Steering** (`docs/contract.md` §11). Executions carry an `origin`
//!   and a `control_id` (migration 5; both NULL on the rows of a scheduled
//!   plan, as the seed writes them), and controls are rows of
//!   `sys_cron_controls`. A claim starts with admission: one read of the
//!   job's pauses in force and the live runs of the batch's scopes, to which
//!   [`machine::admit`] answers per key; the row of a skipped plan, and the
//!   end of a run `cancel_other` replaced ([`machine::cancel_for_overlap`],
//!   logged as its attempt's end), are written in the claim's transaction.
//!   SQLite's one writer is the per-job lock the contract asks for:
//!   [`add_control`] writes under it too, so a pause stored is in force for
//!   every claim that commits after it. [`update_control`] reads, applies
//!   [`ControlChange::apply`] and writes back in one IMMEDIATE transaction.
//! - **Stored schedules** (`docs/contract.md` §12) are rows of
//!   `sys_cron_schedules` (migration 6, which also gives the replica
//!   registry its `kinds`), the definition as JSON text. A write reads,
//!   decides with `job::apply_write` and writes in one IMMEDIATE
//!   transaction, then wakes this process's managers; a stored schedule's
//!   claim reads the version first in its own transaction and claims
//!   nothing when it changed (a compiled-in job's claim reads nothing more).
//! - **Transactional jobs** (`docs/contract.md` §13) run their handler on
//!   the writer thread between the `BEGIN IMMEDIATE` and the `COMMIT` of
//!   one transaction, then `finish.sql` and `finish_log.sql` as a one-item
//!   [`finish_many`] runs them; only the `BEGIN` is retried while the
//!   database is busy, so a handler runs at most once per call. A panic is
//!   caught there (the transaction rolls back, the thread stays in
//!   service) and re-raised in the run's task.
//! - **Store time** is the host clock (or the injected [`Clock`]), in
//!   microseconds, read after the write lock is taken and passed to the
//!   statements as a parameter.
//! - **Schema.** The table of the contract (`docs/contract.md` §3) with the
//!   seed's column, constraint and index names (the seed: the Go scheduler
//!   this design was ported from, §1 there); instants are INTEGER
//!   microseconds since the Unix epoch, UUIDs hyphenated lowercase TEXT,
//!   `result` JSON TEXT. Versioned migrations are embedded and run on open
//!   (and by [`SqliteLeaseStore::migrate`]); a database migrated by a newer
//!   version is refused with [`StoreError::SchemaTooNew`].
//! - **Bad input.** A file that is not a database, a corrupt one, a missing
//!   or read-only directory, or a file another program keeps locked gives a
//!   [`StoreError::Backend`] whose message says which, at open or at the
//!   call; a failed transaction rolls back whole.
//!
//! A cancelled call (its future dropped) still runs to its end on the worker
//! thread: a claim committed that way leaves leases nobody runs, which go
//! stale like those of a crashed replica.
//!
//! # Layout
//!
//! The statements live in `sql/`, one per file, under the same names as
//! `scheduler-postgres`'s, so the two stores read side by side; the rules
//! that guard several of them are written once, as fragments
//! (`sql/fragments/retry_eligible.sql`, `steal_eligible.sql`).
//!
//! [`Clock`]: scheduler_core::Clock
//! [`ControlChange::apply`]: scheduler_core::model::ControlChange::apply
//! [`add_control`]: scheduler_core::ExecutionAudit::add_control
//! [`machine::admit`]: scheduler_core::machine::admit
//! [`machine::cancel_for_overlap`]: scheduler_core::machine::cancel_for_overlap
//! [`update_control`]: scheduler_core::LeaseStore::update_control
//! [`LeaseStore`]: scheduler_core::LeaseStore
//! [`ScopeSummary::of_rows`]: scheduler_core::ScopeSummary::of_rows
//! [`StoreError::Backend`]: scheduler_core::StoreError::Backend
//! [`StoreError::SchemaTooNew`]: scheduler_core::StoreError::SchemaTooNew
//! [`attempts_of`]: scheduler_core::ExecutionAudit::attempts_of
//! [`finish_many`]: scheduler_core::LeaseStore::finish_many
//! [`machine::claim`]: scheduler_core::machine::claim
//! [`machine::operator_retry`]: scheduler_core::machine::operator_retry
//! [`prune_finished`]: scheduler_core::ExecutionAudit::prune_finished
//! [`retry_execution`]: scheduler_core::ExecutionAudit::retry_execution
//! [`scope_summaries`]: scheduler_core::ExecutionAudit::scope_summaries
#![warn(missing_docs)]

/// A claim's admission: its read, a skipped plan's row, a replaced run's end.
mod admission;
/// The attempts log's append.
mod attempts;
/// The batch claim.
mod claim;
/// How values are stored, and rows decoded.
mod codec;
/// Steering's controls: add, change, read, progress.
mod controls;
/// Driver errors as `StoreError`s, and the bounded retry of a busy database.
mod error;
/// The batched terminal write.
mod finish;
/// The operator's retry and pruning.
mod operator;
/// [`SqliteStoreOptions`]: how to open a store.
mod options;
/// The planning and audit reads.
mod reads;
/// The replica registry.
mod replicas;
/// Stored schedules: read, write, a claim's version check.
mod schedules;
/// The embedded migrations.
mod schema;
/// Every statement, rendered from `sql/`.
mod statements;
/// [`SqliteLeaseStore`], how calls run on its connections, the trait impls.
mod store;
/// Transactional jobs: effects and SUCCESS in one transaction.
mod transactional;
/// One connection per dedicated thread.
mod worker;

pub use crate::options::SqliteStoreOptions;
pub use crate::schema::SCHEMA_VERSION;
pub use crate::store::SqliteLeaseStore;
/// The `rusqlite` this store is built with: a
/// [transactional job](SqliteLeaseStore::transactional_job)'s handler is
/// given its [`Transaction`](https://docs.rs/rusqlite/0.37/rusqlite/struct.Transaction.html).
pub use rusqlite;

/// The repository's README, whose Rust example (a whole `main.rs` on SQLite)
/// is compiled as a doctest here, so it keeps building as pasted.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
