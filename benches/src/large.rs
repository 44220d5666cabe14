//! The large-table benchmark of the operator reads (issue 18, part 1):
//! generate a table of 10M+ rows once, then time each operator read on it.
//!
//! ```text
//! cargo run -p benches --release -- large generate [ROWS]   # default 10,000,000
//! cargo run -p benches --release -- large measure [postgres|sqlite]
//! cargo run -p benches --release -- large drop
//! ```
//!
//! PostgreSQL: the schema `bench_large` of `DATABASE_URL`; SQLite: the file
//! `target/bench-large.db` (overridable with `LARGE_SQLITE`). Both are
//! created through the stores (so they carry the current migrations) and
//! filled by one `INSERT ... SELECT` each, in plan-time order as a fleet
//! writes them (a scope's rows are spread over the whole heap, as in real
//! life, which is what makes a per-scope walk cost random reads).
//!
//! The mix: 1,000 scopes (10 global jobs, and one job of 990 tenants) on a
//! 5-minute grid, ROWS / 1,000 plans each; about 1% FAILED (of them a tenth
//! overlap-skipped, a tenth `stale_timeout`, the recent ones with attempts
//! left, the rest exhausted), the newest plan of every 20th scope RUNNING
//! (every 100th with a stale lease), the rest SUCCESS.
//!
//! Each read is timed three times back to back and the median printed:
//! "cold" is the first round after the database's caches were left to
//! other work (the OS page cache is not dropped: that needs root), "warm"
//! the median of the three.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use scheduler_core::{ExecutionAudit, ExecutionFilter, Scope};
use scheduler_postgres::{PgLeaseStore, PgStoreOptions};
use scheduler_sqlite::SqliteLeaseStore;
use sqlx_core::executor::Executor;
use sqlx_core::sql_str::AssertSqlSafe;
use time::OffsetDateTime;

use crate::pg_url;

/// The schema the PostgreSQL table lives in.
const SCHEMA: &str = "bench_large";
/// How many `(job, scope)` the table has.
const SCOPES: i64 = 1_000;
/// Global jobs (`job_00` .. `job_09`); the other scopes are tenants of
/// `tenant_rollup`.
const GLOBAL_JOBS: i64 = 10;

fn sqlite_path() -> PathBuf {
    std::env::var_os("LARGE_SQLITE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/bench-large.db"))
}

/// The row mix as SQL expressions over `n` (plans back from the newest,
/// 0 = newest) and `s` (the scope's number), the same in both stores.
/// Returns (status, attempt, error code) expressions.
fn mix() -> (&'static str, &'static str, &'static str) {
    // ~1% FAILED, spread over scopes and time; every 20th scope's newest
    // plan RUNNING.
    let status = "CASE WHEN n = 0 AND s % 20 = 0 THEN 'RUNNING' \
                  WHEN (n * 31 + s * 17) % 97 = 0 THEN 'FAILED' ELSE 'SUCCESS' END";
    // Recent failures still have attempts left; older ones ran out (or
    // were skipped by the overlap policy, whatever their attempts).
    let attempt = "CASE WHEN (n * 31 + s * 17) % 97 = 0 AND n >= 300 \
                        AND (n + s) % 10 <> 0 THEN 3 ELSE 1 END";
    let code = "CASE WHEN (n * 31 + s * 17) % 97 <> 0 OR (n = 0 AND s % 20 = 0) THEN NULL \
                WHEN (n + s) % 10 = 0 THEN 'overlap_skipped' \
                WHEN (n + s) % 10 = 1 THEN 'stale_timeout' ELSE 'handler_error' END";
    (status, attempt, code)
}

async fn pg_store() -> PgLeaseStore {
    let options = PgStoreOptions::new()
        .schema(SCHEMA)
        .application_name("bench-large")
        .max_connections(4);
    PgLeaseStore::connect_with(&pg_url(), &options)
        .await
        .expect("postgres: set DATABASE_URL")
}

async fn sqlite_store() -> SqliteLeaseStore {
    SqliteLeaseStore::open(sqlite_path())
        .await
        .expect("sqlite file")
}

/// Fills both tables with `rows` rows (rounded to whole plans per scope).
async fn generate(rows: i64) {
    let per = (rows / SCOPES).max(1);
    let (status, attempt, code) = mix();
    let job = format!("CASE WHEN s < {GLOBAL_JOBS} THEN 'job_' || s ELSE 'tenant_rollup' END");
    let kind = format!("CASE WHEN s < {GLOBAL_JOBS} THEN 'global' ELSE 'tenant' END");
    let id = format!("CASE WHEN s < {GLOBAL_JOBS} THEN 'global' ELSE 't' || (s + 100000) END");

    let started = Instant::now();
    let store = pg_store().await;
    let t = store.qualified_table().to_owned();
    // One statement; ids in insertion order, as UUIDv7 would be.
    let insert = format!(
        "INSERT INTO {t} (id, job_name, scope_kind, scope_id, plan_time, status, attempt, \
             max_attempts, next_retry_at, runner_id, lease_token, heartbeat_at, stale_after, \
             started_at, finished_at, duration_ms, error_code, error_msg) \
         SELECT lpad(to_hex(({per} - 1 - n) * {SCOPES} + s), 32, '0')::uuid, \
             {job}, {kind}, {id}, p, {status}, {attempt}, 3, \
             CASE WHEN {status} = 'FAILED' AND {attempt} < 3 THEN p + interval '1 minute' END, \
             'replica-' || s % 3, gen_random_uuid(), p, \
             CASE WHEN {status} = 'RUNNING' THEN \
                 CASE WHEN s % 100 = 0 THEN now() - interval '1 hour' \
                      ELSE now() + interval '1 minute' END END, \
             p, CASE WHEN {status} <> 'RUNNING' THEN p + interval '2 seconds' END, \
             CASE WHEN {status} <> 'RUNNING' THEN 2000 END, {code}, \
             CASE WHEN {status} = 'FAILED' THEN 'simulated' END \
         FROM generate_series({per}::bigint - 1, 0, -1) AS n \
         CROSS JOIN generate_series(0::bigint, {SCOPES} - 1) AS s \
         CROSS JOIN LATERAL (SELECT date_trunc('hour', now()) - n * interval '5 minutes' AS p) AS q"
    );
    let pool = store.pool();
    pool.execute(AssertSqlSafe(format!("TRUNCATE {t}")))
        .await
        .unwrap();
    pool.execute(AssertSqlSafe(insert)).await.unwrap();
    pool.execute(AssertSqlSafe(format!("VACUUM ANALYZE {t}")))
        .await
        .unwrap();
    println!(
        "postgres: {} rows in {SCHEMA} in {:.0} s",
        per * SCOPES,
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let path = sqlite_path();
    let _ = std::fs::remove_file(&path);
    drop(sqlite_store().await);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let us = "CAST(unixepoch('subsec') * 1000000 AS INTEGER)";
    let insert = format!(
        "PRAGMA cache_size = -1000000; PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; \
         INSERT INTO sys_cron_executions (id, job_name, scope_kind, scope_id, plan_time, status, \
             attempt, max_attempts, next_retry_at, runner_id, lease_token, heartbeat_at, \
             stale_after, started_at, finished_at, duration_ms, error_code, error_msg) \
         WITH RECURSIVE base(b) AS (SELECT ({us} / 3600000000) * 3600000000), \
             nn(n, p) AS (SELECT {per} - 1, b - ({per} - 1) * 300000000 FROM base \
                 UNION ALL SELECT n - 1, p + 300000000 FROM nn WHERE n > 0), \
             ss(s) AS (SELECT 0 UNION ALL SELECT s + 1 FROM ss WHERE s < {SCOPES} - 1) \
         SELECT printf('%08x-0000-7000-8000-%012x', ({per} - 1 - n) * {SCOPES} + s, s), \
             {job}, {kind}, {id}, p, {status}, {attempt}, 3, \
             CASE WHEN {status} = 'FAILED' AND {attempt} < 3 THEN p + 60000000 END, \
             'replica-' || s % 3, lower(hex(randomblob(16))), p, \
             CASE WHEN {status} = 'RUNNING' THEN \
                 CASE WHEN s % 100 = 0 THEN {us} - 3600000000 ELSE {us} + 60000000 END END, \
             p, CASE WHEN {status} <> 'RUNNING' THEN p + 2000000 END, \
             CASE WHEN {status} <> 'RUNNING' THEN 2000 END, {code}, \
             CASE WHEN {status} = 'FAILED' THEN 'simulated' END \
         FROM nn CROSS JOIN ss; \
         ANALYZE;"
    );
    conn.execute_batch(&insert).unwrap();
    println!(
        "sqlite: {} rows in {} in {:.0} s",
        per * SCOPES,
        path.display(),
        started.elapsed().as_secs_f64()
    );
}

/// The median of three timed runs of `read`, and the first of them.
async fn time3<F, Fut, T>(mut read: F) -> (Duration, Duration, usize)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Vec<T>>,
{
    let mut runs = Vec::new();
    let mut found = 0;
    for _ in 0..3 {
        let started = Instant::now();
        found = read().await.len();
        runs.push(started.elapsed());
    }
    let first = runs[0];
    runs.sort();
    (first, runs[1], found)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Times each operator read on `store`, printing one line per read.
async fn measure_store(name: &str, store: &dyn ExecutionAudit) {
    let tenant = Scope::new("tenant", "t100500");
    let now = store.now().await.unwrap();
    let mut lines = Vec::new();
    let (first, median, n) = time3(|| async { store.scope_summaries(None).await.unwrap() }).await;
    lines.push(("status: scope summaries, every job", first, median, n));
    let (first, median, n) =
        time3(|| async { store.scope_summaries(Some("tenant_rollup")).await.unwrap() }).await;
    lines.push(("status --job tenant_rollup: summaries", first, median, n));
    let (first, median, n) = time3(|| async {
        let filter = ExecutionFilter {
            job_name: Some("tenant_rollup".into()),
            scope: Some(tenant.clone()),
            limit: Some(50),
            ..Default::default()
        };
        store.list_executions(&filter).await.unwrap()
    })
    .await;
    lines.push(("history of one scope, newest 50", first, median, n));
    let (first, median, n) = time3(|| async { missed_report(store, now).await }).await;
    lines.push(("missed-plan report, 1 h, 990 scopes", first, median, n));
    for (what, first, median, n) in lines {
        println!(
            "{name:<9} {what:<40} first {:>10}  median of 3 {:>10}  ({n} rows)",
            ms(first),
            ms(median)
        );
    }
}

/// The reads of `scheduler status --job tenant_rollup --every 5m
/// --window 1h`: the job's summaries, then each scope's rows in the window.
async fn missed_report(store: &dyn ExecutionAudit, now: OffsetDateTime) -> Vec<usize> {
    let summaries = store.scope_summaries(Some("tenant_rollup")).await.unwrap();
    let mut found = Vec::new();
    for s in &summaries {
        let filter = ExecutionFilter {
            job_name: Some("tenant_rollup".into()),
            scope: Some(s.scope.clone()),
            plan_time_from: Some(now - Duration::from_secs(3600)),
            ..Default::default()
        };
        found.push(store.list_executions(&filter).await.unwrap().len());
    }
    found
}

/// Times the reads on `only` (`postgres` or `sqlite`), or on both.
async fn measure(only: Option<&str>) {
    if only != Some("sqlite") {
        let pg = pg_store().await;
        measure_store("postgres", &pg).await;
    }
    if only != Some("postgres") {
        let sqlite = sqlite_store().await;
        measure_store("sqlite", &sqlite).await;
    }
}

/// `benches large generate|measure|drop`.
pub(crate) async fn large(args: &[String]) {
    match args.first().map(String::as_str) {
        Some("generate") => {
            let rows = args
                .get(1)
                .and_then(|n| n.parse().ok())
                .unwrap_or(10_000_000);
            generate(rows).await;
        }
        Some("measure") => measure(args.get(1).map(String::as_str)).await,
        Some("drop") => {
            let store = pg_store().await;
            store
                .pool()
                .execute(AssertSqlSafe(format!("DROP SCHEMA {SCHEMA} CASCADE")))
                .await
                .unwrap();
            let _ = std::fs::remove_file(sqlite_path());
        }
        _ => crate::usage(),
    }
}
