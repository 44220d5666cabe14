//! Several OS processes on one database file, each running a `Manager`:
//! every plan runs exactly once, nothing reaches a caller as "database is
//! locked"; and a process killed in the middle of a run has its leases taken
//! over by another process once they go stale.
//!
//! The children are this test binary run again (`current_exe()`), selected
//! by an environment variable, so no helper binary has to be built.

mod common;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use scheduler_core::model::{Control, ControlChange, ControlRead, NewControl, Progress};
use scheduler_core::{
    Announcement, Attempt, CatchUpMode, ClaimOutcome, ClaimRequest, Execution, ExecutionAudit,
    ExecutionFilter, Finish, JobOutput, JobSpec, LatestExecution, Lease, LeaseStore, LeaseStoreExt,
    Manager, ManagerOptions, ManualClock, PlanKey, Prune, Replica, RetryDue, RetryRead,
    ScheduleWrite, Scope, ScopeSummary, Scopes, Status, StoreError, StoredSchedule, TimeControl,
};
use scheduler_sqlite::{SqliteLeaseStore, SqliteStoreOptions};
use time::OffsetDateTime;
use uuid::Uuid;

/// Set in a child: which role it plays. Its value is the database path.
const FANOUT_CHILD: &str = "SCHEDULER_SQLITE_FANOUT_CHILD";
const VICTIM_CHILD: &str = "SCHEDULER_SQLITE_VICTIM_CHILD";
/// The ledger file a fan-out child appends its runs to.
const LEDGER: &str = "SCHEDULER_SQLITE_LEDGER";

const FANOUT_JOB: &str = "fanout";
const SCOPES: usize = 20;
const PROCESSES: usize = 4;
/// How long each fan-out child runs its manager: several 1 s plans.
const CHILD_RUN: Duration = Duration::from_secs(5);

/// Forwards to the store and reports every backend error on stderr (the
/// manager would only count or log them), so the parent sees any "database
/// is locked" that reached a caller.
#[derive(Debug)]
struct Watched {
    store: SqliteLeaseStore,
    errors: AtomicU64,
}

impl Watched {
    fn seen<T>(&self, call: &str, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(e @ StoreError::Backend { .. }) = &result {
            self.errors.fetch_add(1, Ordering::SeqCst);
            eprintln!("STORE ERROR in {call}: {e}");
        }
        result
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl LeaseStore for Watched {
    async fn now(&self) -> Result<OffsetDateTime, StoreError> {
        self.seen("now", self.store.now().await)
    }
    async fn claim(&self, request: &ClaimRequest<'_>) -> Result<Vec<ClaimOutcome>, StoreError> {
        self.seen("claim", self.store.claim(request).await)
    }
    async fn heartbeat(
        &self,
        lease: &Lease,
        stale: Duration,
    ) -> Result<OffsetDateTime, StoreError> {
        self.seen("heartbeat", self.store.heartbeat(lease, stale).await)
    }
    async fn finish_many(&self, items: &[(&Lease, &Finish)]) -> Vec<Result<(), StoreError>> {
        let results = self.store.finish_many(items).await;
        results
            .into_iter()
            .map(|result| self.seen("finish_many", result))
            .collect()
    }
    async fn sweep_stale(
        &self,
        job_name: &str,
        allow_stale_reentry: bool,
    ) -> Result<u64, StoreError> {
        self.seen(
            "sweep_stale",
            self.store.sweep_stale(job_name, allow_stale_reentry).await,
        )
    }
    async fn latest_executions(
        &self,
        job_name: &str,
        scopes: &[Scope],
    ) -> Result<Vec<Option<LatestExecution>>, StoreError> {
        self.seen(
            "latest_executions",
            self.store.latest_executions(job_name, scopes).await,
        )
    }
    async fn retry_due(&self, read: &RetryRead<'_>) -> Result<Vec<RetryDue>, StoreError> {
        self.seen("retry_due", self.store.retry_due(read).await)
    }
    async fn announce(&self, announcement: &Announcement) -> Result<(), StoreError> {
        self.seen("announce", self.store.announce(announcement).await)
    }
    async fn controls(&self, read: &ControlRead) -> Result<Vec<Control>, StoreError> {
        self.seen("controls", self.store.controls(read).await)
    }
    async fn update_control(
        &self,
        id: Uuid,
        change: &ControlChange,
    ) -> Result<Control, StoreError> {
        self.seen(
            "update_control",
            self.store.update_control(id, change).await,
        )
    }
    async fn schedules(&self) -> Result<Vec<StoredSchedule>, StoreError> {
        self.seen("schedules", self.store.schedules().await)
    }

    fn control_changes(&self) -> Option<tokio::sync::watch::Receiver<()>> {
        self.store.control_changes()
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl ExecutionAudit for Watched {
    async fn get_execution(&self, id: Uuid) -> Result<Option<Execution>, StoreError> {
        self.seen("get_execution", self.store.get_execution(id).await)
    }
    async fn attempts(&self, id: Uuid) -> Result<Vec<Attempt>, StoreError> {
        self.seen("attempts", self.store.attempts(id).await)
    }
    async fn attempts_of(&self, ids: &[Uuid]) -> Result<Vec<Vec<Attempt>>, StoreError> {
        self.seen("attempts_of", self.store.attempts_of(ids).await)
    }
    async fn list_executions(
        &self,
        filter: &ExecutionFilter,
    ) -> Result<Vec<Execution>, StoreError> {
        self.seen("list_executions", self.store.list_executions(filter).await)
    }
    async fn scope_summaries(
        &self,
        job_name: Option<&str>,
    ) -> Result<Vec<ScopeSummary>, StoreError> {
        self.seen(
            "scope_summaries",
            self.store.scope_summaries(job_name).await,
        )
    }
    async fn plan_times_since(
        &self,
        job_name: &str,
        from: time::OffsetDateTime,
    ) -> Result<Vec<scheduler_core::PlannedAt>, StoreError> {
        self.seen(
            "plan_times_since",
            self.store.plan_times_since(job_name, from).await,
        )
    }
    async fn retry_execution(&self, id: Uuid) -> Result<Execution, StoreError> {
        self.seen("retry_execution", self.store.retry_execution(id).await)
    }
    async fn prune_finished(&self, prune: &Prune) -> Result<u64, StoreError> {
        self.seen("prune_finished", self.store.prune_finished(prune).await)
    }
    async fn replicas(&self) -> Result<Vec<Replica>, StoreError> {
        self.seen("replicas", self.store.replicas().await)
    }
    async fn add_control(&self, control: &NewControl) -> Result<Control, StoreError> {
        self.seen("add_control", self.store.add_control(control).await)
    }
    async fn control_progress(&self, id: Uuid) -> Result<Progress, StoreError> {
        self.seen("control_progress", self.store.control_progress(id).await)
    }
    async fn write_schedule(
        &self,
        name: &str,
        write: &ScheduleWrite,
    ) -> Result<Option<StoredSchedule>, StoreError> {
        self.seen(
            "write_schedule",
            self.store.write_schedule(name, write).await,
        )
    }
}

fn fanout_scopes() -> Vec<Scope> {
    (0..SCOPES)
        .map(|i| Scope::new("tenant", format!("t{i:02}")))
        .collect()
}

/// A fan-out child: runs a manager on the shared file for `CHILD_RUN`,
/// appending one ledger line per run; fails on any error.
async fn fanout_child(db: &Path) {
    let ledger = std::env::var_os(LEDGER).expect("the ledger path");
    // The children race to migrate the fresh file, which must be harmless.
    let store = Arc::new(Watched {
        store: SqliteLeaseStore::open(db)
            .await
            .expect("open the shared file"),
        errors: AtomicU64::new(0),
    });
    let pid = std::process::id();
    // `..Default::default()` stays for fields the options may gain.
    #[allow(clippy::needless_update)]
    let options = ManagerOptions {
        runner_id: format!("process-{pid}"),
        tick_interval: Duration::from_millis(500),
        // Fewer than the 20 scopes, so each process leaves work to others.
        max_concurrency: 8,
        shutdown_grace: Duration::from_secs(10),
        ..Default::default()
    };
    let manager = Manager::new(store.clone(), options).expect("valid manager options");
    let job = JobSpec::new(FANOUT_JOB, Scopes::fixed(fanout_scopes()), move |ctx| {
        let ledger = ledger.clone();
        async move {
            let line = format!(
                "{} {} {pid}\n",
                ctx.scope().id,
                ctx.plan_time().unix_timestamp_nanos() / 1_000
            );
            // One write of a short line to an O_APPEND file: lines from
            // different processes never interleave.
            fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&ledger)?
                .write_all(line.as_bytes())?;
            Ok(JobOutput::rows(1))
        }
    })
    .cadence(Duration::from_secs(1))
    .catch_up(CatchUpMode::EveryPlan)
    .catch_up_window(Duration::from_secs(3))
    .max_plans_per_tick(3)
    .run_timeout(Duration::from_secs(10))
    .stale_timeout(Duration::from_secs(30))
    .heartbeat_interval(Duration::from_secs(5));
    manager.register(job).expect("a valid job");
    let report = manager.run(tokio::time::sleep(CHILD_RUN)).await;
    println!("REPORT {report:?}");
    assert_eq!(
        store.errors.load(Ordering::SeqCst),
        0,
        "store errors reached the manager"
    );
    assert_eq!(
        (report.errors, report.failed, report.lease_lost),
        (0, 0, 0),
        "{report:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_processes_share_one_file_and_run_every_plan_once() {
    if let Some(db) = common::role(FANOUT_CHILD) {
        return fanout_child(&db).await;
    }
    let (dir, db) = common::temp_db("shared.db");
    let ledger = dir.path().join("ledger.txt");
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            common::child(
                "several_processes_share_one_file_and_run_every_plan_once",
                FANOUT_CHILD,
                &db,
            )
            .env(LEDGER, &ledger)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn a child process")
        })
        .collect();
    let outputs: Vec<_> = tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect()
    })
    .await
    .unwrap();
    for out in &outputs {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "a child failed ({}):\n{stdout}\n{stderr}",
            out.status
        );
        for needle in ["database is locked", "SQLITE_BUSY", "STORE ERROR"] {
            assert!(
                !stderr.contains(needle),
                "a child saw {needle:?}:\n{stderr}"
            );
        }
    }

    let mut runs: HashMap<(String, i64), Vec<u32>> = HashMap::new();
    for line in fs::read_to_string(&ledger).expect("the ledger").lines() {
        let mut fields = line.split(' ');
        let (Some(scope), Some(plan), Some(pid), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            panic!("a torn ledger line: {line:?}");
        };
        runs.entry((scope.to_owned(), plan.parse().unwrap()))
            .or_default()
            .push(pid.parse().unwrap());
    }
    let twice: Vec<_> = runs.iter().filter(|(_, pids)| pids.len() > 1).collect();
    assert!(twice.is_empty(), "plans that ran more than once: {twice:?}");

    let store = SqliteLeaseStore::open(&db).await.unwrap();
    let rows = store
        .list_executions(&ExecutionFilter {
            job_name: Some(FANOUT_JOB.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let not_done: Vec<_> = rows
        .iter()
        .filter(|r| r.status != Status::Success)
        .collect();
    assert!(not_done.is_empty(), "rows not SUCCESS: {not_done:#?}");
    assert!(
        rows.iter().all(|r| r.attempt == 1),
        "no plan needed a second attempt"
    );
    let stored: HashSet<(String, i64)> = rows
        .iter()
        .map(|r| {
            (
                r.scope.id.to_string(),
                r.plan_time.unix_timestamp_nanos() as i64 / 1_000,
            )
        })
        .collect();
    let ran: HashSet<(String, i64)> = runs.keys().cloned().collect();
    assert_eq!(stored, ran, "every row ran, and every run has its row");
    // Each process announced itself to the registry, concurrently with the
    // others, and marked itself stopped: one row each.
    let replicas = store.replicas().await.unwrap();
    assert_eq!(replicas.len(), PROCESSES, "{replicas:#?}");
    assert!(
        replicas.iter().all(|r| r.stopped_at.is_some()
            && r.info.runner_id == format!("process-{}", r.info.pid)
            && r.info.jobs.len() == 1),
        "{replicas:#?}"
    );

    let scopes: HashSet<&str> = ran.iter().map(|(s, _)| s.as_str()).collect();
    let plans: HashSet<i64> = ran.iter().map(|(_, p)| *p).collect();
    let pids: HashSet<u32> = runs.values().flatten().copied().collect();
    println!(
        "{} runs: {} scopes x {} plans, by {} processes",
        ran.len(),
        scopes.len(),
        plans.len(),
        pids.len()
    );
    assert_eq!(scopes.len(), SCOPES, "every scope ran");
    assert!(plans.len() >= 2, "several plans ran: {plans:?}");
    assert!(
        pids.len() >= 2,
        "the work was shared between processes: {pids:?}"
    );
}

const TAKEOVER_JOB: &str = "takeover";
const STALE: Duration = Duration::from_secs(60);
/// Store time in both processes: fixed, so the plan and the staleness do
/// not depend on the wall clock.
const T0: OffsetDateTime = time::macros::datetime!(2026-03-01 12:00:10 UTC);

fn takeover_job(handler_blocks: bool) -> JobSpec {
    let scopes = Scopes::fixed([Scope::new("tenant", "a"), Scope::new("tenant", "b")]);
    JobSpec::new(TAKEOVER_JOB, scopes, move |ctx| async move {
        if handler_blocks {
            println!("CLAIMED {} {}", ctx.scope().id, ctx.execution_id());
            std::io::stdout().flush()?;
            // The victim is killed in here.
            std::future::pending::<()>().await;
        }
        Ok(JobOutput::rows(1))
    })
    .cadence(Duration::from_secs(3600))
    .allow_stale_reentry(true)
    .run_timeout(Duration::from_secs(50))
    .stale_timeout(STALE)
    .heartbeat_interval(Duration::from_secs(20))
}

/// The victim: claims both scopes' plan and blocks in the handlers until
/// the parent kills it.
async fn victim_child(db: &Path) {
    let clock = Arc::new(ManualClock::new(T0));
    let store = SqliteStoreOptions::new(db)
        .clock(clock)
        .open()
        .await
        .unwrap();
    let manager = Manager::new(
        Arc::new(store),
        ManagerOptions {
            runner_id: "victim".into(),
            ..Default::default()
        },
    )
    .expect("valid manager options");
    manager.register(takeover_job(true)).unwrap();
    manager.run_once().await;
    unreachable!("the handlers never return");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_leases_are_taken_over_after_stale_timeout() {
    if let Some(db) = common::role(VICTIM_CHILD) {
        return victim_child(&db).await;
    }
    let (_dir, db) = common::temp_db("takeover.db");
    let mut victim = common::child(
        "a_killed_process_leases_are_taken_over_after_stale_timeout",
        VICTIM_CHILD,
        &db,
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let stdout = victim.stdout.take().unwrap();
    // Wait (by reading, not by sleeping) until both handlers are running.
    let claimed: HashMap<String, Uuid> = tokio::task::spawn_blocking(move || {
        let mut claimed = HashMap::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            // The harness's "test ... " prefix may share the first line.
            if let Some((_, rest)) = line.split_once("CLAIMED ") {
                let (scope, id) = rest.split_once(' ').unwrap();
                claimed.insert(scope.to_owned(), id.parse().unwrap());
                if claimed.len() == 2 {
                    break;
                }
            }
        }
        claimed
    })
    .await
    .unwrap();
    assert_eq!(
        claimed.len(),
        2,
        "the victim claimed both scopes before dying"
    );
    victim.kill().unwrap();
    assert!(!victim.wait().unwrap().success());

    let clock = Arc::new(ManualClock::new(T0));
    let store = Arc::new(
        SqliteStoreOptions::new(&db)
            .clock(clock.clone())
            .open()
            .await
            .unwrap(),
    );
    let orphan = store.get_execution(claimed["a"]).await.unwrap().unwrap();
    assert_eq!(
        (orphan.status, orphan.runner_id.as_deref()),
        (Status::Running, Some("victim"))
    );
    let victim_lease = orphan.lease().unwrap();
    let keys = [PlanKey {
        scope: Scope::new("tenant", "a"),
        plan_time: orphan.plan_time,
    }];
    let request = ClaimRequest {
        finishing: &[],
        steering: scheduler_core::model::Steering::NONE,
        job_name: TAKEOVER_JOB,
        runner_id: "rescuer",
        max_attempts: 3,
        stale_timeout: STALE,
        allow_stale_reentry: true,
        keys: &keys,
    };
    assert_eq!(
        store.claim(&request).await.unwrap(),
        vec![ClaimOutcome::Conflicted],
        "the lease is live until stale_timeout"
    );

    clock.advance(STALE + Duration::from_secs(1));
    // Scope a: a store-level claim steals the stale lease.
    let ClaimOutcome::Stolen(lease) = store.claim(&request).await.unwrap().remove(0) else {
        panic!("the stale lease should be stolen");
    };
    assert_eq!((lease.id, lease.attempt), (claimed["a"], 2));
    let done = Finish::success(Duration::ZERO, 1, Default::default());
    assert!(matches!(
        store.finish(&victim_lease, &done).await,
        Err(StoreError::LeaseLost { .. })
    ));
    store.finish(&lease, &done).await.unwrap();

    // Scope b: a manager sweeps the stale lease first (the audit row says
    // stale_timeout) and, the job being reentrant, retries it.
    let manager = Manager::new(
        store.clone(),
        ManagerOptions {
            runner_id: "rescuer-manager".into(),
            ..Default::default()
        },
    )
    .expect("valid manager options");
    manager.register(takeover_job(false)).unwrap();
    let report = manager.run_once().await;
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
    for (scope, runner) in [("a", "rescuer"), ("b", "rescuer-manager")] {
        let row = store.get_execution(claimed[scope]).await.unwrap().unwrap();
        assert_eq!(
            (row.status, row.attempt, row.runner_id.as_deref()),
            (Status::Success, 2, Some(runner)),
            "scope {scope}"
        );
    }
}
