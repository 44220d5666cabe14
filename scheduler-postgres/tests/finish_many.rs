//! `finish_many` on a real server: per-item results and rows exactly as
//! `finish` called item by item gives them (on a twin schema, and against
//! `machine::finish`), duplicates, chunking, a value the server refuses, a
//! statement that fails as a whole, and batches that need no round trip.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::ErrorKind;
use std::net::TcpListener;
use std::str::FromStr;
use std::time::Duration;

use scheduler_core::machine;
use scheduler_core::{
    ClaimOutcome, ClaimRequest, ErrorCode, Execution, ExecutionAudit, ExecutionFilter, Finish,
    Lease, LeaseStore, LeaseStoreExt, PlanKey, Scope, Status, StoreError, TimeControl,
};
use scheduler_postgres::{PgLeaseStore, TimeOffset};
use sqlx_core::raw_sql::raw_sql;
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_postgres::{PgConnectOptions, PgPoolOptions};
use time::macros::datetime;
use time::OffsetDateTime;
use uuid::Uuid;

use common::{test_db, TestDb};

const STALE: Duration = Duration::from_secs(60);
const JOB: &str = "mixed";
/// A fixed plan time, so both twins hold the same keys.
const PLAN: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

/// A result without the error's details, to compare twins: ids are the
/// twin's own, and backend messages may differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ok,
    LeaseLost,
    InvalidInput,
    Backend,
}

fn kind(result: &Result<(), StoreError>, lease: &Lease) -> Kind {
    match result {
        Ok(()) => Kind::Ok,
        Err(StoreError::LeaseLost { id }) => {
            assert_eq!(*id, lease.id, "LeaseLost names the item's lease");
            Kind::LeaseLost
        }
        Err(StoreError::InvalidInput(_)) => Kind::InvalidInput,
        Err(StoreError::Backend { .. }) => Kind::Backend,
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

fn kinds(results: &[Result<(), StoreError>], batch: &[(Lease, Finish)]) -> Vec<Kind> {
    assert_eq!(results.len(), batch.len(), "one result per item");
    results
        .iter()
        .zip(batch)
        .map(|(r, (lease, _))| kind(r, lease))
        .collect()
}

fn items(batch: &[(Lease, Finish)]) -> Vec<(&Lease, &Finish)> {
    batch.iter().map(|(l, f)| (l, f)).collect()
}

fn request<'a>(max_attempts: i32, runner: &'a str, keys: &'a [PlanKey]) -> ClaimRequest<'a> {
    ClaimRequest {
        finishing: &[],
        steering: scheduler_core::model::Steering::NONE,
        job_name: JOB,
        runner_id: runner,
        max_attempts,
        stale_timeout: STALE,
        allow_stale_reentry: true,
        keys,
    }
}

fn key(id: &str) -> PlanKey {
    PlanKey {
        scope: Scope::new("t", id),
        plan_time: PLAN,
    }
}

async fn claim_one(store: &PgLeaseStore, max_attempts: i32, runner: &str, id: &str) -> Lease {
    let keys = [key(id)];
    let outcome = store
        .claim(&request(max_attempts, runner, &keys))
        .await
        .unwrap();
    outcome[0].lease().cloned().expect("claimed")
}

/// One batch claim by `r1` of fresh keys `ids`: their leases, in order.
async fn claim_all(store: &PgLeaseStore, ids: &[&str]) -> Vec<Lease> {
    let keys: Vec<PlanKey> = ids.iter().copied().map(key).collect();
    let outcomes = store.claim(&request(3, "r1", &keys)).await.unwrap();
    outcomes
        .iter()
        .map(|o| o.lease().cloned().expect("a fresh key is won"))
        .collect()
}

fn success(rows: i64, result: serde_json::Value) -> Finish {
    let serde_json::Value::Object(result) = result else {
        panic!("an object")
    };
    Finish::success(Duration::from_millis(12), rows, result)
}

fn failure(code: ErrorCode, msg: &str, retry_after: Duration) -> Finish {
    Finish::failure(Duration::from_millis(7), code, msg, retry_after)
}

/// Brings a fresh schema to the same state, whoever runs it, and returns
/// the batch to finish there: successes and failures, with and without
/// attempts left, on fresh and retried rows, a stolen lease's old token and
/// its new one, an already finished lease, an unknown one, a duplicate, and
/// a retry delay no interval can hold.
async fn prepare(store: &PgLeaseStore, offset: &TimeOffset) -> Vec<(Lease, Finish)> {
    let keys: Vec<PlanKey> = ["a", "b", "d", "e", "f", "g", "i", "j"]
        .into_iter()
        .map(key)
        .collect();
    let leases: HashMap<String, Lease> = store
        .claim(&request(2, "r1", &keys))
        .await
        .unwrap()
        .into_iter()
        .map(|o| {
            let lease = o.lease().cloned().expect("fresh keys are won");
            (lease.scope.id.to_string(), lease)
        })
        .collect();
    let lease = |id: &str| leases[id].clone();
    // c: a budget of one attempt, so its failure has none left.
    let c = claim_one(store, 1, "r1", "c").await;
    // e: finished before the batch.
    store
        .finish(&lease("e"), &success(1, serde_json::json!({})))
        .await
        .unwrap();
    // f and g: failed once, retried (attempt 2 of 2).
    let retry_now = failure(ErrorCode::HandlerError, "first try", Duration::ZERO);
    for id in ["f", "g"] {
        store.finish(&lease(id), &retry_now).await.unwrap();
    }
    let f2 = claim_one(store, 2, "r1", "f").await;
    let g2 = claim_one(store, 2, "r1", "g").await;
    assert_eq!((f2.attempt, g2.attempt), (2, 2));
    // d: goes stale and is taken over by r2.
    offset.advance(STALE + Duration::from_secs(1));
    let d2 = claim_one(store, 2, "r2", "d").await;
    assert_eq!((d2.id, d2.attempt), (lease("d").id, 2));
    let unknown = Lease {
        id: Uuid::now_v7(),
        token: Uuid::new_v4(),
        ..lease("a")
    };
    vec![
        (
            lease("a"),
            success(5, serde_json::json!({"k": 1, "s": "ü\"'"})),
        ),
        (
            lease("b"),
            failure(ErrorCode::HandlerError, "b failed", Duration::from_secs(30)),
        ),
        (lease("d"), success(1, serde_json::json!({"old": true}))),
        (
            c,
            failure(ErrorCode::RunTimeout, "c slow", Duration::from_secs(30)),
        ),
        (lease("e"), success(2, serde_json::json!({"again": true}))),
        (f2, success(9, serde_json::json!({"retried": "ok"}))),
        (unknown, success(0, serde_json::json!({}))),
        (
            g2,
            failure(
                ErrorCode::HandlerPanic,
                "g panicked",
                Duration::from_secs(30),
            ),
        ),
        (
            lease("a"),
            failure(ErrorCode::HandlerError, "duplicate", Duration::ZERO),
        ),
        (
            d2,
            failure(ErrorCode::HandlerError, "d2 failed", Duration::from_secs(5)),
        ),
        (
            lease("i"),
            failure(ErrorCode::Canceled, "shutting down", Duration::ZERO),
        ),
        (
            lease("j"),
            failure(ErrorCode::HandlerError, "never", Duration::MAX),
        ),
    ]
}

async fn rows(store: &PgLeaseStore) -> Vec<Execution> {
    let filter = ExecutionFilter {
        job_name: Some(JOB.to_owned()),
        ..Default::default()
    };
    let mut rows = store.list_executions(&filter).await.unwrap();
    rows.sort_by(|a, b| a.scope.cmp(&b.scope));
    rows
}

/// A row with what differs between twins taken out: ids, tokens, and the
/// instants, which are kept only relative to one another within the row.
#[derive(Debug, PartialEq)]
struct Shape {
    row: Execution,
    next_retry_in: Option<time::Duration>,
    finished_at_update: Option<bool>,
    lease_length: Option<time::Duration>,
    started_at_creation: Option<bool>,
}

fn shape(row: &Execution) -> Shape {
    let zero = OffsetDateTime::UNIX_EPOCH;
    Shape {
        next_retry_in: row.next_retry_at.map(|t| t - row.updated_at),
        finished_at_update: row.finished_at.map(|t| t == row.updated_at),
        lease_length: row.stale_after.zip(row.heartbeat_at).map(|(s, h)| s - h),
        started_at_creation: row.started_at.map(|t| t == row.created_at),
        row: Execution {
            id: Uuid::nil(),
            lease_token: Uuid::nil(),
            next_retry_at: row.next_retry_at.map(|_| zero),
            heartbeat_at: row.heartbeat_at.map(|_| zero),
            stale_after: row.stale_after.map(|_| zero),
            started_at: row.started_at.map(|_| zero),
            finished_at: row.finished_at.map(|_| zero),
            created_at: zero,
            updated_at: zero,
            ..row.clone()
        },
    }
}

struct Twin {
    db: TestDb,
    store: PgLeaseStore,
    offset: TimeOffset,
}

async fn twin() -> Option<Twin> {
    let db = test_db().await?;
    let offset = TimeOffset::new();
    let store = db
        .store("finish_many")
        .await
        .with_time_offset(offset.clone());
    Some(Twin { db, store, offset })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_batch_matches_finishing_one_by_one_on_a_twin_schema() {
    let Some(batched) = twin().await else { return };
    let Some(single) = twin().await else { return };

    let batch = prepare(&batched.store, &batched.offset).await;
    let before = rows(&batched.store).await;
    let results = batched.store.finish_many(&items(&batch)).await;
    let after = rows(&batched.store).await;

    let one_by_one_batch = prepare(&single.store, &single.offset).await;
    let mut one_by_one = Vec::new();
    for (lease, finish) in &one_by_one_batch {
        one_by_one.push(single.store.finish(lease, finish).await);
    }

    use Kind::*;
    let expected = vec![
        Ok,           // a: success
        Ok,           // b: failure, an attempt left
        LeaseLost,    // d: the stolen lease's old token
        Ok,           // c: failure, no attempt left
        LeaseLost,    // e: already finished
        Ok,           // f: success of a retried row
        LeaseLost,    // an unknown lease
        Ok,           // g: failure of a retried row, no attempt left
        LeaseLost,    // a again: its lease ended with the first item
        Ok,           // d: the thief's lease
        Ok,           // i: canceled, due again at once
        InvalidInput, // j: a retry delay no interval holds
    ];
    assert_eq!(kinds(&results, &batch), expected);
    assert_eq!(kinds(&one_by_one, &one_by_one_batch), expected);

    // The twins' rows are the same but for ids, tokens and instants.
    let single_rows = rows(&single.store).await;
    assert_eq!(after.len(), single_rows.len());
    for (b, s) in after.iter().zip(&single_rows) {
        assert_eq!(shape(b), shape(s), "batched vs one by one");
    }

    // And exactly machine::finish applied item by item at the statement's
    // one store time.
    let changed: Vec<&Execution> = after.iter().filter(|r| !before.contains(r)).collect();
    let stamps: BTreeSet<OffsetDateTime> = changed.iter().map(|r| r.updated_at).collect();
    assert_eq!(stamps.len(), 1, "one statement, one store time: {stamps:?}");
    let at = *stamps.first().unwrap();
    let mut expected_rows: HashMap<Uuid, Execution> =
        before.iter().map(|r| (r.id, r.clone())).collect();
    for ((lease, finish), result) in batch.iter().zip(&results) {
        let Some(row) = expected_rows.get(&lease.id) else {
            assert!(matches!(result, Err(StoreError::LeaseLost { .. })));
            continue;
        };
        if matches!(result, Err(StoreError::InvalidInput(_))) {
            continue;
        }
        match machine::finish(row, lease.token, at, finish) {
            Result::Ok(new) => {
                assert!(result.is_ok(), "{result:?}");
                expected_rows.insert(lease.id, new);
            }
            Err(_) => assert!(matches!(result, Err(StoreError::LeaseLost { .. }))),
        }
    }
    for row in &after {
        assert_eq!(Some(row), expected_rows.get(&row.id), "{:?}", row.scope);
    }

    // Spot checks of what the rules say, in plain words.
    let by_scope = |id: &str| after.iter().find(|r| r.scope.id == id).unwrap();
    assert_eq!(by_scope("a").status, Status::Success);
    assert_eq!(by_scope("a").rows_affected, Some(5));
    assert_eq!(
        by_scope("b").next_retry_at,
        Some(at + Duration::from_secs(30))
    );
    assert_eq!(by_scope("c").next_retry_at, None, "no attempt left");
    assert_eq!(by_scope("g").next_retry_at, None, "no attempt left");
    assert_eq!(by_scope("i").next_retry_at, Some(at));
    let f = by_scope("f");
    assert_eq!(
        (f.status, f.error_code.as_deref(), f.error_msg.as_deref()),
        (Status::Success, None, None),
        "a success clears the earlier failure"
    );
    assert_eq!(by_scope("j").status, Status::Running);
    assert_eq!(by_scope("d").runner_id.as_deref(), Some("r2"));

    drop((batched.store, single.store));
    batched.db.drop_schema().await;
    single.db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_resolve_as_finishing_one_by_one() {
    let Some(t) = twin().await else { return };
    let a = claim_one(&t.store, 3, "r1", "a").await;
    let b = claim_one(&t.store, 3, "r1", "b").await;
    let stale_a = Lease {
        token: Uuid::new_v4(),
        ..a.clone()
    };
    let fail = failure(ErrorCode::HandlerError, "x", Duration::ZERO);
    let ok = success(1, serde_json::json!({"n": 1}));
    let bad = failure(ErrorCode::HandlerError, "x", Duration::MAX);
    // A wrong token first does not shadow the right one; the first item of
    // a lease wins whatever its kind; an item refused before sending does
    // not count as the first.
    let batch = vec![
        (stale_a, ok.clone()),
        (b.clone(), bad),
        (a.clone(), fail.clone()),
        (a.clone(), ok.clone()),
        (b.clone(), ok.clone()),
        (b.clone(), fail),
    ];
    let results = t.store.finish_many(&items(&batch)).await;
    use Kind::*;
    assert_eq!(
        kinds(&results, &batch),
        [LeaseLost, InvalidInput, Ok, LeaseLost, Ok, LeaseLost]
    );
    let a_row = t.store.get_execution(a.id).await.unwrap().unwrap();
    let b_row = t.store.get_execution(b.id).await.unwrap().unwrap();
    assert_eq!(
        (a_row.status, b_row.status),
        (Status::Failed, Status::Success)
    );
    drop(t.store);
    t.db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_batches_are_cut_into_statements_of_5000() {
    let Some(t) = twin().await else { return };
    let keys: Vec<PlanKey> = (0..5_001).map(|i| key(&format!("s{i:05}"))).collect();
    let leases: Vec<Lease> = t
        .store
        .claim(&request(3, "r1", &keys))
        .await
        .unwrap()
        .into_iter()
        .map(|o| match o {
            ClaimOutcome::Won(lease) => lease,
            other => panic!("{other:?}"),
        })
        .collect();
    let done = success(1, serde_json::json!({}));
    let mut batch: Vec<(Lease, Finish)> =
        leases.iter().map(|l| (l.clone(), done.clone())).collect();
    batch.push((leases[0].clone(), done.clone()));
    let results = t.store.finish_many(&items(&batch)).await;
    let kinds = kinds(&results, &batch);
    assert!(kinds[..5_001].iter().all(|k| *k == Kind::Ok));
    assert_eq!(kinds[5_001], Kind::LeaseLost, "the duplicate");

    // Two statements, so two store times: leases go in id order, so the
    // largest id is the one in the second.
    let all = rows(&t.store).await;
    assert!(all.iter().all(|r| r.status == Status::Success));
    let mut stamps: HashMap<OffsetDateTime, Vec<Uuid>> = HashMap::new();
    for r in &all {
        stamps.entry(r.updated_at).or_default().push(r.id);
    }
    let mut sizes: Vec<usize> = stamps.values().map(Vec::len).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [1, 5_000]);
    let last = stamps.values().find(|ids| ids.len() == 1).unwrap()[0];
    assert_eq!(Some(last), leases.iter().map(|l| l.id).max());
    drop(t.store);
    t.db.drop_schema().await;
}

/// A retry time past the largest timestamp fails `finish` as invalid input
/// (no retry can cure it); in a batch it fails that item alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_the_server_refuses_fails_only_its_item() {
    let Some(t) = twin().await else { return };
    let leases = claim_all(&t.store, &["x", "y", "z", "w"]).await;
    let far = failure(
        ErrorCode::HandlerError,
        "far",
        Duration::from_micros(i64::MAX as u64),
    );
    let ok = success(1, serde_json::json!({}));
    let err = t.store.finish(&leases[3], &far).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err:?}");
    assert!(!err.is_transient());

    let batch = vec![
        (leases[0].clone(), ok.clone()),
        (leases[1].clone(), far.clone()),
        (leases[1].clone(), ok.clone()),
        (leases[2].clone(), ok.clone()),
    ];
    let results = t.store.finish_many(&items(&batch)).await;
    use Kind::*;
    assert_eq!(kinds(&results, &batch), [Ok, InvalidInput, Ok, Ok]);
    for (lease, status) in leases.iter().zip([
        Status::Success,
        Status::Success,
        Status::Success,
        Status::Running,
    ]) {
        let row = t.store.get_execution(lease.id).await.unwrap().unwrap();
        assert_eq!(row.status, status, "{:?}", lease.scope);
    }
    drop(t.store);
    t.db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_statement_is_a_backend_error_for_every_item_sent() {
    let Some(t) = twin().await else { return };
    let leases = claim_all(&t.store, &["x", "y"]).await;
    let ok = success(1, serde_json::json!({}));
    let unknown = Lease {
        id: Uuid::now_v7(),
        ..leases[0].clone()
    };
    let batch = vec![
        (leases[0].clone(), ok.clone()),
        (unknown, ok.clone()),
        (leases[0].clone(), ok.clone()),
        (
            leases[1].clone(),
            failure(ErrorCode::HandlerError, "x", Duration::MAX),
        ),
        (leases[1].clone(), ok.clone()),
    ];
    let table = t.db.table();
    let rename =
        |from: &str, to: &str| format!("ALTER TABLE \"{}\".{from} RENAME TO {to}", t.db.schema);
    raw_sql(AssertSqlSafe(rename("sys_cron_executions", "moved")))
        .execute(&t.db.admin)
        .await
        .unwrap();
    let results = t.store.finish_many(&items(&batch)).await;
    let mut one_by_one = Vec::new();
    for (lease, finish) in &batch {
        one_by_one.push(t.store.finish(lease, finish).await);
    }
    use Kind::*;
    let expected = [Backend, Backend, Backend, InvalidInput, Backend];
    assert_eq!(kinds(&results, &batch), expected);
    assert_eq!(kinds(&one_by_one, &batch), expected);
    let Err(StoreError::Backend { message, source }) = &results[0] else {
        unreachable!()
    };
    assert!(message.contains("finish many"), "{message}");
    assert!(source.is_some());

    raw_sql(AssertSqlSafe(rename("moved", "sys_cron_executions")))
        .execute(&t.db.admin)
        .await
        .unwrap();
    let untouched: i64 = sqlx_core::query_scalar::query_scalar(AssertSqlSafe(format!(
        "SELECT count(*) FROM {table} WHERE status = 'RUNNING'"
    )))
    .fetch_one(&t.db.admin)
    .await
    .unwrap();
    assert_eq!(untouched, 2);
    drop(t.store);
    t.db.drop_schema().await;
}

/// A server that accepts connections and never answers: a store on it
/// would wait out its acquire timeout on any round trip, and the listener
/// shows whether one was even attempted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_with_nothing_to_send_make_no_round_trip() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let pool = PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(30))
        .connect_lazy_with(
            PgConnectOptions::from_str(&format!("postgres://nobody@127.0.0.1:{port}/none"))
                .unwrap(),
        );
    let store = PgLeaseStore::from_pool(pool);
    let lease = Lease {
        id: Uuid::now_v7(),
        token: Uuid::new_v4(),
        job_name: JOB.into(),
        scope: Scope::global(),
        plan_time: PLAN,
        attempt: 1,
        max_attempts: 3,
        started_at: PLAN,
        stale_after: PLAN,
    };
    let never = failure(ErrorCode::HandlerError, "x", Duration::MAX);
    let started = std::time::Instant::now();
    assert!(store.finish_many(&[]).await.is_empty());
    let refused = store
        .finish_many(&[(&lease, &never), (&lease, &never)])
        .await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(refused
        .iter()
        .all(|r| matches!(r, Err(StoreError::InvalidInput(_)))));
    listener.set_nonblocking(true).unwrap();
    let accepted = listener.accept().map(|_| ()).map_err(|e| e.kind());
    assert_eq!(
        accepted,
        Err(ErrorKind::WouldBlock),
        "no connection was opened"
    );
}

/// A lease swept while the batch waits for its row lock: the guard is
/// checked again on the row as the sweep left it, so that lease is lost and
/// the sweep's write stands; the batch's other leases are written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_swept_while_the_batch_waits_is_lost() {
    let Some(t) = twin().await else { return };
    let leases = claim_all(&t.store, &["x", "y"]).await;
    let mut sweeper = t.db.admin.begin().await.unwrap();
    sqlx_core::query::query(AssertSqlSafe(format!(
        "UPDATE {} SET status = 'FAILED', error_code = 'stale_timeout', finished_at = now() \
         WHERE id = $1",
        t.db.table()
    )))
    .bind(leases[0].id)
    .execute(&mut *sweeper)
    .await
    .unwrap();
    let batch = tokio::spawn({
        let store = t.store.clone();
        let ok = success(1, serde_json::json!({}));
        let batch: Vec<(Lease, Finish)> = leases.iter().map(|l| (l.clone(), ok.clone())).collect();
        async move { kinds(&store.finish_many(&items(&batch)).await, &batch) }
    });
    t.db.wait_until_blocked("finish_many").await;
    sweeper.commit().await.unwrap();
    assert_eq!(batch.await.unwrap(), [Kind::LeaseLost, Kind::Ok]);
    let x = t.store.get_execution(leases[0].id).await.unwrap().unwrap();
    let y = t.store.get_execution(leases[1].id).await.unwrap().unwrap();
    assert_eq!(
        (x.status, x.error_code.as_deref(), y.status),
        (Status::Failed, Some("stale_timeout"), Status::Success)
    );
    drop(t.store);
    t.db.drop_schema().await;
}
