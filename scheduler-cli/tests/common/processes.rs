//! What the multi-process tests share: replicas that are the test binary
//! run again (`current_exe()`), selected by an environment variable, each
//! running until its standard input closes; the store they run on; and
//! reading the table until a condition holds.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use scheduler_core::{Execution, ExecutionAudit, ExecutionFilter, Manager, ManagerOptions};
use scheduler_postgres::PgLeaseStore;
use scheduler_sqlite::SqliteLeaseStore;
use serde_json::Value;
use time::OffsetDateTime;

/// The longest wait for a condition the replicas bring about.
pub const PATIENCE: Duration = Duration::from_secs(60);
/// How often such a wait reads the store.
pub const POLL: Duration = Duration::from_millis(20);

/// The store a URL names, for the test's own reads and the replicas.
pub async fn open(url: &str) -> Arc<dyn ExecutionAudit> {
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

/// A replica's manager options: its runner id from the environment
/// variable `runner`, ticking at least every `tick`.
pub fn replica_options(runner: &str, tick: Duration, max_concurrency: usize) -> ManagerOptions {
    // `..Default::default()` stays for fields the options may gain.
    #[allow(clippy::needless_update)]
    ManagerOptions {
        runner_id: std::env::var(runner).expect("a runner id"),
        tick_interval: tick,
        max_concurrency,
        shutdown_grace: Duration::from_secs(5),
        ..Default::default()
    }
}

/// Resolves when this process's standard input closes: the test says stop.
pub async fn stdin_closed() {
    let _ = tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        std::io::stdin().read_to_end(&mut sink)
    })
    .await;
}

/// Starts replica `i` on `url`, as this test binary run again with only
/// `test` selected; `replica_of` and `runner` name the environment
/// variables that make it a replica and give its runner id
/// (`replica-{i}`).
pub fn spawn_replica(test: &str, url: &str, i: usize, replica_of: &str, runner: &str) -> Child {
    Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(replica_of, url)
        .env(runner, format!("replica-{i}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a replica process")
}

/// Stops the replicas cleanly (their stdin closes), asserts each ended
/// well with its `REPORT` line, and returns their standard outputs.
pub fn stop_replicas(mut replicas: Vec<Child>, store_name: &str) -> Vec<String> {
    for replica in &mut replicas {
        drop(replica.stdin.take());
    }
    replicas
        .into_iter()
        .map(|replica| {
            let out = replica.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                out.status.success() && stdout.contains("REPORT"),
                "{store_name}: a replica failed ({}):\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            stdout
        })
        .collect()
}

/// The executions of `job`, newest plan first.
pub async fn executions(store: &dyn ExecutionAudit, job: &str) -> Vec<Execution> {
    store
        .list_executions(&ExecutionFilter {
            job_name: Some(job.to_owned()),
            ..Default::default()
        })
        .await
        .unwrap()
}

/// Reads the executions of `job` until `done` holds of them (at most
/// [`PATIENCE`]), and returns them.
pub async fn until(
    store: &dyn ExecutionAudit,
    job: &str,
    what: &str,
    done: impl Fn(&[Execution]) -> bool,
) -> Vec<Execution> {
    let give_up = Instant::now() + PATIENCE;
    loop {
        let rows = executions(store, job).await;
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

/// An RFC 3339 instant of a JSON report.
pub fn instant(v: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(
        v.as_str().unwrap_or_else(|| panic!("an instant: {v}")),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
}

/// A duration in milliseconds, for a report line.
pub fn ms(d: time::Duration) -> f64 {
    d.as_seconds_f64() * 1000.0
}

/// A multi-process test on a fresh SQLite file: in a replica process
/// (`replica_of` set) runs `replica` on its URL; else runs `body` with
/// `test` (the calling test's name, which the replicas run), the URL and
/// `"sqlite"`.
pub fn on_sqlite(test: &str, replica_of: &str, replica: fn(&str), body: fn(&str, &str, &str)) {
    if let Ok(url) = std::env::var(replica_of) {
        return replica(&url);
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("processes.db").display());
    body(test, &url, "sqlite");
}

/// [`on_sqlite`] on a fresh PostgreSQL database (named after `name`),
/// skipped loudly without `DATABASE_URL` (see
/// [`postgres_db`](super::postgres_db)).
pub fn on_postgres(
    test: &str,
    name: &str,
    replica_of: &str,
    replica: fn(&str),
    body: fn(&str, &str, &str),
) {
    if let Ok(url) = std::env::var(replica_of) {
        return replica(&url);
    }
    let Some(db) = super::postgres_db(name) else {
        return;
    };
    body(test, &db.url, "postgres");
}

/// The rows of `rows` whose current attempt started after `t`.
pub fn started_after(rows: &[Execution], t: OffsetDateTime) -> Vec<&Execution> {
    rows.iter()
        .filter(|r| r.started_at.is_some_and(|s| s > t))
        .collect()
}

/// A replica process's life: a manager with `options` on `url`, its jobs
/// or kinds registered by `register`, run until this process's standard
/// input closes; then its report on stdout (`REPORT ...`).
pub fn run_replica(url: &str, options: ManagerOptions, register: impl FnOnce(&Manager)) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = open(url).await;
        let manager = Manager::new(store, options).expect("valid manager options");
        register(&manager);
        let report = manager.run(stdin_closed()).await;
        println!("REPORT {report:?}");
    });
}

/// What a multi-process test starts with: `url` migrated by `scheduler
/// migrate`, `n` replica processes on it (see [`spawn_replica`]), and a
/// runtime and store for the test's own reads.
pub fn start(
    test: &str,
    url: &str,
    n: usize,
    replica_of: &str,
    runner: &str,
) -> (Vec<Child>, tokio::runtime::Runtime, Arc<dyn ExecutionAudit>) {
    let migrated = super::scheduler(url, &["migrate"]);
    assert!(migrated.status.success(), "{migrated:?}");
    let replicas = (1..=n)
        .map(|i| spawn_replica(test, url, i, replica_of, runner))
        .collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = runtime.block_on(open(url));
    (replicas, runtime, store)
}
