//! A transactional job: a per-tenant rollup whose rows are written in the
//! same transaction as the run's SUCCESS, so each window is rolled up
//! exactly once, even when an attempt fails after writing and is retried.
//!
//! `cargo run -p scheduler-sqlite --example transactional_sqlite` (a temporary
//! file, a manual clock: four ticks, one minute apart, in no real time).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use scheduler_core::{
    CatchUpMode, Clock as _, JobOutput, Manager, ManagerOptions, ManualClock, Scope, Scopes,
    TimeControl as _,
};
use scheduler_sqlite::rusqlite::{params, Connection};
use scheduler_sqlite::SqliteStoreOptions;

const WINDOW: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("rollup.db");
    let start = time::macros::datetime!(2026-03-05 12:00:05 UTC);
    let clock = ManualClock::new(start);

    // The application's own tables, in the scheduler's database file: the
    // events to roll up, and the rollups.
    let app = Connection::open(&db)?;
    app.execute_batch(
        "CREATE TABLE events (tenant TEXT NOT NULL, at INTEGER NOT NULL, amount INTEGER NOT NULL);
         CREATE TABLE rollups (tenant TEXT NOT NULL, window_start INTEGER NOT NULL,
                               events INTEGER NOT NULL, total INTEGER NOT NULL,
                               attempt INTEGER NOT NULL,
                               PRIMARY KEY (tenant, window_start));",
    )?;
    let t0 = start.unix_timestamp();
    for (i, tenant) in (0..).zip(["acme", "globex", "acme", "acme", "globex", "globex", "acme"]) {
        // One event every 40 s, from 100 s before the start.
        app.execute(
            "INSERT INTO events (tenant, at, amount) VALUES (?1, ?2, ?3)",
            params![tenant, t0 - 100 + 40 * i, 10 + i],
        )?;
    }
    drop(app);

    let store = Arc::new(
        SqliteStoreOptions::new(&db)
            .clock(Arc::new(clock.clone()))
            .open()
            .await?,
    );
    let manager = Manager::new(store.clone(), ManagerOptions::default())?;
    let tenants = Scopes::fixed(["acme", "globex"].map(|t| Scope::new("tenant", t)));
    // Globex's first attempt fails after writing its rollup: that write is
    // rolled back, and the retry writes it once.
    let flaky = AtomicBool::new(true);
    let job = store.transactional_job("rollup", tenants, move |ctx, tx| {
        let tenant = ctx.scope().id.as_str();
        let end = ctx.plan_time().unix_timestamp();
        let begin = end - WINDOW.as_secs() as i64;
        let (events, total): (i64, i64) = tx.query_row(
            "SELECT count(*), coalesce(sum(amount), 0) FROM events
             WHERE tenant = ?1 AND at >= ?2 AND at < ?3",
            params![tenant, begin, end],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        tx.execute(
            "INSERT INTO rollups (tenant, window_start, events, total, attempt)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![tenant, begin, events, total, ctx.attempt()],
        )?;
        if tenant == "globex" && flaky.swap(false, Ordering::SeqCst) {
            return Err("globex: the first attempt fails after writing its rollup".into());
        }
        Ok(JobOutput::rows(1).with("events", events))
    });
    manager.register(
        job.cadence(WINDOW)
            // Every window is rolled up, so a failed one is retried even
            // once the next one is due.
            .catch_up(CatchUpMode::EveryPlan)
            .catch_up_window(Duration::from_secs(600))
            .max_plans_per_tick(5)
            .retry_backoff(vec![Duration::from_secs(30)]),
    )?;

    for tick in 1..=4 {
        let report = manager.run_once().await;
        println!(
            "tick {tick} at {}: {} succeeded, {} failed, {} retried",
            clock.now().time(),
            report.succeeded,
            report.failed,
            report.retried
        );
        clock.advance(WINDOW);
    }
    drop(manager);
    drop(store);

    println!("rollups (tenant, window start, events, total, attempt):");
    let app = Connection::open(&db)?;
    let mut rollups = app.prepare(
        "SELECT tenant, window_start, events, total, attempt FROM rollups
         ORDER BY window_start, tenant",
    )?;
    let rows = rollups.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, i32>(4)?,
        ))
    })?;
    for row in rows {
        let (tenant, window_start, events, total, attempt) = row?;
        let window = time::OffsetDateTime::from_unix_timestamp(window_start)?.time();
        println!("  {tenant:<7} {window}  {events} events  total {total}  attempt {attempt}");
    }
    Ok(())
}
