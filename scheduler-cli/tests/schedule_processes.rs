//! `scheduler schedule create|update|delete` against real replica
//! processes, on a SQLite file and on PostgreSQL: two processes register
//! the kind `report`; the test creates a stored schedule of it due every
//! second, waits for runs, changes it to every 2 seconds half a second
//! past (a grid that shares no instant with the first), and then deletes
//! it. Asserted from the table's store-time instants: every execution
//! whose plan time is at or after the update's `updated_at` lies on the
//! new grid, every earlier one on the old grid; both replicas ran the new
//! version; no plan ran twice (the replicas print each handler run); no
//! execution started after the delete was done.
//!
//! Each run prints, per replica, the time from the update's `updated_at`
//! to the first claim it made under the new version (its `started_at`):
//! the time until every replica follows a change, which includes the wait
//! for the new grid's first plan (at most its cadence).
//!
//! The waits only let the cadence pass, or poll for a condition. The
//! replicas are this test binary run again (`current_exe()`), selected by
//! an environment variable, as in `steering_processes.rs`; a replica runs
//! until its standard input closes, then stops cleanly.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::processes::{
    executions, instant, ms, on_postgres, on_sqlite, replica_options, run_replica, start,
    started_after, stop_replicas, until, PATIENCE, POLL,
};
use common::stdout_json;
use scheduler_core::plan::Schedule;
use scheduler_core::{Execution, ExecutionAudit, JobOutput, RunContext};
use serde_json::Value;
use time::OffsetDateTime;

/// Set in a replica process: the database URL it runs on.
const REPLICA_OF: &str = "SCHEDULER_SCHEDULE_REPLICA_OF";
/// Set in a replica process: its runner id.
const RUNNER: &str = "SCHEDULER_SCHEDULE_RUNNER";

/// The stored schedule's name.
const NAME: &str = "digest";
/// The kind the replicas register.
const KIND: &str = "report";
/// Its two scopes: a replica holds one run at a time
/// (`max_concurrency: 1`), so that each plan is likely run by both.
const SCOPES: [&str; 2] = ["tenant/a", "tenant/b"];
/// How often a replica ticks at least (it also wakes when a plan is due).
const TICK: Duration = Duration::from_millis(250);
/// How many replica processes run it.
const REPLICAS: usize = 2;
/// The first version's cadence.
const FIRST: Duration = Duration::from_secs(1);
/// The second version's cadence and offset: its instants (x.5 s) are
/// never on the first's grid (whole seconds).
const SECOND: Duration = Duration::from_secs(2);
const SECOND_OFFSET: Duration = Duration::from_millis(500);
/// Executions finished under the first version before the update.
const RUNS_BEFORE: usize = 4;
/// Plan times of the second version run before the delete.
const PLANS_AFTER: usize = 2;
/// How long the schedule stays deleted while the test watches.
const DELETED_FOR: Duration = Duration::from_secs(3);

/// A replica process: registers the kind and runs on `url` until its
/// stdin closes; prints `RAN scope plan` per handler run.
fn replica(url: &str) {
    run_replica(url, replica_options(RUNNER, TICK, 1), |manager| {
        manager
            .register_kind(KIND, |ctx: RunContext| async move {
                println!(
                    "RAN {} {}",
                    ctx.scope(),
                    ctx.plan_time()
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok(JobOutput::rows(1))
            })
            .expect("a valid kind");
    });
}

/// Whether the store's registry shows `n` live replicas with the kind.
async fn replicas_with_kind(store: &dyn ExecutionAudit, n: usize) -> bool {
    let now = store.now().await.unwrap();
    store
        .replicas()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.state(now) == scheduler_core::ReplicaState::Live)
        .filter(|r| r.info.kinds.iter().any(|k| k == KIND))
        .count()
        >= n
}

/// `scheduler ARGS` on `url`, the arguments split at spaces.
fn run(url: &str, args: &str) -> std::process::Output {
    common::scheduler(url, &args.split(' ').collect::<Vec<_>>())
}

/// Whether `t` is an instant of `schedule`.
fn on(schedule: &Schedule, t: OffsetDateTime) -> bool {
    schedule.at_or_after(t) == Some(t)
}

/// Creates, updates and deletes the stored schedule while [`REPLICAS`]
/// processes run on `url`; `test` is the calling test's name.
fn change_a_stored_schedule_under_real_replicas(test: &str, url: &str, store_name: &str) {
    let (replicas, runtime, store) = start(test, url, REPLICAS, REPLICA_OF, RUNNER);
    // Created once both replicas announced the kind: no warning.
    let give_up = Instant::now() + PATIENCE;
    while !runtime.block_on(replicas_with_kind(store.as_ref(), REPLICAS)) {
        assert!(Instant::now() < give_up, "{store_name}: replicas never up");
        std::thread::sleep(POLL);
    }
    let scopes: Vec<String> = SCOPES.iter().map(|s| format!("--scope {s}")).collect();
    let create = format!(
        "schedule create {NAME} --kind {KIND} --every 1s {} --json",
        scopes.join(" ")
    );
    let created = stdout_json(&run(url, &create));
    assert_eq!(created["version"], 1, "{created}");
    assert_eq!(created["warnings"], Value::Array(vec![]), "{created}");

    runtime.block_on(until(store.as_ref(), NAME, "runs of version 1", |rows| {
        rows.iter().filter(|r| r.finished_at.is_some()).count() >= RUNS_BEFORE
    }));
    let updated = stdout_json(&run(
        url,
        &format!("schedule update {NAME} --version 1 --every 2s --offset 500ms --json"),
    ));
    assert_eq!(updated["version"], 2, "{updated}");
    assert_eq!(
        updated["definition"]["scopes"]["fixed"]
            .as_array()
            .map(Vec::len),
        Some(SCOPES.len()),
        "only the cadence changed: {updated}"
    );
    let changed_at = instant(&updated["updated_at"]);
    // A second writer that read version 1 loses, naming the current one.
    let late = run(
        url,
        &format!("schedule update {NAME} --version 1 --every 5s"),
    );
    assert_eq!(late.status.code(), Some(1), "{late:?}");
    assert!(
        common::stderr(&late).contains("at version 2, not 1"),
        "{}",
        common::stderr(&late)
    );

    // Both replicas follow: each makes a claim under the new version.
    let runner_of = |r: &Execution| r.runner_id.clone().unwrap_or_default();
    runtime.block_on(until(
        store.as_ref(),
        NAME,
        "runs of version 2 by every replica",
        |rows| {
            let new: Vec<&Execution> = rows
                .iter()
                .filter(|r| r.plan_time >= changed_at && r.finished_at.is_some())
                .collect();
            new.iter()
                .map(|r| runner_of(r))
                .collect::<BTreeSet<_>>()
                .len()
                == REPLICAS
                && new
                    .iter()
                    .map(|r| r.plan_time)
                    .collect::<BTreeSet<_>>()
                    .len()
                    >= PLANS_AFTER
        },
    ));

    let deleted = stdout_json(&run(
        url,
        &format!("schedule delete {NAME} --version 2 --json"),
    ));
    let deleted_by = instant(&deleted["store_time"]);
    // Let the cadence pass: plans of the deleted schedule would come due.
    std::thread::sleep(DELETED_FOR);

    let mut handler_runs: BTreeMap<String, usize> = BTreeMap::new();
    for stdout in stop_replicas(replicas, store_name) {
        // The first may follow libtest's `test NAME ... ` on its line.
        for run in stdout
            .lines()
            .filter_map(|l| l.split_once("RAN ").map(|(_, r)| r))
        {
            *handler_runs.entry(run.to_owned()).or_default() += 1;
        }
    }

    let rows = runtime.block_on(executions(store.as_ref(), NAME));
    let old = Schedule::every(FIRST);
    let new = Schedule::Every {
        cadence: SECOND,
        offset: SECOND_OFFSET,
    };
    let off_grid: Vec<&Execution> = rows
        .iter()
        .filter(|r| {
            if r.plan_time >= changed_at {
                !on(&new, r.plan_time)
            } else {
                !on(&old, r.plan_time)
            }
        })
        .collect();
    assert!(
        off_grid.is_empty(),
        "{store_name}: plans off the grid of their version (changed at {changed_at}): {off_grid:#?}"
    );
    let twice: Vec<(&String, &usize)> = handler_runs.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "{store_name}: ran twice: {twice:?}");
    assert_eq!(
        handler_runs.len(),
        rows.len(),
        "{store_name}: one handler run per execution: {handler_runs:#?}"
    );
    let after_delete = started_after(&rows, deleted_by);
    assert!(
        after_delete.is_empty(),
        "{store_name}: started after the delete ({deleted_by}): {after_delete:#?}"
    );
    assert!(
        rows.iter()
            .all(|r| r.attempt == 1 && r.finished_at.is_some()),
        "{store_name}: {rows:#?}"
    );

    let mut followed = Vec::new();
    for i in 1..=REPLICAS {
        let runner = format!("replica-{i}");
        let first = rows
            .iter()
            .filter(|r| r.plan_time >= changed_at && runner_of(r) == runner)
            .min_by_key(|r| r.started_at)
            .unwrap_or_else(|| panic!("{store_name}: {runner} never ran version 2"));
        let started = first.started_at.unwrap();
        followed.push(format!(
            "{runner} {:.1} ms (plan +{:.1} ms, started {:.1} ms after its plan)",
            ms(started - changed_at),
            ms(first.plan_time - changed_at),
            ms(started - first.plan_time)
        ));
    }
    let old_runs = rows.iter().filter(|r| r.plan_time < changed_at).count();
    eprintln!(
        "{store_name}: {} executions ({old_runs} of v1 every 1s, {} of v2 every 2s + 500ms); \
         first claim under v2 after its updated_at, per replica: {}; none after the delete",
        rows.len(),
        rows.len() - old_runs,
        followed.join("; ")
    );
}

#[test]
fn on_sqlite_replicas_follow_a_stored_schedule_change_and_stop_at_its_delete() {
    on_sqlite(
        "on_sqlite_replicas_follow_a_stored_schedule_change_and_stop_at_its_delete",
        REPLICA_OF,
        replica,
        change_a_stored_schedule_under_real_replicas,
    );
}

#[test]
fn on_postgres_replicas_follow_a_stored_schedule_change_and_stop_at_its_delete() {
    on_postgres(
        "on_postgres_replicas_follow_a_stored_schedule_change_and_stop_at_its_delete",
        "stored",
        REPLICA_OF,
        replica,
        change_a_stored_schedule_under_real_replicas,
    );
}
