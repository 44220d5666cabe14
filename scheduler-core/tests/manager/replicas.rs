//! The replica registry from the manager's side (`docs/contract.md` §7):
//! announced at the first tick, refreshed once per refresh interval and not
//! at every tick, announced again when a job is registered, marked stopped
//! by a clean `run` stop. Store calls are counted with a `CountingStore`;
//! time is tokio's, paused.

use std::sync::Arc;
use std::time::Duration;

use scheduler_core::manager::refresh_interval;
use scheduler_core::store::CountingStore;
use scheduler_core::{
    ExecutionAudit, JobOutput, JobSpec, ManagerOptions, Replica, ReplicaState, Scopes,
};
use scheduler_memory::MemoryLeaseStore;

use crate::common::{manager_with, on_tokio_clock, rows_of, T0};

/// A daily 09:00 job: started at 12:00:30 it has nothing due for hours,
/// so every tick of these tests is idle and the job never runs.
fn digest(name: &str) -> JobSpec {
    JobSpec::new(name, Scopes::global(), |_| async { Ok(JobOutput::rows(1)) })
        .cron("0 9 * * *", "UTC")
}

/// The one replica the store holds.
async fn only_replica(store: &MemoryLeaseStore) -> Replica {
    let mut replicas = store.replicas().await.expect("replicas");
    assert_eq!(replicas.len(), 1, "{replicas:?}");
    replicas.remove(0)
}

/// How many times `method` was called since the last look.
fn calls(counting: &CountingStore, method: &str) -> u64 {
    counting.take().get(method).copied().unwrap_or(0)
}

#[tokio::test(start_paused = true)]
async fn announced_at_start_refreshed_each_interval_not_each_tick_and_stopped_cleanly() {
    let (_, store) = on_tokio_clock(T0);
    let counting = Arc::new(CountingStore::new(store.clone()));
    let tick = Duration::from_secs(1);
    let m = manager_with(
        counting.clone(),
        ManagerOptions {
            runner_id: "r1".into(),
            tick_interval: tick,
            ..Default::default()
        },
    );
    m.register(digest("digest")).unwrap();
    let refresh = refresh_interval(tick);
    assert_eq!(refresh, Duration::from_secs(15), "max(tick_interval, 15 s)");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn({
        let m = m.clone();
        async move {
            m.run(async {
                let _ = stopped.await;
            })
            .await
        }
    });

    // The first tick announces the start, with the job that has not run.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(calls(&counting, "announce"), 1);
    let replica = only_replica(&store).await;
    assert_eq!((replica.started_at, replica.last_seen_at), (T0, T0));
    assert_eq!(replica.info.runner_id, "r1");
    assert_eq!(replica.info.refresh_interval, refresh);
    assert_eq!(replica.info.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(replica.info.pid, std::process::id());
    let jobs: Vec<(&str, &str)> = replica
        .info
        .jobs
        .iter()
        .map(|j| (j.name.as_str(), j.schedule.as_str()))
        .collect();
    assert_eq!(jobs, [("digest", "09:00 every day, UTC")]);
    assert_eq!(replica.state(T0), ReplicaState::Live);

    // 14 more ticks within the interval: none announces.
    tokio::time::sleep(Duration::from_secs(14)).await;
    let seen = counting.take();
    assert!(seen["now"] >= 14, "ticks: {seen:?}");
    assert_eq!(seen.get("announce"), None, "{seen:?}");

    // The tick at 15 s refreshes, and only it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(calls(&counting, "announce"), 1);
    let replica = only_replica(&store).await;
    assert_eq!(
        (replica.started_at, replica.last_seen_at),
        (T0, T0 + refresh)
    );

    // Over the next 29 ticks, one more refresh, at 30 s.
    tokio::time::sleep(Duration::from_secs(29)).await;
    let seen = counting.take();
    assert!(seen["now"] >= 29, "ticks: {seen:?}");
    assert_eq!(seen["announce"], 1, "{seen:?}");
    assert_eq!(only_replica(&store).await.last_seen_at, T0 + 2 * refresh);

    // A clean stop, at 44.5 s, marks the replica stopped.
    stop.send(()).unwrap();
    running.await.unwrap();
    let replica = only_replica(&store).await;
    let stopped_at = T0 + Duration::from_millis(44_500);
    assert_eq!(replica.stopped_at, Some(stopped_at));
    assert_eq!(replica.last_seen_at, stopped_at);
    assert_eq!(replica.started_at, T0);
    assert_eq!(replica.state(stopped_at), ReplicaState::Stopped);
    assert!(rows_of(&store, "digest").is_empty(), "the job never ran");
}

#[tokio::test(start_paused = true)]
async fn a_job_registered_later_is_announced_at_the_next_tick() {
    let (_, store) = on_tokio_clock(T0);
    let counting = Arc::new(CountingStore::new(store.clone()));
    let m = manager_with(
        counting.clone(),
        ManagerOptions {
            runner_id: "r1".into(),
            ..Default::default()
        },
    );
    m.register(digest("first")).unwrap();
    m.run_once().await;
    m.run_once().await;
    assert_eq!(calls(&counting, "announce"), 1, "a start, then nothing due");

    tokio::time::advance(Duration::from_secs(1)).await;
    m.register(digest("second").cadence(Duration::from_secs(3600)))
        .unwrap();
    m.run_once().await;
    assert_eq!(calls(&counting, "announce"), 1);
    let replica = only_replica(&store).await;
    let names: Vec<&str> = replica.info.jobs.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(names, ["first", "second"]);
    assert_eq!(replica.info.jobs[1].schedule, "every hour");
    assert_eq!(
        (replica.started_at, replica.last_seen_at),
        (T0, T0 + Duration::from_secs(1)),
        "a refresh keeps the start"
    );
    m.run_once().await;
    assert_eq!(calls(&counting, "announce"), 0);
}
