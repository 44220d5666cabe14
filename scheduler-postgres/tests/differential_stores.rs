//! The memory, SQLite and PostgreSQL stores side by side: random operation
//! sequences (`scheduler_conformance::differential`) applied to all
//! three in one run, on one shared manual clock, must give identical
//! outcomes, rows, scope summaries and reads. PostgreSQL reads that clock
//! through its client-clock option ([`PgStoreOptions::clock`]), which puts
//! exact, chosen instants in its rows.
//!
//! This runs the client-clock variant of the statements; `differential.rs`
//! still holds the production variant (the server's `now()`) to the pure
//! rules, so neither test makes the other redundant.
//!
//! One schema and one PostgreSQL store serve every case: the tables are
//! emptied and the clock set back before each, and the memory and SQLite
//! stores are made afresh.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
use scheduler_conformance::differential::{self, Op};
use scheduler_core::{
    ClaimOutcome, ClaimRequest, ErrorCode, ExecutionAudit, Finish, LeaseStore, LeaseStoreExt,
    ManualClock, PlanKey, Scope, Status, TimeControl,
};
use scheduler_memory::MemoryLeaseStore;
use scheduler_postgres::{PgLeaseStore, TimeOffset};
use scheduler_sqlite::SqliteStoreOptions;
use sqlx_core::raw_sql::raw_sql;
use sqlx_core::sql_str::AssertSqlSafe;
use time::macros::datetime;
use time::OffsetDateTime;

/// Random sequences per run: enough to meet every operation in many
/// states, few enough that the run takes seconds (each case is a few
/// hundred round trips).
const CASES: u32 = 96;

/// The PostgreSQL side, reused by every case.
struct Postgres {
    db: common::TestDb,
    store: PgLeaseStore,
    clock: ManualClock,
}

impl Postgres {
    /// A migrated store on a fresh schema, on a clock of its own (which
    /// each case shares with its memory and SQLite stores); `None` when no
    /// server is configured (said loudly by `common`).
    async fn new() -> Option<Self> {
        let db = common::test_db().await?;
        let clock = ManualClock::new(differential::START);
        let options = db
            .options("differential_stores", 2)
            .clock(Arc::new(clock.clone()));
        let store = PgLeaseStore::connect_with(&db.url, &options)
            .await
            .expect("connect the store");
        Some(Postgres { db, store, clock })
    }

    /// One case: empty tables (executions, attempts log, replicas,
    /// controls, stored schedules), the
    /// clock back at the start, fresh memory and SQLite stores on it, and
    /// the check.
    async fn run(&self, ops: &[Op]) {
        raw_sql(AssertSqlSafe(format!(
            "TRUNCATE {}, \"{schema}\".sys_cron_execution_attempts, \"{schema}\".sys_cron_replicas, \"{schema}\".sys_cron_controls, \"{schema}\".sys_cron_schedules",
            self.db.table(),
            schema = self.db.schema
        )))
        .execute(self.store.pool())
        .await
        .expect("empty the tables");
        self.clock.set(differential::START);
        let memory = MemoryLeaseStore::with_clock(Arc::new(self.clock.clone()));
        let sqlite = SqliteStoreOptions::memory()
            .clock(Arc::new(self.clock.clone()))
            .open()
            .await
            .expect("open the SQLite store");
        let stores: [(&'static str, Arc<dyn ExecutionAudit>); 3] = [
            ("memory", Arc::new(memory)),
            ("sqlite", Arc::new(sqlite)),
            ("postgres", Arc::new(self.store.clone())),
        ];
        differential::check(ops, &self.clock, &stores).await;
    }

    async fn drop_schema(self) {
        drop(self.store);
        self.db.drop_schema().await;
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// The random search itself: `CASES` sequences, shrunk on failure to the
/// shortest that still makes the stores differ.
#[test]
fn memory_sqlite_and_postgres_agree_on_random_operations() {
    let rt = runtime();
    let Some(pg) = rt.block_on(Postgres::new()) else {
        return;
    };
    // By hand rather than with `proptest!`, so that every case shares one
    // runtime and one PostgreSQL store. A failure is shrunk and saved like
    // the macro's.
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        source_file: Some(file!()),
        // Beside this file, as `proptest!` does for a test outside src/.
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..Config::default()
    });
    let started = Instant::now();
    let result = runner.run(&differential::ops(), |ops| {
        rt.block_on(pg.run(&ops));
        Ok(())
    });
    if let Err(failure) = result {
        // The schema stays for a look; the janitor of a later run drops it.
        panic!("{failure}");
    }
    println!("{CASES} cases in {:?}", started.elapsed());
    rt.block_on(pg.drop_schema());
}

/// Every recorded regression sequence, on the three stores.
#[test]
fn recorded_regressions_agree() {
    let rt = runtime();
    let Some(pg) = rt.block_on(Postgres::new()) else {
        return;
    };
    for (name, ops) in differential::regressions() {
        println!("regression {name}");
        rt.block_on(pg.run(&ops));
    }
    rt.block_on(pg.drop_schema());
}

/// With a client clock, every instant a statement writes or compares is
/// the clock's reading, to the microsecond, far from the server's `now()`;
/// a claim decides both of its statements at one reading; a time offset
/// still adds to it.
#[test]
fn an_injected_clock_is_what_rows_carry() {
    let rt = runtime();
    rt.block_on(async {
        let Some(db) = common::test_db().await else {
            return;
        };
        let at = datetime!(2031-07-04 05:06:07.123456 UTC);
        let clock = ManualClock::new(at);
        let offset = TimeOffset::new();
        let store = PgLeaseStore::connect_with(
            &db.url,
            &db.options("clock", 2).clock(Arc::new(clock.clone())),
        )
        .await
        .expect("connect the store")
        .with_time_offset(offset.clone());
        assert_eq!(store.now().await.unwrap(), at);

        let keys = [0, 1].map(|m| PlanKey {
            scope: Scope::new("tenant", "a"),
            plan_time: datetime!(2031-07-04 05:00 UTC) + Duration::from_secs(60 * m),
        });
        let request = |keys| ClaimRequest {
            finishing: &[],
            steering: scheduler_core::model::Steering::NONE,
            job_name: "clock",
            runner_id: "r1",
            max_attempts: 3,
            stale_timeout: Duration::from_secs(60),
            allow_stale_reentry: false,
            keys,
        };
        let won = store.claim(&request(&keys[..1])).await.unwrap();
        let ClaimOutcome::Won(lease) = &won[0] else {
            panic!("a fresh key is won: {won:?}");
        };
        assert_eq!(
            (lease.started_at, lease.stale_after),
            (at, at + Duration::from_secs(60))
        );
        // Read back as the server stored it, not as the store reports it.
        let stored: (
            OffsetDateTime,
            OffsetDateTime,
            OffsetDateTime,
            OffsetDateTime,
        ) = sqlx_core::query_as::query_as(AssertSqlSafe(format!(
            "SELECT started_at, heartbeat_at, created_at, updated_at FROM {} WHERE id = $1",
            db.table()
        )))
        .bind(lease.id)
        .fetch_one(&db.admin)
        .await
        .unwrap();
        assert_eq!(stored, (at, at, at, at));

        clock.advance(Duration::from_secs(90));
        let failed = Finish::failure(
            Duration::from_millis(5),
            ErrorCode::HandlerError,
            "boom",
            Duration::from_secs(20),
        );
        store.finish(lease, &failed).await.unwrap();
        let row = store.get_execution(lease.id).await.unwrap().unwrap();
        let t1 = at + Duration::from_secs(90);
        assert_eq!(
            (
                row.status,
                row.finished_at,
                row.next_retry_at,
                row.updated_at
            ),
            (
                Status::Failed,
                Some(t1),
                Some(t1 + Duration::from_secs(20)),
                t1
            )
        );

        // Due at exactly t1 + 20 s: one batch retries the FAILED key (the
        // reclaim statement) and wins a fresh one (the insert), both at
        // one instant.
        clock.advance(Duration::from_secs(20));
        let t2 = t1 + Duration::from_secs(20);
        let outcomes = store.claim(&request(&keys)).await.unwrap();
        let started: Vec<(bool, OffsetDateTime)> = outcomes
            .iter()
            .map(|o| {
                (
                    matches!(o, ClaimOutcome::Retried(_)),
                    o.lease().unwrap().started_at,
                )
            })
            .collect();
        assert_eq!(started, [(true, t2), (false, t2)], "{outcomes:?}");

        // The offset adds to the clock, as it adds to the server's now().
        offset.advance(Duration::from_secs(3600));
        assert_eq!(store.now().await.unwrap(), t2 + Duration::from_secs(3600));
        drop(store);
        db.drop_schema().await;
    });
}
