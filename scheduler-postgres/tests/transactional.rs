//! Transactional jobs on PostgreSQL (`docs/contract.md` §13): a run's
//! effects, written in the job's transaction, land with its SUCCESS or not
//! at all, whether the handler fails, its lease is taken over, its
//! connection dies at the commit or it times out.
//!
//! Each test writes its effects to a table of its own in its schema
//! (dropped with the schema). Races are arranged with channels and with
//! locks the test holds, never by sleeping; store time moves with the
//! store's [`TimeOffset`].

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use scheduler_core::model::Steering;
use scheduler_core::plan::floor;
use scheduler_core::{
    AttemptOutcome, ClaimOutcome, ClaimRequest, Execution, ExecutionAudit, ExecutionFilter,
    JobOutput, JobSpec, LeaseStore, Manager, ManagerOptions, PlanKey, RunContext, Scopes, Status,
    TimeControl,
};
use scheduler_postgres::{PgLeaseStore, TimeOffset};
use sqlx_core::query::query;
use sqlx_core::query_scalar::query_scalar;
use sqlx_core::raw_sql::raw_sql;
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_postgres::PgTransaction;
use tokio::sync::{mpsc, Notify};
use uuid::Uuid;

use common::{test_db, TestDb};

const CADENCE: Duration = Duration::from_secs(60);
const JOB: &str = "rollup";

/// A test's database: the store (named [`JOB`], on a shared offset), its
/// effects table, and a manager running as `r1`.
struct Setup {
    db: TestDb,
    store: PgLeaseStore,
    offset: TimeOffset,
    effects: String,
    manager: Manager,
}

async fn setup() -> Option<Setup> {
    let db = test_db().await?;
    let offset = TimeOffset::new();
    let store = db.store(JOB).await.with_time_offset(offset.clone());
    let effects = format!("\"{}\".effects", db.schema);
    raw_sql(AssertSqlSafe(format!(
        "CREATE TABLE {effects} (execution_id uuid NOT NULL, attempt int NOT NULL)"
    )))
    .execute(&db.admin)
    .await
    .unwrap();
    // Store time in the middle of a cadence bucket, so that the plan a
    // test's ticks claim stays the same whatever time they take and the
    // few seconds a retry test moves on.
    let now = store.now().await.unwrap();
    let target = floor(now, CADENCE) + CADENCE + CADENCE / 2;
    offset.advance((target - now).try_into().unwrap());
    let manager = Manager::new(
        Arc::new(store.clone()),
        ManagerOptions {
            runner_id: "r1".into(),
            ..Default::default()
        },
    )
    .unwrap();
    Some(Setup {
        db,
        store,
        offset,
        effects,
        manager,
    })
}

/// Inserts the run's effect row in `tx`.
async fn write_effect(effects: &str, ctx: &RunContext, tx: &mut PgTransaction<'static>) {
    query(AssertSqlSafe(format!(
        "INSERT INTO {effects} (execution_id, attempt) VALUES ($1, $2)"
    )))
    .bind(ctx.execution_id())
    .bind(ctx.attempt())
    .execute(&mut **tx)
    .await
    .unwrap();
}

impl Setup {
    /// The committed effects: (execution, attempt) of each row.
    async fn effects(&self) -> Vec<(Uuid, i32)> {
        sqlx_core::query_as::query_as(AssertSqlSafe(format!(
            "SELECT execution_id, attempt FROM {} ORDER BY attempt",
            self.effects
        )))
        .fetch_all(&self.db.admin)
        .await
        .unwrap()
    }

    /// The job's one execution row.
    async fn row(&self) -> Execution {
        let rows = self
            .store
            .list_executions(&ExecutionFilter {
                job_name: Some(JOB.to_owned()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "one plan: {rows:?}");
        rows.into_iter().next().unwrap()
    }

    /// A transactional job on the store whose handler writes one effect
    /// row and then runs `then` (which may fail, wait or hang).
    fn job<F, Fut>(&self, then: F) -> JobSpec
    where
        F: Fn(RunContext, PgTransaction<'static>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<PgTransaction<'static>, scheduler_core::BoxError>>
            + Send
            + 'static,
    {
        let effects = self.effects.clone();
        let then = Arc::new(then);
        self.store
            .transactional_job(JOB, Scopes::global(), move |ctx, mut tx| {
                let (effects, then) = (effects.clone(), then.clone());
                async move {
                    write_effect(&effects, &ctx, &mut tx).await;
                    let tx = then(ctx, tx).await?;
                    Ok((JobOutput::rows(1).with("written", true), tx))
                }
            })
            .cadence(CADENCE)
            .retry_backoff(vec![Duration::from_secs(10)])
    }

    /// Moves store time past the retry backoff, to the next attempt.
    fn to_retry(&self) {
        self.offset.advance(Duration::from_secs(11));
    }

    async fn teardown(self) {
        drop((self.manager, self.store));
        self.db.drop_schema().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_effect_and_the_success_commit_together_and_count_once() {
    let Some(s) = setup().await else { return };
    s.manager.register(s.job(|_, tx| async { Ok(tx) })).unwrap();
    let report = s.manager.run_once().await;
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
    let row = s.row().await;
    assert_eq!(s.effects().await, vec![(row.id, 1)]);
    assert_eq!((row.status, row.rows_affected), (Status::Success, Some(1)));
    assert_eq!(
        row.result.get("written"),
        Some(&serde_json::Value::Bool(true))
    );
    assert!(row.finished_at >= row.started_at, "{row:?}");
    let attempts = s.store.attempts(row.id).await.unwrap();
    assert_eq!(
        attempts.len(),
        1,
        "the attempt is logged once: {attempts:?}"
    );
    assert_eq!(
        (attempts[0].outcome, attempts[0].ended_at),
        (AttemptOutcome::Success, row.finished_at.unwrap())
    );
    s.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_writes_nothing_and_its_retry_writes_the_effect_once() {
    let Some(s) = setup().await else { return };
    let calls = Arc::new(AtomicU32::new(0));
    let seen = calls.clone();
    s.manager
        .register(s.job(move |_, tx| {
            let first = seen.fetch_add(1, Ordering::SeqCst) == 0;
            async move {
                if first {
                    return Err("the first attempt fails after writing".into());
                }
                Ok(tx)
            }
        }))
        .unwrap();
    let report = s.manager.run_once().await;
    assert_eq!((report.failed, report.succeeded), (1, 0), "{report:?}");
    assert_eq!(
        s.effects().await,
        vec![],
        "the failed attempt's row is gone"
    );
    let row = s.row().await;
    assert_eq!(
        (row.status, row.error_code.as_deref()),
        (Status::Failed, Some("handler_error"))
    );
    s.to_retry();
    let report = s.manager.run_once().await;
    assert_eq!((report.succeeded, report.lease_lost), (1, 0), "{report:?}");
    let row = s.row().await;
    assert_eq!(row.status, Status::Success);
    assert_eq!(
        s.effects().await,
        vec![(row.id, 2)],
        "written by attempt 2 alone"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    s.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_lease_was_taken_over_commits_nothing() {
    let Some(s) = setup().await else { return };
    let (started, mut running) = mpsc::unbounded_channel();
    let go = Arc::new(Notify::new());
    let release = go.clone();
    let job = s
        .job(move |ctx, tx| {
            let (started, go) = (started.clone(), release.clone());
            async move {
                started.send(ctx.lease().clone()).unwrap();
                go.notified().await;
                Ok(tx)
            }
        })
        .allow_stale_reentry(true)
        .max_attempts(3)
        .run_timeout(Duration::from_secs(30))
        .stale_timeout(Duration::from_secs(60))
        // No heartbeat of r1's finds the takeover first: the guarded write
        // in the transaction is what must refuse the run.
        .heartbeat_interval(Duration::from_secs(50));
    s.manager.register(job).unwrap();
    let manager = s.manager.clone();
    let run = tokio::spawn(async move { manager.run_once().await });
    let lease = running.recv().await.unwrap();
    // The lease goes stale in store time, and r2 takes it over.
    s.offset.advance(Duration::from_secs(61));
    let taken = s
        .store
        .claim(&ClaimRequest {
            finishing: &[],
            steering: Steering::NONE,
            job_name: JOB,
            runner_id: "r2",
            max_attempts: 3,
            stale_timeout: Duration::from_secs(60),
            allow_stale_reentry: true,
            keys: &[PlanKey {
                scope: lease.scope.clone(),
                plan_time: lease.plan_time,
            }],
        })
        .await
        .unwrap();
    let Some(ClaimOutcome::Stolen(stolen)) = taken.into_iter().next() else {
        panic!("r2 did not take the lease over");
    };
    go.notify_one();
    let report = run.await.unwrap();
    assert_eq!(
        (report.succeeded, report.failed, report.lease_lost),
        (0, 0, 1),
        "{report:?}"
    );
    assert_eq!(s.effects().await, vec![], "r1's effect was rolled back");
    let row = s.row().await;
    assert_eq!(
        (row.status, row.runner_id.as_deref(), row.lease_token),
        (Status::Running, Some("r2"), stolen.token),
        "r2's lease is untouched"
    );
    s.teardown().await;
}

/// A lock the test holds that the effects table's deferred trigger takes
/// at COMMIT: a transaction inserting into it cannot commit until the test
/// lets it, and the test sees it wait there.
async fn hold_commits(s: &Setup) -> PgTransaction<'static> {
    let key = format!("hashtext('{}')", s.db.schema);
    raw_sql(AssertSqlSafe(format!(
        "CREATE FUNCTION \"{schema}\".hold_commit() RETURNS trigger LANGUAGE plpgsql AS \
           $$ BEGIN PERFORM pg_advisory_xact_lock({key}); RETURN NULL; END $$; \
         CREATE CONSTRAINT TRIGGER hold_commit AFTER INSERT ON {effects} \
           DEFERRABLE INITIALLY DEFERRED FOR EACH ROW \
           EXECUTE FUNCTION \"{schema}\".hold_commit()",
        schema = s.db.schema,
        effects = s.effects,
    )))
    .execute(&s.db.admin)
    .await
    .unwrap();
    let mut holder = s.db.admin.begin().await.unwrap();
    query(AssertSqlSafe(format!(
        "SELECT pg_advisory_xact_lock({key})::text"
    )))
    .execute(&mut *holder)
    .await
    .unwrap();
    holder
}

/// Polls (bounded, 10 s) until a connection of pg_stat_activity meets
/// `condition`, in which `$1` is a backend's pid and `$2` the store's
/// application name: a condition, not a timing assumption.
async fn wait_for(db: &TestDb, condition: &str, pid: i32) {
    let sql = format!("SELECT count(*) > 0 FROM pg_stat_activity WHERE {condition}");
    for _ in 0..1000 {
        let met: bool = query_scalar(AssertSqlSafe(sql.clone()))
            .bind(pid)
            .bind(db.application_name(JOB))
            .fetch_one(&db.admin)
            .await
            .unwrap();
        if met {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never met, for backend {pid}: {condition}");
}

/// Backend `$1` waits on a lock in its COMMIT.
const IN_COMMIT: &str =
    "pid = $1 AND application_name = $2 AND wait_event_type = 'Lock' AND query = 'COMMIT'";

/// Another connection of the store than backend `$1` waits on a lock.
const WAITING_BEHIND: &str = "pid <> $1 AND application_name = $2 AND wait_event_type = 'Lock'";

/// A handler that tells the test its transaction's backend.
fn telling_pid(
    pids: mpsc::UnboundedSender<i32>,
) -> impl Fn(
    RunContext,
    PgTransaction<'static>,
) -> futures::future::BoxFuture<
    'static,
    Result<PgTransaction<'static>, scheduler_core::BoxError>,
> + Send
       + Sync
       + 'static {
    move |_, mut tx| {
        let pids = pids.clone();
        Box::pin(async move {
            let pid: i32 = query_scalar("SELECT pg_backend_pid()")
                .fetch_one(&mut *tx)
                .await?;
            let _ = pids.send(pid);
            Ok(tx)
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_killed_at_commit_commits_neither_and_the_retry_writes_once() {
    let Some(s) = setup().await else { return };
    let holder = hold_commits(&s).await;
    let (pids, mut told) = mpsc::unbounded_channel();
    s.manager.register(s.job(telling_pid(pids))).unwrap();
    let manager = s.manager.clone();
    let run = tokio::spawn(async move { manager.run_once().await });
    // The guarded SUCCESS is written; the COMMIT waits in the trigger.
    let pid = told.recv().await.unwrap();
    wait_for(&s.db, IN_COMMIT, pid).await;
    let killed: bool = query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(&s.db.admin)
        .await
        .unwrap();
    assert!(killed);
    holder.rollback().await.unwrap();
    let report = run.await.unwrap();
    let row = s.row().await;
    let effects = s.effects().await;
    // Both or neither; a kill before the commit record is neither, and the
    // run is then a failure the manager recorded.
    assert_eq!(
        (effects.len(), row.status),
        (0, Status::Failed),
        "{report:?} {row:?}"
    );
    assert_eq!((report.failed, report.succeeded), (1, 0), "{report:?}");
    s.to_retry();
    let report = s.manager.run_once().await;
    assert_eq!(report.succeeded, 1, "{report:?}");
    let row = s.row().await;
    assert_eq!(row.status, Status::Success);
    assert_eq!(
        s.effects().await,
        vec![(row.id, 2)],
        "the retry's effect, once"
    );
    s.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_dropped_in_its_commit_that_the_server_completes_has_both() {
    let Some(s) = setup().await else { return };
    let holder = hold_commits(&s).await;
    let (pids, mut told) = mpsc::unbounded_channel();
    // The run times out while its COMMIT waits: the manager drops the
    // future, but the server has the COMMIT and completes it once the lock
    // is free. The failure's own write then finds the row SUCCESS.
    let job = s
        .job(telling_pid(pids))
        .run_timeout(Duration::from_secs(1))
        .stale_timeout(Duration::from_secs(60));
    s.manager.register(job).unwrap();
    let manager = s.manager.clone();
    let run = tokio::spawn(async move { manager.run_once().await });
    let pid = told.recv().await.unwrap();
    wait_for(&s.db, IN_COMMIT, pid).await;
    // The manager's FAILED write waits on the row the COMMIT holds.
    wait_for(&s.db, WAITING_BEHIND, pid).await;
    holder.rollback().await.unwrap();
    let report = run.await.unwrap();
    let row = s.row().await;
    assert_eq!(
        (s.effects().await, row.status),
        (vec![(row.id, 1)], Status::Success),
        "both: {report:?}"
    );
    assert_eq!(
        (report.succeeded, report.failed, report.lease_lost),
        (0, 0, 1),
        "the timed-out run's FAILED write was refused: {report:?}"
    );
    let attempts = s.store.attempts(row.id).await.unwrap();
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(attempts[0].outcome, AttemptOutcome::Success);
    s.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_times_out_writes_nothing() {
    let Some(s) = setup().await else { return };
    let calls = Arc::new(AtomicU32::new(0));
    let seen = calls.clone();
    let job = s
        .job(move |_, tx| {
            let first = seen.fetch_add(1, Ordering::SeqCst) == 0;
            async move {
                if first {
                    // Holds its written, uncommitted row until dropped.
                    std::future::pending::<()>().await;
                }
                Ok(tx)
            }
        })
        .run_timeout(Duration::from_millis(300))
        .stale_timeout(Duration::from_secs(60));
    s.manager.register(job).unwrap();
    let report = s.manager.run_once().await;
    assert_eq!((report.failed, report.succeeded), (1, 0), "{report:?}");
    assert_eq!(s.effects().await, vec![]);
    let row = s.row().await;
    assert_eq!(
        (row.status, row.error_code.as_deref()),
        (Status::Failed, Some("run_timeout"))
    );
    s.to_retry();
    assert_eq!(s.manager.run_once().await.succeeded, 1);
    let row = s.row().await;
    assert_eq!(s.effects().await, vec![(row.id, 2)]);
    s.teardown().await;
}
