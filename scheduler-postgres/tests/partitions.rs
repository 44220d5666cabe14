//! The partitioned executions table (`PgStoreOptions::partitioned`,
//! `docs/contract.md` §10, "Partitioned executions"): partitions created
//! ahead, a DEFAULT partition for every other plan, retention that drops a
//! partition only when all of its rows are prunable and can no longer
//! change, and row-by-row batches for the rest. Store time is moved by the
//! store's time offset, never waited for.

mod common;

use std::time::Duration;

use scheduler_core::{
    ClaimRequest, ExecutionAudit, Finish, Lease, LeaseStore, LeaseStoreExt, PlanKey, Prune, Scope,
    StoreError, TimeControl,
};
use scheduler_postgres::{PartitionInterval, PgLeaseStore, TimeOffset, PARTITIONS_AHEAD};
use sqlx_core::query_scalar::query_scalar;
use sqlx_core::sql_str::AssertSqlSafe;
use time::{OffsetDateTime, Time};

use common::{test_db, TestDb};

const DAY: Duration = Duration::from_secs(86_400);

fn request<'a>(keys: &'a [PlanKey]) -> ClaimRequest<'a> {
    ClaimRequest {
        steering: scheduler_core::model::Steering::NONE,
        job_name: "job",
        runner_id: "r1",
        max_attempts: 3,
        stale_timeout: Duration::from_secs(60),
        allow_stale_reentry: true,
        keys,
        finishing: &[],
    }
}

/// A partitioned store on `db`'s schema, and its time offset.
async fn store(db: &TestDb) -> (PgLeaseStore, TimeOffset) {
    let options = db
        .options("partitions", 4)
        .partitioned(PartitionInterval::Day);
    let offset = TimeOffset::new();
    let store = PgLeaseStore::connect_with(&db.url, &options)
        .await
        .expect("connect the store")
        .with_time_offset(offset.clone());
    (store, offset)
}

/// Today's UTC midnight, in store time.
async fn midnight(store: &PgLeaseStore) -> OffsetDateTime {
    store.now().await.unwrap().replace_time(Time::MIDNIGHT)
}

/// The name of the partition of the day starting at `day`.
fn partition(db: &TestDb, day: OffsetDateTime) -> String {
    format!(
        "\"{}\".sys_cron_executions_p{:04}{:02}{:02}",
        db.schema,
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

async fn exists(db: &TestDb, table: &str) -> bool {
    query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL")
        .bind(table)
        .fetch_one(&db.admin)
        .await
        .unwrap()
}

async fn rows_in(db: &TestDb, table: &str) -> i64 {
    query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(&db.admin)
        .await
        .unwrap()
}

/// Claims one key of scope `id` planned at `plan_time`.
async fn lease(store: &PgLeaseStore, id: &str, plan_time: OffsetDateTime) -> Lease {
    let key = [PlanKey {
        scope: Scope::new("t", id),
        plan_time,
    }];
    store.claim(&request(&key)).await.unwrap()[0]
        .lease()
        .expect("a fresh key")
        .clone()
}

fn ok() -> Finish {
    Finish::success(Duration::ZERO, 0, Default::default())
}

/// Connecting creates today's partition and the ones ahead, and a DEFAULT
/// partition; a plan past them (or before them) still lands, in the
/// DEFAULT partition, and is read, finished and pruned as any other;
/// partitions follow store time when it moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_are_created_ahead_and_the_default_takes_the_rest() {
    let Some(db) = test_db().await else { return };
    let (store, offset) = store(&db).await;
    let today = midnight(&store).await;
    for k in 0..=PARTITIONS_AHEAD {
        let day = today + DAY * k;
        assert!(exists(&db, &partition(&db, day)).await, "{day}");
    }
    assert!(!exists(&db, &partition(&db, today + DAY * (PARTITIONS_AHEAD + 1))).await);
    let default = format!("\"{}\".sys_cron_executions_default", db.schema);
    assert_eq!(rows_in(&db, &default).await, 0);

    let far = lease(&store, "far", today + DAY * 400).await;
    let past = lease(&store, "past", today - DAY * 400).await;
    assert_eq!(
        rows_in(&db, &default).await,
        2,
        "both plans land in DEFAULT"
    );
    store.finish(&far, &ok()).await.unwrap();
    store.finish(&past, &ok()).await.unwrap();
    let row = store
        .get_execution(far.id)
        .await
        .unwrap()
        .expect("found by id");
    assert_eq!(row.plan_time, far.plan_time);

    offset.advance(DAY * 3);
    assert_eq!(store.create_partitions().await.unwrap(), 3);
    assert!(exists(&db, &partition(&db, today + DAY * (PARTITIONS_AHEAD + 3))).await);
    assert_eq!(store.create_partitions().await.unwrap(), 0, "idempotent");

    let cutoff = store.now().await.unwrap() + Duration::from_secs(1);
    assert_eq!(
        store.prune_finished(&Prune::count(cutoff)).await.unwrap(),
        2
    );
    while store
        .prune_finished(&Prune::batch(cutoff, 10))
        .await
        .unwrap()
        > 0
    {}
    assert_eq!(rows_in(&db, &default).await, 0, "pruned row by row");
    db.drop_schema().await;
}

/// Retention drops a partition only when every row of it is prunable and
/// nothing in it can change again; a RUNNING row, a FAILED row with a
/// retry pending or a row finished after the cutoff keeps its partition,
/// whose prunable rows then go in batches of `limit` (a partition they
/// empty goes at a later call). A dry run counts
/// the same rows, whichever way they will go; the attempts log of a dropped
/// partition goes with it; a store that adopted the table without the
/// option (the CLI's) drops partitions too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_drops_only_partitions_whose_every_row_is_prunable() {
    let Some(db) = test_db().await else { return };
    let (store, offset) = store(&db).await;
    let today = midnight(&store).await;
    let plan = |day: u32, id: &str| (today + DAY * day + Duration::from_secs(60), id.to_owned());

    // Day 1: three SUCCESS rows (the partition to drop).
    let mut logged = Vec::new();
    for id in ["a1", "a2", "a3"] {
        let (at, id) = plan(1, id);
        let l = lease(&store, &id, at).await;
        store.finish(&l, &ok()).await.unwrap();
        logged.push(l.id);
    }
    // Day 2: two SUCCESS rows and a RUNNING one.
    for id in ["b1", "b2"] {
        let (at, id) = plan(2, id);
        store
            .finish(&lease(&store, &id, at).await, &ok())
            .await
            .unwrap();
    }
    let (at, id) = plan(2, "b_running");
    lease(&store, &id, at).await;
    // Day 3: a SUCCESS row and a FAILED one with a retry pending.
    let (at, id) = plan(3, "c1");
    store
        .finish(&lease(&store, &id, at).await, &ok())
        .await
        .unwrap();
    let (at, id) = plan(3, "c_failed");
    let failed = Finish::failure(
        Duration::ZERO,
        scheduler_core::ErrorCode::HandlerError,
        "boom",
        DAY * 30,
    );
    store
        .finish(&lease(&store, &id, at).await, &failed)
        .await
        .unwrap();
    // Day 4: a SUCCESS row finished after the cutoff.
    let (at, id) = plan(4, "d_late");
    let late = lease(&store, &id, at).await;

    offset.advance(DAY * 6);
    let cutoff = store.now().await.unwrap();
    offset.advance(Duration::from_secs(1));
    store.finish(&late, &ok()).await.unwrap();

    // a1-a3, b1, b2, c1 and the FAILED row: finished before the cutoff.
    assert_eq!(
        store.prune_finished(&Prune::count(cutoff)).await.unwrap(),
        7
    );
    // Through a store built without the option, as `scheduler prune`'s is:
    // it finds the partitions in the catalog.
    let plain = PgLeaseStore::connect_with(&db.url, &db.options("plain", 2))
        .await
        .unwrap()
        .with_time_offset(offset.clone());
    assert_eq!(
        plain
            .prune_finished(&Prune::batch(cutoff, 1))
            .await
            .unwrap(),
        3,
        "the first call drops day 1 whole"
    );
    assert!(!exists(&db, &partition(&db, today + DAY)).await);
    for id in logged {
        assert!(
            store.attempts(id).await.unwrap().is_empty(),
            "log dropped too"
        );
    }
    for day in 2..=4 {
        let p = partition(&db, today + DAY * day);
        assert!(
            exists(&db, &p).await,
            "day {day} stays while a row keeps it"
        );
    }
    let mut batches = Vec::new();
    loop {
        let n = store
            .prune_finished(&Prune::batch(cutoff, 1))
            .await
            .unwrap();
        if n == 0 {
            break;
        }
        batches.push(n);
    }
    assert_eq!(batches, vec![1, 1, 1, 1], "b1, b2, c1, c_failed one by one");
    for day in [2, 4] {
        let p = partition(&db, today + DAY * day);
        assert!(exists(&db, &p).await, "day {day} stays");
    }
    assert!(
        !exists(&db, &partition(&db, today + DAY * 3)).await,
        "day 3, emptied row by row, goes"
    );
    let left: Vec<String> = query_scalar(AssertSqlSafe(format!(
        "SELECT scope_id FROM {} ORDER BY scope_id",
        db.table()
    )))
    .fetch_all(&db.admin)
    .await
    .unwrap();
    assert_eq!(left, vec!["b_running", "d_late"]);
    db.drop_schema().await;
}

/// The option creates new tables only: on an existing unpartitioned table
/// (the seed's, say) it is refused, and the table is left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpartitioned_table_is_never_repartitioned() {
    let Some(db) = test_db().await else { return };
    drop(db.store("plain").await);
    let options = db
        .options("partitioned", 2)
        .partitioned(PartitionInterval::Week);
    let refused = PgLeaseStore::connect_with(&db.url, &options).await;
    assert!(
        matches!(refused, Err(StoreError::InvalidInput(ref m)) if m.contains("not partitioned")),
        "{refused:?}"
    );
    let kind: String = query_scalar(AssertSqlSafe(format!(
        "SELECT relkind::text FROM pg_class WHERE oid = '{}'::regclass",
        db.table()
    )))
    .fetch_one(&db.admin)
    .await
    .unwrap();
    assert_eq!(kind, "r");
    db.drop_schema().await;
}
