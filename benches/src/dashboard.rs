//! The dashboard's load check (issue 19): its pages rendered through the
//! router on a database with 10,000 scopes and a long history.
//!
//! ```text
//! cargo run -p benches --release -- dashboard [postgres|sqlite] [SCOPES] [PLANS]   # 10,000 and 100
//! ```
//!
//! The table is the large benchmark's mix (`large.rs`: 10 global jobs, the
//! other scopes tenants of `tenant_rollup`, on a 5-minute grid ending at
//! the last whole hour; ~1% FAILED, every 20th scope's newest plan RUNNING,
//! every 100th with a stale lease), SCOPES × PLANS rows, in a schema of its
//! own (PostgreSQL, dropped afterwards) or a temporary file (SQLite). A
//! replica announces every job on that grid, as a fleet running them does,
//! so the overview also reads the last hour's plans for its missed-plan
//! column (and finds the plans since the last whole hour missed).
//!
//! Each page is requested [`RENDERS`] times through the router
//! (`tower::ServiceExt::oneshot`, the body read to its end), signed in
//! with a bearer token as an operator's browser would be: the overview,
//! `tenant_rollup`'s page (its first 50 scopes, in scope order and
//! problems first) and one scope's filtered page. Printed per page: the
//! median and min–max render time, the body size, against the issue's
//! target of under a second.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use scheduler_core::{
    Announcement, ExecutionAudit, ExecutionFilter, JobOutput, JobSpec, LeaseStore, Presence,
    ReplicaInfo, RunContext, Scope, Scopes,
};
use scheduler_postgres::{PgLeaseStore, PgStoreOptions};
use scheduler_sqlite::SqliteLeaseStore;
use scheduler_web::{router, DashboardOptions};
use sqlx_core::executor::Executor;
use sqlx_core::sql_str::AssertSqlSafe;
use tower::ServiceExt as _;

use crate::large::{self, ms, GLOBAL_JOBS};
use crate::pg_url;

/// Renders per page.
const RENDERS: usize = 7;
/// The token the router is started with and the requests carry.
const TOKEN: &str = "bench-token";

/// `benches dashboard [postgres|sqlite] [SCOPES] [PLANS]`.
pub(crate) async fn dashboard(args: &[String]) {
    let only = args
        .iter()
        .map(String::as_str)
        .find(|a| matches!(*a, "postgres" | "sqlite"));
    let mut numbers = args.iter().filter_map(|a| a.parse::<i64>().ok());
    let scopes = numbers.next().unwrap_or(10_000).max(GLOBAL_JOBS + 1);
    let plans = numbers.next().unwrap_or(100).max(1);
    if only != Some("sqlite") {
        let schema = format!("bench_dashboard_{}", uuid::Uuid::new_v4().simple());
        let options = PgStoreOptions::new()
            .schema(&schema)
            .application_name("bench-dashboard")
            .max_connections(8);
        let store = PgLeaseStore::connect_with(&pg_url(), &options)
            .await
            .expect("postgres: set DATABASE_URL");
        large::fill_pg(&store, scopes, plans).await;
        let pool = store.pool().clone();
        measure("postgres", Arc::new(store), scopes, plans).await;
        pool.execute(AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE")))
            .await
            .expect("drop the benchmark's schema");
    }
    if only != Some("postgres") {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("dashboard.db");
        large::fill_sqlite(&path, scopes, plans).await;
        let store = SqliteLeaseStore::open(&path).await.expect("sqlite file");
        measure("sqlite", Arc::new(store), scopes, plans).await;
    }
}

/// Announces the mix's jobs, then renders each page [`RENDERS`] times and
/// prints its line.
async fn measure(name: &str, store: Arc<dyn ExecutionAudit>, scopes: i64, plans: i64) {
    announce(store.as_ref(), scopes).await;
    let dashboard = router(store.clone(), DashboardOptions::default().token(TOKEN));
    let rows = scopes * plans;
    println!(
        "{name}: {rows} rows, {scopes} scopes × {plans} plans; {RENDERS} renders per page, target < 1 s"
    );
    let pages = [
        ("overview", "/".to_owned()),
        (
            "job page, first 50 of the tenants",
            "/jobs/tenant_rollup".to_owned(),
        ),
        (
            "job page, problems first",
            "/jobs/tenant_rollup?sort=problems".to_owned(),
        ),
        (
            "job page, filtered to one scope",
            format!("/jobs/tenant_rollup?q=t{}", 100_000 + scopes / 2),
        ),
    ];
    for (what, uri) in pages {
        let (times, bytes) = timed(|| async {
            let request = Request::get(uri.as_str())
                .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
                .body(Body::empty())
                .unwrap();
            let response = dashboard.clone().oneshot(request).await.unwrap();
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            assert_eq!(status, StatusCode::OK, "{uri}");
            body.len()
        })
        .await;
        let verdict = if times[RENDERS / 2] < Duration::from_secs(1) {
            "under 1 s"
        } else {
            "OVER 1 s"
        };
        println!(
            "{name:<9} {what:<40} {}  ({} KiB)  {verdict}",
            spread(&times),
            bytes / 1024,
        );
    }
    // The store reads behind the pages, alone: where their time goes.
    let now = store.now().await.unwrap();
    let tenant = Scope::new("tenant", format!("t{}", 100_000 + scopes / 2));
    let hour_ago = now - Duration::from_secs(3600);
    let reads = [
        ("read: scope summaries, every job", 0),
        ("read: scope summaries, tenant_rollup", 1),
        ("read: tenant_rollup's plans, last hour", 2),
        ("read: one scope's newest 20", 3),
    ];
    for (what, read) in reads {
        let (times, ()) = timed(|| async {
            match read {
                0 => drop(store.scope_summaries(None).await.unwrap()),
                1 => drop(store.scope_summaries(Some("tenant_rollup")).await.unwrap()),
                2 => drop(
                    store
                        .plan_times_since("tenant_rollup", hour_ago)
                        .await
                        .unwrap(),
                ),
                _ => drop(
                    store
                        .list_executions(&ExecutionFilter {
                            job_name: Some("tenant_rollup".into()),
                            scope: Some(tenant.clone()),
                            limit: Some(20),
                            ..Default::default()
                        })
                        .await
                        .unwrap(),
                ),
            }
        })
        .await;
        println!("{name:<9} {what:<40} {}", spread(&times));
    }
}

/// [`RENDERS`] runs of `run`, timed and sorted, and the last one's output.
async fn timed<F, Fut, T>(mut run: F) -> (Vec<Duration>, T)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut times = Vec::with_capacity(RENDERS);
    let mut last = None;
    for _ in 0..RENDERS {
        let started = Instant::now();
        last = Some(run().await);
        times.push(started.elapsed());
    }
    times.sort();
    (times, last.expect("at least one run"))
}

/// `median X  min–max Y–Z` of sorted `times`.
fn spread(times: &[Duration]) -> String {
    format!(
        "median {:>9}  min–max {}–{}",
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1])
    )
}

/// One replica announcing the mix's jobs on its 5-minute grid: the global
/// jobs and `tenant_rollup` over its tenants.
async fn announce(store: &dyn LeaseStore, scopes: i64) {
    let every = Duration::from_secs(300);
    let spec = |name: String, scopes: Scopes| {
        JobSpec::new(name, scopes, |_: RunContext| async {
            Ok(JobOutput::rows(0))
        })
        .cadence(every)
        .registration()
    };
    let mut jobs: Vec<_> = (0..GLOBAL_JOBS)
        .map(|s| spec(format!("job_{s}"), Scopes::global()))
        .collect();
    let tenants = (GLOBAL_JOBS..scopes).map(|s| Scope::new("tenant", format!("t{}", s + 100_000)));
    jobs.push(spec("tenant_rollup".into(), Scopes::fixed(tenants)));
    let replica = ReplicaInfo {
        runner_id: "bench-replica".into(),
        host: "bench".into(),
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").into(),
        refresh_interval: Duration::from_secs(30),
        jobs,
        kinds: Vec::new(),
    };
    store
        .announce(&Announcement {
            replica: replica.bounded(),
            presence: Presence::Started,
        })
        .await
        .expect("announce");
}
