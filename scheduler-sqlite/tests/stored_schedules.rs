//! Stored schedules on SQLite (`docs/contract.md` §12), what this store
//! proves on its own (the shared behaviour is the conformance suite's): a
//! write wakes the managers of this process through the in-process
//! channel, and a refused one does not; a stored schedule's claim under a
//! version no longer current writes nothing; a definition written by
//! something this version cannot read fails the read, naming the schedule.

mod common;

use std::time::Duration;

use rusqlite::Connection;
use scheduler_core::model::{OverlapPolicy, ScheduleDefinition, Steering};
use scheduler_core::{
    ClaimOutcome, ClaimRequest, ExecutionAudit, ExecutionFilter, LeaseStore, PlanKey,
    ScheduleWrite, Scope, StoreError,
};
use scheduler_sqlite::SqliteLeaseStore;

fn definition(every_secs: u64) -> ScheduleDefinition {
    serde_json::from_value(serde_json::json!({
        "kind": "digest",
        "schedule": {"kind": "every", "every_us": every_secs * 1_000_000},
    }))
    .unwrap()
}

fn request<'a>(keys: &'a [PlanKey], version: Option<i64>) -> ClaimRequest<'a> {
    ClaimRequest {
        finishing: &[],
        job_name: "daily",
        runner_id: "r1",
        max_attempts: 3,
        stale_timeout: Duration::from_secs(60),
        allow_stale_reentry: false,
        keys,
        steering: Steering {
            schedule_version: version,
            ..Steering::scheduled(OverlapPolicy::AllowAll)
        },
    }
}

async fn rows(store: &SqliteLeaseStore) -> usize {
    store
        .list_executions(&ExecutionFilter::default())
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn writes_wake_this_process_and_superseded_claims_write_nothing() {
    let (_dir, path) = common::temp_db("stored.db");
    let store = SqliteLeaseStore::open(&path).await.unwrap();
    let mut changes = store.control_changes().expect("an in-process channel");
    changes.borrow_and_update();

    let created = store
        .write_schedule("daily", &ScheduleWrite::Create(definition(60)))
        .await
        .unwrap()
        .unwrap();
    assert!(changes.has_changed().unwrap(), "a create wakes");
    changes.borrow_and_update();
    assert_eq!(
        store.schedules().await.unwrap(),
        std::slice::from_ref(&created)
    );

    let now = store.now().await.unwrap();
    let keys: Vec<PlanKey> = ["a", "b"]
        .map(|id| PlanKey {
            scope: Scope::new("tenant", id),
            plan_time: now,
        })
        .to_vec();
    let won = store.claim(&request(&keys[..1], Some(1))).await.unwrap();
    assert!(matches!(won[0], ClaimOutcome::Won(_)), "{won:?}");
    assert_eq!(rows(&store).await, 1);

    // Refused: nothing written, nobody woken.
    let stale = ScheduleWrite::Update {
        version: 2,
        definition: definition(120),
    };
    let err = store.write_schedule("daily", &stale).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(ref m) if m.contains("version 1")),
        "{err:?}"
    );
    assert!(
        !changes.has_changed().unwrap(),
        "a refused write wakes nobody"
    );

    let update = ScheduleWrite::Update {
        version: 1,
        definition: definition(120),
    };
    let updated = store
        .write_schedule("daily", &update)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (updated.version, updated.created_at),
        (2, created.created_at)
    );
    assert!(updated.updated_at >= created.updated_at);
    assert!(changes.has_changed().unwrap(), "an update wakes");
    changes.borrow_and_update();
    assert_eq!(store.schedules().await.unwrap(), [updated]);

    // Planned under version 1, claimed after version 2 became current.
    let late = store.claim(&request(&keys, Some(1))).await.unwrap();
    assert_eq!(late, [ClaimOutcome::Superseded, ClaimOutcome::Superseded]);
    assert_eq!(rows(&store).await, 1, "a superseded claim writes nothing");
    // Under the current version the other key is won.
    let current = store.claim(&request(&keys, Some(2))).await.unwrap();
    assert!(matches!(current[1], ClaimOutcome::Won(_)), "{current:?}");

    let deleted = store
        .write_schedule("daily", &ScheduleWrite::Delete { version: Some(2) })
        .await
        .unwrap();
    assert_eq!(deleted, None);
    assert!(changes.has_changed().unwrap(), "a delete wakes");
    assert!(store.schedules().await.unwrap().is_empty());
    let gone = store.claim(&request(&keys, Some(2))).await.unwrap();
    assert_eq!(gone, [ClaimOutcome::Superseded, ClaimOutcome::Superseded]);
    assert_eq!(rows(&store).await, 2, "the history stays");
    // A compiled-in job of the same name is not guarded.
    let compiled = store.claim(&request(&keys, None)).await.unwrap();
    assert!(
        compiled.iter().all(|o| *o == ClaimOutcome::Conflicted),
        "{compiled:?}"
    );
}

#[tokio::test]
async fn an_unreadable_definition_fails_the_read_naming_the_schedule() {
    let (_dir, path) = common::temp_db("unreadable.db");
    let store = SqliteLeaseStore::open(&path).await.unwrap();
    store
        .write_schedule("daily", &ScheduleWrite::Create(definition(60)))
        .await
        .unwrap();
    let db = Connection::open(&path).unwrap();
    // What a newer version might write, a field this one does not know,
    // is ignored: an older replica still runs the schedule.
    db.execute(
        "UPDATE sys_cron_schedules SET definition = json_set(definition, '$.priority', 1)",
        [],
    )
    .unwrap();
    assert_eq!(store.schedules().await.unwrap().len(), 1);
    // A definition without its kind is unreadable.
    db.execute(
        "UPDATE sys_cron_schedules SET definition = json_remove(definition, '$.kind')",
        [],
    )
    .unwrap();
    let err = store.schedules().await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Backend { message, .. }
            if message.contains("\"daily\"") && message.contains("kind")),
        "{err:?}"
    );
}
