//! The operator handle over the memory store: what it stores, and every
//! request it refuses before storing anything, and the overview it reads.

use std::sync::Arc;
use std::time::Duration;

use scheduler_conformance::fixtures;
use scheduler_core::model::ControlRead;
use scheduler_core::plan::Schedule;
use scheduler_core::{
    Backfill, ControlAction, ControlState, ErrorCode, Finish, JobSpec, LeaseStore, LeaseStoreExt,
    ManualClock, Operator, OperatorError, PauseExtent, PlanKey, ScheduleDefinition, Scope, Scopes,
    StoreError, Target,
};
use scheduler_memory::MemoryLeaseStore;
use time::macros::datetime;
use time::OffsetDateTime;

const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

/// A store where one live replica runs `rollup` (every 5 minutes, scopes
/// a and b) and `custom` (a custom planner).
async fn setup() -> (Arc<MemoryLeaseStore>, Operator, ManualClock) {
    let (store, operator, clock) = empty_store(NOW);
    announce_r1(&store).await;
    (store, operator, clock)
}

/// A store with nothing in it, at store time `at`.
fn empty_store(at: OffsetDateTime) -> (Arc<MemoryLeaseStore>, Operator, ManualClock) {
    let clock = ManualClock::new(at);
    let store = Arc::new(MemoryLeaseStore::with_clock(Arc::new(clock.clone())));
    (store.clone(), Operator::new(store), clock)
}

/// Replica `r1` starts, running `rollup` and `custom`, at store time.
async fn announce_r1(store: &MemoryLeaseStore) {
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
    fixtures::announce(store, fixtures::replica("r1", jobs)).await;
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

/// Runs `job` in `scope` at each of `plan_times`, to success or (with
/// `ok` false) to a failure with no retry left.
async fn ran(
    store: &MemoryLeaseStore,
    job: &str,
    scope: &Scope,
    plan_times: &[OffsetDateTime],
    ok: bool,
) {
    let keys: Vec<PlanKey> = plan_times
        .iter()
        .map(|&plan_time| PlanKey {
            scope: scope.clone(),
            plan_time,
        })
        .collect();
    for lease in fixtures::claim_keys(store, job, "test", &keys, 1).await {
        let finish = if ok {
            Finish::success(Duration::from_millis(1), 1, Default::default())
        } else {
            Finish::failure(
                Duration::from_millis(1),
                ErrorCode::HandlerError,
                "boom",
                Duration::ZERO,
            )
        };
        store.finish(&lease, &finish).await.unwrap();
    }
}

fn minutes(m: u64) -> Duration {
    Duration::from_secs(60 * m)
}

#[tokio::test]
async fn the_overview_shows_every_kind_of_job_with_its_counts_and_controls() {
    let (store, operator, _) = setup().await;
    let (a, b) = (Scope::new("tenant", "a"), Scope::new("tenant", "b"));
    ran(&store, "rollup", &a, &[NOW - minutes(5)], true).await;
    ran(
        &store,
        "rollup",
        &b,
        &[NOW - minutes(10), NOW - minutes(5)],
        false,
    )
    .await;
    // Rows of a job no replica runs any more.
    ran(&store, "retired", &a, &[NOW - minutes(60)], true).await;
    // A stored schedule whose kind no live replica has registered.
    let nightly: ScheduleDefinition = serde_json::from_value(serde_json::json!({
        "kind": "report",
        "schedule": {"kind": "every", "every_us": 86_400_000_000u64},
    }))
    .unwrap();
    let written = operator.create_schedule("nightly", &nightly).await.unwrap();
    assert_eq!(written.warnings.len(), 1, "{:?}", written.warnings);
    operator
        .pause(
            &Target::job("not_deployed_yet"),
            "ahead of the deploy",
            None,
            false,
        )
        .await
        .unwrap();
    operator
        .pause(&Target::scope("rollup", b.clone()), "", None, false)
        .await
        .unwrap();
    let backfill = operator
        .backfill(
            &Target::scope("rollup", a.clone()),
            &Backfill {
                from: NOW - minutes(60),
                to: NOW,
                confirm_large: false,
            },
            "",
        )
        .await
        .unwrap();

    let overview = operator.overview(None, None).await.unwrap();
    assert_eq!(overview.store_time, NOW);
    assert!(overview.notes.is_empty());
    let names: Vec<&str> = overview.jobs.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(
        names,
        ["custom", "nightly", "not_deployed_yet", "retired", "rollup"]
    );

    let rollup = overview.job("rollup").unwrap();
    assert_eq!(rollup.replicas, ["r1"]);
    assert_eq!(rollup.scopes_with_rows, 2);
    assert_eq!(
        (rollup.source().as_str(), rollup.source_kind()),
        ("code", Some("code"))
    );
    assert_eq!(rollup.schedule(), Some(Schedule::every(minutes(5))));
    assert_eq!(rollup.next_plan_time(NOW), Some(NOW + minutes(5)));
    assert_eq!(
        overview.controls.pause_extent("rollup"),
        Some(PauseExtent::Scopes(1))
    );
    assert!(overview.controls.paused("rollup", &b));
    assert!(!overview.controls.paused("rollup", &a));
    let in_force: Vec<_> = overview.controls.of("rollup").collect();
    assert_eq!(in_force.len(), 2, "the scope's pause and the backfill");
    let progress = in_force
        .iter()
        .find(|c| c.control.id == backfill.control.id)
        .and_then(|c| c.progress)
        .expect("a backfill has progress");
    let (all, done) = progress.instants.expect("rollup's schedule is known");
    assert_eq!((all.count, done.count), (12, 0));

    let custom = overview.job("custom").unwrap();
    assert_eq!(custom.schedule(), None, "a custom planner");
    assert!(custom.schedule_words().is_some());

    let nightly = overview.job("nightly").unwrap();
    assert!(nightly.registration.is_none() && nightly.replicas.is_empty());
    assert_eq!(nightly.with_kind, 0);
    assert_eq!(nightly.source(), "stored v1");
    assert_eq!(nightly.source_kind(), Some("stored"));
    assert_eq!(nightly.schedule(), Some(Schedule::every(minutes(24 * 60))));
    // From its definition: the first day boundary after it was stored.
    assert_eq!(
        nightly.next_plan_time(NOW),
        Some(time::macros::datetime!(2026-03-02 00:00 UTC))
    );

    let retired = overview.job("retired").unwrap();
    assert_eq!(retired.scopes_with_rows, 1);
    assert_eq!((retired.source_kind(), retired.schedule()), (None, None));

    let ahead = overview.job("not_deployed_yet").unwrap();
    assert_eq!((ahead.scopes_with_rows, ahead.source_kind()), (0, None));
    assert_eq!(
        overview.controls.pause_extent("not_deployed_yet"),
        Some(PauseExtent::WholeJob)
    );

    // Per scope: rollup's two and retired's one, with their counts.
    let counts: Vec<(&str, String, u64, u64)> = overview
        .scopes
        .iter()
        .map(|s| {
            (
                s.job_name.as_str(),
                s.scope.to_string(),
                s.exhausted,
                s.running,
            )
        })
        .collect();
    assert_eq!(
        counts,
        [
            ("retired", "tenant/a".to_owned(), 0, 0),
            ("rollup", "tenant/a".to_owned(), 0, 0),
            ("rollup", "tenant/b".to_owned(), 2, 0),
        ]
    );

    // One job only.
    let only = operator.overview(Some("rollup"), None).await.unwrap();
    assert_eq!(only.jobs.len(), 1);
    assert_eq!(only.scopes.len(), 2);
    assert!(only.controls.of("not_deployed_yet").next().is_none());
}

/// A pause of scope a from 11:30 to 11:45 holds back its plans of 11:35
/// and 11:40 (11:30's ran before the pause took it); every other plan
/// time without an execution since the job's first replica started (11:30)
/// is missed.
#[tokio::test]
async fn missed_plans_are_those_without_execution_and_a_pause_holds_some_back() {
    let (store, operator, clock) = empty_store(NOW - minutes(30));
    // The job's first deploy, which no later start of a replica moves.
    announce_r1(&store).await;
    let (a, b) = (Scope::new("tenant", "a"), Scope::new("tenant", "b"));
    let pause = operator
        .pause(&Target::scope("rollup", a.clone()), "", None, false)
        .await
        .unwrap();
    clock.set(NOW - minutes(15));
    operator
        .resume(&Target::scope("rollup", a.clone()), false)
        .await
        .unwrap();
    clock.set(NOW);
    let every = Schedule::every(minutes(5));
    // [11:00, 12:00]: 13 plan times.
    let plans = every.between(NOW - minutes(60), NOW, 100);
    assert_eq!(plans.len(), 13);
    let without = |missing: &[u64]| -> Vec<OffsetDateTime> {
        plans
            .iter()
            .copied()
            .filter(|t| !missing.iter().any(|m| *t == NOW - minutes(*m)))
            .collect()
    };
    ran(&store, "rollup", &a, &without(&[25, 20, 10]), true).await;
    // 11:10 has no row of b either, but the job was not deployed yet.
    ran(&store, "rollup", &b, &without(&[50, 25]), true).await;

    let blind = operator.overview(Some("rollup"), None).await.unwrap();
    assert!(matches!(
        operator
            .missed_plans(&blind, "rollup", &every, Duration::ZERO)
            .await,
        Err(OperatorError::Refused(_))
    ));

    let overview = operator
        .overview(Some("rollup"), Some(minutes(60)))
        .await
        .unwrap();
    assert!(overview.controls.of("rollup").next().is_none(), "resumed");
    let missed = operator
        .missed_plans(&overview, "rollup", &every, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(missed.len(), 2);
    let (of_a, of_b) = (&missed[0], &missed[1]);
    assert_eq!((&of_a.scope, &of_b.scope), (&a, &b));
    assert_eq!(of_a.paused, [NOW - minutes(25), NOW - minutes(20)]);
    assert_eq!(of_a.plans, [NOW - minutes(10)]);
    assert!(of_b.paused.is_empty());
    assert_eq!(
        of_b.plans,
        [NOW - minutes(25)],
        "the pause was of scope a only, and 11:10 came before the first deploy"
    );
    assert_eq!(
        overview.job("rollup").unwrap().first_seen,
        Some(NOW - minutes(30)),
        "the earliest start, not the latest announcement"
    );
    assert!(!of_a.capped && !of_b.capped);
    assert!(overview
        .controls
        .held_back("rollup", &a, pause.control.created_at));
    assert!(!overview.controls.held_back("rollup", &a, NOW - minutes(15)));

    // A delay moves eligibility: plan times in [11:25, 11:40) become
    // eligible inside the pause, and 11:55's is not eligible yet.
    let delayed = operator
        .missed_plans(&overview, "rollup", &every, minutes(5))
        .await
        .unwrap();
    assert_eq!(delayed[0].paused, [NOW - minutes(25)]);
    assert_eq!(delayed[0].plans, [NOW - minutes(20), NOW - minutes(10)]);
}
