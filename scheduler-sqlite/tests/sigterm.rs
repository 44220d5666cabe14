//! A process that runs its manager until `shutdown_signal()` and is sent
//! SIGTERM in the middle of a long handler (as a container runtime or
//! Kubernetes stops it) exits cleanly, and leaves no execution RUNNING.
//!
//! The child is this test binary run again, selected by an environment
//! variable, as in `processes.rs`.
#![cfg(unix)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use scheduler_core::{
    shutdown_signal, ErrorCode, ExecutionAudit, ExecutionFilter, JobOutput, JobSpec, Manager,
    ManagerOptions, Scopes, Status,
};
use scheduler_sqlite::SqliteLeaseStore;

/// Set in the child; its value is the database path.
const CHILD: &str = "SCHEDULER_SQLITE_SIGTERM_CHILD";
const JOB: &str = "long_export";

/// The child: one job whose handler would run 20 s, a manager that stops on
/// SIGINT or SIGTERM with half a second of grace.
async fn child(db: &Path) {
    let store = Arc::new(SqliteLeaseStore::open(db).await.expect("open the file"));
    let manager = Manager::new(
        store,
        ManagerOptions {
            tick_interval: Duration::from_millis(200),
            shutdown_grace: Duration::from_millis(500),
            ..Default::default()
        },
    )
    .expect("valid manager options");
    manager
        .register(
            JobSpec::new(JOB, Scopes::global(), |_ctx| async {
                tokio::time::sleep(Duration::from_secs(20)).await;
                Ok(JobOutput::rows(1))
            })
            .cadence(Duration::from_secs(3600)),
        )
        .expect("a valid job");
    let report = manager.run(shutdown_signal()).await;
    println!("REPORT {report:?}");
}

async fn rows(db: &Path) -> Vec<scheduler_core::Execution> {
    let store = SqliteLeaseStore::open(db).await.expect("open the file");
    store
        .list_executions(&ExecutionFilter {
            job_name: Some(JOB.to_owned()),
            ..Default::default()
        })
        .await
        .expect("read the rows")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_run_ends_with_terminal_rows_and_a_clean_exit() {
    if let Some(db) = common::role(CHILD) {
        return child(&db).await;
    }
    let (_dir, db) = common::temp_db("sigterm.db");
    let mut process = common::child(
        "sigterm_mid_run_ends_with_terminal_rows_and_a_clean_exit",
        CHILD,
        &db,
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit())
    .spawn()
    .expect("start the child");

    // Wait (bounded) until the child's handler holds a RUNNING lease.
    let mut running = false;
    for _ in 0..300 {
        if db.exists() && rows(&db).await.iter().any(|r| r.status == Status::Running) {
            running = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(running, "the child never started its handler");

    let killed = Command::new("kill")
        .args(["-TERM", &process.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let exit = tokio::task::spawn_blocking(move || {
        let status = process.wait().expect("wait for the child");
        let mut out = String::new();
        std::io::Read::read_to_string(&mut process.stdout.take().unwrap(), &mut out).unwrap();
        (status, out)
    });
    let (status, out) = tokio::time::timeout(Duration::from_secs(15), exit)
        .await
        .expect("the child stopped well before its 20 s handler would have ended")
        .unwrap();
    assert!(status.success(), "a clean exit, not 143: {status:?}\n{out}");
    assert!(out.contains("REPORT"), "run() returned: {out}");

    let rows = rows(&db).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].status, Status::Failed, "{rows:?}");
    assert_eq!(
        rows[0].error_code.as_deref(),
        Some(ErrorCode::Canceled.as_str()),
        "recorded as canceled by the shutdown, due again at once elsewhere"
    );
}
