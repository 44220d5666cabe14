//! The operator's calls on rows the scheduler itself never writes, but
//! another writer of the same file (an operator's manual repair, an older
//! version, a migration) may leave: NULLs where the scheduler always writes a
//! value. The summary must still equal `ScopeSummary::of_rows`, and an
//! operator retry must still apply `machine::operator_retry` exactly.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{params, Connection};
use scheduler_core::machine::{self, OPERATOR_RETRY_CODE};
use scheduler_core::{
    ClaimRequest, ErrorCode, ExecutionAudit, ExecutionFilter, Finish, LeaseStore, LeaseStoreExt,
    ManualClock, PlanKey, Scope, ScopeSummary, Status, StoreError, TimeControl,
};
use scheduler_sqlite::{SqliteLeaseStore, SqliteStoreOptions};
use time::macros::datetime;
use time::OffsetDateTime;
use uuid::Uuid;

const T0: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);
const STALE: Duration = Duration::from_secs(60);

async fn store_on(path: &Path, clock: &ManualClock) -> SqliteLeaseStore {
    SqliteStoreOptions::new(path)
        .clock(Arc::new(clock.clone()))
        .open()
        .await
        .expect("the store opens")
}

/// Claims `scope` at `T0 - back` minutes for `job`, returning the row id.
async fn claim(store: &SqliteLeaseStore, job: &str, scope: &Scope, back: u32) -> Uuid {
    let keys = [PlanKey {
        scope: scope.clone(),
        plan_time: T0 - Duration::from_secs(60) * back,
    }];
    let request = ClaimRequest {
        finishing: &[],
        steering: scheduler_core::model::Steering::NONE,
        job_name: job,
        runner_id: "r1",
        max_attempts: 3,
        stale_timeout: STALE,
        allow_stale_reentry: false,
        keys: &keys,
    };
    let outcome = store.claim(&request).await.unwrap().remove(0);
    let lease = outcome.lease().cloned().expect("a fresh key is won");
    let failed = Finish::failure(
        Duration::ZERO,
        ErrorCode::HandlerError,
        "boom",
        Duration::from_secs(600),
    );
    if back > 0 {
        store.finish(&lease, &failed).await.unwrap();
    }
    lease.id
}

/// Edits the row `id` by hand, on a connection of its own.
fn edit(path: &Path, id: Uuid, set: &str) {
    let conn = Connection::open(path).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let sql = format!("UPDATE sys_cron_executions SET {set} WHERE id = ?1");
    assert_eq!(conn.execute(&sql, params![id.to_string()]).unwrap(), 1);
}

#[tokio::test]
async fn summaries_of_hand_edited_rows_equal_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("operator.db");
    let clock = ManualClock::new(T0 + Duration::from_secs(1));
    let store = store_on(&path, &clock).await;
    let (a, b) = (Scope::new("tenant", "a"), Scope::new("tenant", "b"));

    // a: FAILED rows with a NULL retry time (due now) and a NULL code, a
    // RUNNING row with no stale_after (never stale), a SUCCESS row without
    // finished_at, and a live lease as the latest row.
    let due_now = claim(&store, "hand", &a, 5).await;
    edit(&path, due_now, "next_retry_at = NULL");
    let no_code = claim(&store, "hand", &a, 4).await;
    edit(&path, no_code, "error_code = NULL, error_msg = NULL");
    let never_stale = claim(&store, "hand", &a, 3).await;
    edit(
        &path,
        never_stale,
        "status = 'RUNNING', stale_after = NULL, finished_at = NULL",
    );
    let unfinished_success = claim(&store, "hand", &a, 2).await;
    edit(
        &path,
        unfinished_success,
        "status = 'SUCCESS', finished_at = NULL, next_retry_at = NULL, \
         error_code = NULL, error_msg = NULL",
    );
    claim(&store, "hand", &a, 0).await;
    // b: only an exhausted row whose code is NULL, and another job's scope
    // that sorts before it.
    let exhausted = claim(&store, "hand", &b, 1).await;
    edit(
        &path,
        exhausted,
        "attempt = 3, next_retry_at = NULL, error_code = NULL",
    );
    claim(&store, "another", &b, 1).await;
    clock.advance(STALE + Duration::from_secs(1));

    let now = store.now().await.unwrap();
    let summaries = store.scope_summaries(Some("hand")).await.unwrap();
    assert_eq!(summaries.len(), 2);
    for summary in &summaries {
        let rows = store
            .list_executions(&ExecutionFilter {
                job_name: Some("hand".into()),
                scope: Some(summary.scope.clone()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(Some(summary), ScopeSummary::of_rows(&rows, now).as_ref());
    }
    let sa = &summaries[0];
    assert_eq!(sa.next_retry_at, Some(now), "a NULL retry time is due now");
    assert_eq!((sa.running, sa.stale, sa.retry_pending), (1, 1, 2));
    assert_eq!(
        sa.last_success_plan_time,
        Some(T0 - Duration::from_secs(120))
    );
    assert_eq!(sa.last_success_finished_at, None);
    assert_eq!(
        (summaries[1].exhausted, summaries[1].next_retry_at),
        (1, None)
    );

    let all = store.scope_summaries(None).await.unwrap();
    let order: Vec<(&str, &str)> = all
        .iter()
        .map(|s| (s.job_name.as_str(), s.scope.id.as_str()))
        .collect();
    assert_eq!(order, [("another", "b"), ("hand", "a"), ("hand", "b")]);
    assert_eq!(&all[1..], &summaries[..]);
}

#[tokio::test]
async fn operator_retry_of_a_hand_edited_row_applies_the_machine() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("operator.db");
    let clock = ManualClock::new(T0 + Duration::from_secs(1));
    let store = store_on(&path, &clock).await;
    let scope = Scope::global();
    let id = claim(&store, "hand", &scope, 1).await;
    edit(
        &path,
        id,
        "attempt = 3, error_code = NULL, error_msg = NULL, next_retry_at = NULL",
    );
    let before = store.get_execution(id).await.unwrap().unwrap();
    clock.advance(Duration::from_secs(5));
    let now = store.now().await.unwrap();
    let repaired = store.retry_execution(id).await.unwrap();
    assert_eq!(repaired, machine::operator_retry(&before, now).unwrap());
    assert_eq!(
        repaired.error_msg.as_deref(),
        Some("operator retry; last error: unknown")
    );
    assert_eq!(repaired.error_code.as_deref(), Some(OPERATOR_RETRY_CODE));
    assert_eq!((repaired.attempt, repaired.max_attempts), (3, 4));
    assert_eq!(store.get_execution(id).await.unwrap().unwrap(), repaired);

    // A second store on the same file (another process) sees the repair,
    // and refuses the row once it is RUNNING again.
    let other = store_on(&path, &clock).await;
    assert_eq!(other.get_execution(id).await.unwrap().unwrap(), repaired);
    edit(&path, id, "status = 'RUNNING', finished_at = NULL");
    let running = other.get_execution(id).await.unwrap().unwrap();
    assert!(matches!(
        other.retry_execution(id).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.get_execution(id).await.unwrap().unwrap(), running);
    assert_eq!(running.status, Status::Running);
}
