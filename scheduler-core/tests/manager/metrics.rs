//! The manager's metrics, read back through a recording recorder.

use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use scheduler_core::metrics::{
    CLAIMS_TOTAL, DISPATCH_LATENESS_SECONDS, EXECUTIONS_TOTAL, HEARTBEATS_LATE_TOTAL, RUNNING,
    RUN_DURATION_SECONDS, STALE_RUNNING,
};
use scheduler_core::time::TimeControl;
use scheduler_core::{
    BoxError, ClaimOutcome, ClaimRequest, ExecutionAudit, ExecutionFilter, JobOutput, JobSpec,
    LeaseStore, Manager, ManagerOptions, PlanKey, Scopes, Status,
};
use time::macros::datetime;

use crate::common::{
    claim_as, counter, find, global_at, manager, on_manual_clock, panicking_job, snapshot,
    with_recorder, Snapshot, MIN, T0,
};

fn gauge(snap: &Snapshot, name: &str, labels: &[(&str, &str)]) -> f64 {
    match find(snap, name, labels) {
        Some(DebugValue::Gauge(g)) => g.into_inner(),
        other => panic!("{name} {labels:?}: {other:?}"),
    }
}

fn histogram_len(snap: &Snapshot, name: &str, labels: &[(&str, &str)]) -> usize {
    match find(snap, name, labels) {
        Some(DebugValue::Histogram(h)) => h.len(),
        other => panic!("{name} {labels:?}: {other:?}"),
    }
}

#[test]
fn counters_gauges_and_histograms_follow_executions() {
    let recorder = DebuggingRecorder::new();
    with_recorder(&recorder, scenario());
    let snap = snapshot(&recorder);
    let ok = [("job", "ok")];
    assert_eq!(
        counter(&snap, CLAIMS_TOTAL, &[("job", "ok"), ("outcome", "won")]),
        2
    );
    assert_eq!(
        counter(
            &snap,
            EXECUTIONS_TOTAL,
            &[("job", "ok"), ("status", "SUCCESS")]
        ),
        2
    );
    assert_eq!(
        counter(
            &snap,
            EXECUTIONS_TOTAL,
            &[
                ("job", "fails"),
                ("status", "FAILED"),
                ("error_code", "handler_error")
            ]
        ),
        2
    );
    assert_eq!(
        counter(
            &snap,
            EXECUTIONS_TOTAL,
            &[
                ("job", "panics"),
                ("status", "FAILED"),
                ("error_code", "handler_panic")
            ]
        ),
        2
    );
    // The takeover: a dead runner's stale lease swept, then retried and run.
    assert_eq!(gauge(&snap, STALE_RUNNING, &[("job", "takeover")]), 1.0);
    assert_eq!(
        counter(
            &snap,
            CLAIMS_TOTAL,
            &[("job", "takeover"), ("outcome", "retried")]
        ),
        1
    );
    assert_eq!(
        counter(
            &snap,
            EXECUTIONS_TOTAL,
            &[("job", "takeover"), ("status", "SUCCESS")]
        ),
        1
    );
    // A second replica's claim conflicts.
    assert_eq!(
        counter(
            &snap,
            CLAIMS_TOTAL,
            &[("job", "ok"), ("outcome", "conflicted")]
        ),
        1
    );
    assert_eq!(
        gauge(&snap, RUNNING, &ok),
        0.0,
        "nothing runs after run_once"
    );
    assert_eq!(histogram_len(&snap, RUN_DURATION_SECONDS, &ok), 2);
    assert_eq!(histogram_len(&snap, DISPATCH_LATENESS_SECONDS, &ok), 2);
}

async fn scenario() {
    let (clock, store) = on_manual_clock(T0);
    let takeover_plan = datetime!(2026-03-05 12:00 UTC);
    let stale_timeout = Duration::from_secs(600);
    claim_as(
        &store,
        "takeover",
        "dead",
        stale_timeout,
        true,
        &global_at(takeover_plan),
    )
    .await;
    let managers: Vec<Manager> = ["a", "b"]
        .into_iter()
        .map(|runner| {
            let m = manager(&store, runner);
            let ok = |_| async { Ok(JobOutput::rows(1)) };
            m.register(JobSpec::new("ok", Scopes::global(), ok).cadence(MIN))
                .unwrap();
            m.register(
                JobSpec::new("fails", Scopes::global(), |_| async {
                    Err::<JobOutput, BoxError>("nope".into())
                })
                .cadence(MIN),
            )
            .unwrap();
            m.register(panicking_job("panics", "boom")).unwrap();
            m.register(
                JobSpec::new("takeover", Scopes::global(), |_| async {
                    Ok(JobOutput::default())
                })
                .cadence(Duration::from_secs(3600))
                .allow_stale_reentry(true)
                .planner(move |_, _, _| vec![takeover_plan]),
            )
            .unwrap();
            m
        })
        .collect();
    managers[0].run_once().await;
    managers[1].run_once().await; // ok: conflicted (same bucket, unknown to b)
    clock.advance(Duration::from_secs(601));
    // ok, fails, panics: the 12:10 bucket; takeover: swept, then retried.
    managers[0].run_once().await;
}

/// On a current-thread runtime a handler that blocks its thread stops
/// everything, its lease's heartbeats included: nothing can prevent that
/// but the handler (it should use `spawn_blocking`). What the manager must
/// do is notice as soon as it runs again: count and log the late heartbeat
/// round, and settle the lease before writing anything. Here another
/// replica takes the plan over while the thread is blocked; the late round
/// finds the lease lost and the handler's result is not written over the
/// new holder's row.
#[test]
fn heartbeats_starved_by_a_blocking_handler_are_noticed_and_the_lapsed_lease_is_settled() {
    let recorder = DebuggingRecorder::new();
    let (clock, store) = on_manual_clock(T0);
    let stale_timeout = Duration::from_millis(200);
    let report = with_recorder(&recorder, async {
        let m =
            Manager::new(store.clone(), ManagerOptions::default()).expect("valid manager options");
        let thief = store.clone();
        m.register(
            JobSpec::new("blocking", Scopes::global(), move |ctx| {
                let (thief, clock) = (thief.clone(), clock.clone());
                async move {
                    // Another replica finds the lease stale and takes the plan.
                    clock.advance(stale_timeout * 2);
                    let keys = [PlanKey {
                        scope: ctx.scope().clone(),
                        plan_time: ctx.plan_time(),
                    }];
                    let taken = thief
                        .claim(&ClaimRequest {
                            finishing: &[],
                            steering: scheduler_core::model::Steering::NONE,
                            job_name: "blocking",
                            runner_id: "thief",
                            max_attempts: 3,
                            stale_timeout,
                            allow_stale_reentry: true,
                            keys: &keys,
                        })
                        .await?;
                    assert!(matches!(taken[..], [ClaimOutcome::Stolen(_)]));
                    // Blocks the only thread well past stale_timeout: the
                    // very fault under test, not a wait for a race.
                    std::thread::sleep(stale_timeout + Duration::from_millis(100));
                    // The first await after the block lets the runtime
                    // run the heartbeat task whose timer went off meanwhile.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    Ok(JobOutput::rows(1))
                }
            })
            .cadence(Duration::from_secs(60))
            .allow_stale_reentry(true)
            .run_timeout(Duration::from_millis(150))
            .stale_timeout(stale_timeout)
            .heartbeat_interval(Duration::from_millis(50)),
        )
        .unwrap();
        m.run_once().await
    });
    let snap = snapshot(&recorder);
    let job = [("job", "blocking")];
    assert!(
        counter(&snap, HEARTBEATS_LATE_TOTAL, &job) >= 1,
        "{report:?}"
    );
    assert_eq!((report.lease_lost, report.succeeded), (1, 0), "{report:?}");
    let rows =
        futures::executor::block_on(store.list_executions(&ExecutionFilter::default())).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (
            rows[0].status,
            rows[0].runner_id.as_deref(),
            rows[0].attempt
        ),
        (Status::Running, Some("thief"), 2),
        "the new holder's row is untouched"
    );
}
