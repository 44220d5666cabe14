//! The large-table benchmark of the operator reads (issue 18, part 1):
//! generate a table of 10M+ rows once, then time each operator read on it.
//!
//! ```text
//! cargo run -p benches --release -- large generate [ROWS] [postgres|sqlite]   # default 10,000,000
//! cargo run -p benches --release -- large measure [postgres|sqlite]
//! cargo run -p benches --release -- large prune [PERCENT] [--nice-ratio R]   # defaults 20, 1
//! cargo run -p benches --release -- large drop
//! # each with --partitioned for the partitioned table (see below)
//! ```
//!
//! PostgreSQL: the schema `bench_large` of `DATABASE_URL` (overridable with
//! `LARGE_SCHEMA`, so runs of several people or variants can coexist);
//! SQLite: the file `target/bench-large.db` (overridable with
//! `LARGE_SQLITE`). Both are created through the stores (so they carry the
//! current migrations) and filled by one `INSERT ... SELECT` each, in
//! plan-time order as a fleet writes them (a scope's rows are spread over
//! the whole heap, as in real life, which is what makes a per-scope walk
//! cost random reads). On PostgreSQL the secondary indexes are dropped for
//! the insert and built afterwards (with `maintenance_work_mem` raised),
//! which at 100M rows is several times faster than maintaining them row by
//! row; each phase's time is printed.
//!
//! The mix: 1,000 scopes (10 global jobs, and one job of 990 tenants) on a
//! 5-minute grid, ROWS / 1,000 plans each; about 1% FAILED (of them a tenth
//! overlap-skipped, a tenth `stale_timeout`, the recent ones with attempts
//! left, the rest exhausted), the newest plan of every 20th scope RUNNING
//! (every 100th with a stale lease), the rest SUCCESS. Overlap-skipped rows
//! are never retried by themselves (`next_retry_at` is `machine::NEVER`), as
//! the store writes them.
//!
//! `--partitioned` (any command): the table of a store built with
//! `PgStoreOptions::partitioned(PartitionInterval::Day)`, in the schema
//! `bench_large_part` (or `LARGE_SCHEMA`); `generate` creates the history's
//! daily partitions before the insert, `prune` then drops whole partitions
//! where it can (PostgreSQL only: SQLite has no partitions).
//!
//! `measure`: each read is timed three times back to back and the median
//! printed: "cold" is the first round after the database's caches were
//! left to other work (the OS page cache is not dropped: that needs root),
//! "warm" the median of the three.
//!
//! `prune` (PostgreSQL; it deletes, so generate again before the next run):
//! retention while the fleet keeps claiming. A fleet of [`FLEET_REPLICAS`]
//! replicas claims and finishes [`FLEET_SCOPES`] scopes of a job of its own
//! every second, in claims of [`FLEET_BATCH`] keys; each claim's latency is
//! recorded for [`BASELINE`] without a prune, then while a prune deletes
//! the terminal rows among the oldest PERCENT of the table's history, in
//! calls of [`PRUNE_BATCH`] rows as `scheduler prune` makes them
//! ([`Operator::prune`](scheduler_core::Operator::prune), pausing R times as
//! long as each call took). Printed:
//! the dry run's count and time, the claim latencies of both phases and the
//! ratio of their p99 (the issue's target: at most 2x), rows pruned per
//! second, and the longest single prune call.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scheduler_core::model::Steering;
use scheduler_core::{
    ClaimRequest, ExecutionAudit, ExecutionFilter, Finish, LeaseStore, PlanKey, Prune, Scope,
};
use scheduler_postgres::{PartitionInterval, PgLeaseStore, PgStoreOptions};
use scheduler_sqlite::SqliteLeaseStore;
use sqlx_core::executor::Executor;
use sqlx_core::sql_str::AssertSqlSafe;
use time::OffsetDateTime;

use crate::pg_url;

/// The schema the PostgreSQL table lives in, unless `LARGE_SCHEMA` names
/// another.
const SCHEMA: &str = "bench_large";
/// How many `(job, scope)` the table has.
const SCOPES: i64 = 1_000;
/// Global jobs (`job_00` .. `job_09`); the other scopes are tenants of
/// `tenant_rollup`.
pub(crate) const GLOBAL_JOBS: i64 = 10;

/// The columns `generate` fills, in the order of its SELECT lists.
const COLUMNS: &str = "id, job_name, scope_kind, scope_id, plan_time, status, attempt, \
    max_attempts, next_retry_at, runner_id, lease_token, heartbeat_at, stale_after, started_at, \
    finished_at, duration_ms, error_code, error_msg";

/// The fleet's replicas in `large prune`.
const FLEET_REPLICAS: usize = 4;
/// The fleet's scopes, each claimed and finished once a second.
const FLEET_SCOPES: usize = 1_000;
/// Keys per claim: the fleet's latency samples.
const FLEET_BATCH: usize = 50;
/// How long the fleet claims before the prune starts.
const BASELINE: Duration = Duration::from_secs(30);
/// Rows per prune call, `scheduler prune`'s default `--batch`.
const PRUNE_BATCH: usize = 1_000;

/// The schema of the partitioned variant (`--partitioned`), unless
/// `LARGE_SCHEMA` names another.
const SCHEMA_PARTITIONED: &str = "bench_large_part";

/// Whether the command works on the partitioned variant: `--partitioned`
/// among the arguments, which `large` records here once.
static PARTITIONED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

fn partitioned() -> bool {
    PARTITIONED.get().copied().unwrap_or(false)
}

fn schema() -> String {
    let default = if partitioned() {
        SCHEMA_PARTITIONED
    } else {
        SCHEMA
    };
    std::env::var("LARGE_SCHEMA").unwrap_or_else(|_| default.to_owned())
}

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
    let mut options = PgStoreOptions::new()
        .schema(schema())
        .application_name("bench-large")
        .max_connections(8);
    if partitioned() {
        options = options.partitioned(PartitionInterval::Day);
    }
    PgLeaseStore::connect_with(&pg_url(), &options)
        .await
        .expect("postgres: set DATABASE_URL")
}

async fn sqlite_store() -> SqliteLeaseStore {
    SqliteLeaseStore::open(sqlite_path())
        .await
        .expect("sqlite file")
}

/// Fills the PostgreSQL table (unless `only` is `sqlite`) and the SQLite
/// file (unless it is `postgres`) with `rows` rows (rounded to whole plans
/// per scope).
async fn generate(rows: i64, only: Option<&str>) {
    let per = (rows / SCOPES).max(1);
    if only != Some("sqlite") {
        fill_pg(&pg_store().await, SCOPES, per).await;
    }
    if only != Some("postgres") {
        fill_sqlite(&sqlite_path(), SCOPES, per).await;
    }
}

/// The mix's job, scope kind and scope id of scope number `s`, as SQL:
/// [`GLOBAL_JOBS`] global jobs, the rest tenants `t100010`, … of
/// `tenant_rollup`.
fn scope_columns() -> (String, String, String) {
    (
        format!("CASE WHEN s < {GLOBAL_JOBS} THEN 'job_' || s ELSE 'tenant_rollup' END"),
        format!("CASE WHEN s < {GLOBAL_JOBS} THEN 'global' ELSE 'tenant' END"),
        format!("CASE WHEN s < {GLOBAL_JOBS} THEN 'global' ELSE 't' || (s + 100000) END"),
    )
}

/// Empties `store`'s table and fills it with the mix: `scopes` scopes,
/// `per` plans each (see [`generate_pg`]).
pub(crate) async fn fill_pg(store: &PgLeaseStore, scopes: i64, per: i64) {
    let (status, attempt, code) = mix();
    let (job, kind, id) = scope_columns();
    // One statement; ids in insertion order, as UUIDv7 would be. The mix
    // is computed once per row (`m`, kept from being flattened into the
    // columns by `OFFSET 0`), not once per column naming it.
    let select = format!(
        "SELECT lpad(to_hex(({per} - 1 - n) * {scopes} + s), 32, '0')::uuid, \
             {job}, {kind}, {id}, p, st, att, 3, \
             CASE WHEN code = 'overlap_skipped' THEN '9999-12-31 23:59:59.999999+00' \
                  WHEN st = 'FAILED' AND att < 3 THEN p + interval '1 minute' END, \
             'replica-' || s % 3, gen_random_uuid(), p, \
             CASE WHEN st = 'RUNNING' THEN \
                 CASE WHEN s % 100 = 0 THEN now() - interval '1 hour' \
                      ELSE now() + interval '1 minute' END END, \
             p, CASE WHEN st <> 'RUNNING' THEN p + interval '2 seconds' END, \
             CASE WHEN st <> 'RUNNING' THEN 2000 END, code, \
             CASE WHEN st = 'FAILED' THEN 'simulated' END \
         FROM generate_series({per}::bigint - 1, 0, -1) AS n \
         CROSS JOIN generate_series(0::bigint, {scopes} - 1) AS s \
         CROSS JOIN LATERAL (SELECT date_trunc('hour', now()) - n * interval '5 minutes' AS p, \
                                    {status} AS st, {attempt} AS att, {code} AS code OFFSET 0) AS m"
    );
    generate_pg(store, scopes, per, &select).await;
}

/// Makes the SQLite file `path` anew (through the store, so it has the
/// current migrations) and fills it with the mix: `scopes` scopes, `per`
/// plans each, in one `INSERT ... SELECT`.
pub(crate) async fn fill_sqlite(path: &Path, scopes: i64, per: i64) {
    let started = Instant::now();
    let (status, attempt, code) = mix();
    let (job, kind, id) = scope_columns();
    let _ = std::fs::remove_file(path);
    drop(SqliteLeaseStore::open(path).await.expect("sqlite file"));
    let conn = rusqlite::Connection::open(path).unwrap();
    let us = "CAST(unixepoch('subsec') * 1000000 AS INTEGER)";
    let insert = format!(
        "PRAGMA cache_size = -1000000; PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; \
         INSERT INTO sys_cron_executions ({COLUMNS}) \
         WITH RECURSIVE base(b) AS (SELECT ({us} / 3600000000) * 3600000000), \
             nn(n, p) AS (SELECT {per} - 1, b - ({per} - 1) * 300000000 FROM base \
                 UNION ALL SELECT n - 1, p + 300000000 FROM nn WHERE n > 0), \
             ss(s) AS (SELECT 0 UNION ALL SELECT s + 1 FROM ss WHERE s < {scopes} - 1) \
         SELECT printf('%08x-0000-7000-8000-%012x', ({per} - 1 - n) * {scopes} + s, s), \
             {job}, {kind}, {id}, p, {status}, {attempt}, 3, \
             CASE WHEN {code} = 'overlap_skipped' THEN 253402300799999999 \
                  WHEN {status} = 'FAILED' AND {attempt} < 3 THEN p + 60000000 END, \
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
        per * scopes,
        path.display(),
        started.elapsed().as_secs_f64()
    );
}

/// Fills the PostgreSQL table with `select`'s rows the fast way: the
/// table as the store creates it (current migrations), its secondary
/// keys and indexes dropped (their definitions kept from `pg_constraint`
/// and `pg_indexes`), one `INSERT ... SELECT`, the keys and indexes built
/// again (a sort each, where maintaining them row by row made the insert
/// several times slower), `VACUUM ANALYZE`. Adding the keys back checks
/// the rows' uniqueness as the insert would have. Prints each phase's time.
async fn generate_pg(store: &PgLeaseStore, scopes: i64, per: i64, select: &str) {
    let started = Instant::now();
    let t = store.qualified_table().to_owned();
    // One connection: the session settings must hold for every statement.
    let mut conn = store.pool().acquire().await.unwrap();
    conn.execute(AssertSqlSafe(format!("TRUNCATE {t}")))
        .await
        .unwrap();
    if partitioned() {
        // The history's days, named as the store names its partitions; the
        // store created today's and those ahead.
        let name = format!("{}.{}", schema(), scheduler_postgres::DEFAULT_TABLE);
        conn.execute(AssertSqlSafe(format!(
            "DO $$ DECLARE d timestamptz; BEGIN \
               FOR d IN SELECT generate_series( \
                   date_trunc('day', date_trunc('hour', now()) - {per} * interval '5 minutes', 'UTC'), \
                   date_trunc('day', now(), 'UTC') - interval '1 day', interval '1 day') LOOP \
                 EXECUTE format('CREATE TABLE IF NOT EXISTS %s_p%s PARTITION OF {t} \
                                 FOR VALUES FROM (%L) TO (%L)', '{name}', \
                                to_char(d AT TIME ZONE 'UTC', 'YYYYMMDD'), d, d + interval '1 day'); \
               END LOOP; END $$"
        )))
        .await
        .unwrap();
    }
    // The keys (primary and unique), as `ADD CONSTRAINT` clauses, and the
    // indexes no constraint owns, as `CREATE INDEX` statements.
    let keys: Vec<(String, String)> = sqlx_core::query_as::query_as(AssertSqlSafe(format!(
        "SELECT quote_ident(conname), pg_get_constraintdef(oid) FROM pg_constraint \
         WHERE conrelid = '{t}'::regclass AND contype IN ('p', 'u')"
    )))
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let indexes: Vec<(String, String)> = sqlx_core::query_as::query_as(AssertSqlSafe(format!(
        "SELECT quote_ident(i.schemaname) || '.' || quote_ident(i.indexname), i.indexdef \
         FROM pg_indexes i \
         WHERE (quote_ident(i.schemaname) || '.' || quote_ident(i.tablename))::regclass \
               = '{t}'::regclass \
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c \
                           WHERE c.conindid = (quote_ident(i.schemaname) || '.' \
                                               || quote_ident(i.indexname))::regclass)"
    )))
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    for (name, _) in &indexes {
        conn.execute(AssertSqlSafe(format!("DROP INDEX {name}")))
            .await
            .unwrap();
    }
    for (name, _) in &keys {
        conn.execute(AssertSqlSafe(format!(
            "ALTER TABLE {t} DROP CONSTRAINT {name}"
        )))
        .await
        .unwrap();
    }
    let phase = Instant::now();
    conn.execute(AssertSqlSafe(format!(
        "INSERT INTO {t} ({COLUMNS}) {select}"
    )))
    .await
    .unwrap();
    let insert = phase.elapsed();
    let phase = Instant::now();
    conn.execute("SET maintenance_work_mem = '1GB'")
        .await
        .unwrap();
    for (name, def) in &keys {
        conn.execute(AssertSqlSafe(format!(
            "ALTER TABLE {t} ADD CONSTRAINT {name} {def}"
        )))
        .await
        .unwrap();
    }
    for (_, def) in &indexes {
        // A partitioned table's index is listed `ON ONLY` the parent; built
        // without it, it covers every partition again.
        let def = def.replace(" ON ONLY ", " ON ");
        conn.execute(AssertSqlSafe(def)).await.unwrap();
    }
    let build = phase.elapsed();
    let phase = Instant::now();
    conn.execute(AssertSqlSafe(format!("VACUUM ANALYZE {t}")))
        .await
        .unwrap();
    let vacuum = phase.elapsed();
    println!(
        "postgres: {} rows in {} in {:.0} s (insert {:.0} s, {} keys and indexes {:.0} s, \
         vacuum analyze {:.0} s)",
        per * scopes,
        t,
        started.elapsed().as_secs_f64(),
        insert.as_secs_f64(),
        keys.len() + indexes.len(),
        build.as_secs_f64(),
        vacuum.as_secs_f64()
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

pub(crate) fn ms(d: Duration) -> String {
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
/// --window 1h`: the job's summaries, then every scope's plan times in the
/// window in one read (`plan_times_since`), counted per scope.
async fn missed_report(store: &dyn ExecutionAudit, now: OffsetDateTime) -> Vec<usize> {
    let summaries = store.scope_summaries(Some("tenant_rollup")).await.unwrap();
    let planned = store
        .plan_times_since("tenant_rollup", now - Duration::from_secs(3600))
        .await
        .unwrap();
    let mut per_scope: HashMap<&Scope, usize> = HashMap::new();
    for p in &planned {
        *per_scope.entry(&p.scope).or_default() += 1;
    }
    summaries
        .iter()
        .map(|s| per_scope.get(&s.scope).copied().unwrap_or(0))
        .collect()
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

/// p50, p99 and max of `ms`, sorted in place.
fn percentiles(ms: &mut [f64]) -> (f64, f64, f64) {
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| ms[((ms.len() as f64 - 1.0) * p).round() as usize];
    (pct(0.5), pct(0.99), ms[ms.len() - 1])
}

/// The fleet of `large prune`: each replica claims and finishes its share
/// of [`FLEET_SCOPES`] every second until `stop`, pushing each claim's
/// latency in ms (and whether a prune ran meanwhile) into `samples`.
async fn fleet(
    store: Arc<PgLeaseStore>,
    replica: usize,
    pruning: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<(bool, f64)>>>,
) {
    let share = FLEET_SCOPES / FLEET_REPLICAS;
    let scopes: Vec<Scope> = (replica * share..(replica + 1) * share)
        .map(|i| Scope::new("tenant", format!("f{i:05}")))
        .collect();
    let runner = format!("fleet-{replica}");
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        // A plan time of its own per round, so every claim inserts rows.
        let plan_time = store.now().await.unwrap();
        for chunk in scopes.chunks(FLEET_BATCH) {
            let keys = PlanKey::each(chunk, plan_time);
            let during = pruning.load(Ordering::Relaxed);
            let started = Instant::now();
            let outcomes = store
                .claim(&ClaimRequest {
                    steering: Steering::NONE,
                    job_name: "fleet",
                    runner_id: &runner,
                    max_attempts: 3,
                    stale_timeout: Duration::from_secs(120),
                    allow_stale_reentry: false,
                    keys: &keys,
                    finishing: &[],
                })
                .await
                .unwrap();
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            samples.lock().unwrap().push((during, ms));
            let finish = Finish::success(Duration::ZERO, 0, Default::default());
            let items: Vec<_> = outcomes
                .iter()
                .filter_map(|o| o.lease())
                .map(|lease| (lease, &finish))
                .collect();
            for done in store.finish_many(&items).await {
                done.unwrap();
            }
        }
    }
}

/// `large prune [PERCENT]`: retention of the oldest PERCENT of the
/// generated history while the fleet claims (see the module's docs).
async fn prune_under_load(percent: f64, nice_ratio: f64) {
    let store = Arc::new(pg_store().await);
    let t = store.qualified_table().to_owned();
    let (oldest, newest): (OffsetDateTime, OffsetDateTime) =
        sqlx_core::query_as::query_as(AssertSqlSafe(format!(
            "SELECT min(finished_at), max(finished_at) FROM {t} \
             WHERE status IN ('SUCCESS', 'FAILED')"
        )))
        .fetch_one(store.pool())
        .await
        .expect("a generated table: run `large generate` first");
    let cutoff = oldest + (newest - oldest) * (percent / 100.0);
    let started = Instant::now();
    let count = store.prune_finished(&Prune::count(cutoff)).await.unwrap();
    println!(
        "dry run: {count} rows finished before {cutoff} (oldest {percent}% of the history), \
         counted in {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );

    let pruning = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Mutex::new(Vec::new()));
    let replicas: Vec<_> = (0..FLEET_REPLICAS)
        .map(|r| {
            tokio::spawn(fleet(
                store.clone(),
                r,
                pruning.clone(),
                stop.clone(),
                samples.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(BASELINE).await;

    let partitions = || async {
        sqlx_core::query_scalar::query_scalar::<_, i64>(AssertSqlSafe(format!(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = '{t}'::regclass"
        )))
        .fetch_one(store.pool())
        .await
        .unwrap()
    };
    let partitions_before = partitions().await;
    pruning.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let pruned = scheduler_core::Operator::new(store.clone())
        .prune(cutoff, PRUNE_BATCH, nice_ratio)
        .await
        .unwrap();
    let took = started.elapsed();
    let dropped = partitions_before - partitions().await;
    stop.store(true, Ordering::Relaxed);
    for replica in replicas {
        replica.await.unwrap();
    }

    let samples = samples.lock().unwrap();
    let mut before: Vec<f64> = samples.iter().filter(|s| !s.0).map(|s| s.1).collect();
    let mut during: Vec<f64> = samples.iter().filter(|s| s.0).map(|s| s.1).collect();
    let line = |what: &str, ms: &mut Vec<f64>| {
        let (p50, p99, max) = percentiles(ms);
        println!(
            "claims of {FLEET_BATCH} keys, {what:<14} {:>6} claims  p50 {p50:>7.1} ms  p99 \
             {p99:>7.1} ms  max {max:>7.1} ms",
            ms.len()
        );
        p99
    };
    let p99_before = line("without prune:", &mut before);
    let p99_during = line("during prune:", &mut during);
    println!(
        "prune (nice ratio {nice_ratio}): {} rows in {:.1} s ({:.0} rows/s), {} calls of at \
         most {PRUNE_BATCH} rows or one partition, {dropped} partitions dropped, longest call \
         {:.1} ms, paused {:.1} s",
        pruned.rows,
        took.as_secs_f64(),
        pruned.rows as f64 / took.as_secs_f64(),
        pruned.calls,
        pruned.longest_call.as_secs_f64() * 1000.0,
        pruned.paused.as_secs_f64()
    );
    println!(
        "claim p99 during / without prune: {:.2}x (target <= 2x)",
        p99_during / p99_before
    );
}

/// `benches large generate|measure|drop`.
pub(crate) async fn large(args: &[String]) {
    PARTITIONED
        .set(args.iter().any(|a| a == "--partitioned"))
        .expect("large runs once");
    let only = args
        .iter()
        .map(String::as_str)
        .find(|a| matches!(*a, "postgres" | "sqlite"));
    let number = args.get(1).and_then(|n| n.parse::<f64>().ok());
    match args.first().map(String::as_str) {
        Some("generate") => generate(number.map_or(10_000_000, |n| n as i64), only).await,
        Some("measure") => measure(only).await,
        Some("prune") => {
            // `--nice-ratio R`, as `scheduler prune` takes it (default 1).
            let nice_ratio = args
                .iter()
                .position(|a| a == "--nice-ratio")
                .and_then(|i| args.get(i + 1))
                .map_or(1.0, |r| r.parse().expect("--nice-ratio takes a number"));
            prune_under_load(number.unwrap_or(20.0), nice_ratio).await
        }
        Some("drop") => {
            let store = pg_store().await;
            store
                .pool()
                .execute(AssertSqlSafe(format!("DROP SCHEMA {} CASCADE", schema())))
                .await
                .unwrap();
            let _ = std::fs::remove_file(sqlite_path());
        }
        _ => crate::usage(),
    }
}
