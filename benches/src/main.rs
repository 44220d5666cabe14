//! The scheduler's benchmarks, measured side by side in one run.
//!
//! ```text
//! cargo run -p benches --release -- all            # every benchmark, one table
//! cargo run -p benches --release -- all --quick    # shorter runs (CI smoke)
//! ```
//!
//! PostgreSQL figures need `DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); each measurement uses a
//! schema of its own. The ceiling comes from `benches/ceiling/pg-ceiling.sh`
//! (pgbench on the seed's table, in a scratch database it drops again; path
//! overridable with `PG_CEILING`), run in the same process tree. "The seed"
//! is the Go scheduler this design was ported from (`docs/contract.md` §1).
//!
//! Measured:
//! 1. fan-out: one job with 10,000 due scopes and a no-op handler, 1 and 3
//!    replicas: wall time until all are SUCCESS, plans/s, the median of
//!    [`RATE_RUNS`] runs (see [`Rate`]);
//! 2. seed path: the same work the seed's way (one plan per claim, one
//!    finish per plan, sequential, a store-time read before each), the
//!    median of as many runs;
//! 3. ceiling: raw SQL claim + finish, per plan and in batches of 100;
//! 4. dispatch latency: 100 scopes on a 1 s cadence: plan eligible to
//!    handler start, p50/p99/max over several runs, plain and with
//!    terminal writes delayed 1 s (see `dispatch`);
//! 5. idle tick: store calls per job in a tick with nothing due, 10,000 scopes;
//! 6. memory: peak RSS of a process whose manager has 100,000 scopes and
//!    ticks idle;
//! 7. a million scopes (`million`): peak RSS and store calls of an idle
//!    tick, and a PostgreSQL fan-out with 3 replicas.
//!
//! Not in `all` (it generates a million rows per store first):
//! `dashboard [postgres|sqlite] [SCOPES] [PLANS]`, the dashboard's pages
//! rendered on 10,000 scopes × 100 plans (see `dashboard`).

mod dashboard;
mod dispatch;
mod large;
mod million;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use scheduler_core::store::CountingStore;
use scheduler_core::{
    ClaimRequest, ExecutionAudit, ExecutionFilter, Finish, JobOutput, JobSpec, LeaseStoreExt,
    Manager, ManagerOptions, PlanKey, RunContext, Scope, Scopes, Status,
};
use scheduler_memory::MemoryLeaseStore;
use scheduler_postgres::{PgLeaseStore, PgStoreOptions};
use scheduler_sqlite::SqliteLeaseStore;

const FANOUT_SCOPES: usize = 10_000;

/// Runs behind each fan-out and seed-path figure of `all`.
const RATE_RUNS: usize = 5;

/// A rate measured [`RATE_RUNS`] times: one run's rate swings with the
/// machine (±20% here between runs minutes apart) by more than the bars'
/// margins, so a row shows the median, which its ratios use, and the
/// spread.
#[derive(Debug, Clone, Copy)]
struct Rate {
    median: f64,
    lo: f64,
    hi: f64,
}

impl Rate {
    /// [`RATE_RUNS`] runs of `run`, one after the other.
    async fn of<F: std::future::Future<Output = f64>>(mut run: impl FnMut() -> F) -> Rate {
        let mut rates = Vec::with_capacity(RATE_RUNS);
        for _ in 0..RATE_RUNS {
            rates.push(run().await);
        }
        rates.sort_by(f64::total_cmp);
        Rate {
            median: rates[RATE_RUNS / 2],
            lo: rates[0],
            hi: rates[RATE_RUNS - 1],
        }
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.0} plans/s (median of {RATE_RUNS}, {:.0}–{:.0})",
            self.median, self.lo, self.hi
        )
    }
}
/// Each replica's `max_concurrency` in the fan-out: less than the work, so
/// replicas split it (each claims its free capacity, from its own offset)
/// instead of all claiming every key.
const FANOUT_CAPACITY: usize = 2_500;
const DAY: Duration = Duration::from_secs(86_400);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Backend {
    Memory,
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

fn pg_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Fresh, empty stores for one measurement: `n` handles on one database
/// (separate connections for SQLite and PostgreSQL, as replicas have).
struct Stores {
    handles: Vec<Arc<dyn ExecutionAudit>>,
    _dir: Option<tempfile::TempDir>,
    /// The PostgreSQL schema the measurement created, dropped with it.
    schema: Option<String>,
}

impl Drop for Stores {
    /// A benchmark leaves nothing behind in the user's database. `psql`
    /// is there wherever the ceiling's `pgbench` is; a failed drop is
    /// reported, not fatal.
    fn drop(&mut self) {
        let Some(schema) = &self.schema else { return };
        let dropped = Command::new("psql")
            .args(["-X", "-q", "-d", &pg_url(), "-c"])
            .arg(format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .status();
        if !dropped.is_ok_and(|s| s.success()) {
            eprintln!("note: could not drop the benchmark's schema {schema}");
        }
    }
}

async fn stores(backend: Backend, n: usize) -> Stores {
    match backend {
        Backend::Memory => {
            let store: Arc<dyn ExecutionAudit> = Arc::new(MemoryLeaseStore::new());
            Stores {
                handles: vec![store; n],
                _dir: None,
                schema: None,
            }
        }
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join("bench.db");
            let mut handles: Vec<Arc<dyn ExecutionAudit>> = Vec::new();
            for _ in 0..n {
                handles.push(Arc::new(
                    SqliteLeaseStore::open(&path).await.expect("sqlite"),
                ));
            }
            Stores {
                handles,
                _dir: Some(dir),
                schema: None,
            }
        }
        Backend::Postgres => {
            let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
            let mut handles: Vec<Arc<dyn ExecutionAudit>> = Vec::new();
            for i in 0..n {
                let options = PgStoreOptions::new()
                    .schema(&schema)
                    .application_name(format!("bench-{i}"))
                    .max_connections(8);
                let store = PgLeaseStore::connect_with(&pg_url(), &options)
                    .await
                    .expect("postgres: set DATABASE_URL");
                handles.push(Arc::new(store));
            }
            Stores {
                handles,
                _dir: None,
                schema: Some(schema),
            }
        }
    }
}

fn scopes(n: usize) -> Vec<Scope> {
    (0..n)
        .map(|i| Scope::new("tenant", format!("t{i:06}")))
        .collect()
}

fn noop_job(name: &str, scopes: Vec<Scope>) -> JobSpec {
    JobSpec::new(name, Scopes::fixed(scopes), |_ctx: RunContext| async {
        Ok(JobOutput::default())
    })
    .cadence(DAY)
}

/// 1. fan-out: plans/s until all 10,000 due scopes are SUCCESS.
async fn fanout(backend: Backend, replicas: usize) -> f64 {
    fanout_of(backend, replicas, FANOUT_SCOPES).await
}

/// Fan-out of `n` due scopes over `replicas`: plans/s until all are
/// SUCCESS.
async fn fanout_of(backend: Backend, replicas: usize, n: usize) -> f64 {
    let stores = stores(backend, replicas).await;
    let managers: Vec<Manager> = stores
        .handles
        .iter()
        .enumerate()
        .map(|(i, store)| {
            let m = Manager::new(
                store.clone(),
                ManagerOptions {
                    runner_id: format!("replica-{i}"),
                    max_concurrency: FANOUT_CAPACITY,
                    ..Default::default()
                },
            )
            .expect("valid manager options");
            m.register(noop_job("fanout", scopes(n))).unwrap();
            m
        })
        .collect();
    let started = Instant::now();
    let mut done = 0;
    // Each replica ticks until it finds nothing more to claim.
    while done < n {
        let reports = futures::future::join_all(managers.iter().map(Manager::run_once)).await;
        let succeeded: u64 = reports.iter().map(|r| r.succeeded).sum();
        done += succeeded as usize;
        if succeeded == 0 {
            break;
        }
    }
    let elapsed = started.elapsed();
    assert_eq!(done, n, "every scope ran once");
    if n <= FANOUT_SCOPES {
        // Read back only where that is cheap: a million rows would cost
        // the benchmark more memory than the replicas.
        let filter = ExecutionFilter {
            job_name: Some("fanout".into()),
            status: Some(Status::Success),
            ..Default::default()
        };
        let rows = stores.handles[0].list_executions(&filter).await.unwrap();
        assert_eq!(rows.len(), n, "every scope ran once, SUCCESS");
    }
    n as f64 / elapsed.as_secs_f64()
}

/// 2. seed path: one plan per claim and per finish, sequential, with a
///    store-time read before each, through the same store.
async fn seed_path(backend: Backend, plans: usize) -> f64 {
    let stores = stores(backend, 1).await;
    let store = &stores.handles[0];
    let started = Instant::now();
    for scope in scopes(plans) {
        let now = store.now().await.unwrap();
        let key = [PlanKey {
            scope,
            plan_time: scheduler_core::plan::floor(now, DAY),
        }];
        let outcome = store
            .claim(&ClaimRequest {
                finishing: &[],
                steering: scheduler_core::model::Steering::NONE,
                job_name: "seed",
                runner_id: "seed",
                max_attempts: 3,
                stale_timeout: Duration::from_secs(120),
                allow_stale_reentry: false,
                keys: &key,
            })
            .await
            .unwrap();
        let lease = outcome[0].lease().expect("fresh key").clone();
        store.now().await.unwrap();
        let finish = Finish::success(Duration::ZERO, 0, Default::default());
        store.finish(&lease, &finish).await.unwrap();
    }
    plans as f64 / started.elapsed().as_secs_f64()
}

/// 3. ceiling: `benches/ceiling/pg-ceiling.sh` (or `$PG_CEILING`), parsed
///    into `(shape, clients) -> plans/s`; empty when it cannot run.
fn ceiling(seconds: u32) -> BTreeMap<(String, u32), f64> {
    let script = std::env::var("PG_CEILING")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ceiling/pg-ceiling.sh")
        });
    let out = Command::new("bash")
        .arg(&script)
        .arg(seconds.to_string())
        .env("DATABASE_URL", pg_url())
        .output();
    let mut figures = BTreeMap::new();
    match out {
        Ok(out) if out.status.success() => {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                // ceiling <shape> clients=<c> plans_per_s=<n>
                let parts: Vec<&str> = line.split_whitespace().collect();
                if let [_, shape, clients, rate] = parts[..] {
                    let c = clients.trim_start_matches("clients=").parse().unwrap_or(0);
                    let r = rate
                        .trim_start_matches("plans_per_s=")
                        .parse()
                        .unwrap_or(0.0);
                    figures.insert((shape.to_owned(), c), r);
                }
            }
        }
        Ok(out) => eprintln!(
            "pg-ceiling.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => eprintln!("pg-ceiling.sh could not run ({}): {e}", script.display()),
    }
    figures
}

/// Store calls a tick makes once per manager, whatever its jobs: the
/// store-time read, the read of the stored schedules, the read of the
/// jobs' controls and, at most once per refresh interval, the replica's
/// announcement to the registry. The idle-tick figure leaves them out, so
/// it stays a count per job even when a refresh falls into the measured
/// tick.
const PER_MANAGER_CALLS: [&str; 4] = ["now", "schedules", "controls", "announce"];

/// 5. idle tick: store calls per job when nothing is due, 10,000 scopes.
async fn idle_tick(backend: Backend) -> f64 {
    let stores = stores(backend, 1).await;
    let counting = Arc::new(CountingStore::new(stores.handles[0].clone()));
    let manager = capped_manager(counting.clone(), FANOUT_SCOPES);
    manager
        .register(noop_job("idle", scopes(FANOUT_SCOPES)))
        .unwrap();
    manager.run_once().await;
    counting.take();
    manager.run_once().await;
    calls_per_job(&counting.take())
}

/// Store calls per job of one manager's tick (`calls` as
/// [`CountingStore::take`] counted them, one job), without
/// [`PER_MANAGER_CALLS`].
fn calls_per_job(calls: &BTreeMap<&'static str, u64>) -> f64 {
    calls
        .iter()
        .filter(|(method, _)| !PER_MANAGER_CALLS.contains(method))
        .map(|(_, n)| *n as f64)
        .sum()
}

/// 6. memory: a child process runs 100,000 scopes on SQLite; peak RSS in MiB.
fn memory_in_child() -> Option<f64> {
    let exe = std::env::current_exe().ok()?;
    let out = Command::new(exe).arg("memory-child").output().ok()?;
    if !out.status.success() {
        eprintln!(
            "memory child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

async fn memory_child() {
    const SCOPES: usize = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ExecutionAudit> = Arc::new(
        SqliteLeaseStore::open(dir.path().join("m.db"))
            .await
            .unwrap(),
    );
    let manager = capped_manager(store, 1_000);
    manager
        .register(noop_job("memory", scopes(SCOPES)))
        .unwrap();
    // Run the day's bucket for every scope, then tick idle.
    while manager.run_once().await.succeeded > 0 {}
    for _ in 0..5 {
        manager.run_once().await;
    }
    println!("{:.1}", peak_rss_mib());
}

/// A manager over `store` with the default options but `max_concurrency`.
fn capped_manager(store: Arc<dyn scheduler_core::LeaseStore>, max_concurrency: usize) -> Manager {
    Manager::new(
        store,
        ManagerOptions {
            max_concurrency,
            ..Default::default()
        },
    )
    .expect("valid manager options")
}

/// This process's peak resident set size (`VmHWM`), in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hwm_kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    hwm_kib / 1024.0
}

fn row(
    table: &mut Vec<[String; 4]>,
    what: &str,
    figure: String,
    vs_seed: String,
    vs_ceiling: String,
) {
    table.push([what.to_owned(), figure, vs_seed, vs_ceiling]);
}

/// How long each dispatch-latency run lasts.
fn dispatch_run(quick: bool) -> Duration {
    Duration::from_secs(if quick { 5 } else { 10 })
}

async fn all(quick: bool) {
    let backends = [Backend::Memory, Backend::Sqlite, Backend::Postgres];
    let seed_plans = |b: Backend| match (b, quick) {
        (Backend::Postgres, _) => 2_000,
        (_, true) => 2_000,
        (_, false) => 10_000,
    };
    eprintln!("ceiling: pg-ceiling.sh ...");
    let ceil = ceiling(if quick { 3 } else { 10 });
    let batch4 = ceil.get(&("batch100".to_owned(), 4)).copied();
    let mut table = Vec::new();
    let mut pg_fanout3 = None;
    for backend in backends {
        let name = backend.name();
        eprintln!("{name}: seed path, {RATE_RUNS} runs ...");
        let seed = Rate::of(|| seed_path(backend, seed_plans(backend))).await;
        for replicas in [1, 3] {
            eprintln!("{name}: fan-out with {replicas} replica(s), {RATE_RUNS} runs ...");
            let ours = Rate::of(|| fanout(backend, replicas)).await;
            if (backend, replicas) == (Backend::Postgres, 3) {
                pg_fanout3 = Some(ours.median);
            }
            let vs_ceiling = match (backend, batch4) {
                (Backend::Postgres, Some(c)) => format!("{:.2}x batch100@4", ours.median / c),
                _ => "-".to_owned(),
            };
            row(
                &mut table,
                &format!("{name} fan-out 10k scopes, {replicas} replica(s)"),
                ours.to_string(),
                format!("{:.2}x", ours.median / seed.median),
                vs_ceiling,
            );
        }
        row(
            &mut table,
            &format!("{name} seed path (1 plan/stmt)"),
            seed.to_string(),
            "1.0x".into(),
            "-".into(),
        );
        eprintln!("{name}: idle tick ...");
        let idle = idle_tick(backend).await;
        row(
            &mut table,
            &format!("{name} idle tick, 10k scopes"),
            format!("{idle} store calls/job"),
            "-".into(),
            "-".into(),
        );
    }
    table.extend(dispatch::rows(&backends, dispatch_run(quick)).await);
    for ((shape, clients), rate) in &ceil {
        row(
            &mut table,
            &format!("ceiling {shape}, {clients} client(s)"),
            format!("{rate:.0} plans/s"),
            "-".into(),
            "-".into(),
        );
    }
    eprintln!("memory: 100,000 scopes in a child process ...");
    match memory_in_child() {
        Some(mib) => row(
            &mut table,
            "peak RSS, 100k scopes on SQLite, ticking idle",
            format!("{mib:.1} MiB"),
            "-".into(),
            "-".into(),
        ),
        None => row(
            &mut table,
            "peak RSS, 100k scopes",
            "failed".into(),
            "-".into(),
            "-".into(),
        ),
    }
    million::rows(&mut table, quick, pg_fanout3).await;
    print_table(&table);
}

/// The targets of the performance issue (issue 18) beside the rows they
/// judge, matched by the start of a row's label; a row without one shows
/// "-". Kept here, beside the table, so that the README's copy of a run
/// carries them.
const TARGETS: [(&str, &str); 10] = [
    ("memory fan-out 10k", ">= 1x seed path and >= 500k plans/s"),
    ("postgres fan-out 10k", ">= 0.9x batch100@4"),
    ("postgres dispatch latency", "p99 <= 20 ms on every run"),
    ("sqlite dispatch latency", "p99 <= 10 ms on every run"),
    ("memory idle tick", "2 store calls/job"),
    ("sqlite idle tick", "2 store calls/job"),
    ("postgres idle tick", "2 store calls/job"),
    ("peak RSS, 1000k", "< 1024 MiB"),
    ("idle tick, 1000k", "2 store calls/job"),
    ("postgres fan-out 1000k", "~1x the 10k fan-out"),
];

fn target(what: &str) -> &'static str {
    TARGETS
        .iter()
        .find(|(prefix, _)| what.starts_with(prefix))
        .map_or("-", |(_, target)| target)
}

fn print_table(rows: &[[String; 4]]) {
    let header = [
        "benchmark",
        "figure",
        "ours / seed path",
        "ours / ceiling",
        "target",
    ];
    let rows: Vec<[&str; 5]> = rows
        .iter()
        .map(|r| [&*r[0], &*r[1], &*r[2], &*r[3], target(&r[0])])
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str; 5]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!(" {cell}{} ", " ".repeat(w - cell.chars().count())))
            .collect();
        println!("|{}|", padded.join("|"));
    };
    line(&header);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
    println!("|{}|", rule.join("|"));
    for r in &rows {
        line(r);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let backend = |i: usize| match args.get(i).map(String::as_str) {
        Some("memory") => Backend::Memory,
        Some("sqlite") => Backend::Sqlite,
        Some("postgres") => Backend::Postgres,
        _ => usage(),
    };
    let number =
        |i: usize, default: usize| args.get(i).and_then(|n| n.parse().ok()).unwrap_or(default);
    match args.first().map(String::as_str) {
        Some("all") => runtime.block_on(all(quick)),
        Some("fanout") => {
            let scopes = number(3, FANOUT_SCOPES);
            let rate = runtime.block_on(fanout_of(backend(1), number(2, 1), scopes));
            println!("{rate:.0} plans/s");
        }
        Some("seed") => {
            let rate = runtime.block_on(seed_path(backend(1), number(2, 2_000)));
            println!("{rate:.0} plans/s");
        }
        Some("idle") => println!(
            "{} store calls/job",
            runtime.block_on(idle_tick(backend(1)))
        ),
        Some("dispatch") => {
            let run_for = Duration::from_secs(number(2, 10) as u64);
            print_table(&runtime.block_on(dispatch::rows(&[backend(1)], run_for)));
        }
        Some("large") => runtime.block_on(large::large(&args[1..])),
        Some("dashboard") => runtime.block_on(dashboard::dashboard(&args[1..])),
        Some("memory-child") => runtime.block_on(memory_child()),
        Some("million") => {
            let mut table = Vec::new();
            runtime.block_on(million::rows(&mut table, quick, None));
            print_table(&table);
        }
        Some("million-child") => runtime.block_on(million::child(number(1, million::SCOPES))),
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: benches all|million [--quick]\n       benches fanout memory|sqlite|postgres [REPLICAS] [SCOPES]\n       benches seed|idle|dispatch memory|sqlite|postgres [N]\n       benches large generate [ROWS] [postgres|sqlite]|measure [postgres|sqlite]|prune [PERCENT]|drop [--partitioned]\n       benches dashboard [postgres|sqlite] [SCOPES] [PLANS]"
    );
    std::process::exit(2);
}
