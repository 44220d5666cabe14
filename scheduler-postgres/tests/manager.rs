//! The manager on PostgreSQL: replicas with separate pools racing, store
//! time against the process clock, and recovery from killed connections.
//!
//! Store time is moved with the stores' shared [`TimeOffset`], never by
//! sleeping. Each test first moves store time to the middle of a cadence
//! bucket, so the real seconds a test takes never cross a plan boundary and
//! the expected plans are exact.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scheduler_core::model::MAX_ERROR_MSG_BYTES;
use scheduler_core::plan::floor;
use scheduler_core::{
    CatchUpMode, Execution, ExecutionAudit, ExecutionFilter, JobOutput, JobSpec, LeaseStore,
    Manager, ManagerOptions, RunContext, Scope, Scopes, Status, TickReport, TimeControl,
};
use scheduler_postgres::{PgLeaseStore, TimeOffset};
use sqlx_core::query_scalar::query_scalar;
use sqlx_core::sql_str::AssertSqlSafe;
use time::OffsetDateTime;

use common::{test_db, TestDb};

const CADENCE: Duration = Duration::from_secs(60);

/// How often the handler ran for each (scope, plan time).
type Runs = Arc<Mutex<HashMap<(Scope, OffsetDateTime), u32>>>;

fn scopes(n: usize) -> Vec<Scope> {
    (0..n)
        .map(|i| Scope::new("tenant", format!("t{i:02}")))
        .collect()
}

/// An every-plan job over `scopes` whose handler counts its runs.
fn counting_job(name: &str, scopes: Vec<Scope>, runs: &Runs) -> JobSpec {
    let runs = runs.clone();
    JobSpec::new(name, Scopes::fixed(scopes), move |ctx: RunContext| {
        let runs = runs.clone();
        async move {
            *runs
                .lock()
                .unwrap()
                .entry((ctx.scope().clone(), ctx.plan_time()))
                .or_default() += 1;
            Ok(JobOutput::rows(1))
        }
    })
    .cadence(CADENCE)
    .catch_up(CatchUpMode::EveryPlan)
    .catch_up_window(CADENCE * 30)
    .max_plans_per_tick(5)
}

fn manager(store: &PgLeaseStore, runner: &str) -> Manager {
    Manager::new(
        Arc::new(store.clone()),
        ManagerOptions {
            runner_id: runner.to_owned(),
            tick_interval: Duration::from_secs(1),
            max_concurrency: 200,
            shutdown_grace: Duration::from_secs(1),
        },
    )
    .expect("valid manager options")
}

/// Replicas: stores on pools of their own, named `<name><i>`, sharing one
/// store-time offset.
async fn replicas(db: &TestDb, name: &str, n: usize, offset: &TimeOffset) -> Vec<PgLeaseStore> {
    let mut stores = Vec::new();
    for i in 0..n {
        let store = db.store(&format!("{name}{i}")).await;
        stores.push(store.with_time_offset(offset.clone()));
    }
    stores
}

/// Moves store time to the middle of the next cadence bucket; returns that
/// bucket's plan time.
async fn to_mid_bucket(store: &PgLeaseStore, offset: &TimeOffset) -> OffsetDateTime {
    let now = store.now().await.unwrap();
    let target = floor(now, CADENCE) + CADENCE + CADENCE / 2;
    offset.advance((target - now).try_into().unwrap());
    floor(target, CADENCE)
}

async fn rows_of(store: &PgLeaseStore, job: &str) -> Vec<Execution> {
    store
        .list_executions(&ExecutionFilter {
            job_name: Some(job.to_owned()),
            ..Default::default()
        })
        .await
        .unwrap()
}

/// Every scope has exactly the plans `plans`, each SUCCESS at attempt 1,
/// and the handler ran exactly once for each.
fn assert_each_plan_ran_once(
    rows: &[Execution],
    runs: &Runs,
    scopes: &[Scope],
    plans: &[OffsetDateTime],
) {
    assert_eq!(
        rows.len(),
        scopes.len() * plans.len(),
        "one row per (scope, plan)"
    );
    for row in rows {
        assert_eq!(
            (row.status, row.attempt),
            (Status::Success, 1),
            "{} {}",
            row.scope,
            row.plan_time
        );
    }
    let runs = runs.lock().unwrap();
    assert_eq!(
        runs.len(),
        rows.len(),
        "the handler ran for exactly the stored plans"
    );
    for scope in scopes {
        for plan in plans {
            assert_eq!(
                runs.get(&(scope.clone(), *plan)),
                Some(&1),
                "{scope} at {plan}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_race_and_every_plan_runs_once() {
    let Some(db) = test_db().await else { return };
    let offset = TimeOffset::new();
    let stores = replicas(&db, "replica", 3, &offset).await;
    let scopes = scopes(50);
    let runs = Runs::default();
    let managers: Vec<Manager> = stores
        .iter()
        .enumerate()
        .map(|(i, store)| {
            let m = manager(store, &format!("replica-{i}"));
            m.register(counting_job("fleet", scopes.clone(), &runs))
                .unwrap();
            m
        })
        .collect();

    let first = to_mid_bucket(&stores[0], &offset).await;
    let rounds = 4;
    let mut total = TickReport::default();
    for round in 0..rounds {
        if round > 0 {
            offset.advance(CADENCE);
        }
        let ticks = managers.iter().map(|m| m.run_once());
        for report in futures::future::join_all(ticks).await {
            assert_eq!((report.errors, report.failed), (0, 0), "{report:?}");
            total += report;
        }
    }
    let plans: Vec<OffsetDateTime> = (0..rounds).map(|r| first + CADENCE * r).collect();
    let rows = rows_of(&stores[0], "fleet").await;
    assert_each_plan_ran_once(&rows, &runs, &scopes, &plans);
    assert_eq!((total.won, total.succeeded), (200, 200), "{total:?}");
    let mut by_runner: HashMap<String, usize> = HashMap::new();
    for row in &rows {
        *by_runner
            .entry(row.runner_id.as_deref().unwrap().to_owned())
            .or_default() += 1;
    }
    eprintln!("executions per replica: {by_runner:?}");
    drop((managers, stores));
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_follow_store_time_not_the_process_clock() {
    let Some(db) = test_db().await else { return };
    // Store time runs 5 h ahead of this process's clock: to the store, the
    // process clock is hours off, as a replica's clock with a broken NTP.
    let offset = TimeOffset::new();
    offset.advance(Duration::from_secs(5 * 3600));
    let stores = replicas(&db, "skewed", 2, &offset).await;
    to_mid_bucket(&stores[0], &offset).await;
    let runs = Runs::default();
    let skewed = Manager::new(
        Arc::new(stores[0].clone()),
        ManagerOptions {
            runner_id: "skewed".into(),
            ..Default::default()
        },
    )
    .expect("valid manager options");
    let job = |runs: &Runs| {
        counting_job("clock", vec![Scope::global()], runs).catch_up(CatchUpMode::LatestOnly)
    };
    skewed.register(job(&runs)).unwrap();
    // Mid-bucket (see `to_mid_bucket`), so the tick reads store time in
    // the same bucket as this read.
    let store_now = stores[0].now().await.unwrap();
    let report = skewed.run_once().await;
    assert_eq!(report.succeeded, 1, "{report:?}");

    let process_now = OffsetDateTime::now_utc();
    let rows = rows_of(&stores[0], "clock").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].plan_time,
        floor(store_now, CADENCE),
        "planned on store time"
    );
    let skew = rows[0].plan_time - floor(process_now, CADENCE);
    assert!(
        skew >= time::Duration::hours(5) - time::Duration::minutes(2),
        "{skew}"
    );

    // A second replica on another pool computes the same plan: it conflicts.
    let other = manager(&stores[1], "other");
    other.register(job(&runs)).unwrap();
    let report = other.run_once().await;
    assert_eq!((report.won, report.conflicted), (0, 1), "{report:?}");
    assert_eq!(rows_of(&stores[0], "clock").await.len(), 1);
    drop((skewed, other, stores));
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connections_mid_tick_are_survived_and_missed_plans_run_once() {
    let Some(db) = test_db().await else { return };
    let offset = TimeOffset::new();
    let stores = replicas(&db, "node", 2, &offset).await;
    let scopes = scopes(10);
    let runs = Runs::default();
    let managers: Vec<Manager> = stores
        .iter()
        .enumerate()
        .map(|(i, store)| {
            let m = manager(store, &format!("node-{i}"));
            m.register(counting_job("outage", scopes.clone(), &runs))
                .unwrap();
            m
        })
        .collect();
    let first = to_mid_bucket(&stores[0], &offset).await;
    for report in futures::future::join_all(managers.iter().map(|m| m.run_once())).await {
        assert_eq!(report.errors, 0, "{report:?}");
    }

    // The next plan falls due while node0's writes hang on a table lock;
    // every statement of node0 that waits gets its connection killed.
    offset.advance(CADENCE);
    let mut blocker = db.admin.begin().await.unwrap();
    sqlx_core::raw_sql::raw_sql(AssertSqlSafe(format!(
        "LOCK TABLE {} IN SHARE MODE",
        db.table()
    )))
    .execute(&mut *blocker)
    .await
    .unwrap();
    let tick = tokio::spawn({
        let node0 = managers[0].clone();
        async move { node0.run_once().await }
    });
    // Counts kill rounds: a terminated backend may still show as waiting
    // for a moment, and is then simply terminated again.
    let mut kills = 0;
    while !tick.is_finished() {
        if db.blocked("node0").await {
            db.terminate("node0").await;
            kills += 1;
        } else {
            tokio::task::yield_now().await;
        }
    }
    let outage = tick.await.unwrap();
    blocker.rollback().await.unwrap();
    eprintln!("outage tick: {kills} kill rounds; {outage:?}");
    assert!(
        outage.errors >= 2,
        "the sweep and the claim were both cut off: {outage:?}"
    );
    assert_eq!((outage.won, outage.succeeded), (0, 0), "{outage:?}");
    assert!(
        runs.lock().unwrap().keys().all(|(_, plan)| *plan == first),
        "nothing of the failed claim ran"
    );

    // Same managers, no restart: the missed plan and the next one run once.
    offset.advance(CADENCE);
    let mut recovered = TickReport::default();
    for report in futures::future::join_all(managers.iter().map(|m| m.run_once())).await {
        assert_eq!(report.errors, 0, "{report:?}");
        recovered += report;
    }
    assert_eq!(
        (recovered.won, recovered.succeeded),
        (20, 20),
        "{recovered:?}"
    );
    let plans = [first, first + CADENCE, first + CADENCE * 2];
    assert_each_plan_ran_once(&rows_of(&stores[0], "outage").await, &runs, &scopes, &plans);
    drop((managers, stores));
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_handler_error_text_ends_in_a_failed_row() {
    let Some(db) = test_db().await else { return };
    let store = db.store("hostile").await;
    let text: String = (0..10_000)
        .map(|i| ['é', '語', '🦀'][i % 3])
        .flat_map(|c| [c, '\0'])
        .collect();
    let m = manager(&store, "hostile");
    let message = format!("\0bad input\0: {text}");
    m.register(
        JobSpec::new("hostile", Scopes::global(), move |_ctx| {
            let message = message.clone();
            async move { Err(message.into()) }
        })
        .cadence(CADENCE),
    )
    .unwrap();
    let report = m.run_once().await;
    assert_eq!(
        (report.won, report.failed, report.errors),
        (1, 1, 0),
        "{report:?}"
    );
    let rows = rows_of(&store, "hostile").await;
    let row = &rows[0];
    assert_eq!(
        (row.status, row.error_code.as_deref()),
        (Status::Failed, Some("handler_error"))
    );
    let stored = row.error_msg.as_deref().unwrap();
    assert!(stored.len() <= MAX_ERROR_MSG_BYTES && stored.len() > MAX_ERROR_MSG_BYTES - 4);
    assert!(!stored.contains('\0'));
    let clean = format!("bad input: {text}").replace('\0', "");
    assert!(
        clean.starts_with(stored),
        "a clean prefix of the handler's text"
    );
    let bytes: i32 = query_scalar(AssertSqlSafe(format!(
        "SELECT octet_length(error_msg) FROM {} WHERE id = $1",
        db.table()
    )))
    .bind(row.id)
    .fetch_one(&db.admin)
    .await
    .unwrap();
    assert_eq!(
        bytes as usize,
        stored.len(),
        "stored as valid UTF-8 text, byte for byte"
    );
    drop((m, store));
    db.drop_schema().await;
}

/// A stand-in for a server that is down: a local port that accepts and
/// at once closes every connection until `up` is set, and from then on
/// forwards connections to the real server.
async fn flaky_front(real: std::net::SocketAddr, up: Arc<std::sync::atomic::AtomicBool>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            if !up.load(std::sync::atomic::Ordering::SeqCst) {
                drop(client);
                continue;
            }
            tokio::spawn(async move {
                if let Ok(mut server) = tokio::net::TcpStream::connect(real).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_started_while_the_server_is_down_retries_and_runs_once_it_is_up() {
    let Some(db) = test_db().await else { return };
    let mut url = url::Url::parse(&db.url).unwrap();
    let real = db.server_addr();
    let up = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let port = flaky_front(real, up.clone()).await;
    url.set_ip_host("127.0.0.1".parse().unwrap()).unwrap();
    url.set_port(Some(port)).unwrap();
    // Built without reaching the server; it migrates on its first
    // connection once the server answers.
    let options = db
        .options("lazy", 2)
        .acquire_timeout(Duration::from_millis(500));
    let store = PgLeaseStore::connect_lazy_with(url.as_str(), &options)
        .expect("a well-formed URL needs no server");
    assert!(store.now().await.is_err(), "the server is down");
    scheduler_conformance::manager_rides_out_a_store_down_at_start(Arc::new(store), async move {
        up.store(true, std::sync::atomic::Ordering::SeqCst)
    })
    .await;
    db.drop_schema().await;
}
