//! A chaos run with real processes on PostgreSQL.
//!
//! ```text
//! cargo run -p benches --release --bin chaos -- --replicas 4 --duration 120s
//! ```
//!
//! Starts replica processes (this binary, `--child`) that each run a
//! `Manager` against one schema; SIGKILLs one replica every few seconds and
//! starts a new one; every few seconds terminates every server connection
//! of the replicas (`pg_terminate_backend`). Handlers write a side-effect
//! ledger fenced by their lease token (the effect is written only while the
//! lease is live). At the end a clean-up replica catches up, and the run
//! checks the table and the ledger: plans due, executed, kills, connection
//! kills, lost plans (must be 0), duplicate effects of the non-reentrant job
//! (must be 0), and the longest time to resume after a connection kill. It
//! exits non-zero on any violation.

use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use scheduler_core::{
    CatchUpMode, JobOutput, JobSpec, LeaseStore, Manager, ManagerOptions, RunContext, Scope, Scopes,
};
use scheduler_postgres::{PgLeaseStore, PgStoreOptions};
use sqlx_core::query::query;
use sqlx_core::query_scalar::query_scalar;
use sqlx_core::raw_sql::raw_sql;
use sqlx_core::sql_str::AssertSqlSafe;
use time::OffsetDateTime;

/// `(name, scopes, cadence, reentrant)`
const JOBS: [(&str, usize, u64, bool); 2] = [("reentrant", 8, 1, true), ("once", 4, 2, false)];
const WINDOW: Duration = Duration::from_secs(600);

struct Args {
    url: String,
    replicas: usize,
    duration: Duration,
    child: Option<(usize, String)>,
}

fn args() -> Args {
    let mut a = Args {
        url: std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned()),
        replicas: 4,
        duration: Duration::from_secs(120),
        child: None,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let value = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--database" => a.url = value,
            "--replicas" => a.replicas = value.parse().expect("--replicas N"),
            "--duration" => {
                a.duration = Duration::from_secs(
                    value
                        .trim_end_matches('s')
                        .parse()
                        .expect("--duration like 120s"),
                )
            }
            "--child" => {
                let (id, schema) = value.split_once(':').expect("--child ID:SCHEMA");
                a.child = Some((id.parse().unwrap(), schema.to_owned()));
            }
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    a
}

async fn store(url: &str, schema: &str, name: &str) -> PgLeaseStore {
    let options = PgStoreOptions::new()
        .schema(schema)
        .application_name(name)
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(2));
    PgLeaseStore::connect_with(url, &options)
        .await
        .expect("connect")
}

/// A replica: runs until killed.
async fn child(url: String, id: usize, schema: String) {
    let store = store(&url, &schema, &format!("chaos-{id}")).await;
    let pool = store.pool().clone();
    let table = store.qualified_table().to_owned();
    let manager = Manager::new(
        Arc::new(store),
        ManagerOptions {
            runner_id: format!("chaos-{id}-{}", std::process::id()),
            tick_interval: Duration::from_secs(1),
            ..Default::default()
        },
    );
    for (name, scopes, cadence, reentrant) in JOBS {
        let (pool, table, schema) = (pool.clone(), table.clone(), schema.clone());
        let scopes = Scopes::fixed((0..scopes).map(|i| Scope::new("tenant", format!("t{i}"))));
        let spec = JobSpec::new(name, scopes, move |ctx: RunContext| {
            let (pool, table, schema) = (pool.clone(), table.clone(), schema.clone());
            async move {
                tokio::time::sleep(Duration::from_millis(
                    50 + u64::from(ctx.lease_token().as_bytes()[0]),
                ))
                .await;
                // The effect, fenced by the lease token: written only while
                // this execution still holds its lease.
                let sql = format!(
                    "INSERT INTO \"{schema}\".chaos_ledger (job, scope, plan_time, token) \
                     SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM {table} \
                     WHERE id = $5 AND lease_token = $4 AND status = 'RUNNING')"
                );
                query(AssertSqlSafe(sql))
                    .bind(ctx.job_name().to_owned())
                    .bind(ctx.scope().id.clone())
                    .bind(ctx.plan_time())
                    .bind(ctx.lease_token())
                    .bind(ctx.execution_id())
                    .execute(&pool)
                    .await?;
                Ok(JobOutput::rows(1))
            }
        })
        .cadence(Duration::from_secs(cadence))
        .catch_up(CatchUpMode::EveryPlan)
        .catch_up_window(WINDOW)
        .max_plans_per_tick(20)
        .allow_stale_reentry(reentrant)
        .run_timeout(Duration::from_secs(2))
        .stale_timeout(Duration::from_secs(3))
        .heartbeat_interval(Duration::from_millis(500))
        .retry_backoff(vec![Duration::from_millis(200)]);
        manager.register(spec).expect("valid job");
    }
    manager.run(std::future::pending()).await;
}

fn spawn(url: &str, id: usize, schema: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--database", url, "--child", &format!("{id}:{schema}")])
        .spawn()
        .expect("spawn replica")
}

async fn parent(a: Args) -> bool {
    let schema = format!("chaos_{}", uuid::Uuid::new_v4().simple());
    let admin = store(&a.url, &schema, "chaos-admin").await;
    let pool = admin.pool().clone();
    raw_sql(AssertSqlSafe(format!(
        "CREATE TABLE \"{schema}\".chaos_ledger (job text, scope text, plan_time timestamptz, token uuid)"
    )))
    .execute(&pool)
    .await
    .unwrap();
    let started = admin.now().await.unwrap();
    let mut children: Vec<Child> = (0..a.replicas).map(|i| spawn(&a.url, i, &schema)).collect();
    let (mut kills, mut conn_kills, mut resumes) = (0u32, 0u32, 0u32);
    let mut max_resume = Duration::ZERO;
    let until = Instant::now() + a.duration;
    let mut step = 0u64;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(1)).await;
        step += 1;
        if step % 3 == 0 {
            let victim = (step as usize / 3) % children.len();
            let _ = children[victim].kill();
            let _ = children[victim].wait();
            children[victim] = spawn(&a.url, victim, &schema);
            kills += 1;
        }
        if step % 7 == 0 {
            let killed_at = admin.now().await.unwrap();
            query(AssertSqlSafe(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name LIKE 'chaos-%' AND application_name <> 'chaos-admin'",
            ))
            .execute(&pool)
            .await
            .unwrap();
            conn_kills += 1;
            // Resumed once an execution finishes after the kill.
            let waited = Instant::now();
            let sql = format!(
                "SELECT count(*) FROM {} WHERE finished_at > $1",
                admin.qualified_table()
            );
            loop {
                let n: i64 = query_scalar(AssertSqlSafe(sql.clone()))
                    .bind(killed_at)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                if n > 0 {
                    resumes += 1;
                    max_resume = max_resume.max(waited.elapsed());
                    break;
                }
                if waited.elapsed() > Duration::from_secs(20) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    let ended = admin.now().await.unwrap();
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
    // A clean-up replica sweeps the dead replicas' leases and catches up.
    let mut cleanup = spawn(&a.url, 99, &schema);
    tokio::time::sleep(Duration::from_secs(12)).await;
    let _ = cleanup.kill();
    let _ = cleanup.wait();
    report(
        &admin, &pool, &schema, started, ended, kills, conn_kills, resumes, max_resume,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn report(
    admin: &PgLeaseStore,
    pool: &sqlx_postgres::PgPool,
    schema: &str,
    started: OffsetDateTime,
    ended: OffsetDateTime,
    kills: u32,
    conn_kills: u32,
    resumes: u32,
    max_resume: Duration,
) -> bool {
    let table = admin.qualified_table();
    let (mut due, mut lost) = (0i64, 0i64);
    for (name, scopes, cadence, _) in JOBS {
        let cadence = Duration::from_secs(cadence);
        let from = scheduler_core::plan::ceil(started + Duration::from_secs(3), cadence);
        let to = ended - Duration::from_secs(3);
        let plans = scheduler_core::plan::Schedule::Every(cadence).between(from, to, 1_000_000);
        due += (plans.len() * scopes) as i64;
        let sql = format!(
            "SELECT count(*) FROM unnest($2::timestamptz[]) AS p(t) CROSS JOIN generate_series(0, $3 - 1) AS s(i) \
             WHERE NOT EXISTS (SELECT 1 FROM {table} e WHERE e.job_name = $1 AND e.scope_id = 't' || s.i \
             AND e.plan_time = p.t AND e.status <> 'RUNNING')"
        );
        let missing: i64 = query_scalar(AssertSqlSafe(sql))
            .bind(name)
            .bind(plans)
            .bind(scopes as i32)
            .fetch_one(pool)
            .await
            .unwrap();
        lost += missing;
    }
    let executed: i64 = query_scalar(AssertSqlSafe(format!(
        "SELECT count(*) FROM {table} WHERE status = 'SUCCESS'"
    )))
    .fetch_one(pool)
    .await
    .unwrap();
    let duplicates: i64 = query_scalar(AssertSqlSafe(format!(
        "SELECT count(*) FROM (SELECT 1 FROM \"{schema}\".chaos_ledger WHERE job = 'once' \
         GROUP BY scope, plan_time HAVING count(*) > 1) d"
    )))
    .fetch_one(pool)
    .await
    .unwrap();
    println!("plans due                            {due}");
    println!("executed (SUCCESS rows)              {executed}");
    println!("replica kills (SIGKILL)              {kills}");
    println!("connection kills                     {conn_kills}");
    println!("reconnects (resumed after a kill)    {resumes}");
    println!("lost plans (must be 0)               {lost}");
    println!("duplicate non-reentrant effects (0)  {duplicates}");
    println!("max time to resume after a kill      {max_resume:?}");
    lost == 0 && duplicates == 0 && resumes == conn_kills
}

fn main() {
    let a = args();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    match a.child.clone() {
        Some((id, schema)) => runtime.block_on(child(a.url, id, schema)),
        None => {
            if !runtime.block_on(parent(a)) {
                eprintln!("chaos: VIOLATION");
                std::process::exit(1);
            }
        }
    }
}
