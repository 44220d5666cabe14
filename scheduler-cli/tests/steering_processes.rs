//! `scheduler pause` and `scheduler resume` against real replica
//! processes, on a SQLite file and on PostgreSQL: two processes run a job
//! due every second; once the pause command has returned, no execution of
//! the job starts until the resume; after it, `latest_only` catch-up runs
//! at most the newest plan that came due while paused, never the ones in
//! between.
//!
//! The assertions read the table's store-time instants (`started_at`, the
//! controls' `created_at` and `ended_at`), never how long the test waited,
//! so a slow machine cannot make them pass or fail. The waits only let the
//! job's cadence pass, or poll for a condition. Each run prints how close
//! the last start before the pause came to it, and how soon after the
//! resume the first start came.
//!
//! The replicas are this test binary run again (`current_exe()`), selected
//! by an environment variable, as the SQLite crate's process tests do, so
//! no helper binary has to be built. A replica runs until its standard
//! input closes, then stops cleanly.

mod common;

use std::time::{Duration, Instant};

use common::processes::{
    executions, instant, ms, on_postgres, on_sqlite, replica_options, run_replica, start,
    started_after, stop_replicas, until,
};
use common::{scheduler, stdout_json};
use scheduler_core::plan::Schedule;
use scheduler_core::{CatchUpMode, Execution, JobOutput, JobSpec, Scopes};

/// Set in a replica process: the database URL it runs on.
const REPLICA_OF: &str = "SCHEDULER_STEERING_REPLICA_OF";
/// Set in a replica process: its runner id.
const RUNNER: &str = "SCHEDULER_STEERING_RUNNER";

/// The job the replicas run.
const JOB: &str = "steered";
/// Its cadence: short, so that several plans come due while paused.
const CADENCE: Duration = Duration::from_secs(1);
/// How often a replica ticks at least: well inside the cadence, so that
/// the first tick after the resume usually falls in the bucket of the
/// newest plan that came due while paused, which latest_only then runs.
const TICK: Duration = Duration::from_millis(250);
/// How many replica processes run it.
const REPLICAS: usize = 2;
/// How long the job stays paused: five plans come due meanwhile.
const PAUSED_FOR: Duration = Duration::from_secs(5);
/// How many executions must have run before the pause: the replicas are
/// up and running the job.
const RUNS_BEFORE: usize = 3;

/// A replica process: runs the job on `url` until its stdin closes.
fn replica(url: &str) {
    run_replica(url, replica_options(RUNNER, TICK, 4), |manager| {
        let job = JobSpec::new(JOB, Scopes::global(), |_| async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(JobOutput::rows(1))
        })
        .cadence(CADENCE)
        .catch_up(CatchUpMode::LatestOnly);
        manager.register(job).expect("a valid job");
    });
}

/// Pauses and resumes the job while [`REPLICAS`] processes run it on
/// `url`; `test` is the calling test's name, which the replicas run.
fn pause_and_resume_real_replicas(test: &str, url: &str, store_name: &str) {
    let (replicas, runtime, store) = start(test, url, REPLICAS, REPLICA_OF, RUNNER);

    runtime.block_on(until(
        store.as_ref(),
        JOB,
        "runs before the pause",
        |rows| rows.iter().filter(|r| r.finished_at.is_some()).count() >= RUNS_BEFORE,
    ));
    // Aim the pause at a plan's boundary, where the replicas claim: how
    // long a command takes to reach the store, measured with a read-only
    // one, says when to start it. Whether it lands just before or just
    // after the claim, the assertions below hold.
    let started = Instant::now();
    stdout_json(&scheduler(url, &["controls", "--json"]));
    let latency = started.elapsed();
    let now = runtime.block_on(store.now()).unwrap();
    let boundary = scheduler_core::plan::floor(now, CADENCE) + CADENCE;
    let wait = (boundary - now).unsigned_abs().saturating_sub(latency);
    std::thread::sleep(wait);
    let pause = stdout_json(&scheduler(url, &["pause", JOB, "--note", "test", "--json"]));
    // Store time once the command returned: the pause is stored, so from
    // here on no claim may start the job.
    let returned = runtime.block_on(store.now()).unwrap();
    let paused_at = instant(&pause["created_at"]);
    // Let the cadence pass: plans come due, and none may start.
    std::thread::sleep(PAUSED_FOR);
    let rows = runtime.block_on(executions(store.as_ref(), JOB));
    let during = started_after(&rows, returned);
    assert!(
        during.is_empty(),
        "{store_name}: executions started after the pause returned at {returned}: {during:#?}"
    );
    let last_before = rows
        .iter()
        .filter_map(|r| r.started_at)
        .max()
        .expect("runs before the pause");

    let resume = stdout_json(&scheduler(url, &["resume", JOB, "--json"]));
    let resumed_at = instant(&resume["ended_at"]);
    let rows = runtime.block_on(until(
        store.as_ref(),
        JOB,
        "start after the resume",
        |rows| {
            rows.iter()
                .any(|r| r.started_at.is_some_and(|s| s >= resumed_at))
        },
    ));
    let first_after = rows
        .iter()
        .filter_map(|r| r.started_at)
        .filter(|s| *s >= resumed_at)
        .min()
        .unwrap();

    // Stop the replicas cleanly (their stdin closes) and read their report.
    stop_replicas(replicas, store_name);

    // Nothing started while paused, whatever ran after the resume.
    let rows = runtime.block_on(executions(store.as_ref(), JOB));
    let while_paused: Vec<&Execution> = rows
        .iter()
        .filter(|r| r.started_at.is_some_and(|s| s > returned && s < resumed_at))
        .collect();
    assert!(while_paused.is_empty(), "{store_name}: {while_paused:#?}");
    // latest_only: of the plans that came due while paused, the catch-up
    // after the resume runs at most the newest; those in between never.
    let came_due = Schedule::every(CADENCE).between(
        paused_at,
        resumed_at - time::Duration::microseconds(1),
        usize::MAX,
    );
    assert!(
        came_due.len() >= 3,
        "{store_name}: {} plans came due while paused",
        came_due.len()
    );
    let newest = *came_due.last().unwrap();
    let in_between: Vec<&Execution> = rows
        .iter()
        .filter(|r| r.started_at.is_some_and(|s| s >= resumed_at))
        .filter(|r| came_due.contains(&r.plan_time) && r.plan_time != newest)
        .collect();
    assert!(
        in_between.is_empty(),
        "{store_name}: plans between the pause and the newest missed one ran: {in_between:#?}"
    );
    let first = rows
        .iter()
        .find(|r| r.started_at == Some(first_after))
        .unwrap();
    assert!(
        first.plan_time >= newest,
        "{store_name}: the first run after the resume was an older plan: {first:#?}"
    );
    let caught_up = rows.iter().any(|r| r.plan_time == newest);
    eprintln!(
        "{store_name}: last start before the pause {:.1} ms before the pause command returned \
         ({:.1} ms before the pause was stored); first start {:.1} ms after the resume \
         (plan {}, {} plans came due while paused, the newest {})",
        ms(returned - last_before),
        ms(paused_at - last_before),
        ms(first_after - resumed_at),
        first
            .plan_time
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap(),
        came_due.len(),
        if caught_up {
            "ran"
        } else {
            "was already superseded by a newer plan"
        }
    );
}

#[test]
fn on_sqlite_a_pause_stops_real_replicas_and_resume_catches_up_latest_only() {
    on_sqlite(
        "on_sqlite_a_pause_stops_real_replicas_and_resume_catches_up_latest_only",
        REPLICA_OF,
        replica,
        pause_and_resume_real_replicas,
    );
}

#[test]
fn on_postgres_a_pause_stops_real_replicas_and_resume_catches_up_latest_only() {
    on_postgres(
        "on_postgres_a_pause_stops_real_replicas_and_resume_catches_up_latest_only",
        "steering",
        REPLICA_OF,
        replica,
        pause_and_resume_real_replicas,
    );
}
