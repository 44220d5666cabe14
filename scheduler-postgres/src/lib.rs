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
//! # Exactly-once effects
//!
//! Most jobs are at-least-once: a run whose runner vanished, or whose
//! terminal write was lost with its connection, runs again, so a job that
//! writes elsewhere fences its writes with [`RunContext::lease_token`]. A
//! job whose effects go to **this same database** can do better:
//! [`PgLeaseStore::transactional_job`] hands its handler a `sqlx`
//! transaction, and once the handler gives it back, the store writes the
//! run's guarded SUCCESS (execution id, lease token, status RUNNING, and
//! its record in the attempts log) in that transaction and commits. The
//! effects and the SUCCESS land together or not at all
//! (`docs/contract.md` §13).
//!
//! ```no_run
//! use std::time::Duration;
//! use scheduler_core::{JobOutput, Scopes};
//! use scheduler_postgres::PgLeaseStore;
//!
//! # fn demo(store: &PgLeaseStore) {
//! let job = store
//!     .transactional_job("daily_rollup", Scopes::global(), |ctx, mut tx| async move {
//!         let done = sqlx_core::query::query(
//!             "INSERT INTO rollups (day, total) \
//!              SELECT $1::date, sum(amount) FROM orders WHERE created_at::date = $1::date",
//!         )
//!         .bind(ctx.plan_time())
//!         .execute(&mut *tx)
//!         .await?;
//!         Ok((JobOutput::rows(i64::try_from(done.rows_affected())?), tx))
//!     })
//!     .cadence(Duration::from_secs(86_400));
//! # let _ = job; }
//! ```
//!
//! With the `sqlx` facade (at this crate's version, 0.9) the types are the
//! same: the transaction is a `sqlx::Transaction<'static, sqlx::Postgres>`,
//! and [`PgLeaseStore::transactional_job_on`] takes a `sqlx::PgPool` of the
//! caller's, which must reach the same database (the SUCCESS is written to
//! the store's table on that pool's connection).
//!
//! **Exactly once**: every write the handler makes **through the
//! transaction it was given**. They commit only with the run's SUCCESS, so
//! for each plan they are committed by exactly one run, whatever happens:
//!
//! - the handler fails, panics, times out or is cancelled (lease lost,
//!   shutdown): the transaction rolls back, the failure is recorded as for
//!   any job, and the retry writes the effects afresh;
//! - the lease was taken over while the handler ran (a run longer than its
//!   stale timeout): the guard refuses the SUCCESS, the transaction rolls
//!   back, the run is reported lease-lost, and the new holder's run writes;
//! - the connection dies at the commit: the commit happened (effects and
//!   SUCCESS, and the failure the manager then records is refused) or did
//!   not (neither, and the run is retried).
//!
//! **Still at-least-once**: everything else the handler does. Writes on
//! another connection or pool, to another database, calls to other
//! services, messages sent, files written, and reads used to decide
//! something outside: a run whose transaction rolls back may already have
//! done them, and its retry does them again. Fence those with the lease
//! token as before, or move them behind the transaction (an outbox table
//! written in it, drained by another job). Sequences consumed by rolled
//! back inserts stay consumed.
//!
//! The transaction is READ COMMITTED and holds one connection of its pool
//! for the whole run: heartbeats keep running on the pool's other
//! connections, so a store running transactional jobs needs at least one
//! connection per concurrent transactional run plus the manager's own. Do
//! not raise its isolation level (the run's heartbeats update its row,
//! which would fail the guarded write with a serialization error), and do
//! not commit or roll it back in the handler. The run's row is locked by
//! the guarded write only for the moment between it and the commit; that
//! write (`finish.sql`) stamps `finished_at` with the moment it runs
//! (`clock_timestamp()`), not with the transaction's start. For tests
//! without a server, `scheduler-memory` offers the same shape of job on an
//! in-memory effects table. `examples/transactional.rs` runs one.
//!
//! # TLS
//!
//! The `tls` feature (on by default) encrypts connections with rustls, in
//! pure Rust: no OpenSSL on the host. The URL says how, with libpq's
//! parameters:
//!
//! | `sslmode` | TLS | the server's certificate |
//! |---|---|---|
//! | `disable` | never | |
//! | `allow` | never (libpq would try TLS when plain text is refused) | |
//! | `prefer` (the default) | when the server offers it | not checked |
//! | `require` | always; a server without TLS is refused | not checked, unless a root certificate is named: then as `verify-ca` |
//! | `verify-ca` | always | signed by a trusted CA |
//! | `verify-full` | always | signed by a trusted CA, and naming the URL's host |
//!
//! `sslrootcert=/path/ca.pem` adds the CA (PEM, one or more certificates)
//! that signed the server's certificate to the trusted ones, which are
//! otherwise Mozilla's public CAs (webpki-roots, built in; the host's own
//! store is not read). So a managed database whose certificate a public CA
//! signed needs no `sslrootcert`, and a private CA, the usual case, is
//! named as libpq users name it:
//!
//! ```text
//! postgres://scheduler@db.internal:5432/app?sslmode=verify-full&sslrootcert=/etc/scheduler/db-ca.pem
//! ```
//!
//! `sslcert` and `sslkey` give a client certificate and its key (PEM, the
//! key not encrypted). `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT` and
//! `PGSSLKEY` are read when the URL does not say, as libpq reads them.
//! Where this store differs from libpq: it never reads
//! `~/.postgresql/root.crt`, and it trusts the public CAs beside an
//! `sslrootcert` file rather than that file alone; `allow` never tries TLS,
//! and `prefer` does not fall back to plain text when a TLS handshake
//! fails; `sslpassword` is refused (an encrypted key cannot be used); and
//! `sslrootcert=system` is not understood (leave it out: the public CAs are
//! trusted anyway).
//!
//! To build without TLS, turn the default features off:
//!
//! ```toml
//! scheduler-postgres = { version = "0.1", default-features = false }
//! ```
//!
//! Connections then use plain text (`prefer`, the default, settles for
//! it), and a URL asking for `require` or stricter fails to connect.
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
//! - **A batch claim** is one transaction. It first takes the job's claim
//!   lock (below), then reads, in a statement of its own, what admission
//!   weighs ([`machine::admit`]): the job's pauses in force and, unless the
//!   overlap policy is `allow_all`, the live runs of the batch's scopes
//!   (one index probe per scope; on a partitioned table, every live run of
//!   the job). Then, for the keys
//!   admission lets through, an `INSERT ... SELECT FROM unnest(...) ON
//!   CONFLICT DO NOTHING` for fresh keys and, only for the keys that
//!   conflicted, one guarded `UPDATE ... FROM unnest(...)` for retries and
//!   takeovers; an insert of the skipped plans' rows and a guarded update
//!   ending the runs a `cancel_other` claim replaced (logged as attempts)
//!   are sent only when there are any. Keys are sent in one canonical order
//!   so that concurrent batches lock rows in the same order. Should
//!   PostgreSQL still pick a deadlock victim (possible only between batches
//!   reclaiming the same rows), that claim fails with a
//!   [`StoreError::Backend`] and changes nothing.
//! - **The claim lock** (`docs/contract.md` §11) is a transaction-level
//!   advisory lock (`pg_advisory_xact_lock`) on a 64-bit key hashed from
//!   the executions table's oid and the job name
//!   (`hashtextextended(oid || ':' || job, 0)`). Every claim of the job
//!   takes it, and so does [`ExecutionAudit::add_control`], so that once a
//!   pause is committed no claim that commits later grants a lease it
//!   covers: the claim reads the pauses in a statement after the one that
//!   obtained the lock, whose READ COMMITTED snapshot sees the pause (both
//!   transactions begin READ COMMITTED explicitly, whatever the server's
//!   default: under REPEATABLE READ the snapshot would predate the wait). A
//!   claim under `allow_all` takes it shared (it must exclude an addition,
//!   not other claims, and weighs no live run); any other takes it
//!   exclusively, so that claims of one job see each other's runs. Keys of
//!   two jobs (or of a job and another application's advisory lock) may
//!   collide: they then only serialise each other, which costs time and
//!   never correctness.
//! - **Controls** live in a table beside the executions table
//!   (`sys_cron_controls`, or `T_controls`; migration 5, which also gives
//!   the executions table its nullable `origin` and `control_id` columns
//!   without rewriting it). An addition and a change are each one
//!   transaction (a change: `SELECT ... FOR UPDATE`,
//!   [`ControlChange::apply`] in Rust, `UPDATE`), and each sends a `NOTIFY`
//!   on [`CONTROLS_CHANNEL`] with the job's name, delivered when it commits.
//! - **Many terminal writes** ([`LeaseStore::finish_many`]) are one
//!   `UPDATE ... FROM unnest(...)` of parallel plain arrays (ids, tokens,
//!   and the columns of `Finish::columns`) at one store time, setting exactly what
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
//! - **The attempts log** (`sys_cron_execution_attempts`, or `T_attempts`
//!   for a table `T`; migration 3) is appended by the very statement of the
//!   transition that ends an attempt: the finishes, the sweep and the
//!   claim's reclaim each run as `WITH ended AS (UPDATE ... RETURNING ...),
//!   logged AS (INSERT INTO attempts SELECT ... FROM ended ON CONFLICT DO
//!   NOTHING) SELECT ...`, the insert written once
//!   (`sql/fragments/log_ended.sql`); the reclaim logs a takeover from the
//!   row as its locking CTE read it. A prune deletes the records of the
//!   rows it deletes in its own statement. There is no foreign key to the
//!   executions table: its check on every record appended made the batched
//!   finish about 30% slower (`docs/contract.md` §10), so a row another
//!   writer deletes (the seed's retention) leaves its records behind, where
//!   nothing reads them.
//!   [`ExecutionAudit::attempts_of`] reads a page of executions' logs in
//!   one statement through the primary key.
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
//!   time (so the rule lives in one place), and an `UPDATE` writing back
//!   every column the rule computed, guarded on `status = 'FAILED'` and the
//!   token read, as the SQLite store writes it.
//! - **Pruning** deletes at most `limit` rows per statement, oldest
//!   `finished_at` first, through the partial index on `finished_at`, so a
//!   large table is never locked for long, with their attempts logs; a dry
//!   run is one `count(*)`. The rows are found again by
//!   `= ANY (ARRAY(...))` of their ids and plan times, which is a probe of
//!   the primary key on either shape of table (below).
//! - **Partitioned executions** ([`PgStoreOptions::partitioned`],
//!   `docs/contract.md` §10) are for new installations whose history runs
//!   to tens of millions of rows: the table is created partitioned by range
//!   of `plan_time` (a day or a week per partition, in UTC) with a DEFAULT
//!   partition, so an insert never fails, and the primary key becomes
//!   `(id, plan_time)` because PostgreSQL requires the partition key in
//!   every unique constraint (the plan's unique key already holds it). The
//!   current partition and [`PARTITIONS_AHEAD`] more are created at
//!   [`PgLeaseStore::migrate`], at every prune and by
//!   [`PgLeaseStore::create_partitions`] (a lazily connected store, whose
//!   first connection migrates without a store at hand, creates them at its
//!   first prune: until then plans land in the DEFAULT partition). A prune
//!   first drops the oldest partition ending before its cutoff whose every
//!   row is prunable and can no longer change (no RUNNING row, no FAILED
//!   row with a retry pending, nothing finished at or after the cutoff),
//!   checked again and detached under the table's exclusive lock, taken
//!   with a 100 ms `lock_timeout` so claims never queue long behind it;
//!   its attempts log then goes in pages of `limit` executions and the
//!   partition is dropped, the call returning its rows. Only when no
//!   partition can go does it delete rows one by one, as on an
//!   unpartitioned table: the partition straddling the cutoff, those a
//!   live or retryable row keeps, the DEFAULT partition. Every statement
//!   is the same text on both shapes: the writes to a lease (finish, batch
//!   finish, heartbeat, a claim's retry or takeover) match the row's plan
//!   time besides its id, which takes them to its one partition; the
//!   statements by id alone (`get_execution`, `retry_execution`, the
//!   cancellation of the runs a `cancel_other` claim replaces) probe each
//!   partition's primary key, one index descent per partition.
//!   A table that exists is never repartitioned: the option refuses an
//!   unpartitioned one, and a store without it adopts a partitioned one
//!   (its prunes, `scheduler prune`'s too, drop partitions, found in the
//!   catalog; only the partitions ahead need the option).
//! - **The replica registry** is a table of its own beside the executions
//!   table (`sys_cron_replicas` for the default table, derived from the
//!   table's name otherwise), migrated with it (version 4): one row per
//!   runner id, its jobs as `jsonb`. An announcement is one
//!   `INSERT ... ON CONFLICT DO UPDATE` at store time; the read is one
//!   statement in runner-id byte order.
//! - **Stored schedules** (`docs/contract.md` §12) live in a table beside
//!   the executions table (`sys_cron_schedules`, or `T_schedules`;
//!   migration 6, which also gives the replica registry its `kinds`), the
//!   definition as `jsonb`, the name under `COLLATE "C"` so the primary key
//!   lists them in byte order. A write is one transaction: the job's claim
//!   lock (exclusive), the row read with `clock_timestamp()` (the time the
//!   lock was granted, not the transaction's start), `job::apply_write`
//!   in Rust, the upsert or delete, and a `NOTIFY` on [`CONTROLS_CHANNEL`].
//!   A stored schedule's claim reads the version under the same lock
//!   before admission and claims nothing when it changed; a compiled-in
//!   job's claim sends no statement more.
//! - **Strings with NUL** can never be stored: a claim refuses them with
//!   [`StoreError::InvalidInput`]; a read finds nothing for them, as the
//!   memory store does.
//!
//! # Layout
//!
//! The statements live in `sql/`, one per file, under the same names as
//! `scheduler-sqlite`'s, so the two stores read side by side; the rules that
//! guard several of them are written once, as fragments
//! (`sql/fragments/retry_eligible.sql`, `steal_eligible.sql`). They are
//! rendered once per store, for its table and time source.
//!
//! [`ExecutionAudit::attempts_of`]: scheduler_core::ExecutionAudit::attempts_of
//! [`RunContext::lease_token`]: scheduler_core::RunContext::lease_token
//! [`LeaseStore`]: scheduler_core::LeaseStore
//! [`LeaseStore::finish_many`]: scheduler_core::LeaseStore::finish_many
//! [`StoreError::Backend`]: scheduler_core::StoreError::Backend
//! [`StoreError::InvalidInput`]: scheduler_core::StoreError::InvalidInput
//! [`StoreError::LeaseLost`]: scheduler_core::StoreError::LeaseLost
//! [`machine::operator_retry`]: scheduler_core::machine::operator_retry
//! [`machine::admit`]: scheduler_core::machine::admit
//! [`ExecutionAudit::add_control`]: scheduler_core::ExecutionAudit::add_control
//! [`ControlChange::apply`]: scheduler_core::model::ControlChange::apply
#![warn(missing_docs)]

/// The batch claim.
mod claim;
/// What the tests that need a server share (`tests/common`), for the
/// unit tests that need one: they test statements the crate keeps private.
#[cfg(test)]
#[path = "../tests/common/mod.rs"]
mod common;
/// The first connection of an eager connect, and why it failed.
mod connect;
/// Steering's controls: their read, addition, change and progress.
mod controls;
/// The batched terminal write.
mod finish;
/// The table's location and the names of its objects.
mod names;
/// The operator's retry and pruning.
mod operator;
/// [`PgStoreOptions`]: where the table lives and how to connect.
mod options;
/// The partitions of a partitioned table: created ahead, dropped whole.
mod partitions;
/// The planning and audit reads.
mod reads;
/// The replica registry.
mod replicas;
/// Decoding rows, and mapping driver errors.
mod rows;
/// Stored schedules: read, write, a claim's version check.
mod schedules;
/// The embedded migrations.
mod schema;
/// Every statement, rendered from `sql/` for one table.
mod statements;
/// [`PgLeaseStore`]: construction, store time, the trait impls.
mod store;
/// Where store time comes from, and the offset tests move it by.
mod store_time;
/// Transactional jobs: effects and SUCCESS in one transaction.
mod transactional;
/// `tests/common` names this crate as the integration tests see it.
#[cfg(test)]
extern crate self as scheduler_postgres;

pub use crate::controls::CONTROLS_CHANNEL;
pub use crate::names::DEFAULT_TABLE;
pub use crate::options::{PartitionInterval, PgStoreOptions};
pub use crate::partitions::PARTITIONS_AHEAD;
pub use crate::schema::{MIGRATIONS_TABLE, SCHEMA_VERSION};
pub use crate::store::PgLeaseStore;
pub use crate::store_time::TimeOffset;
