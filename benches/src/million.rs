//! A million scopes (issue 18, part 5): what one job with 1,000,000 scopes
//! costs a replica.
//!
//! - peak RSS of a process whose manager runs every scope's plan on SQLite
//!   (a file), then ticks idle, the store calls per job of its idle tick
//!   and an idle tick's wall time, all from one child process (so the RSS
//!   is the replica's alone);
//! - a PostgreSQL fan-out of every scope's plan over 3 replicas, in plans/s
//!   and as a ratio to the 10,000-scope fan-out's median ([`Rate`]).
//!
//! `--quick` runs them with 100,000 scopes, and says so in the rows.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use scheduler_core::store::CountingStore;
use scheduler_core::ExecutionAudit;
use scheduler_sqlite::SqliteLeaseStore;

use crate::{
    calls_per_job, capped_manager, fanout, fanout_of, noop_job, peak_rss_mib, row, scopes, Backend,
    Rate, RATE_RUNS,
};

/// The scopes of the full run.
pub(crate) const SCOPES: usize = 1_000_000;
/// The scopes of a `--quick` run.
const QUICK_SCOPES: usize = 100_000;
/// The child replica's `max_concurrency`, as the 100,000-scope memory
/// row's: far below the scopes, so the fan-out takes a thousand ticks over
/// all of them.
const CHILD_CAPACITY: usize = 1_000;
/// The idle ticks the child times (their median is the row's figure).
const IDLE_TICKS: usize = 5;

/// Appends the million-scope rows to `table`. `pg_fanout3` is the
/// 10,000-scope PostgreSQL fan-out with 3 replicas when the caller
/// measured it already.
pub(crate) async fn rows(table: &mut Vec<[String; 4]>, quick: bool, pg_fanout3: Option<f64>) {
    let n = if quick { QUICK_SCOPES } else { SCOPES };
    let label = format!("{}k scopes", n / 1_000);
    eprintln!("million: {n} scopes on SQLite in a child process ...");
    match child_figures(n) {
        Some((rss, calls, tick)) => {
            row(
                table,
                &format!("peak RSS, {label} on SQLite, ticking idle"),
                format!("{rss:.1} MiB"),
                "-".into(),
                "-".into(),
            );
            row(
                table,
                &format!("idle tick, {label}: store calls/job"),
                format!("{calls} store calls/job"),
                "-".into(),
                "-".into(),
            );
            row(
                table,
                &format!("wall time of an idle tick, {label}"),
                format!("{tick:.1} ms (median of {IDLE_TICKS})"),
                "-".into(),
                "-".into(),
            );
        }
        None => row(
            table,
            &format!("peak RSS and idle tick, {label}"),
            "failed".into(),
            "-".into(),
            "-".into(),
        ),
    }
    let base = match pg_fanout3 {
        Some(rate) => rate,
        None => {
            eprintln!("million: postgres fan-out, 10k scopes, 3 replicas, {RATE_RUNS} runs ...");
            Rate::of(|| fanout(Backend::Postgres, 3)).await.median
        }
    };
    eprintln!("million: postgres fan-out, {n} scopes, 3 replicas ...");
    let rate = fanout_of(Backend::Postgres, 3, n).await;
    row(
        table,
        &format!("postgres fan-out {label}, 3 replica(s)"),
        format!("{rate:.0} plans/s"),
        "-".into(),
        format!("{:.2}x the 10k median", rate / base),
    );
}

/// Runs [`child`] with `n` scopes: its peak RSS in MiB, its idle tick's
/// store calls per job and an idle tick's median time in ms.
fn child_figures(n: usize) -> Option<(f64, f64, f64)> {
    let exe = std::env::current_exe().ok()?;
    let out = Command::new(exe)
        .args(["million-child", &n.to_string()])
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "million child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut figures = text.split_whitespace().map(str::parse::<f64>);
    match (figures.next(), figures.next(), figures.next()) {
        (Some(Ok(rss)), Some(Ok(calls)), Some(Ok(tick))) => Some((rss, calls, tick)),
        _ => None,
    }
}

/// The child process: one replica with `n` scopes on SQLite runs every
/// scope's plan, ticks idle, and prints its peak RSS (MiB), the store
/// calls per job of its last idle tick and the median wall time of
/// [`IDLE_TICKS`] idle ticks (ms).
pub(crate) async fn child(n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let sqlite: Arc<dyn ExecutionAudit> = Arc::new(
        SqliteLeaseStore::open(dir.path().join("million.db"))
            .await
            .unwrap(),
    );
    let counting = Arc::new(CountingStore::new(sqlite));
    let manager = capped_manager(counting.clone(), CHILD_CAPACITY);
    manager.register(noop_job("million", scopes(n))).unwrap();
    let mut done = 0;
    while done < n {
        let succeeded = manager.run_once().await.succeeded;
        assert!(succeeded > 0, "a tick with work left ran nothing");
        done += succeeded as usize;
    }
    let mut ticks: Vec<Duration> = Vec::new();
    for _ in 0..IDLE_TICKS {
        let started = Instant::now();
        manager.run_once().await;
        ticks.push(started.elapsed());
    }
    ticks.sort();
    let median = ticks[IDLE_TICKS / 2].as_secs_f64() * 1000.0;
    counting.take();
    manager.run_once().await;
    let calls = calls_per_job(&counting.take());
    println!("{:.1} {calls} {median:.1}", peak_rss_mib());
}
