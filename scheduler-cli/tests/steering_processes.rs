//! `scheduler pause` and `scheduler resume` against real replica
//! processes, on a SQLite file and on PostgreSQL: two processes run a job
//! due every second; once the pause command has returned, no execution of
//! the job starts until the resume; after it, `latest_only` catch-up runs
//! at most the newest plan that came due while paused, never the ones in
//! between.
//!
//! The assertions read the table's store-time instants (`started_at`, the
//! controls' `created_at` and `ended_at`), never how long the test waited,
//! so a slow machine cannot make them pass or fail. The waits only let the
//! job's cadence pass, or poll for a condition. Each run prints how close
//! the last start before the pause came to it, and how soon after the
//! resume the first start came.
//!
//! The replicas are this test binary run again (`current_exe()`), selected
//! by an environment variable, as the SQLite crate's process tests do, so
//! no helper binary has to be built. A replica runs until its standard
//! input closes, then stops cleanly.

mod common;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{postgres_db, scheduler, stdout_json};
use scheduler_core::plan::Schedule;
use scheduler_core::{
    CatchUpMode, Execution, ExecutionAudit, ExecutionFilter, JobOutput, JobSpec, Manager,
    ManagerOptions, Scopes,
};
use scheduler_postgres::PgLeaseStore;
use scheduler_sqlite::SqliteLeaseStore;
use serde_json::Value;
use time::OffsetDateTime;

/// Set in a replica process: the database URL it runs on.
const REPLICA_OF: &str = "SCHEDULER_STEERING_REPLICA_OF";
/// Set in a replica process: its runner id.
const RUNNER: &str = "SCHEDULER_STEERING_RUNNER";

/// The job the replicas run.
const JOB: &str = "steered";
/// Its cadence: short, so that several plans come due while paused.
const CADENCE: Duration = Duration::from_secs(1);
/// How often a replica ticks at least: well inside the cadence, so that
/// the first tick after the resume usually falls in the bucket of the
/// newest plan that came due while paused, which latest_only then runs.
const TICK: Duration = Duration::from_millis(250);
/// How many replica processes run it.
const REPLICAS: usize = 2;
/// How long the job stays paused: five plans come due meanwhile.
const PAUSED_FOR: Duration = Duration::from_secs(5);
/// How many executions must have run before the pause: the replicas are
/// up and running the job.
const RUNS_BEFORE: usize = 3;
/// The longest wait for a condition the replicas bring about.
const PATIENCE: Duration = Duration::from_secs(60);
/// How often such a wait reads the store.
const POLL: Duration = Duration::from_millis(20);

/// The store a URL names, for the test's own reads and the replicas.
async fn open(url: &str) -> Arc<dyn ExecutionAudit> {
    if url.starts_with("sqlite:") {
        Arc::new(
            SqliteLeaseStore::connect(url)
                .await
                .expect("the SQLite file"),
        )
    } else {
        Arc::new(
            PgLeaseStore::connect(url)
                .await
                .expect("the PostgreSQL database"),
        )
    }
}

/// A replica process: runs the job on `url` until its stdin closes.
fn replica(url: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = open(url).await;
        // `..Default::default()` stays for fields the options may gain.
        #[allow(clippy::needless_update)]
        let options = ManagerOptions {
            runner_id: std::env::var(RUNNER).expect("a runner id"),
            tick_interval: TICK,
            max_concurrency: 4,
            shutdown_grace: Duration::from_secs(5),
            ..Default::default()
        };
        let manager = Manager::new(store, options).expect("valid manager options");
        let job = JobSpec::new(JOB, Scopes::global(), |_| async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(JobOutput::rows(1))
        })
        .cadence(CADENCE)
        .catch_up(CatchUpMode::LatestOnly);
        manager.register(job).expect("a valid job");
        let stdin_closed = async {
            let _ = tokio::task::spawn_blocking(|| {
                let mut sink = Vec::new();
                std::io::stdin().read_to_end(&mut sink)
            })
            .await;
        };
        let report = manager.run(stdin_closed).await;
        println!("REPORT {report:?}");
    });
}

/// Starts replica `i` of the job on `url`, as this test binary run again
/// with only `test` selected.
fn spawn_replica(test: &str, url: &str, i: usize) -> Child {
    Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(REPLICA_OF, url)
        .env(RUNNER, format!("replica-{i}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a replica process")
}

/// The job's executions, newest plan first.
async fn executions(store: &dyn ExecutionAudit) -> Vec<Execution> {
    store
        .list_executions(&ExecutionFilter {
            job_name: Some(JOB.to_owned()),
            ..Default::default()
        })
        .await
        .unwrap()
}

/// Reads the job's executions until `done` holds of them (at most
/// [`PATIENCE`]), and returns them.
async fn until(
    store: &dyn ExecutionAudit,
    what: &str,
    done: impl Fn(&[Execution]) -> bool,
) -> Vec<Execution> {
    let give_up = Instant::now() + PATIENCE;
    loop {
        let rows = executions(store).await;
        if done(&rows) {
            return rows;
        }
        assert!(
            Instant::now() < give_up,
            "no {what} within {PATIENCE:?}: {rows:#?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

fn instant(v: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(
        v.as_str().unwrap_or_else(|| panic!("an instant: {v}")),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
}

fn ms(d: time::Duration) -> f64 {
    d.as_seconds_f64() * 1000.0
}

/// Pauses and resumes the job while [`REPLICAS`] processes run it on
/// `url`; `test` is the calling test's name, which the replicas run.
fn pause_and_resume_real_replicas(test: &str, url: &str, store_name: &str) {
    let migrated = scheduler(url, &["migrate"]);
    assert!(migrated.status.success(), "{migrated:?}");
    let mut replicas: Vec<Child> = (1..=REPLICAS)
        .map(|i| spawn_replica(test, url, i))
        .collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = runtime.block_on(open(url));

    runtime.block_on(until(store.as_ref(), "runs before the pause", |rows| {
        rows.iter().filter(|r| r.finished_at.is_some()).count() >= RUNS_BEFORE
    }));
    // Aim the pause at a plan's boundary, where the replicas claim: how
    // long a command takes to reach the store, measured with a read-only
    // one, says when to start it. Whether it lands just before or just
    // after the claim, the assertions below hold.
    let started = Instant::now();
    stdout_json(&scheduler(url, &["controls", "--json"]));
    let latency = started.elapsed();
    let now = runtime.block_on(store.now()).unwrap();
    let boundary = scheduler_core::plan::floor(now, CADENCE) + CADENCE;
    let wait = (boundary - now).unsigned_abs().saturating_sub(latency);
    std::thread::sleep(wait);
    let pause = stdout_json(&scheduler(url, &["pause", JOB, "--note", "test", "--json"]));
    // Store time once the command returned: the pause is stored, so from
    // here on no claim may start the job.
    let returned = runtime.block_on(store.now()).unwrap();
    let paused_at = instant(&pause["created_at"]);
    // Let the cadence pass: plans come due, and none may start.
    std::thread::sleep(PAUSED_FOR);
    let rows = runtime.block_on(executions(store.as_ref()));
    let during: Vec<&Execution> = rows
        .iter()
        .filter(|r| r.started_at.is_some_and(|s| s > returned))
        .collect();
    assert!(
        during.is_empty(),
        "{store_name}: executions started after the pause returned at {returned}: {during:#?}"
    );
    let last_before = rows
        .iter()
        .filter_map(|r| r.started_at)
        .max()
        .expect("runs before the pause");

    let resume = stdout_json(&scheduler(url, &["resume", JOB, "--json"]));
    let resumed_at = instant(&resume["ended_at"]);
    let rows = runtime.block_on(until(store.as_ref(), "start after the resume", |rows| {
        rows.iter()
            .any(|r| r.started_at.is_some_and(|s| s >= resumed_at))
    }));
    let first_after = rows
        .iter()
        .filter_map(|r| r.started_at)
        .filter(|s| *s >= resumed_at)
        .min()
        .unwrap();

    // Stop the replicas cleanly (their stdin closes) and read their report.
    for replica in &mut replicas {
        drop(replica.stdin.take());
    }
    for replica in replicas {
        let out = replica.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("REPORT"),
            "{store_name}: a replica failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // Nothing started while paused, whatever ran after the resume.
    let rows = runtime.block_on(executions(store.as_ref()));
    let while_paused: Vec<&Execution> = rows
        .iter()
        .filter(|r| r.started_at.is_some_and(|s| s > returned && s < resumed_at))
        .collect();
    assert!(while_paused.is_empty(), "{store_name}: {while_paused:#?}");
    // latest_only: of the plans that came due while paused, the catch-up
    // after the resume runs at most the newest; those in between never.
    let came_due = Schedule::every(CADENCE).between(
        paused_at,
        resumed_at - time::Duration::microseconds(1),
        usize::MAX,
    );
    assert!(
        came_due.len() >= 3,
        "{store_name}: {} plans came due while paused",
        came_due.len()
    );
    let newest = *came_due.last().unwrap();
    let in_between: Vec<&Execution> = rows
        .iter()
        .filter(|r| r.started_at.is_some_and(|s| s >= resumed_at))
        .filter(|r| came_due.contains(&r.plan_time) && r.plan_time != newest)
        .collect();
    assert!(
        in_between.is_empty(),
        "{store_name}: plans between the pause and the newest missed one ran: {in_between:#?}"
    );
    let first = rows
        .iter()
        .find(|r| r.started_at == Some(first_after))
        .unwrap();
    assert!(
        first.plan_time >= newest,
        "{store_name}: the first run after the resume was an older plan: {first:#?}"
    );
    let caught_up = rows.iter().any(|r| r.plan_time == newest);
    eprintln!(
        "{store_name}: last start before the pause {:.1} ms before the pause command returned \
         ({:.1} ms before the pause was stored); first start {:.1} ms after the resume \
         (plan {}, {} plans came due while paused, the newest {})",
        ms(returned - last_before),
        ms(paused_at - last_before),
        ms(first_after - resumed_at),
        first
            .plan_time
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap(),
        came_due.len(),
        if caught_up {
            "ran"
        } else {
            "was already superseded by a newer plan"
        }
    );
}

#[test]
fn on_sqlite_a_pause_stops_real_replicas_and_resume_catches_up_latest_only() {
    if let Ok(url) = std::env::var(REPLICA_OF) {
        return replica(&url);
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("steered.db").display());
    pause_and_resume_real_replicas(
        "on_sqlite_a_pause_stops_real_replicas_and_resume_catches_up_latest_only",
        &url,
        "sqlite",
    );
}

#[test]
fn on_postgres_a_pause_stops_real_replicas_and_resume_catches_up_latest_only() {
    if let Ok(url) = std::env::var(REPLICA_OF) {
        return replica(&url);
    }
    let Some(db) = postgres_db("steering") else {
        return;
    };
    pause_and_resume_real_replicas(
        "on_postgres_a_pause_stops_real_replicas_and_resume_catches_up_latest_only",
        &db.url,
        "postgres",
    );
}
