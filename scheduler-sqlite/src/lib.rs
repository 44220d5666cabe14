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
//!   `INSERT ... ON CONFLICT DO NOTHING`, and when the key exists, the
//!   guarded retry `UPDATE` and then the guarded steal `UPDATE`, whose
//!   `WHERE` clauses are exactly [`machine::claim`]'s guards. Duplicate keys
//!   within a batch see the first one's row, so only one of them wins.
//!   A batch of terminal writes ([`finish_many`](LeaseStore::finish_many))
//!   is likewise one IMMEDIATE transaction, one commit: `finish`'s guarded
//!   `UPDATE` per item, at one store time, each item answered on its own.
//! - **Operator calls.** [`scope_summaries`](ExecutionAudit::scope_summaries)
//!   is one read statement (conditional aggregates per scope, then the
//!   latest and last SUCCESS rows by their unique key), equal to
//!   [`ScopeSummary::of_rows`] at one store time.
//!   [`retry_execution`](ExecutionAudit::retry_execution) reads the row, applies
//!   [`machine::operator_retry`] and writes the result back in one IMMEDIATE
//!   transaction. [`prune_finished`](ExecutionAudit::prune_finished) deletes
//!   through `idx_sys_cron_exec_finished` in one `DELETE`, oldest first.
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
#![warn(missing_docs)]

mod codec;
mod error;
mod options;
mod schema;
mod worker;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{
    named_params, Connection, OptionalExtension, ToSql, Transaction, TransactionBehavior,
};
use scheduler_core::machine::{self, FreshIds};
use scheduler_core::time::{later, to_micros};
use scheduler_core::{
    BoxError, ClaimOutcome, ClaimRequest, Clock, ErrorCode, Execution, ExecutionAudit,
    ExecutionFilter, Finish, FinishOutcome, LatestExecution, Lease, LeaseStore, RetryDue, Scope,
    ScopeSummary, StoreError,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::codec::{execution_columns, instant, micros, micros_ceil, uuid_text};
use crate::error::{Failure, Location};
use crate::worker::Worker;

pub use crate::options::SqliteStoreOptions;
pub use crate::schema::SCHEMA_VERSION;

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
struct Shared {
    location: Location,
    clock: Arc<dyn Clock>,
    max_lock_wait: Duration,
}

impl Shared {
    fn now(&self) -> OffsetDateTime {
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

    /// Brings the schema to [`SCHEMA_VERSION`]. Idempotent, safe to run
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

    /// Runs `op` in one IMMEDIATE transaction on the writer connection,
    /// retried whole while the database is busy.
    async fn write<T, F>(&self, mut op: F) -> Result<T, StoreError>
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

    /// Runs the single-statement read `op` on the reader connection (the
    /// writer's for `:memory:`).
    async fn read<T, F>(&self, mut op: F) -> Result<T, StoreError>
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

const CLAIM_FRESH: &str = "
INSERT INTO sys_cron_executions (
    id, job_name, scope_kind, scope_id, plan_time, status, attempt, max_attempts,
    runner_id, lease_token, heartbeat_at, stale_after, started_at, result,
    created_at, updated_at)
VALUES (
    :id, :job, :kind, :scope_id, :plan_time, 'RUNNING', 1, :max_attempts,
    :runner, :token, :now, :stale_after, :now, '{}', :now, :now)
ON CONFLICT (job_name, scope_kind, scope_id, plan_time) DO NOTHING";

/// The effect shared by a retry and a steal (`docs/contract.md` §4,
/// `machine::claim`): back to RUNNING with attempt + 1, a new token and
/// runner, lease instants reset, and the previous attempt's outcome cleared.
macro_rules! reclaim {
    ($guard:literal) => {
        concat!(
            "UPDATE sys_cron_executions SET
                status = 'RUNNING', attempt = attempt + 1, runner_id = :runner,
                lease_token = :token, heartbeat_at = :now, stale_after = :stale_after,
                started_at = :now, finished_at = NULL, duration_ms = NULL,
                next_retry_at = NULL, error_code = NULL, error_msg = NULL, updated_at = :now
            WHERE job_name = :job AND scope_kind = :kind AND scope_id = :scope_id
                AND plan_time = :plan_time AND ",
            $guard,
            " RETURNING id, attempt, max_attempts"
        )
    };
}

/// `machine::retry_eligible`. `IS NOT` because a NULL error code must
/// count as "not stale_timeout", as `None != Some(..)` does.
const CLAIM_RETRY: &str = reclaim!(
    "status = 'FAILED' AND attempt < max_attempts
     AND (next_retry_at IS NULL OR next_retry_at <= :now)
     AND (:allow_stale_reentry OR error_code IS NOT :stale_code)"
);

/// `machine::steal_eligible`. A NULL `stale_after` is never stale, as
/// `is_some_and` says; SQL's `NULL < x` is not true either.
const CLAIM_STEAL: &str = reclaim!(
    "status = 'RUNNING' AND :allow_stale_reentry AND attempt < max_attempts
     AND stale_after < :now"
);

const HEARTBEAT: &str = "
UPDATE sys_cron_executions
SET heartbeat_at = :now, stale_after = :stale_after, updated_at = :now
WHERE id = :id AND lease_token = :token AND status = 'RUNNING'";

const FINISH_SUCCESS: &str = "
UPDATE sys_cron_executions
SET status = 'SUCCESS', finished_at = :now, duration_ms = :duration_ms,
    rows_affected = :rows_affected, result = :result, next_retry_at = NULL,
    error_code = NULL, error_msg = NULL, updated_at = :now
WHERE id = :id AND lease_token = :token AND status = 'RUNNING'";

/// `rows_affected` and `result` keep what the row had, as in
/// `machine::finish`; no retry is scheduled once attempts are used up.
const FINISH_FAILURE: &str = "
UPDATE sys_cron_executions
SET status = 'FAILED', finished_at = :now, duration_ms = :duration_ms,
    next_retry_at = CASE WHEN attempt < max_attempts THEN :retry_at END,
    error_code = :error_code, error_msg = :error_msg, updated_at = :now
WHERE id = :id AND lease_token = :token AND status = 'RUNNING'";

/// Through the index of RUNNING rows, which holds only live leases however
/// long the job's history: left to itself, the planner of a never analysed
/// table prefers the unique index and walks the job's whole history.
///
/// `:next_retry_at` is `machine::swept_retry_at`'s: null for a reentrant
/// job, "never" for one that waits for an operator.
const SWEEP: &str = "
UPDATE sys_cron_executions INDEXED BY idx_sys_cron_exec_running_stale
SET status = 'FAILED', finished_at = :now, next_retry_at = :next_retry_at,
    error_code = :stale_code, error_msg = :stale_msg, updated_at = :now
WHERE job_name = :job AND status = 'RUNNING' AND stale_after < :now";

/// One statement for any number of scopes: the scopes arrive as one JSON
/// array of `[kind, id]` pairs, and each finds its newest row through the
/// unique index (`ORDER BY plan_time DESC LIMIT 1`), never by scanning.
const LATEST: &str = "
SELECT s.key, e.plan_time, e.status, e.attempt, e.max_attempts, e.next_retry_at, e.error_code
FROM json_each(:scopes) AS s
JOIN sys_cron_executions AS e ON e.rowid = (
    SELECT x.rowid FROM sys_cron_executions AS x
    WHERE x.job_name = :job
        AND x.scope_kind = json_extract(s.value, '$[0]')
        AND x.scope_id = json_extract(s.value, '$[1]')
    ORDER BY x.plan_time DESC
    LIMIT 1)";

/// The guards of `CLAIM_RETRY`, as a read, in two branches: the job's own
/// retries from `:since` on (through the index of FAILED rows by plan
/// time), and an operator's retries whatever their plan time (through the
/// small index of `operator_retry` rows, so old history is never walked).
/// At most `:limit` of each kind per scope, the oldest: a per-scope limit,
/// so one scope's failures cannot crowd another's out. Ordered like the
/// memory store (plan time, then scope, in byte order).
///
/// The code `operator_retry` (`machine::OPERATOR_RETRY_CODE`) is spelled
/// out, not bound: SQLite uses a partial index only when the query's terms
/// match the index's `WHERE` literally.
macro_rules! retry_eligible {
    () => {
        "job_name = :job AND status = 'FAILED' AND attempt < max_attempts
        AND (next_retry_at IS NULL OR next_retry_at <= :now)
        AND (:allow_stale_reentry OR error_code IS NOT :stale_code)"
    };
}
const RETRY_DUE: &str = concat!(
    "SELECT scope_kind, scope_id, plan_time, operator_retry FROM (
    SELECT scope_kind, scope_id, plan_time, operator_retry,
        row_number() OVER (PARTITION BY scope_kind, scope_id, operator_retry
                           ORDER BY plan_time) AS nth
    FROM (SELECT scope_kind, scope_id, plan_time, 0 AS operator_retry
          FROM sys_cron_executions INDEXED BY idx_sys_cron_exec_failed_recent
          WHERE ",
    retry_eligible!(),
    " AND plan_time >= :since AND error_code IS NOT 'operator_retry'
          UNION ALL
          SELECT scope_kind, scope_id, plan_time, 1
          FROM sys_cron_executions INDEXED BY idx_sys_cron_exec_operator_retry
          WHERE ",
    retry_eligible!(),
    " AND error_code = 'operator_retry'))
WHERE nth <= :limit
ORDER BY plan_time, scope_kind, scope_id, operator_retry"
);

const GET: &str = concat!(
    "SELECT ",
    execution_columns!(),
    " FROM sys_cron_executions WHERE id = :id"
);

/// `ScopeSummary::of_rows` as one statement: a pass over the scopes' rows
/// computes the counts with conditional aggregates, then the latest row and
/// the last SUCCESS row of each scope are looked up by their full unique key
/// (the group's `max(plan_time)`, `plan_time` being unique within a scope).
///
/// Each `CASE` is one arm of `of_rows`'s `match`, in its order, so every
/// FAILED or RUNNING row is counted exactly once:
/// - RUNNING is stale when `stale_after < :now`; a NULL `stale_after` is
///   never stale (`is_some_and`), and SQL's `NULL < x` is not true either,
///   so the live arm must spell out `IS NULL OR >=`.
/// - FAILED with `attempt >= max_attempts` is exhausted, whatever its code.
/// - FAILED with attempts left is `stale_timeout` when its code is exactly
///   that (`IS`, so NULL is not), else a pending retry; the earliest retry
///   counts a NULL `next_retry_at` as `:now`, and `min` of no row is NULL.
///
/// `:now` is store time, bound by the caller. Both forms read the unique
/// index in order, so grouping needs no sort; only the output, one row per
/// scope, is sorted again (SQLite cannot carry the order through the joins).
macro_rules! summaries {
    ($filter:literal) => {
        concat!(
            "WITH groups AS (
    SELECT job_name, scope_kind, scope_id,
        max(plan_time) AS latest_plan,
        max(CASE WHEN status = 'SUCCESS' THEN plan_time END) AS success_plan,
        count(CASE WHEN status = 'RUNNING'
            AND (stale_after IS NULL OR stale_after >= :now) THEN 1 END) AS running,
        count(CASE WHEN status = 'RUNNING' AND stale_after < :now THEN 1 END) AS stale,
        count(CASE WHEN status = 'FAILED' AND attempt < max_attempts
            AND error_code IS NOT :stale_code THEN 1 END) AS retry_pending,
        min(CASE WHEN status = 'FAILED' AND attempt < max_attempts
            AND error_code IS NOT :stale_code THEN coalesce(next_retry_at, :now) END)
            AS next_retry_at,
        count(CASE WHEN status = 'FAILED' AND attempt >= max_attempts THEN 1 END) AS exhausted,
        count(CASE WHEN status = 'FAILED' AND attempt < max_attempts
            AND error_code IS :stale_code THEN 1 END) AS stale_timeout
    FROM sys_cron_executions ",
            $filter,
            "
    GROUP BY job_name, scope_kind, scope_id)
SELECT g.job_name, g.scope_kind, g.scope_id,
    l.plan_time, l.status, l.attempt, l.max_attempts, l.next_retry_at, l.error_code,
    s.plan_time, s.finished_at,
    g.running, g.stale, g.retry_pending, g.next_retry_at, g.exhausted, g.stale_timeout
FROM groups AS g
JOIN sys_cron_executions AS l
    ON l.job_name = g.job_name AND l.scope_kind = g.scope_kind
    AND l.scope_id = g.scope_id AND l.plan_time = g.latest_plan
LEFT JOIN sys_cron_executions AS s
    ON s.job_name = g.job_name AND s.scope_kind = g.scope_kind
    AND s.scope_id = g.scope_id AND s.plan_time = g.success_plan
ORDER BY g.job_name, g.scope_kind, g.scope_id"
        )
    };
}

/// Every scope of every job: necessarily a pass over the whole table.
const SUMMARIES_ALL: &str = summaries!("");

/// One job's scopes, through its range of the unique index.
const SUMMARIES_OF_JOB: &str = summaries!("WHERE job_name = :job");

/// The write-back of an operator's retry: every column a transition may
/// change takes the value `machine::operator_retry` computed, so the rule
/// lives only there. The key columns, `id` and `created_at` never change.
///
/// The guard repeats what was read in the same IMMEDIATE transaction: still
/// FAILED and still under the last attempt's token (every claim rotates it),
/// so the write can only land on the row the machine decided about.
const OPERATOR_RETRY: &str = concat!(
    "UPDATE sys_cron_executions
SET status = :status, attempt = :attempt, max_attempts = :max_attempts,
    next_retry_at = :next_retry_at, runner_id = :runner_id, lease_token = :lease_token,
    heartbeat_at = :heartbeat_at, stale_after = :stale_after, started_at = :started_at,
    finished_at = :finished_at, duration_ms = :duration_ms, rows_affected = :rows_affected,
    result = :result, error_code = :error_code, error_msg = :error_msg,
    updated_at = :updated_at
WHERE id = :id AND status = 'FAILED' AND lease_token = :read_token
RETURNING ",
    execution_columns!()
);

/// The terminal rows a prune may delete. The `status IN` term repeats the
/// partial index's `WHERE` word for word, which is what lets SQLite use
/// `idx_sys_cron_exec_finished` (a RUNNING row, even a retried one whose
/// `finished_at` was cleared, is never in it).
macro_rules! prunable {
    () => {
        "status IN ('SUCCESS', 'FAILED') AND finished_at < :cutoff"
    };
}

/// A dry run: how many rows a prune with no limit would delete.
const PRUNE_COUNT: &str = concat!(
    "SELECT count(*) FROM sys_cron_executions WHERE ",
    prunable!()
);

/// One statement: the oldest `:limit` prunable rows, oldest `finished_at`
/// first and ties in key order (as the memory store breaks them), found
/// through `idx_sys_cron_exec_finished` and deleted by rowid.
const PRUNE: &str = concat!(
    "DELETE FROM sys_cron_executions WHERE rowid IN (
    SELECT rowid FROM sys_cron_executions WHERE ",
    prunable!(),
    "
    ORDER BY finished_at, job_name, scope_kind, scope_id, plan_time
    LIMIT :limit)"
);

fn limit(n: Option<usize>) -> i64 {
    // SQLite reads a negative LIMIT as "no limit".
    n.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX))
}

fn reclaimed(row: &rusqlite::Row<'_>) -> rusqlite::Result<(String, i32, i32)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
}

fn parse_uuid(text: &str) -> Result<Uuid, Failure> {
    Uuid::parse_str(text).map_err(|e| {
        StoreError::backend_msg(format!("stored id {text:?} is not a uuid: {e}")).into()
    })
}

/// A [`Finish`] in the form the statements bind.
enum Terminal {
    Success {
        rows_affected: i64,
        result: String,
    },
    Failure {
        error_code: ErrorCode,
        error_msg: String,
        retry_after: Duration,
    },
}

/// One terminal write, ready to bind: what [`finish`](LeaseStore::finish)
/// sends alone and [`finish_many`](LeaseStore::finish_many) sends in a
/// batch, through the same guarded statements and the same store-time
/// rule.
struct TerminalWrite {
    id: Uuid,
    token: String,
    duration_ms: i32,
    terminal: Terminal,
}

impl TerminalWrite {
    /// Encodes `finish` for `lease`, before anything is written.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] for a result that cannot be encoded.
    fn new(lease: &Lease, finish: &Finish) -> Result<Self, StoreError> {
        let terminal = match finish.outcome() {
            FinishOutcome::Success {
                rows_affected,
                result,
            } => Terminal::Success {
                rows_affected: *rows_affected,
                result: serde_json::to_string(result).map_err(|e| {
                    StoreError::InvalidInput(format!("result cannot be encoded: {e}"))
                })?,
            },
            FinishOutcome::Failure {
                error_code,
                error_msg,
                retry_after,
            } => Terminal::Failure {
                error_code: *error_code,
                error_msg: error_msg.clone(),
                retry_after: *retry_after,
            },
            // No catch-all: `FinishOutcome` is exhaustive so that a new kind
            // of terminal write fails to compile here instead of at run time.
        };
        Ok(TerminalWrite {
            id: lease.id,
            token: uuid_text(lease.token),
            duration_ms: finish.duration_ms(),
            terminal,
        })
    }

    /// Runs the guarded `UPDATE` (id **and** token **and** RUNNING) in the
    /// caller's IMMEDIATE transaction, at store time `now` as read under
    /// the write lock.
    ///
    /// A guard that does not match changes nothing and is
    /// [`StoreError::LeaseLost`] (as a [`Failure::Store`]), which leaves the
    /// transaction usable; a driver error is a [`Failure::Sqlite`].
    fn apply(&self, tx: &Transaction<'_>, now: OffsetDateTime) -> Result<(), Failure> {
        let changed = match &self.terminal {
            Terminal::Success {
                rows_affected,
                result,
            } => tx.prepare_cached(FINISH_SUCCESS)?.execute(named_params! {
                ":id": uuid_text(self.id),
                ":token": self.token,
                ":now": micros(now),
                ":duration_ms": self.duration_ms,
                ":rows_affected": rows_affected,
                ":result": result,
            })?,
            Terminal::Failure {
                error_code,
                error_msg,
                retry_after,
            } => tx.prepare_cached(FINISH_FAILURE)?.execute(named_params! {
                ":id": uuid_text(self.id),
                ":token": self.token,
                ":now": micros(now),
                ":duration_ms": self.duration_ms,
                ":retry_at": micros(later(now, *retry_after)),
                ":error_code": error_code.as_str(),
                ":error_msg": error_msg,
            })?,
        };
        if changed == 1 {
            Ok(())
        } else {
            Err(lease_lost(self.id))
        }
    }
}

/// One result per item of a batch whose transaction failed as a whole
/// (rolled back: nothing of it was written): a [`StoreError::Backend`]
/// each, with the same message. The first item keeps the driver's error
/// as its source; [`StoreError`] cannot be cloned.
fn batch_failed(error: StoreError, items: usize) -> Vec<Result<(), StoreError>> {
    let (message, source) = match error {
        StoreError::Backend { message, source } => (message, source),
        // Unreachable (per-item decisions never fail the transaction), but
        // the trait promises a backend error for every item of a failed batch.
        other => (other.to_string(), Some(BoxError::from(other))),
    };
    let mut results = Vec::with_capacity(items);
    results.push(Err(StoreError::Backend {
        message: message.clone(),
        source,
    }));
    results.extend((1..items).map(|_| Err(StoreError::backend_msg(message.clone()))));
    results
}

fn lease_lost(id: Uuid) -> Failure {
    StoreError::LeaseLost { id }.into()
}

#[async_trait]
impl LeaseStore for SqliteLeaseStore {
    async fn now(&self) -> Result<OffsetDateTime, StoreError> {
        Ok(self.shared.now())
    }

    async fn claim(&self, request: &ClaimRequest<'_>) -> Result<Vec<ClaimOutcome>, StoreError> {
        request.refuse_unstorable()?;
        if request.keys.is_empty() {
            return Ok(Vec::new());
        }
        let job = request.job_name.to_owned();
        let runner = request.runner_id.to_owned();
        let keys = request.keys.to_vec();
        let (max_attempts, stale_timeout, allow_stale_reentry) = (
            request.max_attempts,
            request.stale_timeout,
            request.allow_stale_reentry,
        );
        self.write(move |tx, now| {
            let stale_after = later(now, stale_timeout);
            let (now_us, stale_us) = (micros(now), micros(stale_after));
            let mut fresh = tx.prepare_cached(CLAIM_FRESH)?;
            let mut retry = tx.prepare_cached(CLAIM_RETRY)?;
            let mut steal = tx.prepare_cached(CLAIM_STEAL)?;
            let mut outcomes = Vec::with_capacity(keys.len());
            for key in &keys {
                let plan_time = to_micros(key.plan_time);
                let plan_us = micros(plan_time);
                let ids = FreshIds::mint();
                let token = uuid_text(ids.token);
                let lease = |id, attempt, max_attempts| Lease {
                    id,
                    token: ids.token,
                    job_name: job.clone(),
                    scope: key.scope.clone(),
                    plan_time,
                    attempt,
                    max_attempts,
                    started_at: now,
                    stale_after,
                };
                let inserted = fresh.execute(named_params! {
                    ":id": uuid_text(ids.id),
                    ":job": job,
                    ":kind": key.scope.kind,
                    ":scope_id": key.scope.id,
                    ":plan_time": plan_us,
                    ":max_attempts": max_attempts,
                    ":runner": runner,
                    ":token": token,
                    ":now": now_us,
                    ":stale_after": stale_us,
                })?;
                if inserted == 1 {
                    outcomes.push(ClaimOutcome::Won(lease(ids.id, 1, max_attempts)));
                    continue;
                }
                // The key exists: try the retry, then the steal. At most one
                // can match, since their guards require different statuses.
                // The steal binds the same values but `:stale_code`, which
                // comes last.
                let retry_params = named_params! {
                    ":job": job,
                    ":kind": key.scope.kind,
                    ":scope_id": key.scope.id,
                    ":plan_time": plan_us,
                    ":runner": runner,
                    ":token": token,
                    ":now": now_us,
                    ":stale_after": stale_us,
                    ":allow_stale_reentry": allow_stale_reentry,
                    ":stale_code": ErrorCode::StaleTimeout.as_str(),
                };
                let steal_params = &retry_params[..retry_params.len() - 1];
                let outcome = if let Some((id, attempt, max)) =
                    retry.query_row(retry_params, reclaimed).optional()?
                {
                    ClaimOutcome::Retried(lease(parse_uuid(&id)?, attempt, max))
                } else if let Some((id, attempt, max)) =
                    steal.query_row(steal_params, reclaimed).optional()?
                {
                    ClaimOutcome::Stolen(lease(parse_uuid(&id)?, attempt, max))
                } else {
                    ClaimOutcome::Conflicted
                };
                outcomes.push(outcome);
            }
            Ok(outcomes)
        })
        .await
    }

    async fn heartbeat(
        &self,
        lease: &Lease,
        stale_timeout: Duration,
    ) -> Result<OffsetDateTime, StoreError> {
        let (id, token) = (lease.id, uuid_text(lease.token));
        self.write(move |tx, now| {
            let stale_after = later(now, stale_timeout);
            let changed = tx.prepare_cached(HEARTBEAT)?.execute(named_params! {
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

    /// The whole batch is one IMMEDIATE transaction (one commit), retried
    /// whole while the database is busy: store time is read once, under the
    /// write lock, and each item runs `finish`'s guarded statement in turn,
    /// so a later item sees what an earlier one wrote, as successive
    /// `finish` calls would. A lost lease is that item's answer and the
    /// others go on; a driver error (or a failed commit) rolls the whole
    /// batch back and every item gets [`StoreError::Backend`]. An item whose
    /// result cannot be encoded gets `finish`'s refusal and never reaches
    /// the transaction. An empty batch does not touch the database.
    async fn finish_many(&self, items: &[(&Lease, &Finish)]) -> Vec<Result<(), StoreError>> {
        let mut results: Vec<Result<(), StoreError>> = Vec::with_capacity(items.len());
        let mut writes = Vec::with_capacity(items.len());
        for (index, (lease, finish)) in items.iter().enumerate() {
            match TerminalWrite::new(lease, finish) {
                Ok(write) => {
                    writes.push((index, write));
                    results.push(Ok(()));
                }
                Err(refused) => results.push(Err(refused)),
            }
        }
        if writes.is_empty() {
            return results;
        }
        let batch = writes.len();
        let lost = self
            .write(move |tx, now| {
                let mut lost = Vec::new();
                for (index, write) in &writes {
                    match write.apply(tx, now) {
                        Ok(()) => {}
                        // The store's decision for this lease alone.
                        Err(Failure::Store(e)) => lost.push((*index, e)),
                        // Fails (and rolls back) the batch; a busy database
                        // is retried whole by `write`.
                        Err(driver @ Failure::Sqlite(_)) => return Err(driver),
                    }
                }
                Ok(lost)
            })
            .await;
        match lost {
            Ok(lost) => {
                for (index, e) in lost {
                    results[index] = Err(e);
                }
                results
            }
            Err(e) => {
                // Every item that reached the transaction (each still `Ok`
                // here) failed with it.
                let mut failed = batch_failed(e, batch).into_iter();
                for result in results.iter_mut().filter(|r| r.is_ok()) {
                    *result = failed.next().expect("one error per item of the batch");
                }
                results
            }
        }
    }

    async fn sweep_stale(
        &self,
        job_name: &str,
        allow_stale_reentry: bool,
    ) -> Result<u64, StoreError> {
        let job = job_name.to_owned();
        let next_retry_at = machine::swept_retry_at(allow_stale_reentry).map(micros);
        self.write(move |tx, now| {
            let closed = tx.prepare_cached(SWEEP)?.execute(named_params! {
                ":job": job,
                ":now": micros(now),
                ":next_retry_at": next_retry_at,
                ":stale_code": ErrorCode::StaleTimeout.as_str(),
                ":stale_msg": machine::STALE_SWEEP_MSG,
            })?;
            Ok(closed as u64)
        })
        .await
    }

    async fn latest_executions(
        &self,
        job_name: &str,
        scopes: &[Scope],
    ) -> Result<Vec<Option<LatestExecution>>, StoreError> {
        if scopes.is_empty() {
            return Ok(Vec::new());
        }
        let pairs: Vec<[&str; 2]> = scopes.iter().map(|s| [&*s.kind, &*s.id]).collect();
        let scopes_json = serde_json::to_string(&pairs)
            .map_err(|e| StoreError::InvalidInput(format!("scopes cannot be encoded: {e}")))?;
        let (job, count) = (job_name.to_owned(), scopes.len());
        self.read(move |conn, _| {
            let mut views = vec![None; count];
            let mut stmt = conn.prepare_cached(LATEST)?;
            let mut rows = stmt.query(named_params! { ":scopes": scopes_json, ":job": job })?;
            while let Some(row) = rows.next()? {
                let index: usize = row.get(0)?;
                if let Some(slot) = views.get_mut(index) {
                    *slot = Some(codec::latest_view(row, 1)?);
                }
            }
            Ok(views)
        })
        .await
    }

    async fn retry_due(
        &self,
        job_name: &str,
        since: OffsetDateTime,
        allow_stale_reentry: bool,
        limit_to: usize,
    ) -> Result<Vec<RetryDue>, StoreError> {
        let job = job_name.to_owned();
        // Rounded up, as a prune's cutoff is: `plan_time >= since` on whole
        // microseconds is then exactly the comparison at full precision
        // (flooring would let in the plan at `floor(since)`, which is before
        // `since`).
        let since = micros_ceil(since);
        self.read(move |conn, now| {
            let mut stmt = conn.prepare_cached(RETRY_DUE)?;
            let rows = stmt.query_map(
                named_params! {
                    ":job": job,
                    ":since": since,
                    ":now": micros(now),
                    ":allow_stale_reentry": allow_stale_reentry,
                    ":stale_code": ErrorCode::StaleTimeout.as_str(),
                    ":limit": limit(Some(limit_to)),
                },
                |row| {
                    let plan_us: i64 = row.get(2)?;
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        plan_us,
                        row.get::<_, bool>(3)?,
                    ))
                },
            )?;
            let mut due = Vec::new();
            for row in rows {
                let (kind, id, plan_us, operator_retry) = row?;
                let plan_time = instant(plan_us).ok_or_else(|| {
                    StoreError::backend_msg(format!(
                        "stored plan time {plan_us} µs is out of range"
                    ))
                })?;
                due.push(RetryDue {
                    scope: Scope::new(kind, id),
                    plan_time,
                    operator_retry,
                });
            }
            Ok(due)
        })
        .await
    }
}

#[async_trait]
impl ExecutionAudit for SqliteLeaseStore {
    async fn get_execution(&self, id: Uuid) -> Result<Option<Execution>, StoreError> {
        self.read(move |conn, _| {
            Ok(conn
                .prepare_cached(GET)?
                .query_row(named_params! { ":id": uuid_text(id) }, codec::execution)
                .optional()?)
        })
        .await
    }

    async fn list_executions(
        &self,
        filter: &ExecutionFilter,
    ) -> Result<Vec<Execution>, StoreError> {
        // The statement is assembled from fixed fragments only; every value
        // is a bound parameter. Each filter shape is one cached statement.
        let mut sql = String::from(concat!(
            "SELECT ",
            execution_columns!(),
            " FROM sys_cron_executions WHERE 1 = 1"
        ));
        let filter = filter.clone();
        if filter.job_name.is_some() {
            sql.push_str(" AND job_name = :job");
        }
        if filter.scope.is_some() {
            sql.push_str(" AND scope_kind = :kind AND scope_id = :scope_id");
        }
        if filter.status.is_some() {
            sql.push_str(" AND status = :status");
        }
        if filter.plan_time_from.is_some() {
            sql.push_str(" AND plan_time >= :from");
        }
        sql.push_str(" ORDER BY plan_time DESC, id DESC LIMIT :limit");
        self.read(move |conn, _| {
            let status = filter.status.map(|s| s.as_str());
            // Rounded up for the same reason as `retry_due`'s bound.
            let from = filter.plan_time_from.map(micros_ceil);
            let row_limit = limit(filter.limit);
            let mut params: Vec<(&str, &dyn ToSql)> = vec![(":limit", &row_limit)];
            if let Some(job) = &filter.job_name {
                params.push((":job", job));
            }
            if let Some(scope) = &filter.scope {
                params.push((":kind", &scope.kind));
                params.push((":scope_id", &scope.id));
            }
            if let Some(status) = &status {
                params.push((":status", status));
            }
            if let Some(from) = &from {
                params.push((":from", from));
            }
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params.as_slice(), codec::execution)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn scope_summaries(
        &self,
        job_name: Option<&str>,
    ) -> Result<Vec<ScopeSummary>, StoreError> {
        let job = job_name.map(str::to_owned);
        // One statement, so one consistent snapshot of every scope, taken at
        // one store time.
        self.read(move |conn, now| {
            let now_us = micros(now);
            let stale_code = ErrorCode::StaleTimeout.as_str();
            let mut params: Vec<(&str, &dyn ToSql)> =
                vec![(":now", &now_us), (":stale_code", &stale_code)];
            let sql = match &job {
                Some(job) => {
                    params.push((":job", job));
                    SUMMARIES_OF_JOB
                }
                None => SUMMARIES_ALL,
            };
            let mut stmt = conn.prepare_cached(sql)?;
            let rows = stmt.query_map(params.as_slice(), codec::scope_summary)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn retry_execution(&self, id: Uuid) -> Result<Execution, StoreError> {
        // Read, decide and write in one IMMEDIATE transaction: the write lock
        // is held from the read on, so no claim, finish or sweep from any
        // process can slip between the decision and the write.
        self.write(move |tx, now| {
            let row = tx
                .prepare_cached(GET)?
                .query_row(named_params! { ":id": uuid_text(id) }, codec::execution)
                .optional()?
                .ok_or(StoreError::NotFound { id })?;
            // The rule is `machine::operator_retry`'s alone; a refusal
            // returns before anything is written, with the machine's reason
            // as it is (as every store reports it).
            let repaired = machine::operator_retry(&row, now)
                .map_err(|why| StoreError::Conflict(why.to_owned()))?;
            let result = serde_json::to_string(&repaired.result)
                .map_err(|e| StoreError::InvalidInput(format!("result cannot be encoded: {e}")))?;
            let stored = tx
                .prepare_cached(OPERATOR_RETRY)?
                .query_row(
                    named_params! {
                        ":id": uuid_text(id),
                        ":read_token": uuid_text(row.lease_token),
                        ":status": repaired.status.as_str(),
                        ":attempt": repaired.attempt,
                        ":max_attempts": repaired.max_attempts,
                        ":next_retry_at": repaired.next_retry_at.map(micros),
                        ":runner_id": repaired.runner_id,
                        ":lease_token": uuid_text(repaired.lease_token),
                        ":heartbeat_at": repaired.heartbeat_at.map(micros),
                        ":stale_after": repaired.stale_after.map(micros),
                        ":started_at": repaired.started_at.map(micros),
                        ":finished_at": repaired.finished_at.map(micros),
                        ":duration_ms": repaired.duration_ms,
                        ":rows_affected": repaired.rows_affected,
                        ":result": result,
                        ":error_code": repaired.error_code,
                        ":error_msg": repaired.error_msg,
                        ":updated_at": micros(repaired.updated_at),
                    },
                    codec::execution,
                )
                .optional()?;
            // Unreachable under the write lock, but if the guard ever fails
            // nothing was written, which is what a conflict reports.
            stored.ok_or_else(|| {
                StoreError::Conflict(format!("execution {id} changed while being retried")).into()
            })
        })
        .await
    }

    async fn prune_finished(
        &self,
        finished_before: OffsetDateTime,
        limit_to: usize,
        dry_run: bool,
    ) -> Result<u64, StoreError> {
        // Rounded up: `finished_at < cutoff` on whole microseconds is then
        // exactly `finished_at < finished_before` at full precision.
        let cutoff = micros_ceil(finished_before);
        if dry_run {
            return self
                .read(move |conn, _| {
                    let n: i64 = conn
                        .prepare_cached(PRUNE_COUNT)?
                        .query_row(named_params! { ":cutoff": cutoff }, |r| r.get(0))?;
                    Ok(n as u64)
                })
                .await;
        }
        // IMMEDIATE like every write: the rows are chosen and deleted under
        // the write lock, so a row a claim is retrying cannot be chosen as
        // FAILED and then deleted while RUNNING.
        self.write(move |tx, _| {
            let deleted = tx.prepare_cached(PRUNE)?.execute(named_params! {
                ":cutoff": cutoff,
                ":limit": limit(Some(limit_to)),
            })?;
            Ok(deleted as u64)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(conn: &Connection, sql: &str) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let mut rows = stmt.raw_query();
        let mut steps = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            steps.push(row.get::<_, String>(3).unwrap());
        }
        steps.join("; ")
    }

    /// The planner trap of `docs/contract.md` §10: plans must hold on a
    /// fresh, never analysed table.
    #[test]
    fn every_statement_uses_an_index_on_a_fresh_table() {
        let mut conn = Connection::open_in_memory().unwrap();
        schema::migrate(&mut conn, 0).unwrap();
        let unique = "sqlite_autoindex_sys_cron_executions_2";
        for (sql, index) in [
            (LATEST, unique),
            (CLAIM_RETRY, unique),
            (CLAIM_STEAL, unique),
            (RETRY_DUE, "idx_sys_cron_exec_failed_recent"),
            (SWEEP, "idx_sys_cron_exec_running_stale"),
            (GET, "sqlite_autoindex_sys_cron_executions_1"),
            (HEARTBEAT, "sqlite_autoindex_sys_cron_executions_1"),
            (FINISH_SUCCESS, "sqlite_autoindex_sys_cron_executions_1"),
            (FINISH_FAILURE, "sqlite_autoindex_sys_cron_executions_1"),
            (SUMMARIES_OF_JOB, unique),
            (OPERATOR_RETRY, "sqlite_autoindex_sys_cron_executions_1"),
            (PRUNE_COUNT, "idx_sys_cron_exec_finished"),
            (PRUNE, "idx_sys_cron_exec_finished"),
        ] {
            let plan = plan(&conn, sql);
            assert!(plan.contains(index), "{sql}\n=> {plan}");
            assert!(
                !plan.contains("SCAN sys_cron_executions"),
                "{sql}\n=> {plan}"
            );
            assert!(!plan.contains("FOR GROUP BY"), "{sql}\n=> {plan}");
        }
    }

    /// Summarising every job must read every row once, but in the unique
    /// index's order, so the groups need no sort; the latest and last
    /// SUCCESS rows are then point lookups, never scans. (The only sort left
    /// is of the output, one row per scope.)
    #[test]
    fn the_summary_of_every_job_is_one_ordered_pass() {
        let mut conn = Connection::open_in_memory().unwrap();
        schema::migrate(&mut conn, 0).unwrap();
        let plan = plan(&conn, SUMMARIES_ALL);
        let unique = "sqlite_autoindex_sys_cron_executions_2";
        assert!(
            plan.contains(&format!("SCAN sys_cron_executions USING INDEX {unique}")),
            "{plan}"
        );
        assert_eq!(
            plan.matches("SCAN sys_cron_executions").count(),
            1,
            "{plan}"
        );
        assert_eq!(
            plan.matches(&format!("SEARCH l USING INDEX {unique}"))
                .count(),
            1,
            "{plan}"
        );
        assert_eq!(
            plan.matches(&format!("SEARCH s USING INDEX {unique}"))
                .count(),
            1,
            "{plan}"
        );
        assert!(!plan.contains("FOR GROUP BY"), "{plan}");
    }
}
