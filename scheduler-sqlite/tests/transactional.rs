//! Transactional jobs on SQLite (`docs/contract.md` §13): the handler's
//! writes, made with the store's transaction, land with the run's SUCCESS
//! or not at all: after an error, a panic, a timeout, a lease taken over
//! before the commit, and a process killed while it holds the transaction;
//! a retry then writes the effect once.
//!
//! The effects table is a table of the test's own (`effects`) in the
//! store's database file, read back on a connection of the test's own.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, Connection, Transaction};
use scheduler_core::model::{Control, ControlChange, ControlRead, Steering};
use scheduler_core::{
    Announcement, AttemptOutcome, ClaimOutcome, ClaimRequest, ErrorCode, ExecutionAudit,
    ExecutionFilter, Finish, JobOutput, JobSpec, LatestExecution, Lease, LeaseStore, Manager,
    ManagerOptions, ManualClock, PlanKey, RetryDue, RetryRead, RunContext, Scope, Scopes, Status,
    StoreError, StoredSchedule, TimeControl,
};
use scheduler_sqlite::{SqliteLeaseStore, SqliteStoreOptions};
use time::OffsetDateTime;

const JOB: &str = "rollup";
const STALE: Duration = Duration::from_secs(60);
/// Store time: fixed, so plans and staleness do not follow the wall clock.
const T0: OffsetDateTime = time::macros::datetime!(2026-03-05 12:00:30 UTC);

/// The handler's effect: one row per committed run, with no key that would
/// hide a second one.
fn write_effect(ctx: &RunContext, tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS effects (
             execution_id TEXT NOT NULL, attempt INTEGER NOT NULL, runner TEXT NOT NULL)",
    )?;
    tx.execute(
        "INSERT INTO effects (execution_id, attempt, runner) VALUES (?1, ?2, ?3)",
        params![
            ctx.execution_id().to_string(),
            ctx.attempt(),
            ctx.runner_id()
        ],
    )?;
    Ok(())
}

/// The committed effects: (execution id, attempt, runner); none while the
/// table does not exist.
fn effects(db: &Path) -> Vec<(String, i32, String)> {
    let conn = Connection::open(db).unwrap();
    let exists: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'effects'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    if !exists {
        return Vec::new();
    }
    let mut stmt = conn
        .prepare("SELECT execution_id, attempt, runner FROM effects ORDER BY rowid")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Creates the effects table up front, so that "no effect" is a count of
/// zero, not a table that a rolled-back handler never created.
fn create_effects(db: &Path) {
    Connection::open(db)
        .unwrap()
        .execute_batch(
            "CREATE TABLE effects (
                 execution_id TEXT NOT NULL, attempt INTEGER NOT NULL, runner TEXT NOT NULL)",
        )
        .unwrap();
}

async fn open(db: &Path, clock: &ManualClock) -> Arc<SqliteLeaseStore> {
    Arc::new(
        SqliteStoreOptions::new(db)
            .clock(Arc::new(clock.clone()))
            .open()
            .await
            .unwrap(),
    )
}

fn manager(store: Arc<dyn LeaseStore>, runner: &str) -> Manager {
    Manager::new(
        store,
        ManagerOptions {
            runner_id: runner.into(),
            ..Default::default()
        },
    )
    .unwrap()
}

fn with_schedule(job: JobSpec) -> JobSpec {
    job.cadence(Duration::from_secs(3600))
        .run_timeout(Duration::from_secs(50))
        .stale_timeout(STALE)
        .heartbeat_interval(Duration::from_secs(20))
        .retry_backoff(vec![Duration::from_secs(10)])
}

async fn only_row(store: &SqliteLeaseStore) -> scheduler_core::Execution {
    let mut rows = store
        .list_executions(&ExecutionFilter::default())
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    rows.remove(0)
}

/// The attempts log of `row`: (attempt, outcome) in order.
async fn outcomes(
    store: &SqliteLeaseStore,
    row: &scheduler_core::Execution,
) -> Vec<(i32, AttemptOutcome)> {
    store
        .attempts(row.id)
        .await
        .unwrap()
        .iter()
        .map(|a| (a.attempt, a.outcome))
        .collect()
}

#[tokio::test]
async fn the_effect_lands_with_the_success_and_the_run_counts_once() {
    let (_dir, db) = common::temp_db("txn.db");
    let clock = ManualClock::new(T0);
    let store = open(&db, &clock).await;
    let m = manager(store.clone(), "r1");
    let job = store.transactional_job(JOB, Scopes::global(), |ctx, tx| {
        write_effect(ctx, tx)?;
        Ok(JobOutput::rows(1).with("attempt", ctx.attempt()))
    });
    m.register(with_schedule(job)).unwrap();

    let report = m.run_once().await;
    assert_eq!(
        (
            report.succeeded,
            report.failed,
            report.lease_lost,
            report.errors
        ),
        (1, 0, 0, 0),
        "{report:?}"
    );
    let row = only_row(&store).await;
    assert_eq!(
        (row.status, row.attempt, row.rows_affected),
        (Status::Success, 1, Some(1))
    );
    assert_eq!(row.result.get("attempt"), Some(&1.into()));
    assert!(row.finished_at.is_some() && row.duration_ms.is_some());
    assert_eq!(
        effects(&db),
        vec![(row.id.to_string(), 1, "r1".to_owned())],
        "one effect, by the run that succeeded"
    );
    assert_eq!(
        outcomes(&store, &row).await,
        vec![(1, AttemptOutcome::Success)],
        "the attempt is logged once"
    );

    // The plan is done: a later tick in the same hour runs nothing more.
    clock.advance(Duration::from_secs(60));
    let report = m.run_once().await;
    assert_eq!((report.won, report.succeeded), (0, 0), "{report:?}");
    assert_eq!(effects(&db).len(), 1);
}

/// How the first attempt of [`the_first_attempt_fails_after_writing`]
/// fails.
#[derive(Clone, Copy)]
enum Fails {
    Error,
    Panic,
}

/// A handler writes its effect, then fails (its error, or a panic caught
/// on the writer thread): nothing of it remains, and its retry, on the same
/// writer, writes the effect once.
async fn the_first_attempt_fails_after_writing(how: Fails) {
    let (_dir, db) = common::temp_db("txn.db");
    let clock = ManualClock::new(T0);
    let store = open(&db, &clock).await;
    create_effects(&db);
    let m = manager(store.clone(), "r1");
    let calls = Arc::new(AtomicU32::new(0));
    let seen = calls.clone();
    let job = store.transactional_job(JOB, Scopes::global(), move |ctx, tx| {
        write_effect(ctx, tx)?;
        if seen.fetch_add(1, Ordering::SeqCst) == 0 {
            match how {
                Fails::Error => return Err("the first attempt fails after writing".into()),
                Fails::Panic => panic!("the first attempt fails after writing"),
            }
        }
        Ok(JobOutput::rows(1))
    });
    m.register(with_schedule(job)).unwrap();

    let report = m.run_once().await;
    assert_eq!(
        (report.failed, report.succeeded, report.errors),
        (1, 0, 0),
        "{report:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the handler ran and wrote");
    assert!(
        effects(&db).is_empty(),
        "the failed attempt's write is gone"
    );
    let row = only_row(&store).await;
    // A panic reaches the manager as any handler's does.
    let code = match how {
        Fails::Error => ErrorCode::HandlerError,
        Fails::Panic => ErrorCode::HandlerPanic,
    };
    assert_eq!(
        (row.status, row.error_code.as_deref()),
        (Status::Failed, Some(code.as_str()))
    );
    assert!(
        row.error_msg
            .as_deref()
            .unwrap()
            .contains("fails after writing"),
        "{row:?}"
    );

    clock.advance(Duration::from_secs(11));
    let report = m.run_once().await;
    assert_eq!((report.retried, report.succeeded), (1, 1), "{report:?}");
    assert_eq!(
        effects(&db),
        vec![(row.id.to_string(), 2, "r1".to_owned())],
        "written once, by attempt 2"
    );
    let row = only_row(&store).await;
    assert_eq!((row.status, row.attempt), (Status::Success, 2));
    assert_eq!(
        outcomes(&store, &row).await,
        vec![(1, AttemptOutcome::Failed), (2, AttemptOutcome::Success)]
    );
}

#[tokio::test]
async fn a_failed_run_writes_nothing_and_its_retry_writes_the_effect_once() {
    the_first_attempt_fails_after_writing(Fails::Error).await;
}

#[tokio::test]
async fn a_panicking_handler_writes_nothing_and_the_writer_stays_in_service() {
    the_first_attempt_fails_after_writing(Fails::Panic).await;
}

#[tokio::test]
async fn a_run_that_times_out_inside_its_handler_commits_nothing() {
    let (_dir, db) = common::temp_db("txn.db");
    let clock = ManualClock::new(T0);
    let store = open(&db, &clock).await;
    create_effects(&db);
    let m = manager(store.clone(), "r1");
    let job = store.transactional_job(JOB, Scopes::global(), |ctx, tx| {
        write_effect(ctx, tx)?;
        // Blocking code that outlives the run timeout: the manager gives up
        // on the run (cancelling its context) while the handler still holds
        // the transaction; it then returns `Ok`, too late.
        futures::executor::block_on(ctx.cancelled());
        Ok(JobOutput::rows(1))
    });
    m.register(with_schedule(job).run_timeout(Duration::from_millis(100)))
        .unwrap();

    let report = m.run_once().await;
    assert_eq!((report.failed, report.succeeded), (1, 0), "{report:?}");
    assert!(effects(&db).is_empty(), "the commit was refused");
    let row = only_row(&store).await;
    assert_eq!(
        (row.status, row.error_code.as_deref()),
        (Status::Failed, Some(ErrorCode::RunTimeout.as_str()))
    );
}

/// A store that, right after every lease the manager wins, has another
/// runner (a second store on the file, whose clock is past the stale
/// timeout) take that lease over: the run's transaction then begins on a
/// lease that is no longer its own.
#[derive(Debug)]
struct TakenOver {
    inner: Arc<SqliteLeaseStore>,
    thief: SqliteLeaseStore,
    stolen: Mutex<Vec<Lease>>,
}

#[async_trait]
impl LeaseStore for TakenOver {
    async fn now(&self) -> Result<OffsetDateTime, StoreError> {
        self.inner.now().await
    }
    async fn claim(&self, request: &ClaimRequest<'_>) -> Result<Vec<ClaimOutcome>, StoreError> {
        let outcomes = self.inner.claim(request).await?;
        for outcome in &outcomes {
            let ClaimOutcome::Won(lease) = outcome else {
                continue;
            };
            let keys = [PlanKey {
                scope: lease.scope.clone(),
                plan_time: lease.plan_time,
            }];
            let steal = ClaimRequest {
                finishing: &[],
                steering: Steering::NONE,
                job_name: request.job_name,
                runner_id: "thief",
                max_attempts: request.max_attempts,
                stale_timeout: STALE,
                allow_stale_reentry: true,
                keys: &keys,
            };
            match self.thief.claim(&steal).await?.remove(0) {
                ClaimOutcome::Stolen(stolen) => self.stolen.lock().unwrap().push(stolen),
                other => panic!("the thief should take the lease over: {other:?}"),
            }
        }
        Ok(outcomes)
    }
    async fn heartbeat(
        &self,
        lease: &Lease,
        stale: Duration,
    ) -> Result<OffsetDateTime, StoreError> {
        self.inner.heartbeat(lease, stale).await
    }
    async fn finish_many(&self, items: &[(&Lease, &Finish)]) -> Vec<Result<(), StoreError>> {
        self.inner.finish_many(items).await
    }
    async fn sweep_stale(&self, job_name: &str, reentry: bool) -> Result<u64, StoreError> {
        self.inner.sweep_stale(job_name, reentry).await
    }
    async fn latest_executions(
        &self,
        job_name: &str,
        scopes: &[Scope],
    ) -> Result<Vec<Option<LatestExecution>>, StoreError> {
        self.inner.latest_executions(job_name, scopes).await
    }
    async fn retry_due(&self, read: &RetryRead<'_>) -> Result<Vec<RetryDue>, StoreError> {
        self.inner.retry_due(read).await
    }
    async fn announce(&self, announcement: &Announcement) -> Result<(), StoreError> {
        self.inner.announce(announcement).await
    }
    async fn controls(&self, read: &ControlRead) -> Result<Vec<Control>, StoreError> {
        self.inner.controls(read).await
    }
    async fn update_control(
        &self,
        id: uuid::Uuid,
        change: &ControlChange,
    ) -> Result<Control, StoreError> {
        self.inner.update_control(id, change).await
    }
    async fn schedules(&self) -> Result<Vec<StoredSchedule>, StoreError> {
        self.inner.schedules().await
    }
    fn control_changes(&self) -> Option<tokio::sync::watch::Receiver<()>> {
        self.inner.control_changes()
    }
}

#[tokio::test]
async fn a_lease_taken_over_before_the_commit_leaves_no_effect_and_the_run_is_lease_lost() {
    let (_dir, db) = common::temp_db("txn.db");
    let clock = ManualClock::new(T0);
    let store = open(&db, &clock).await;
    create_effects(&db);
    let thief_clock = ManualClock::new(T0 + STALE + Duration::from_secs(1));
    let thief = SqliteStoreOptions::new(&db)
        .clock(Arc::new(thief_clock))
        .open()
        .await
        .unwrap();
    let taken = Arc::new(TakenOver {
        inner: store.clone(),
        thief,
        stolen: Mutex::new(Vec::new()),
    });
    let m = manager(taken.clone(), "r1");
    let calls = Arc::new(AtomicU32::new(0));
    let seen = calls.clone();
    let job = store.transactional_job(JOB, Scopes::global(), move |ctx, tx| {
        seen.fetch_add(1, Ordering::SeqCst);
        write_effect(ctx, tx)?;
        Ok(JobOutput::rows(1))
    });
    m.register(with_schedule(job)).unwrap();

    let report = m.run_once().await;
    assert_eq!(
        (
            report.won,
            report.lease_lost,
            report.succeeded,
            report.failed
        ),
        (1, 1, 0, 0),
        "{report:?}"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the handler ran and wrote; its rows were rolled back"
    );
    assert!(effects(&db).is_empty(), "no effect of the lost lease");
    let stolen = taken.stolen.lock().unwrap().pop().unwrap();
    let row = only_row(&store).await;
    assert_eq!(
        (
            row.status,
            row.attempt,
            row.runner_id.as_deref(),
            row.lease_token
        ),
        (Status::Running, 2, Some("thief"), stolen.token),
        "the row is the thief's, untouched by the refused run"
    );
    assert_eq!(
        outcomes(&store, &row).await,
        vec![(1, AttemptOutcome::Stolen)],
        "the first attempt ended by the takeover, not by a success"
    );
}

/// Set in the child: the database file it runs the victim on.
const VICTIM_CHILD: &str = "SCHEDULER_SQLITE_TXN_VICTIM";

/// The reentrant transactional job of the process test; the victim's
/// handler writes its effect, says so on stdout, and blocks in the
/// transaction until it is killed.
fn reentrant_job(store: &Arc<SqliteLeaseStore>, block_inside: bool) -> JobSpec {
    let job = store.transactional_job(JOB, Scopes::global(), move |ctx, tx| {
        write_effect(ctx, tx)?;
        if block_inside {
            println!("INSIDE {}", ctx.execution_id());
            std::io::stdout().flush()?;
            loop {
                std::thread::park();
            }
        }
        Ok(JobOutput::rows(1))
    });
    with_schedule(job).allow_stale_reentry(true)
}

async fn victim_child(db: &Path) {
    let store = open(db, &ManualClock::new(T0)).await;
    let m = manager(store.clone(), "victim");
    m.register(reentrant_job(&store, true)).unwrap();
    m.run_once().await;
    unreachable!("the handler never returns");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_inside_the_transaction_leaves_nothing_and_the_retry_writes_once() {
    if let Some(db) = common::role(VICTIM_CHILD) {
        return victim_child(&db).await;
    }
    let (_dir, db) = common::temp_db("txn.db");
    // The schema first, so the victim and the check below find the tables.
    drop(open(&db, &ManualClock::new(T0)).await);
    create_effects(&db);
    let mut victim = common::child(
        "a_process_killed_inside_the_transaction_leaves_nothing_and_the_retry_writes_once",
        VICTIM_CHILD,
        &db,
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let stdout = victim.stdout.take().unwrap();
    // Wait (by reading, not by sleeping) until the handler has written its
    // effect and holds the transaction.
    let inside = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map(Result::unwrap)
            // The harness's "test ... " prefix may share the line.
            .find_map(|line| line.split_once("INSIDE ").map(|(_, id)| id.to_owned()))
    })
    .await
    .unwrap()
    .expect("the victim's handler got inside its transaction");

    // While it is inside: its write lock is held and its effect invisible.
    let conn = Connection::open(&db).unwrap();
    // Fail at once rather than after rusqlite's default busy wait.
    conn.busy_timeout(Duration::ZERO).unwrap();
    let busy = conn.execute_batch("BEGIN IMMEDIATE").unwrap_err();
    assert_eq!(
        busy.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy),
        "the victim holds the write lock: {busy}"
    );
    drop(conn);
    assert!(
        effects(&db).is_empty(),
        "an uncommitted effect is invisible"
    );

    victim.kill().unwrap(); // SIGKILL
    assert!(!victim.wait().unwrap().success());

    let clock = ManualClock::new(T0);
    let store = open(&db, &clock).await;
    assert!(
        effects(&db).is_empty(),
        "the killed transaction left nothing"
    );
    let row = only_row(&store).await;
    assert_eq!(row.id.to_string(), inside);
    assert_eq!(
        (row.status, row.attempt, row.runner_id.as_deref()),
        (Status::Running, 1, Some("victim")),
        "not SUCCESS: the victim's lease, left to go stale"
    );

    // A second replica, once the lease is stale: the sweep closes it and,
    // the job being reentrant, the retry runs the handler again.
    clock.advance(STALE + Duration::from_secs(1));
    let m = manager(store.clone(), "rescuer");
    m.register(reentrant_job(&store, false)).unwrap();
    let report = m.run_once().await;
    assert_eq!(
        (
            report.swept,
            report.retried,
            report.succeeded,
            report.errors
        ),
        (1, 1, 1, 0),
        "{report:?}"
    );
    assert_eq!(
        effects(&db),
        vec![(inside.clone(), 2, "rescuer".to_owned())],
        "the effect, exactly once, by the retry"
    );
    let row = only_row(&store).await;
    assert_eq!((row.status, row.attempt), (Status::Success, 2));
    assert_eq!(
        outcomes(&store, &row).await,
        vec![(1, AttemptOutcome::Swept), (2, AttemptOutcome::Success)]
    );

    // Nothing runs it again.
    clock.advance(Duration::from_secs(60));
    let report = m.run_once().await;
    assert_eq!((report.retried, report.succeeded), (0, 0), "{report:?}");
    assert_eq!(effects(&db).len(), 1);
}
