//! Stored schedules (`docs/contract.md` §12): a replica runs the stored
//! schedules of the kinds it registered, follows a change from its next
//! plan, stops at a delete, skips what it cannot run, and never claims
//! under a version that is no longer current.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics_util::debugging::DebuggingRecorder;
use scheduler_core::metrics::STORED_SCHEDULES_SKIPPED_TOTAL;
use scheduler_core::model::{Steering, DEFAULT_BACKFILL_PER_TICK};
use scheduler_core::time::TimeControl;
use scheduler_core::{
    ClaimOutcome, ClaimRequest, ExecutionAudit, JobOutput, LeaseStore, Manager, Operator,
    OperatorError, RunContext, ScheduleDefinition, Scope, Scopes,
};
use serde_json::{json, Value};
use time::macros::datetime;
use time::OffsetDateTime;

use crate::common::{
    counter, global_at, manager, on_manual_clock, recording_job, rows_of, snapshot, with_recorder,
    Ledger, MIN, T0,
};

/// Every run of a kind's handler: (job, plan time, the `label` argument).
type Runs = Arc<Mutex<Vec<(String, OffsetDateTime, Value)>>>;

/// Registers kind `report` on `m`, recording its runs in `runs`.
fn register_report(m: &Manager, runs: &Runs) {
    let runs = runs.clone();
    m.register_kind("report", move |ctx: RunContext| {
        let runs = runs.clone();
        async move {
            let label = ctx.arguments().get("label").cloned().unwrap_or(Value::Null);
            runs.lock()
                .unwrap()
                .push((ctx.job_name().to_owned(), ctx.plan_time(), label));
            Ok(JobOutput::rows(1))
        }
    })
    .unwrap();
}

/// A definition of kind `report` every `cadence` with argument `label`.
fn every(cadence: Duration, label: &str) -> ScheduleDefinition {
    serde_json::from_value(json!({
        "kind": "report",
        "schedule": {"kind": "every", "every_us": cadence.as_micros() as u64},
        "arguments": {"label": label},
    }))
    .unwrap()
}

fn taken(runs: &Runs) -> Vec<(String, OffsetDateTime, Value)> {
    std::mem::take(&mut *runs.lock().unwrap())
}

#[tokio::test]
async fn a_stored_schedule_runs_with_its_arguments_and_follows_a_change_from_its_next_plan() {
    let (clock, store) = on_manual_clock(T0);
    let operator = Operator::new(store.clone());
    let m = manager(&store, "r1");
    let runs = Runs::default();
    register_report(&m, &runs);
    let written = operator
        .create_schedule("digest", &every(MIN, "v1"))
        .await
        .unwrap();
    assert!(written.warnings.is_empty() || written.warnings[0].contains("kind"));
    // Created at 12:00:30: its first plan is 12:01, not the 12:00 that
    // came due before it existed.
    assert_eq!(m.run_once().await.won, 0);
    clock.set(datetime!(2026-03-05 12:01:10 UTC));
    assert_eq!(m.run_once().await.succeeded, 1);
    assert_eq!(
        taken(&runs),
        [(
            "digest".to_owned(),
            datetime!(2026-03-05 12:01 UTC),
            json!("v1")
        )]
    );
    // Changed at 12:01:20 to every 3 minutes: 12:02 is no plan of the new
    // version, 12:03 is, and runs with the new arguments.
    clock.set(datetime!(2026-03-05 12:01:20 UTC));
    operator
        .update_schedule("digest", 1, &every(3 * MIN, "v2"))
        .await
        .unwrap();
    clock.set(datetime!(2026-03-05 12:02:10 UTC));
    assert_eq!(m.run_once().await.won, 0);
    clock.set(datetime!(2026-03-05 12:03:10 UTC));
    assert_eq!(m.run_once().await.succeeded, 1);
    assert_eq!(
        taken(&runs),
        [(
            "digest".to_owned(),
            datetime!(2026-03-05 12:03 UTC),
            json!("v2")
        )]
    );
    // The history stays attached to the name.
    assert_eq!(rows_of(&store, "digest").len(), 2);
    // Deleted: nothing more is planned; the history stays.
    operator.delete_schedule("digest", Some(2)).await.unwrap();
    clock.set(datetime!(2026-03-05 12:06:10 UTC));
    assert_eq!(m.run_once().await, Default::default());
    assert_eq!(rows_of(&store, "digest").len(), 2);
}

#[tokio::test]
async fn a_claim_planned_under_a_version_no_longer_current_claims_nothing() {
    let (_clock, store) = on_manual_clock(T0);
    let operator = Operator::new(store.clone());
    operator
        .create_schedule("digest", &every(MIN, "v1"))
        .await
        .unwrap();
    operator
        .update_schedule("digest", 1, &every(MIN, "v2"))
        .await
        .unwrap();
    let keys = global_at(datetime!(2026-03-05 12:00 UTC));
    let claim = |version| ClaimRequest {
        finishing: &[],
        job_name: "digest",
        runner_id: "r1",
        max_attempts: 3,
        stale_timeout: Duration::from_secs(600),
        allow_stale_reentry: false,
        keys: &keys,
        steering: Steering {
            schedule_version: version,
            ..Steering::NONE
        },
    };
    assert_eq!(
        store.claim(&claim(Some(1))).await.unwrap(),
        [ClaimOutcome::Superseded]
    );
    assert!(rows_of(&store, "digest").is_empty());
    operator.delete_schedule("digest", None).await.unwrap();
    assert_eq!(
        store.claim(&claim(Some(2))).await.unwrap(),
        [ClaimOutcome::Superseded],
        "a deleted schedule's claims claim nothing"
    );
    assert!(store.claim(&claim(None)).await.unwrap()[0]
        .lease()
        .is_some());
}

#[test]
fn a_replica_without_the_kind_skips_the_schedule_once_per_version_and_another_runs_it() {
    let recorder = DebuggingRecorder::new();
    with_recorder(&recorder, async {
        let (clock, store) = on_manual_clock(T0);
        let operator = Operator::new(store.clone());
        operator
            .create_schedule("digest", &every(MIN, "v1"))
            .await
            .unwrap();
        let old = manager(&store, "old-build");
        let new = manager(&store, "new-build");
        let runs = Runs::default();
        register_report(&new, &runs);
        clock.set(datetime!(2026-03-05 12:01:10 UTC));
        assert_eq!(old.run_once().await, Default::default());
        clock.advance(Duration::from_secs(1));
        assert_eq!(old.run_once().await, Default::default());
        assert_eq!(new.run_once().await.succeeded, 1);
        assert_eq!(taken(&runs).len(), 1);
    });
    let skipped = counter(
        &snapshot(&recorder),
        STORED_SCHEDULES_SKIPPED_TOTAL,
        &[("job", "digest"), ("reason", "unknown_kind")],
    );
    assert_eq!(skipped, 1, "counted once per version, not per tick");
}

#[tokio::test]
async fn a_compiled_in_job_keeps_its_name_and_a_stored_one_of_the_same_name_is_refused() {
    let (clock, store) = on_manual_clock(T0);
    let m = manager(&store, "r1");
    let ledger = Ledger::default();
    m.register(recording_job("rollup", Scopes::global(), &ledger))
        .unwrap();
    let runs = Runs::default();
    register_report(&m, &runs);
    assert_eq!(m.run_once().await.succeeded, 1, "and announces it");
    let operator = Operator::new(store.clone());
    let refused = operator
        .create_schedule("rollup", &every(MIN, "x"))
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, OperatorError::Refused(m) if m.contains("compiled-in")),
        "{refused}"
    );
    assert!(
        store.schedules().await.unwrap().is_empty(),
        "nothing written"
    );
    // Written past the operator's check (a replica that was down then):
    // the compiled-in job runs, the stored one does not.
    store
        .write_schedule(
            "rollup",
            &scheduler_core::ScheduleWrite::Create(every(MIN, "x")),
        )
        .await
        .unwrap();
    clock.advance(MIN);
    let report = m.run_once().await;
    assert_eq!(report.succeeded, 1);
    assert_eq!(
        ledger.lock().unwrap().len(),
        2,
        "the compiled-in job's runs"
    );
    assert!(taken(&runs).is_empty(), "the stored one never ran");
}

#[tokio::test]
async fn a_paused_definition_plans_nothing_until_an_update_unpauses_it() {
    let (clock, store) = on_manual_clock(T0);
    let operator = Operator::new(store.clone());
    let m = manager(&store, "r1");
    let runs = Runs::default();
    register_report(&m, &runs);
    let mut paused = every(MIN, "p");
    paused.paused = true;
    operator.create_schedule("digest", &paused).await.unwrap();
    clock.set(datetime!(2026-03-05 12:03:10 UTC));
    assert_eq!(m.run_once().await, Default::default());
    operator
        .update_schedule("digest", 1, &every(MIN, "p"))
        .await
        .unwrap();
    clock.set(datetime!(2026-03-05 12:04:10 UTC));
    assert_eq!(m.run_once().await.succeeded, 1);
    assert_eq!(taken(&runs)[0].1, datetime!(2026-03-05 12:04 UTC));
}

#[tokio::test]
async fn stored_schedules_take_their_scopes_from_a_registered_provider_and_are_announced() {
    let (clock, store) = on_manual_clock(T0);
    let operator = Operator::new(store.clone());
    let m = manager(&store, "r1");
    let runs = Runs::default();
    register_report(&m, &runs);
    m.register_scope_provider("tenants", |_| async {
        Ok(vec![Scope::new("tenant", "a"), Scope::new("tenant", "b")])
    })
    .unwrap();
    let mut def = every(MIN, "t");
    def.scopes = scheduler_core::StoredScopes::Provider("tenants".into());
    def.options.backfill_per_tick = DEFAULT_BACKFILL_PER_TICK;
    operator.create_schedule("per_tenant", &def).await.unwrap();
    clock.set(datetime!(2026-03-05 12:01:10 UTC));
    assert_eq!(m.run_once().await.succeeded, 2);
    let replicas = store.replicas().await.unwrap();
    let announced = &replicas[0].info;
    assert_eq!(announced.kinds, ["report"]);
    let job = announced
        .jobs
        .iter()
        .find(|j| j.name == "per_tenant")
        .expect("the stored schedule it runs is announced");
    assert_eq!(job.stored_version, Some(1));
    assert_eq!(job.schedule, "every minute");
}
