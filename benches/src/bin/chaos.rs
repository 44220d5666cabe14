//! A chaos run with real processes, on PostgreSQL or on one SQLite file.
//!
//! ```text
//! cargo run -p benches --release --bin chaos -- --replicas 4 --duration 120s
//! cargo run -p benches --release --bin chaos -- --database sqlite:/tmp/chaos.db --replicas 4 --duration 120s
//! ```
//!
//! The first command runs on the PostgreSQL server of `--database` (default:
//! `DATABASE_URL`, else `postgres://postgres@127.0.0.1:5432/postgres`), in a
//! schema of its own; the second runs every replica on one SQLite file (a
//! file left by an earlier chaos run is replaced; any other existing file is
//! refused).
//!
//! Starts replica processes (this binary, `--child`) that each run a
//! `Manager` on the run's database; SIGKILLs one replica every 3 s and
//! starts a new one; on PostgreSQL, every 7 s terminates every server
//! connection of the replicas (`pg_terminate_backend`). SQLite has no server
//! connections, so that part is reported as `n/a` there. Handlers write a
//! side-effect ledger fenced by their lease token: the row is inserted, in
//! one transaction, only while the execution still holds its lease
//! (`RUNNING` with that token), and a handler whose fence fails returns an
//! error. At the end a clean-up replica catches up (the run waits until
//! every plan due is settled, up to 2 minutes), and the run checks the table
//! and the ledger: plans due, executed, kills, connection kills, reconnects,
//! lost plans (must be 0), duplicate effects of the non-reentrant job (must
//! be 0), successes without their effect (must be 0: the fence matches),
//! plans that used up their attempts (must be 0: the jobs get 10, more than
//! chaos spends on one plan, so a fence that never matches shows up here),
//! and the longest time to resume after a connection kill. A third job,
//! `transactional` (reentrant), writes its effect in the job's own
//! transaction (`transactional_job`: the effect and the SUCCESS commit
//! together), into a table without a unique key, so that the run can
//! count: duplicate effects of the transactional job (must be 0), and its
//! effects without their SUCCESS or SUCCESS rows without their effect
//! (must be 0). It exits
//! non-zero on any violation, keeping the schema or file for inspection; a
//! clean run removes it. Replicas exit when the parent process is gone.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::TransactionBehavior;
use scheduler_core::plan::{ceil, Schedule};
use scheduler_core::{
    BoxError, CatchUpMode, ErrorCode, Execution, ExecutionAudit, ExecutionFilter, JobOutput,
    JobSpec, Manager, ManagerOptions, RunContext, Scope, Scopes, Status,
};
use scheduler_postgres::{PgLeaseStore, PgStoreOptions};
use scheduler_sqlite::{SqliteLeaseStore, SqliteStoreOptions};
use sqlx_core::query::query;
use sqlx_core::query_as::query_as;
use sqlx_core::query_scalar::query_scalar;
use sqlx_core::raw_sql::raw_sql;
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_postgres::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

/// `(name, scopes, cadence in seconds, reentrant)`
const JOBS: [(&str, usize, u64, bool); 2] = [("reentrant", 8, 1, true), ("once", 4, 2, false)];
/// The transactional job: `(name, scopes, cadence in seconds)`; reentrant.
const TX_JOB: (&str, usize, u64) = ("transactional", 4, 1);
const WINDOW: Duration = Duration::from_secs(600);
/// Far more attempts than chaos spends on one plan.
const MAX_ATTEMPTS: i32 = 10;
/// Plans due this close to the start or the end of the run are not checked:
/// the first replicas are still starting, the last ones are being killed.
const MARGIN: Duration = Duration::from_secs(3);
/// How long the clean-up replica may take to settle every plan due.
const SETTLE_CAP: Duration = Duration::from_secs(120);
/// How long after a connection kill the replicas must have resumed.
const RESUME_CAP: Duration = Duration::from_secs(20);
/// How long a ledger write waits for SQLite's write lock: well inside the
/// handlers' 2 s run timeout, so a write normally ends (committed or
/// refused) before the timeout could stop its handler.
const LEDGER_BUSY_TIMEOUT: Duration = Duration::from_secs(1);

struct Args {
    db: Db,
    replicas: usize,
    duration: Duration,
    child: Option<usize>,
}

fn args() -> Args {
    let mut database = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let (mut schema, mut replicas, mut duration, mut child) =
        (None, 4, Duration::from_secs(120), None);
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let value = pair.get(1).cloned().unwrap_or_default();
        match pair[0].as_str() {
            "--database" => database = value,
            "--replicas" => replicas = value.parse().expect("--replicas N"),
            "--duration" => {
                duration = Duration::from_secs(
                    value
                        .trim_end_matches('s')
                        .parse()
                        .expect("--duration like 120s"),
                )
            }
            // Set by the parent for its replicas.
            "--schema" => schema = Some(value),
            "--child" => child = Some(value.parse().expect("--child ID")),
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(replicas > 0, "--replicas must be at least 1");
    Args {
        db: Db::new(&database, schema),
        replicas,
        duration,
        child,
    }
}

/// Where one run's replicas meet.
#[derive(Debug, Clone)]
enum Db {
    /// A schema of the run's own on a PostgreSQL server.
    Postgres { url: String, schema: String },
    /// One SQLite file, opened by every replica.
    Sqlite { path: PathBuf },
}

/// One process's handles on the run's database: its lease store, and what
/// the ledger and the connection kills need.
struct Conn {
    store: Arc<dyn ExecutionAudit>,
    link: Link,
}

enum Link {
    Postgres {
        pool: PgPool,
        schema: String,
        table: String,
        store: Arc<PgLeaseStore>,
    },
    Sqlite {
        path: PathBuf,
        ledger: Arc<Mutex<rusqlite::Connection>>,
        store: Arc<SqliteLeaseStore>,
    },
}

/// One ledger row: an effect of a handler.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Effect {
    job: String,
    scope: String,
    plan_time: OffsetDateTime,
    token: Uuid,
}

/// The transactional job's effects: no unique key, so that a duplicate
/// would show.
const TX_EFFECTS: &str = "chaos_tx_effects";

/// The fenced write of each backend: the effect goes in only while the
/// execution is RUNNING under this token.
const PG_EFFECT: &str = "INSERT INTO \"{schema}\".chaos_ledger (job, scope, plan_time, token) \
     SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM {table} \
     WHERE id = $5 AND lease_token = $4 AND status = 'RUNNING')";
/// SQLite's table stores instants as INTEGER microseconds and UUIDs as
/// hyphenated lowercase TEXT (scheduler-sqlite's codec); so does the ledger.
const SQLITE_EFFECT: &str = "INSERT INTO chaos_ledger (job, scope, plan_time, token) \
     SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM sys_cron_executions \
     WHERE id = ?5 AND lease_token = ?4 AND status = 'RUNNING')";

fn micros(t: OffsetDateTime) -> i64 {
    t.unix_timestamp_nanos().div_euclid(1_000) as i64
}

impl Db {
    fn new(database: &str, schema: Option<String>) -> Db {
        let is_sqlite = database
            .get(..7)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("sqlite:"));
        if is_sqlite {
            let options = SqliteStoreOptions::from_url(database).unwrap_or_else(|e| panic!("{e}"));
            let path = options
                .path()
                .expect("an in-memory SQLite database cannot be shared by processes")
                .to_owned();
            Db::Sqlite { path }
        } else {
            let schema = schema.unwrap_or_else(|| format!("chaos_{}", Uuid::new_v4().simple()));
            Db::Postgres {
                url: database.to_owned(),
                schema,
            }
        }
    }

    /// The arguments that give a replica process this database.
    fn args(&self) -> Vec<String> {
        match self {
            Db::Postgres { url, schema } => {
                vec![
                    "--database".into(),
                    url.clone(),
                    "--schema".into(),
                    schema.clone(),
                ]
            }
            Db::Sqlite { path } => vec!["--database".into(), format!("sqlite:{}", path.display())],
        }
    }

    fn describe(&self) -> String {
        match self {
            Db::Postgres { schema, .. } => format!("PostgreSQL, schema {schema}"),
            Db::Sqlite { path } => format!("SQLite, file {}", path.display()),
        }
    }

    /// Opens the store (and migrates it) and the ledger's connection. On
    /// PostgreSQL the connections are named `<schema>/<name>`.
    async fn connect(&self, name: &str) -> Result<Conn, BoxError> {
        Ok(match self {
            Db::Postgres { url, schema } => {
                let options = PgStoreOptions::new()
                    .schema(schema)
                    .application_name(format!("{schema}/{name}"))
                    .max_connections(4)
                    .acquire_timeout(Duration::from_secs(2));
                let store = Arc::new(PgLeaseStore::connect_with(url, &options).await?);
                let link = Link::Postgres {
                    pool: store.pool().clone(),
                    schema: schema.clone(),
                    table: store.qualified_table().to_owned(),
                    store: store.clone(),
                };
                Conn { store, link }
            }
            Db::Sqlite { path } => {
                let store = Arc::new(SqliteStoreOptions::new(path).open().await?);
                let ledger = rusqlite::Connection::open(path)?;
                ledger.busy_timeout(LEDGER_BUSY_TIMEOUT)?;
                Conn {
                    store: store.clone(),
                    link: Link::Sqlite {
                        path: path.clone(),
                        ledger: Arc::new(Mutex::new(ledger)),
                        store,
                    },
                }
            }
        })
    }

    /// A fresh database for the run, its table and its ledger: the parent's
    /// connection.
    async fn create(&self) -> Conn {
        if let Db::Sqlite { path } = self {
            remove_earlier_run(path);
        }
        let conn = self.connect("admin").await.expect("open the database");
        match &conn.link {
            Link::Postgres { pool, schema, .. } => {
                raw_sql(AssertSqlSafe(format!(
                    "CREATE TABLE \"{schema}\".chaos_ledger \
                     (job text NOT NULL, scope text NOT NULL, plan_time timestamptz NOT NULL, token uuid NOT NULL); \
                     CREATE TABLE \"{schema}\".{TX_EFFECTS} (LIKE \"{schema}\".chaos_ledger)"
                )))
                .execute(pool)
                .await
                .expect("create the ledger");
            }
            Link::Sqlite { ledger, .. } => {
                lock(ledger)
                    .execute_batch(
                        &format!(
                            "CREATE TABLE chaos_ledger \
                             (job TEXT NOT NULL, scope TEXT NOT NULL, plan_time INTEGER NOT NULL, token TEXT NOT NULL) STRICT; \
                             CREATE TABLE {TX_EFFECTS} \
                             (job TEXT NOT NULL, scope TEXT NOT NULL, plan_time INTEGER NOT NULL, token TEXT NOT NULL) STRICT"
                        ),
                    )
                    .expect("create the ledger");
            }
        }
        conn
    }
}

/// Clears the way for a run on `path`: removes a file an earlier chaos run
/// left (it has a ledger), refuses any other.
fn remove_earlier_run(path: &Path) {
    if !path.exists() {
        return;
    }
    let is_chaos = rusqlite::Connection::open(path)
        .and_then(|c| {
            c.query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'chaos_ledger'",
                [],
                |r| r.get::<_, i64>(0),
            )
        })
        .is_ok_and(|n| n == 1);
    assert!(
        is_chaos,
        "{} exists and is not a chaos run's database: choose another path",
        path.display()
    );
    remove_sqlite_files(path);
}

fn remove_sqlite_files(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}

fn lock(ledger: &Mutex<rusqlite::Connection>) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
    ledger.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Conn {
    /// The handler's effect, fenced by its lease token; `false` when the
    /// fence refused it (the lease is gone).
    async fn write_effect(&self, ctx: &RunContext) -> Result<bool, BoxError> {
        let written = match &self.link {
            Link::Postgres {
                pool,
                schema,
                table,
                ..
            } => {
                let sql = PG_EFFECT
                    .replace("{schema}", schema)
                    .replace("{table}", table);
                query(AssertSqlSafe(sql))
                    .bind(ctx.job_name().to_owned())
                    .bind(ctx.scope().id.to_string())
                    .bind(ctx.plan_time())
                    .bind(ctx.lease_token())
                    .bind(ctx.execution_id())
                    .execute(pool)
                    .await?
                    .rows_affected()
            }
            Link::Sqlite { ledger, .. } => {
                let ledger = ledger.clone();
                let values = (
                    ctx.job_name().to_owned(),
                    ctx.scope().id.to_string(),
                    micros(ctx.plan_time()),
                    ctx.lease_token().hyphenated().to_string(),
                    ctx.execution_id().hyphenated().to_string(),
                );
                tokio::task::spawn_blocking(move || -> rusqlite::Result<u64> {
                    let mut conn = lock(&ledger);
                    // IMMEDIATE: the write lock before the fence is read, so
                    // the lease cannot change between the check and the
                    // insert.
                    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    let n = tx.execute(SQLITE_EFFECT, values)?;
                    tx.commit()?;
                    Ok(n as u64)
                })
                .await??
            }
        };
        Ok(written == 1)
    }

    /// Every effect in `table`: the ledger, or [`TX_EFFECTS`].
    async fn effects(&self, table: &str) -> Vec<Effect> {
        match &self.link {
            Link::Postgres { pool, schema, .. } => {
                let rows: Vec<(String, String, OffsetDateTime, Uuid)> = query_as(AssertSqlSafe(
                    format!("SELECT job, scope, plan_time, token FROM \"{schema}\".{table}"),
                ))
                .fetch_all(pool)
                .await
                .expect("read the ledger");
                rows.into_iter()
                    .map(|(job, scope, plan_time, token)| Effect {
                        job,
                        scope,
                        plan_time,
                        token,
                    })
                    .collect()
            }
            Link::Sqlite { ledger, .. } => {
                let conn = lock(ledger);
                let mut statement = conn
                    .prepare(&format!("SELECT job, scope, plan_time, token FROM {table}"))
                    .expect("read the ledger");
                let rows = statement
                    .query_map([], |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, String>(3)?,
                        ))
                    })
                    .expect("read the ledger");
                rows.map(|row| {
                    let (job, scope, plan_time, token) = row.expect("a ledger row");
                    Effect {
                        job,
                        scope,
                        plan_time: OffsetDateTime::from_unix_timestamp_nanos(
                            i128::from(plan_time) * 1_000,
                        )
                        .expect("a plan time"),
                        token: token.parse().expect("a token"),
                    }
                })
                .collect()
            }
        }
    }

    /// The transactional job: its effect goes into [`TX_EFFECTS`] inside
    /// the transaction its SUCCESS commits in. On PostgreSQL the handler
    /// also waits a while inside the transaction, so that kills land while
    /// it is open; on SQLite, where the closure holds the writer, it
    /// writes at once.
    fn transactional_spec(&self) -> JobSpec {
        let (name, scopes, _) = TX_JOB;
        let scopes = Scopes::fixed((0..scopes).map(|i| Scope::new("tenant", format!("t{i}"))));
        match &self.link {
            Link::Postgres { schema, store, .. } => {
                let sql = format!(
                    "INSERT INTO \"{schema}\".{TX_EFFECTS} (job, scope, plan_time, token) \
                     VALUES ($1, $2, $3, $4)"
                );
                store.transactional_job(name, scopes, move |ctx, mut tx| {
                    let sql = sql.clone();
                    async move {
                        query(AssertSqlSafe(sql))
                            .bind(ctx.job_name().to_owned())
                            .bind(ctx.scope().id.to_string())
                            .bind(ctx.plan_time())
                            .bind(ctx.lease_token())
                            .execute(&mut *tx)
                            .await?;
                        tokio::time::sleep(Duration::from_millis(
                            50 + u64::from(ctx.lease_token().as_bytes()[0]),
                        ))
                        .await;
                        Ok((JobOutput::rows(1), tx))
                    }
                })
            }
            Link::Sqlite { store, .. } => {
                let sql = format!(
                    "INSERT INTO {TX_EFFECTS} (job, scope, plan_time, token) VALUES (?1, ?2, ?3, ?4)"
                );
                store.transactional_job(name, scopes, move |ctx, tx| {
                    tx.execute(
                        &sql,
                        (
                            ctx.job_name(),
                            ctx.scope().id.as_str(),
                            micros(ctx.plan_time()),
                            ctx.lease_token().hyphenated().to_string(),
                        ),
                    )?;
                    Ok(JobOutput::rows(1))
                })
            }
        }
    }

    /// Terminates every server connection of the replicas; `None` where the
    /// backend has none (SQLite).
    async fn kill_replica_connections(&self) -> Option<u64> {
        let Link::Postgres { pool, schema, .. } = &self.link else {
            return None;
        };
        let killed: Vec<bool> = query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE starts_with(application_name, $1)",
        )
        .bind(format!("{schema}/replica-"))
        .fetch_all(pool)
        .await
        .expect("terminate the replicas' connections");
        Some(killed.len() as u64)
    }

    /// Removes the run's schema or file.
    async fn remove(self) {
        match self.link {
            Link::Postgres { pool, schema, .. } => {
                raw_sql(AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE")))
                    .execute(&pool)
                    .await
                    .expect("drop the run's schema");
                pool.close().await;
            }
            Link::Sqlite {
                path,
                ledger,
                store,
            } => {
                drop((self.store, ledger, store));
                remove_sqlite_files(&path);
            }
        }
    }
}

/// A replica: runs until killed, or until the parent is gone.
async fn replica(db: Db, id: usize) {
    // The parent holds our stdin open; if it dies, even by SIGKILL, stdin
    // ends and so does this replica.
    std::thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    let name = format!("replica-{id}");
    let mut tries = 0;
    let conn = loop {
        // A connection kill may hit a replica while it connects.
        match db.connect(&name).await {
            Ok(conn) => break Arc::new(conn),
            Err(e) if tries < 50 => eprintln!("chaos {name}: connect: {e}; retrying"),
            Err(e) => panic!("chaos {name}: connect: {e}"),
        }
        tries += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let manager = Manager::new(
        conn.store.clone(),
        ManagerOptions {
            runner_id: format!("chaos-{id}-{}", std::process::id()),
            tick_interval: Duration::from_secs(1),
            ..Default::default()
        },
    )
    .expect("valid manager options");
    for (name, scopes, cadence, reentrant) in JOBS {
        let conn = conn.clone();
        let scopes = Scopes::fixed((0..scopes).map(|i| Scope::new("tenant", format!("t{i}"))));
        let spec = JobSpec::new(name, scopes, move |ctx: RunContext| {
            let conn = conn.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(
                    50 + u64::from(ctx.lease_token().as_bytes()[0]),
                ))
                .await;
                if !conn.write_effect(&ctx).await? {
                    return Err("the lease is gone: the fence refused the effect".into());
                }
                Ok(JobOutput::rows(1))
            }
        })
        .cadence(Duration::from_secs(cadence))
        .catch_up(CatchUpMode::EveryPlan)
        .catch_up_window(WINDOW)
        .max_plans_per_tick(20)
        .allow_stale_reentry(reentrant)
        // Far more attempts than chaos can spend on one plan, so a plan
        // that used them all up is a defect (a fence that never matches,
        // say), not bad luck.
        .max_attempts(MAX_ATTEMPTS)
        .run_timeout(Duration::from_secs(2))
        .stale_timeout(Duration::from_secs(3))
        .heartbeat_interval(Duration::from_millis(500))
        .retry_backoff(vec![Duration::from_millis(200)]);
        manager.register(spec).expect("valid job");
    }
    let transactional = conn
        .transactional_spec()
        .cadence(Duration::from_secs(TX_JOB.2))
        .catch_up(CatchUpMode::EveryPlan)
        .catch_up_window(WINDOW)
        .max_plans_per_tick(20)
        .allow_stale_reentry(true)
        .max_attempts(MAX_ATTEMPTS)
        .run_timeout(Duration::from_secs(2))
        .stale_timeout(Duration::from_secs(3))
        .heartbeat_interval(Duration::from_millis(500))
        .retry_backoff(vec![Duration::from_millis(200)]);
    manager.register(transactional).expect("valid job");
    manager.run(std::future::pending()).await;
}

fn spawn(db: &Db, id: usize) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(db.args())
        .args(["--child", &id.to_string()])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn replica")
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The plans the run checks: `(job, scope, plan time, reentrant)`.
fn due_plans(
    started: OffsetDateTime,
    ended: OffsetDateTime,
) -> Vec<(&'static str, String, OffsetDateTime, bool)> {
    let mut due = Vec::new();
    let (tx_name, tx_scopes, tx_cadence) = TX_JOB;
    let every = JOBS
        .into_iter()
        .chain([(tx_name, tx_scopes, tx_cadence, true)]);
    for (name, scopes, cadence, reentrant) in every {
        let cadence = Duration::from_secs(cadence);
        let from = ceil(started + MARGIN, cadence);
        for plan in Schedule::every(cadence).between(from, ended - MARGIN, 1_000_000) {
            due.extend((0..scopes).map(|i| (name, format!("t{i}"), plan, reentrant)));
        }
    }
    due
}

/// What the table and the ledger say about the plans due.
#[derive(Debug, Default)]
struct Tally {
    due: usize,
    /// SUCCESS rows, of any plan.
    executed: usize,
    /// Plans due with no row, or a row still RUNNING.
    lost: usize,
    /// Plans due not yet settled: lost, or FAILED with a retry to come.
    unsettled: usize,
    /// Non-reentrant plans the sweep closed (`stale_timeout`): by design
    /// never rerun automatically.
    stale_not_rerun: usize,
    /// Plans due that ended FAILED with their attempts used up (with
    /// [`MAX_ATTEMPTS`], only a defect gets there).
    exhausted: usize,
    /// Non-reentrant plans with more than one effect.
    duplicates: usize,
    /// SUCCESS rows whose effect, under their token, is not in the ledger.
    missing_effects: usize,
    /// Plans of the transactional job with more than one effect.
    tx_duplicates: usize,
    /// The transactional job's effects without their SUCCESS (under the
    /// same token), and its SUCCESS rows without their effect.
    tx_unmatched: usize,
}

async fn tally(conn: &Conn, due: &[(&'static str, String, OffsetDateTime, bool)]) -> Tally {
    let rows = conn
        .store
        .list_executions(&ExecutionFilter::default())
        .await
        .expect("list the executions");
    let effects = conn.effects("chaos_ledger").await;
    let by_plan: HashMap<(&str, &str, OffsetDateTime), &Execution> = rows
        .iter()
        .map(|r| ((r.job_name.as_str(), r.scope.id.as_str(), r.plan_time), r))
        .collect();
    // Later than any retry of the run is due: "will it be retried at all".
    let forever = OffsetDateTime::now_utc() + Duration::from_secs(86_400);
    let stale = Some(ErrorCode::StaleTimeout.as_str());
    let mut t = Tally {
        due: due.len(),
        ..Tally::default()
    };
    for (job, scope, plan, reentrant) in due {
        match by_plan.get(&(*job, scope.as_str(), *plan)) {
            None => (t.lost, t.unsettled) = (t.lost + 1, t.unsettled + 1),
            Some(r) if r.status == Status::Running => {
                (t.lost, t.unsettled) = (t.lost + 1, t.unsettled + 1)
            }
            Some(r) if r.retry_eligible(forever, *reentrant) => t.unsettled += 1,
            Some(r)
                if !reentrant && r.status == Status::Failed && r.error_code.as_deref() == stale =>
            {
                t.stale_not_rerun += 1
            }
            Some(r) if r.status == Status::Failed => t.exhausted += 1,
            Some(_) => {}
        }
    }
    t.executed = rows.iter().filter(|r| r.status == Status::Success).count();
    let non_reentrant: HashSet<&str> = JOBS.iter().filter(|j| !j.3).map(|j| j.0).collect();
    let mut per_plan: HashMap<(&str, &str, OffsetDateTime), usize> = HashMap::new();
    for e in effects
        .iter()
        .filter(|e| non_reentrant.contains(e.job.as_str()))
    {
        *per_plan.entry((&e.job, &e.scope, e.plan_time)).or_default() += 1;
    }
    t.duplicates = per_plan.values().filter(|&&n| n > 1).count();
    let effects: HashSet<&Effect> = effects.iter().collect();
    // The transactional job's effects are counted apart, below.
    t.missing_effects = rows
        .iter()
        .filter(|r| r.status == Status::Success && r.job_name != TX_JOB.0)
        .filter(|r| {
            !effects.contains(&Effect {
                job: r.job_name.to_string(),
                scope: r.scope.id.to_string(),
                plan_time: r.plan_time,
                token: r.lease_token,
            })
        })
        .count();
    let tx_effects = conn.effects(TX_EFFECTS).await;
    let mut per_plan: HashMap<(&str, &str, OffsetDateTime), usize> = HashMap::new();
    for e in &tx_effects {
        *per_plan.entry((&e.job, &e.scope, e.plan_time)).or_default() += 1;
    }
    t.tx_duplicates = per_plan.values().filter(|&&n| n > 1).count();
    let committed: HashSet<Effect> = rows
        .iter()
        .filter(|r| r.job_name == TX_JOB.0 && r.status == Status::Success)
        .map(|r| Effect {
            job: r.job_name.to_string(),
            scope: r.scope.id.to_string(),
            plan_time: r.plan_time,
            token: r.lease_token,
        })
        .collect();
    let written: HashSet<Effect> = tx_effects.into_iter().collect();
    t.tx_unmatched = committed.symmetric_difference(&written).count();
    t
}

/// Waits until an execution finishes after `killed_at`; how long that took,
/// or `None` past [`RESUME_CAP`].
async fn resumed(store: &dyn ExecutionAudit, killed_at: OffsetDateTime) -> Option<Duration> {
    let waited = Instant::now();
    let recent = ExecutionFilter {
        plan_time_from: Some(killed_at - Duration::from_secs(10)),
        ..ExecutionFilter::default()
    };
    while waited.elapsed() < RESUME_CAP {
        let rows = store
            .list_executions(&recent)
            .await
            .expect("list executions");
        if rows
            .iter()
            .any(|r| r.finished_at.is_some_and(|f| f > killed_at))
        {
            return Some(waited.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

async fn parent(a: Args) -> bool {
    let db = a.db;
    println!(
        "chaos run on {}: {} replicas for {:?}",
        db.describe(),
        a.replicas,
        a.duration
    );
    let admin = db.create().await;
    let started = admin.store.now().await.unwrap();
    let mut children: Vec<Child> = (0..a.replicas).map(|i| spawn(&db, i)).collect();
    let (mut kills, mut conn_kills, mut resumes) = (0u32, None::<u32>, 0u32);
    let mut max_resume = Duration::ZERO;
    let first = tokio::time::Instant::now();
    let until = Instant::now() + a.duration;
    let mut step = 0u64;
    while Instant::now() < until {
        step += 1;
        // Each step at a random point of its second: plans fall due on
        // whole seconds, and steps at a fixed phase would keep hitting the
        // replicas at the same point of their handlers (or between them).
        let random = Uuid::new_v4().as_u64_pair().0;
        let phase = Duration::from_micros(random % 1_000_000);
        tokio::time::sleep_until(first + Duration::from_secs(step) + phase).await;
        if step % 3 == 0 {
            let victim = (step as usize / 3) % children.len();
            let _ = children[victim].kill();
            let _ = children[victim].wait();
            children[victim] = spawn(&db, victim);
            kills += 1;
        }
        if step % 7 == 0 {
            let killed_at = admin.store.now().await.unwrap();
            if admin.kill_replica_connections().await.is_some() {
                *conn_kills.get_or_insert(0) += 1;
                // Resumed once an execution finishes after the kill.
                if let Some(took) = resumed(admin.store.as_ref(), killed_at).await {
                    resumes += 1;
                    max_resume = max_resume.max(took);
                }
            }
        }
    }
    let ended = admin.store.now().await.unwrap();
    children.into_iter().for_each(stop);

    // A clean-up replica sweeps the dead replicas' leases and catches up,
    // until every plan due is settled.
    let due = due_plans(started, ended);
    let cleanup = spawn(&db, 99);
    let waited = Instant::now();
    while tally(&admin, &due).await.unsettled > 0 && waited.elapsed() < SETTLE_CAP {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let caught_up = waited.elapsed();
    stop(cleanup);

    let t = tally(&admin, &due).await;
    let na = "n/a (SQLite: no server connections)";
    println!("plans due                            {}", t.due);
    println!("executed (SUCCESS rows)              {}", t.executed);
    println!("replica kills (SIGKILL)              {kills}");
    match conn_kills {
        Some(n) => {
            println!("connection kills                     {n}");
            println!("reconnects (resumed after a kill)    {resumes}");
        }
        None => {
            println!("connection kills                     {na}");
            println!("reconnects (resumed after a kill)    {na}");
        }
    }
    println!("lost plans (must be 0)               {}", t.lost);
    println!("duplicate non-reentrant effects (0)  {}", t.duplicates);
    println!("successes without their effect (0)   {}", t.missing_effects);
    println!(
        "duplicate effects of the transactional job (must be 0)  {}",
        t.tx_duplicates
    );
    println!(
        "transactional effects and SUCCESS apart (must be 0)    {}",
        t.tx_unmatched
    );
    println!("stale non-reentrant plans, not rerun {}", t.stale_not_rerun);
    println!("failed, attempts used up (0)         {}", t.exhausted);
    println!(
        "plans still to retry at the end      {}",
        t.unsettled - t.lost
    );
    match conn_kills {
        Some(_) => println!("max time to resume after a kill      {max_resume:?}"),
        None => println!("max time to resume after a kill      {na}"),
    }
    println!("clean-up replica caught up in        {caught_up:.1?}");
    let ok = t.lost == 0
        && t.duplicates == 0
        && t.missing_effects == 0
        && t.tx_duplicates == 0
        && t.tx_unmatched == 0
        && t.exhausted == 0
        && conn_kills.is_none_or(|n| n == resumes);
    if ok {
        admin.remove().await;
    } else {
        println!("kept for inspection: {}", db.describe());
    }
    ok
}

fn main() {
    let a = args();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    match a.child {
        Some(id) => runtime.block_on(replica(a.db, id)),
        None => {
            if !runtime.block_on(parent(a)) {
                eprintln!("chaos: VIOLATION");
                std::process::exit(1);
            }
        }
    }
}
