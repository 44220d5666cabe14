//! Stored schedules on a real server (`docs/contract.md` §12), what this
//! store proves on its own (the shared behaviour is the conformance
//! suite's): a write takes the job's claim lock and is stamped with the
//! time it got it, not its transaction's start, and a claim queued behind
//! it sees the new version; migration 6 applies to a table the previous
//! release left at version 5.

mod common;

use std::time::Duration;

use scheduler_core::model::{OverlapPolicy, Presence, ScheduleDefinition, Steering};
use scheduler_core::{
    Announcement, ClaimOutcome, ClaimRequest, ExecutionAudit, ExecutionFilter, LeaseStore, PlanKey,
    ReplicaInfo, ScheduleWrite, Scope, StoreError,
};
use scheduler_postgres::{MIGRATIONS_TABLE, SCHEMA_VERSION};
use sqlx_core::query_scalar::query_scalar;
use sqlx_core::raw_sql::raw_sql;
use sqlx_core::sql_str::AssertSqlSafe;
use time::OffsetDateTime;

use common::test_db;

fn definition(every_secs: u64) -> ScheduleDefinition {
    serde_json::from_value(serde_json::json!({
        "kind": "digest",
        "schedule": {"kind": "every", "every_us": every_secs * 1_000_000},
        "arguments": {"to": "ops@example.com"},
    }))
    .unwrap()
}

/// An update waits for a claim of the job in flight, and its version
/// becomes current at a store time after that claim committed (so no plan
/// the claim made under the old version falls in the new one's time); a
/// claim of the old version queued behind the update is Superseded and
/// writes nothing, whether it takes the lock shared or exclusively.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_waits_for_a_claim_in_flight_and_is_stamped_after_it() {
    let Some(db) = test_db().await else { return };
    let (operator, claimer) = (db.store("operator").await, db.store("claimer").await);
    let now = operator.now().await.unwrap();
    let keys = vec![PlanKey {
        scope: Scope::new("tenant", "a"),
        plan_time: now,
    }];
    for (job, overlap) in [
        ("shared", OverlapPolicy::AllowAll),
        ("exclusive", OverlapPolicy::BufferAll),
    ] {
        let created = operator
            .write_schedule(job, &ScheduleWrite::Create(definition(60)))
            .await
            .unwrap()
            .unwrap();
        let mut holder = db.hold_claim_lock(job).await;
        let writing = {
            let operator = operator.clone();
            tokio::spawn(async move {
                let update = ScheduleWrite::Update {
                    version: 1,
                    definition: definition(120),
                };
                operator.write_schedule(job, &update).await
            })
        };
        db.wait_until_blocked("operator").await;
        let claiming = {
            let (claimer, keys) = (claimer.clone(), keys.clone());
            tokio::spawn(async move {
                let request = ClaimRequest {
                    finishing: &[],
                    job_name: job,
                    runner_id: "r1",
                    max_attempts: 3,
                    stale_timeout: Duration::from_secs(60),
                    allow_stale_reentry: false,
                    keys: &keys,
                    steering: Steering {
                        schedule_version: Some(1),
                        ..Steering::scheduled(overlap)
                    },
                };
                claimer.claim(&request).await
            })
        };
        db.wait_until_blocked("claimer").await;
        assert!(
            !writing.is_finished(),
            "{job}: the write waits for the lock"
        );
        let released: OffsetDateTime = query_scalar("SELECT clock_timestamp()")
            .fetch_one(&mut *holder)
            .await
            .unwrap();
        holder.commit().await.unwrap();
        let updated = writing.await.unwrap().unwrap().unwrap();
        assert_eq!(
            (updated.version, updated.created_at),
            (2, created.created_at)
        );
        assert!(
            updated.updated_at > released,
            "{job}: version 2 current at {}, the claim in flight ended after {released}",
            updated.updated_at
        );
        let read = operator.schedules().await.unwrap();
        assert_eq!(read.iter().find(|s| s.name == job), Some(&updated));
        let outcome = claiming.await.unwrap().unwrap();
        assert_eq!(outcome, [ClaimOutcome::Superseded], "{job}");
    }
    let rows = operator
        .list_executions(&ExecutionFilter::default())
        .await
        .unwrap();
    assert!(rows.is_empty(), "superseded claims write nothing: {rows:?}");
    drop((operator, claimer));
    db.drop_schema().await;
}

/// A table the previous release left at version 5 (no stored schedules'
/// table, replicas without kinds, one replica announced) gets version 6:
/// the replica reads as having registered no kind, and stored schedules
/// and kinds are then written and read back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_6_applies_to_a_table_at_version_5() {
    let Some(db) = test_db().await else { return };
    let store = db.store("upgrade").await;
    let s = &db.schema;
    raw_sql(AssertSqlSafe(format!(
        "DROP TABLE \"{s}\".sys_cron_schedules; \
         ALTER TABLE \"{s}\".sys_cron_replicas DROP COLUMN kinds; \
         DELETE FROM \"{s}\".{MIGRATIONS_TABLE} WHERE version = 6; \
         INSERT INTO \"{s}\".sys_cron_replicas (runner_id, host, pid, version, \
             refresh_interval_ms, jobs, started_at, last_seen_at) \
         VALUES ('old', 'h', 1, '0.5', 1000, '[]', now(), now())"
    )))
    .execute(&db.admin)
    .await
    .unwrap();
    let err = store.schedules().await.unwrap_err();
    assert!(matches!(err, StoreError::Backend { .. }), "{err:?}");

    store.migrate().await.unwrap();
    let versions: Vec<i64> = query_scalar(AssertSqlSafe(format!(
        "SELECT version FROM \"{s}\".{MIGRATIONS_TABLE} \
         WHERE table_name = 'sys_cron_executions' ORDER BY version"
    )))
    .fetch_all(&db.admin)
    .await
    .unwrap();
    assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
    let replicas = store.replicas().await.unwrap();
    assert_eq!(replicas.len(), 1);
    assert!(replicas[0].info.kinds.is_empty());

    let created = store
        .write_schedule("daily", &ScheduleWrite::Create(definition(60)))
        .await
        .unwrap();
    assert_eq!(store.schedules().await.unwrap(), Vec::from_iter(created));
    let replica = ReplicaInfo {
        runner_id: "new".into(),
        host: "h".into(),
        pid: 2,
        version: "0.6".into(),
        refresh_interval: Duration::from_secs(1),
        jobs: Vec::new(),
        kinds: vec!["digest".into(), "report".into()],
    };
    store
        .announce(&Announcement {
            replica: replica.clone(),
            presence: Presence::Started,
        })
        .await
        .unwrap();
    let replicas = store.replicas().await.unwrap();
    assert_eq!(replicas[0].info, replica, "{replicas:?}");
    drop(store);
    db.drop_schema().await;
}
