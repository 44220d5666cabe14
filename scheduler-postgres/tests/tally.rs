//! The tally of ended FAILED rows (migration 8, `docs/contract.md` §10,
//! "Operator reads"): kept by triggers on the executions table, so rows
//! written by other writers (the seed's statements, a hand-written UPDATE)
//! count as the store's own; a partition's retention, which deletes no
//! row, subtracts its rows; and a rebuild restores it from the table.
//! Each check compares the tally with a count of the table itself.

mod common;

use std::time::Duration;

use scheduler_core::{
    ClaimRequest, ErrorCode, ExecutionAudit, Finish, LeaseStore, PlanKey, Prune, Scope, TimeControl,
};
use scheduler_postgres::{PartitionInterval, PgLeaseStore, TimeOffset};
use sqlx_core::query_as::query_as;
use sqlx_core::raw_sql::raw_sql;
use sqlx_core::sql_str::AssertSqlSafe;
use time::{OffsetDateTime, Time};

use common::{test_db, TestDb};

const DAY: Duration = Duration::from_secs(86_400);

/// Per (job, scope) with any: (exhausted, skipped).
type Counts = Vec<(String, String, String, i64, i64)>;

/// The tally's rows that count anything, in key order.
async fn tally(db: &TestDb) -> Counts {
    query_as(AssertSqlSafe(format!(
        "SELECT job_name, scope_kind, scope_id, exhausted, skipped \
         FROM \"{}\".sys_cron_failed_tally WHERE exhausted <> 0 OR skipped <> 0 \
         ORDER BY 1, 2, 3",
        db.schema
    )))
    .fetch_all(&db.admin)
    .await
    .unwrap()
}

/// The same counts from the executions table, spelled here as
/// `ScopeSummary::of_rows` classifies a FAILED row.
async fn counted(db: &TestDb) -> Counts {
    query_as(AssertSqlSafe(format!(
        "SELECT job_name, scope_kind, scope_id, \
                count(*) FILTER (WHERE attempt >= max_attempts AND error_code IS DISTINCT FROM \
                                 'overlap_skipped' AND error_code IS DISTINCT FROM \
                                 'overlap_canceled'), \
                count(*) FILTER (WHERE error_code IN ('overlap_skipped', 'overlap_canceled')) \
         FROM {} WHERE status = 'FAILED' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        db.table()
    )))
    .fetch_all(&db.admin)
    .await
    .map(|rows: Counts| rows.into_iter().filter(|r| r.3 != 0 || r.4 != 0).collect())
    .unwrap()
}

/// Asserts the tally equals the table's count and returns it.
async fn agrees(db: &TestDb, when: &str) -> Counts {
    let (kept, count) = (tally(db).await, counted(db).await);
    assert_eq!(kept, count, "{when}");
    kept
}

fn key(id: &str, plan_time: OffsetDateTime) -> PlanKey {
    PlanKey {
        scope: Scope::new("t", id),
        plan_time,
    }
}

fn request<'a>(keys: &'a [PlanKey], max_attempts: i32) -> ClaimRequest<'a> {
    ClaimRequest {
        steering: scheduler_core::model::Steering::NONE,
        job_name: "job",
        runner_id: "r1",
        max_attempts,
        stale_timeout: Duration::from_secs(60),
        allow_stale_reentry: true,
        keys,
        finishing: &[],
    }
}

fn failure() -> Finish {
    Finish::failure(
        Duration::ZERO,
        ErrorCode::HandlerError,
        "boom",
        Duration::ZERO,
    )
}

/// Claims `keys` and fails them all in one `finish_many`.
async fn fail_all(store: &PgLeaseStore, keys: &[PlanKey], max_attempts: i32) {
    let outcomes = store.claim(&request(keys, max_attempts)).await.unwrap();
    let failure = failure();
    let items: Vec<_> = outcomes
        .iter()
        .map(|o| (o.lease().expect("a fresh key"), &failure))
        .collect();
    assert!(store.finish_many(&items).await.iter().all(Result::is_ok));
}

/// The store's own writes, the seed's and a hand-written UPDATE, an
/// operator's retry, a TRUNCATE, and a tally spoiled by hand then rebuilt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tally_follows_every_writer_and_a_rebuild_restores_it() {
    let Some(db) = test_db().await else { return };
    let store = db.store("tally").await;
    let t = db.table();
    let at = store.now().await.unwrap().replace_time(Time::MIDNIGHT);
    let minutes = |n: u32| at - Duration::from_secs(60) * n;
    // Exhausted at once (one attempt), and with attempts left (not counted).
    let exhausted: Vec<PlanKey> = (1..=4)
        .map(|i| key(&format!("s{}", i % 2), minutes(i)))
        .collect();
    fail_all(&store, &exhausted, 1).await;
    let pending: Vec<PlanKey> = (5..=6).map(|i| key("s0", minutes(i))).collect();
    fail_all(&store, &pending, 3).await;
    assert_eq!(
        agrees(&db, "after the store's finishes").await,
        [
            ("job".into(), "t".into(), "s0".into(), 2, 0),
            ("job".into(), "t".into(), "s1".into(), 2, 0)
        ]
    );
    // Another writer: an overlap-skipped row inserted, a pending row
    // exhausted and one row taken out of the FAILED ones, all by hand.
    raw_sql(AssertSqlSafe(format!(
        "INSERT INTO {t} (job_name, scope_kind, scope_id, plan_time, status, attempt, \
                          max_attempts, error_code, finished_at) \
         VALUES ('job', 't', 's2', now(), 'FAILED', 1, 3, 'overlap_skipped', now()); \
         UPDATE {t} SET attempt = 3 WHERE scope_id = 's0' AND attempt < max_attempts \
             AND plan_time = '{}'; \
         UPDATE {t} SET status = 'SUCCESS' WHERE scope_id = 's1' AND plan_time = '{}'",
        minutes(5),
        minutes(1)
    )))
    .execute(&db.admin)
    .await
    .unwrap();
    assert_eq!(agrees(&db, "after other writers").await.len(), 3);
    // An operator's retry of an exhausted row takes it out.
    let row = store
        .list_executions(&scheduler_core::ExecutionFilter {
            scope: Some(Scope::new("t", "s1")),
            job_name: Some("job".into()),
            status: Some(scheduler_core::Status::Failed),
            ..Default::default()
        })
        .await
        .unwrap();
    store.retry_execution(row[0].id).await.unwrap();
    let kept = agrees(&db, "after an operator's retry").await;
    assert!(kept.iter().all(|r| r.2 != "s1"), "{kept:?}");
    // Spoiled by hand (no trigger on the tally), then rebuilt.
    raw_sql(AssertSqlSafe(format!(
        "UPDATE \"{}\".sys_cron_failed_tally SET exhausted = exhausted + 7",
        db.schema
    )))
    .execute(&db.admin)
    .await
    .unwrap();
    assert_ne!(tally(&db).await, counted(&db).await);
    store.rebuild_tally().await.unwrap();
    assert_eq!(agrees(&db, "after a rebuild").await.len(), 2);
    // A prune's DELETE, then a TRUNCATE.
    store
        .prune_finished(&Prune::batch(store.now().await.unwrap() + DAY, 2))
        .await
        .unwrap();
    agrees(&db, "after a prune").await;
    raw_sql(AssertSqlSafe(format!("TRUNCATE {t} CASCADE")))
        .execute(&db.admin)
        .await
        .unwrap();
    assert!(agrees(&db, "after a TRUNCATE").await.is_empty());
    db.drop_schema().await;
}

/// On a partitioned table, retention that drops a whole partition (no
/// DELETE, so no trigger) takes its rows out of the tally in the same
/// commit; rows of the other partitions stay counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_partition_takes_its_rows_out_of_the_tally() {
    let Some(db) = test_db().await else { return };
    let options = db
        .options("tally_partitions", 4)
        .partitioned(PartitionInterval::Day);
    let offset = TimeOffset::new();
    let store = PgLeaseStore::connect_with(&db.url, &options)
        .await
        .unwrap()
        .with_time_offset(offset.clone());
    let today = store.now().await.unwrap().replace_time(Time::MIDNIGHT);
    let day = |n: u32, minute: u64| today + DAY * n + Duration::from_secs(60 * minute);
    // Day 1, to be dropped: three exhausted rows over two scopes. Day 2,
    // which stays: one more of scope a.
    let first = [
        key("a", day(1, 1)),
        key("a", day(1, 2)),
        key("b", day(1, 3)),
    ];
    fail_all(&store, &first, 1).await;
    fail_all(&store, &[key("a", day(2, 1))], 1).await;
    offset.advance(DAY * 2 + Duration::from_secs(3600));
    let running = store
        .claim(&request(&[key("a", day(2, 30))], 1))
        .await
        .unwrap();
    assert!(running[0].lease().is_some(), "keeps day 2 from going whole");
    assert_eq!(agrees(&db, "before the drop").await.len(), 2);
    offset.advance(DAY * 4);
    let pruned = store
        .prune_finished(&Prune::batch(store.now().await.unwrap(), 1_000))
        .await
        .unwrap();
    assert_eq!(pruned, 3, "day 1 dropped whole");
    assert_eq!(
        agrees(&db, "after the drop").await,
        [("job".into(), "t".into(), "a".into(), 1, 0)]
    );
    db.drop_schema().await;
}
