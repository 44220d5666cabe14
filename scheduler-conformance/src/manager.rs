//! Manager-over-store checks: the [`Manager`] driven against a real
//! store, to see how the two meet (a store down when the manager starts,
//! a scope the store can never hold, a control's wake-up). These are **not** store
//! guarantees; they live in this crate because they need each store's own
//! failure modes and limits, and every store's tests run them. The
//! manager's own behaviour is tested in scheduler-core's `tests/`, on the
//! memory store.

use std::sync::Arc;
use std::time::Duration;

use scheduler_core::store::CountingStore;
use scheduler_core::{
    ExecutionAudit, ExecutionFilter, JobOutput, JobSpec, Manager, ManagerOptions, Scope, Scopes,
    Status,
};

use crate::fixtures::{incompressible, rows_of, unique, wait_for, Harness};

/// A job whose scope provider returns one scope that can never be stored
/// (an id far over [`MAX_NAME_BYTES`](scheduler_core::MAX_NAME_BYTES))
/// between two good ones: the manager skips that scope and runs the others
/// in the same tick, on every store, with no error reported for the job.
pub async fn manager_runs_the_storable_scopes_of_a_job(h: &Harness) {
    let job = unique("poison_scope");
    let poison = incompressible(10_000);
    let scopes = Scopes::dynamic(move |_now| {
        let poison = poison.clone();
        async move {
            Ok(vec![
                Scope::new("t", "short-a"),
                Scope::new("t", poison),
                Scope::new("t", "short-b"),
            ])
        }
    });
    let manager =
        Manager::new(h.store.clone(), ManagerOptions::default()).expect("valid manager options");
    manager
        .register(
            JobSpec::new(&job, scopes, |_| async { Ok(JobOutput::rows(1)) })
                .cadence(Duration::from_secs(60)),
        )
        .expect("valid job");
    let report = manager.run_once().await;
    assert_eq!((report.succeeded, report.errors), (2, 0), "{report:?}");
    let rows = rows_of(h, &job).await;
    let mut ids: Vec<&str> = rows.iter().map(|r| r.scope.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["short-a", "short-b"]);
}

/// A manager started while its store is unavailable must keep ticking
/// (backing off, capped), neither exit nor panic, and run its job once the
/// store is back. The caller makes `store` unavailable before the call (a
/// server that is not up, a file another program keeps locked, ...);
/// `end_outage` makes it available again. Not part of
/// [`conformance_tests!`](crate::conformance_tests): how to cause an outage
/// depends on the store.
///
/// The outage ends once the manager has begun at least three ticks against
/// the unavailable store; the job must then run within a minute.
pub async fn manager_rides_out_a_store_down_at_start(
    store: Arc<dyn ExecutionAudit>,
    end_outage: impl std::future::Future<Output = ()>,
) {
    let job = unique("down_at_start");
    let counting = Arc::new(CountingStore::new(store.clone()));
    let manager = Manager::new(
        counting.clone(),
        ManagerOptions {
            tick_interval: Duration::from_millis(50),
            ..Default::default()
        },
    )
    .expect("valid manager options");
    manager
        .register(
            JobSpec::new(&job, Scopes::global(), |_| async { Ok(JobOutput::rows(1)) })
                .cadence(Duration::from_secs(1)),
        )
        .expect("valid job");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        let report = manager
            .run(async {
                let _ = stopped.await;
            })
            .await;
        (manager, report)
    });

    // Every tick begins by reading store time.
    let mut ticks = 0;
    wait_for("three ticks against the unavailable store", || {
        ticks += counting.take().get("now").copied().unwrap_or(0);
        async move { ticks >= 3 }
    })
    .await;
    assert!(
        !running.is_finished(),
        "the manager gave up while the store was down"
    );
    end_outage.await;

    let filter = ExecutionFilter {
        job_name: Some(job.clone()),
        status: Some(Status::Success),
        ..Default::default()
    };
    wait_for("the job to run once the store is back", || {
        let (store, filter) = (store.clone(), filter.clone());
        async move {
            store
                .list_executions(&filter)
                .await
                .is_ok_and(|rows| !rows.is_empty())
        }
    })
    .await;
    stop.send(()).expect("the manager is running");
    let (_manager, report) = running.await.expect("the manager did not panic");
    assert!(report.succeeded >= 1, "{report:?}");
    assert!(report.errors >= 1, "the outage was not seen: {report:?}");
}

/// A running manager on `replica` (its tick interval an hour) wakes at
/// once when a trigger is stored through `operator` (the same store, or
/// another connection to it): the store's
/// [`control_changes`](scheduler_core::LeaseStore::control_changes) must
/// reach it. Returns how long the trigger took from being stored to its
/// run. Real time; a 30 s bound only makes a missing wake-up fail instead
/// of hanging. Not part of [`conformance_tests!`](crate::conformance_tests):
/// which stores can wake a manager, and from where, differs.
pub async fn manager_wakes_at_once_for_a_trigger(
    replica: Arc<dyn ExecutionAudit>,
    operator: &dyn ExecutionAudit,
) -> Duration {
    use scheduler_core::model::{ControlAction, NewControl, Origin};

    let job = unique("wake");
    let manager = Manager::new(
        replica,
        ManagerOptions {
            tick_interval: Duration::from_secs(3600),
            ..ManagerOptions::default()
        },
    )
    .expect("valid manager options");
    let (ran, mut runs) = tokio::sync::mpsc::unbounded_channel();
    manager
        .register(
            JobSpec::new(&job, Scopes::global(), move |_ctx| {
                let ran = ran.clone();
                async move {
                    ran.send(()).expect("the check listens");
                    Ok(JobOutput::rows(0))
                }
            })
            .cadence(Duration::from_secs(3600)),
        )
        .expect("valid job");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn({
        let manager = manager.clone();
        async move { manager.run(async { drop(stopped.await) }).await }
    });
    let bound = Duration::from_secs(30);
    tokio::time::timeout(bound, runs.recv())
        .await
        .expect("the current hour's plan runs at start");
    let asked = std::time::Instant::now();
    operator
        .add_control(&NewControl {
            job_name: job.clone(),
            scope: None,
            note: String::new(),
            action: ControlAction::Trigger,
        })
        .await
        .expect("the trigger is stored");
    tokio::time::timeout(bound, runs.recv())
        .await
        .expect("the trigger runs without waiting for the next tick");
    let took = asked.elapsed();
    stop.send(()).expect("the manager runs");
    running.await.expect("the manager stops cleanly");
    let rows = operator
        .list_executions(&ExecutionFilter {
            job_name: Some(job),
            ..ExecutionFilter::default()
        })
        .await
        .expect("the rows read back");
    assert!(rows.iter().any(|r| r.origin == Origin::Trigger), "{rows:?}");
    took
}
