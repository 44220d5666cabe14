//! The tally of ended FAILED rows (migration 8, `docs/contract.md` §10,
//! "Operator reads"): kept by triggers, so another connection's writes
//! (another process, a hand-written statement) count as the store's own;
//! restored by a rebuild after a write that bypassed them. Each check
//! compares the tally with a count of the table itself.

mod common;

use std::time::Duration;

use rusqlite::Connection;
use scheduler_core::{
    ClaimRequest, ErrorCode, ExecutionAudit, ExecutionFilter, Finish, LeaseStore, PlanKey, Prune,
    Scope, Status,
};
use scheduler_sqlite::SqliteLeaseStore;

/// Per (job, scope) with any: (exhausted, skipped).
type Counts = Vec<(String, String, String, i64, i64)>;

fn rows(conn: &Connection, sql: &str) -> Counts {
    conn.prepare(sql)
        .unwrap()
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Asserts the tally's counting rows equal a count of the table, spelled
/// here as `ScopeSummary::of_rows` classifies a FAILED row; returns them.
fn agrees(conn: &Connection, when: &str) -> Counts {
    let kept = rows(
        conn,
        "SELECT job_name, scope_kind, scope_id, exhausted, skipped FROM sys_cron_failed_tally \
         WHERE exhausted <> 0 OR skipped <> 0 ORDER BY 1, 2, 3",
    );
    let counted = rows(
        conn,
        "SELECT * FROM (SELECT job_name, scope_kind, scope_id, \
             sum(attempt >= max_attempts AND error_code IS NOT 'overlap_skipped' \
                 AND error_code IS NOT 'overlap_canceled') AS e, \
             sum(error_code IN ('overlap_skipped', 'overlap_canceled')) AS s \
         FROM sys_cron_executions WHERE status = 'FAILED' GROUP BY 1, 2, 3) \
         WHERE e <> 0 OR s <> 0 ORDER BY 1, 2, 3",
    );
    assert_eq!(kept, counted, "{when}");
    kept
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tally_follows_every_writer_and_a_rebuild_restores_it() {
    let (_dir, path) = common::temp_db("tally");
    let store = SqliteLeaseStore::open(&path).await.unwrap();
    let conn = Connection::open(&path).unwrap();
    let now = store.now().await.unwrap();
    let keys: Vec<PlanKey> = (1..=5u32)
        .map(|i| PlanKey {
            scope: Scope::new("t", format!("s{}", i % 2)),
            plan_time: now - Duration::from_secs(60) * i,
        })
        .collect();
    let request = |keys, max_attempts| ClaimRequest {
        steering: scheduler_core::model::Steering::NONE,
        job_name: "job",
        runner_id: "r1",
        max_attempts,
        stale_timeout: Duration::from_secs(60),
        allow_stale_reentry: true,
        keys,
        finishing: &[],
    };
    let failure = Finish::failure(
        Duration::ZERO,
        ErrorCode::HandlerError,
        "boom",
        Duration::ZERO,
    );
    // Four exhausted at once (one attempt), one with attempts left.
    for (keys, max) in [(&keys[..4], 1), (&keys[4..], 3)] {
        let outcomes = store.claim(&request(keys, max)).await.unwrap();
        let items: Vec<_> = outcomes
            .iter()
            .map(|o| (o.lease().unwrap(), &failure))
            .collect();
        assert!(store.finish_many(&items).await.iter().all(Result::is_ok));
    }
    assert_eq!(agrees(&conn, "after the store's finishes").len(), 2);
    // Another connection: a skipped row, a row exhausted and one taken out.
    conn.execute_batch(
        "INSERT INTO sys_cron_executions (id, job_name, scope_kind, scope_id, plan_time, \
             status, attempt, max_attempts, lease_token, error_code) \
         VALUES ('x', 'job', 't', 's2', 0, 'FAILED', 1, 3, 'k', 'overlap_skipped'); \
         UPDATE sys_cron_executions SET attempt = 3 WHERE attempt < max_attempts; \
         UPDATE sys_cron_executions SET status = 'SUCCESS' \
             WHERE rowid = (SELECT min(rowid) FROM sys_cron_executions WHERE scope_id = 's1')",
    )
    .unwrap();
    let s1 = |counts: &Counts| counts.iter().find(|r| r.2 == "s1").map(|r| r.3);
    let before = agrees(&conn, "after another writer");
    assert_eq!((before.len(), s1(&before)), (3, Some(2)));
    // An operator's retry of an exhausted row.
    let failed = store
        .list_executions(&ExecutionFilter {
            job_name: Some("job".into()),
            scope: Some(Scope::new("t", "s1")),
            status: Some(Status::Failed),
            ..Default::default()
        })
        .await
        .unwrap();
    store.retry_execution(failed[0].id).await.unwrap();
    assert_eq!(s1(&agrees(&conn, "after an operator's retry")), Some(1));
    // Spoiled, then rebuilt.
    conn.execute_batch("UPDATE sys_cron_failed_tally SET exhausted = exhausted + 7")
        .unwrap();
    store.rebuild_tally().await.unwrap();
    assert_eq!(agrees(&conn, "after a rebuild").len(), 3);
    // A prune's DELETE.
    store
        .prune_finished(&Prune::batch(now + Duration::from_secs(86_400), 2))
        .await
        .unwrap();
    agrees(&conn, "after a prune");
}
