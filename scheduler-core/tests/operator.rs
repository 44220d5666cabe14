//! The operator handle over the memory store: what it stores, and every
//! request it refuses before storing anything.

use std::sync::Arc;
use std::time::Duration;

use scheduler_core::model::ControlRead;
use scheduler_core::{
    Announcement, Backfill, ControlAction, ControlState, JobSpec, LeaseStore, ManualClock,
    Operator, OperatorError, Presence, ReplicaInfo, Scope, Scopes, StoreError, Target,
};
use scheduler_memory::MemoryLeaseStore;
use time::macros::datetime;
use time::OffsetDateTime;

const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

/// A store where one live replica runs `rollup` (every 5 minutes, scopes
/// a and b) and `custom` (a custom planner).
async fn setup() -> (Arc<MemoryLeaseStore>, Operator, ManualClock) {
    let clock = ManualClock::new(NOW);
    let store = Arc::new(MemoryLeaseStore::with_clock(Arc::new(clock.clone())));
    let tenants = Scopes::fixed(["a", "b"].map(|t| Scope::new("tenant", t)));
    let noop = |_| async { Ok(scheduler_core::JobOutput::rows(0)) };
    let jobs = vec![
        JobSpec::new("rollup", tenants.clone(), noop)
            .cadence(Duration::from_secs(300))
            .registration(),
        JobSpec::new("custom", tenants, noop)
            .planner(|_, now, _| vec![now])
            .registration(),
    ];
    store
        .announce(&Announcement {
            replica: ReplicaInfo {
                runner_id: "r1".into(),
                host: "h".into(),
                pid: 1,
                version: "test".into(),
                refresh_interval: Duration::from_secs(30),
                jobs,
                kinds: Vec::new(),
            },
            presence: Presence::Started,
        })
        .await
        .unwrap();
    (store.clone(), Operator::new(store), clock)
}

fn refused(result: Result<impl std::fmt::Debug, OperatorError>, words: &str) {
    match result {
        Err(OperatorError::Refused(message)) => {
            assert!(message.contains(words), "{message:?} lacks {words:?}")
        }
        other => panic!("expected a refusal mentioning {words:?}, got {other:?}"),
    }
}

async fn stored(store: &MemoryLeaseStore) -> usize {
    store
        .controls(&ControlRead {
            jobs: None,
            ended_since: Some(NOW - Duration::from_secs(86_400)),
        })
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn pause_and_resume_a_job_or_one_scope() {
    let (store, operator, _) = setup().await;
    let job = Target::job("rollup");
    let paused = operator.pause(&job, "deploy", None, false).await.unwrap();
    assert!(paused.warnings.is_empty());
    assert_eq!(paused.control.note, "deploy");
    assert!(paused.control.pauses(NOW));
    assert!(matches!(
        operator.pause(&job, "again", None, false).await,
        Err(OperatorError::Store(StoreError::Conflict(_)))
    ));
    let scope = Target::scope("rollup", Scope::new("tenant", "a"));
    operator.pause(&scope, "", None, false).await.unwrap();
    refused(
        operator
            .resume(&Target::scope("rollup", Scope::new("tenant", "b")), false)
            .await,
        "is paused: resume that",
    );
    let resumed = operator.resume(&job, true).await.unwrap();
    assert_eq!(resumed.state, ControlState::Done);
    assert_eq!(
        resumed.action,
        ControlAction::Pause {
            until: None,
            skip_missed: true
        }
    );
    refused(operator.resume(&job, false).await, "not paused");
    assert_eq!(stored(&store).await, 2);
}

#[tokio::test]
async fn a_pause_ahead_of_a_deploy_is_stored_with_a_warning() {
    let (store, operator, _) = setup().await;
    let steered = operator
        .pause(&Target::job("not_deployed_yet"), "", None, false)
        .await
        .unwrap();
    assert!(steered.warnings[0].contains("no live replica"));
    refused(
        operator
            .pause(&Target::job("rollup"), "", Some(NOW), false)
            .await,
        "not in the future",
    );
    assert_eq!(stored(&store).await, 1);
}

#[tokio::test]
async fn triggers_are_refused_for_unknown_jobs_scopes_and_paused_targets() {
    let (store, operator, clock) = setup().await;
    refused(
        operator.trigger(&Target::job("nope"), "").await,
        "no live replica",
    );
    refused(
        operator
            .trigger(&Target::scope("rollup", Scope::new("tenant", "zz")), "")
            .await,
        "has no scope",
    );
    let a = Target::scope("rollup", Scope::new("tenant", "a"));
    let steered = operator.trigger(&a, "now please").await.unwrap();
    assert_eq!(steered.control.action, ControlAction::Trigger);
    operator
        .pause(&Target::job("rollup"), "", None, false)
        .await
        .unwrap();
    refused(operator.trigger(&a, "").await, "resume it first");
    // A replica silent for more than three refreshes is not live.
    clock.set(NOW + Duration::from_secs(120));
    operator
        .resume(&Target::job("rollup"), false)
        .await
        .unwrap();
    refused(operator.trigger(&a, "").await, "no live replica");
    assert_eq!(stored(&store).await, 2);
}

#[tokio::test]
async fn backfills_are_bounded_past_ranges_of_planned_instants() {
    let (store, operator, _) = setup().await;
    let job = Target::job("rollup");
    let range = |from: OffsetDateTime, to: OffsetDateTime| Backfill {
        from,
        to,
        confirm_large: false,
    };
    let hour_ago = NOW - Duration::from_secs(3600);
    let steered = operator
        .backfill(&job, &range(hour_ago, NOW), "")
        .await
        .unwrap();
    // [11:00, 12:00) every 5 minutes: 12 instants, 12:00 excluded.
    assert_eq!(steered.instants, Some(12));
    assert_eq!(steered.control.cursor, Some(hour_ago));
    refused(
        operator.backfill(&job, &range(NOW, hour_ago), "").await,
        "empty or inverted",
    );
    refused(
        operator
            .backfill(&job, &range(hour_ago, NOW + Duration::from_secs(60)), "")
            .await,
        "after store time",
    );
    refused(
        operator
            .backfill(
                &job,
                &range(
                    hour_ago + Duration::from_secs(1),
                    hour_ago + Duration::from_secs(2),
                ),
                "",
            )
            .await,
        "no planned instant",
    );
    refused(
        operator
            .backfill(&Target::job("custom"), &range(hour_ago, NOW), "")
            .await,
        "custom planner",
    );
    // A year of 5-minute plans is 105,120 instants: past the limit.
    let year_ago = NOW - Duration::from_secs(365 * 86_400);
    refused(
        operator.backfill(&job, &range(year_ago, NOW), "").await,
        "more than 100000",
    );
    let confirmed = operator
        .backfill(
            &job,
            &Backfill {
                confirm_large: true,
                ..range(year_ago, NOW)
            },
            "",
        )
        .await
        .unwrap();
    assert_eq!(confirmed.instants, Some(105_120));
    assert_eq!(stored(&store).await, 2);
}

#[tokio::test]
async fn cancel_ends_an_active_control_once() {
    let (_, operator, _) = setup().await;
    let trigger = operator
        .trigger(&Target::job("rollup"), "")
        .await
        .unwrap()
        .control;
    let cancelled = operator
        .cancel(trigger.id, Some("by hand".into()))
        .await
        .unwrap();
    assert_eq!(cancelled.state, ControlState::Cancelled);
    assert_eq!(cancelled.reason.as_deref(), Some("by hand"));
    assert!(matches!(
        operator.cancel(trigger.id, None).await,
        Err(OperatorError::Store(StoreError::Conflict(_)))
    ));
    let unknown = uuid::Uuid::now_v7();
    assert!(matches!(
        operator.cancel(unknown, None).await,
        Err(OperatorError::UnknownControl(id)) if id == unknown
    ));
    assert!(operator
        .list(&ControlRead::default())
        .await
        .unwrap()
        .is_empty());
}

/// `Operator::prune` deletes in batches until one finds nothing, and after
/// each batch that deleted rows pauses `nice_ratio` times as long as the
/// batch took: here each batch takes 100 ms (a prune delay, on paused
/// tokio time), so 25 rows in batches of 10 are 3 deleting calls and an
/// empty one, with 3 pauses of 200 ms at a ratio of 2.
#[tokio::test(start_paused = true)]
async fn prune_deletes_in_batches_and_pauses_in_proportion_to_each_batch() {
    use scheduler_core::store::CountingStore;
    use scheduler_core::{Manager, ManagerOptions, TimeControl};

    let clock = ManualClock::new(NOW);
    let memory = Arc::new(MemoryLeaseStore::with_clock(Arc::new(clock.clone())));
    let manager = Manager::new(memory.clone(), ManagerOptions::default()).unwrap();
    let scopes = Scopes::fixed((0..25).map(|i| Scope::new("tenant", format!("t{i}"))));
    manager
        .register(
            JobSpec::new("rollup", scopes, |_| async {
                Ok(scheduler_core::JobOutput::rows(0))
            })
            .cadence(Duration::from_secs(3600)),
        )
        .unwrap();
    assert_eq!(manager.run_once().await.succeeded, 25);
    clock.advance(Duration::from_secs(2 * 86_400));
    let cutoff = NOW + Duration::from_secs(86_400);

    let batch = Duration::from_millis(100);
    let store = Arc::new(CountingStore::new(memory.clone()).with_prune_delay(batch));
    let operator = Operator::new(store.clone());
    refused(operator.prune(cutoff, 0, 1.0).await, "at least 1 row");
    refused(operator.prune(cutoff, 10, -0.5).await, "nice ratio");
    refused(operator.prune(cutoff, 10, f64::NAN).await, "nice ratio");
    assert_eq!(
        store.take().get("prune_finished"),
        None,
        "refused before any call"
    );

    let started = tokio::time::Instant::now();
    let pruned = operator.prune(cutoff, 10, 2.0).await.unwrap();
    assert_eq!(pruned.rows, 25);
    assert_eq!(pruned.calls, 4, "10, 10, 5, then an empty batch ends it");
    assert_eq!(pruned.longest_call, batch);
    assert_eq!(
        pruned.paused,
        batch * 2 * 3,
        "no pause after the empty batch"
    );
    assert_eq!(started.elapsed(), batch * 4 + pruned.paused);
    assert!(memory.executions().is_empty());
    // Nothing left: one empty call, and a ratio of 0 never pauses anyway.
    let again = operator.prune(cutoff, 10, 0.0).await.unwrap();
    assert_eq!(
        (again.rows, again.calls, again.paused),
        (0, 1, Duration::ZERO)
    );
}
