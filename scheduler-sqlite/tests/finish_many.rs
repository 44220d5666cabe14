//! `finish_many`: one IMMEDIATE transaction (one commit) for the whole
//! batch, and per item exactly what `finish` would have returned.
//!
//! - A batch mixing live, stale, stolen, finished, swept, exhausted,
//!   duplicate and unknown leases answers and writes exactly as `finish`
//!   called once per item does on a twin store (and as the memory store's
//!   reference does).
//! - A batch of 1,000 finishes is one commit: the WAL file, emptied
//!   beforehand, holds exactly one commit frame afterwards (while leases
//!   finished one call each leave one commit frame per call, so the count
//!   can fail).
//! - A batch that fails as a whole (locked database, driver error
//!   mid-batch) writes nothing and gives every item a backend error.
//! - An empty batch answers at once without touching the database.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use scheduler_core::{
    ClaimOutcome, ClaimRequest, ErrorCode, Execution, ExecutionAudit, ExecutionFilter, Finish,
    Lease, LeaseStore, LeaseStoreExt, ManualClock, PlanKey, Scope, Status, StoreError, TimeControl,
};
use scheduler_memory::MemoryLeaseStore;
use scheduler_sqlite::{SqliteLeaseStore, SqliteStoreOptions};
use time::macros::datetime;
use time::OffsetDateTime;
use uuid::Uuid;

const JOB: &str = "batched";
const T0: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

fn keys(prefix: &str, n: usize, plan_time: OffsetDateTime) -> Vec<PlanKey> {
    (0..n)
        .map(|i| PlanKey {
            scope: Scope::new("tenant", format!("{prefix}-{i:04}")),
            plan_time,
        })
        .collect()
}

async fn claim(
    store: &dyn ExecutionAudit,
    keys: &[PlanKey],
    max_attempts: i32,
    stale_secs: u64,
) -> Vec<ClaimOutcome> {
    store
        .claim(&ClaimRequest {
            finishing: &[],
            steering: scheduler_core::model::Steering::NONE,
            job_name: JOB,
            runner_id: "r1",
            max_attempts,
            stale_timeout: Duration::from_secs(stale_secs),
            allow_stale_reentry: true,
            keys,
        })
        .await
        .expect("claim")
}

async fn leases(
    store: &dyn ExecutionAudit,
    keys: &[PlanKey],
    max_attempts: i32,
    stale_secs: u64,
) -> Vec<Lease> {
    claim(store, keys, max_attempts, stale_secs)
        .await
        .iter()
        .map(|o| o.lease().cloned().expect("a lease"))
        .collect()
}

fn success(rows: i64) -> Finish {
    let mut result = serde_json::Map::new();
    result.insert("rows".into(), rows.into());
    Finish::success(Duration::from_millis(7), rows, result)
}

fn failure(retry_secs: u64) -> Finish {
    Finish::failure(
        Duration::from_millis(9),
        ErrorCode::HandlerError,
        "boom",
        Duration::from_secs(retry_secs),
    )
}

/// The batch of the mixed scenario, built on `store` (whose clock is
/// `clock`, started at `T0`): every kind of lease a terminal write can
/// present, in an order where earlier items change what later ones see.
async fn mixed_batch(store: &dyn ExecutionAudit, clock: &ManualClock) -> Vec<(Lease, Finish)> {
    let plan = T0;
    // Claimed with a short lease, which goes stale: the first is stolen,
    // the other two are swept.
    let short = leases(store, &keys("short", 3, plan), 3, 10).await;
    clock.advance(Duration::from_secs(30));
    let live = leases(store, &keys("live", 4, plan), 3, 60).await;
    let exhausted = leases(store, &keys("last", 1, plan), 1, 60).await.remove(0);
    let ClaimOutcome::Stolen(thief) = claim(store, &keys("short", 1, plan), 3, 60).await.remove(0)
    else {
        panic!("the stale lease is stolen");
    };
    let finished = leases(store, &keys("done", 1, plan), 3, 60).await.remove(0);
    store
        .finish(&finished, &success(1))
        .await
        .expect("a live lease finishes");
    // A sweep closes every stale lease of the job: claim the one to keep
    // stale after it, under another job.
    assert_eq!(
        store.sweep_stale(JOB, true).await.unwrap(),
        2,
        "short-1 and -2"
    );
    let swept = short[1].clone();
    let stale_other = store
        .claim(&ClaimRequest {
            finishing: &[],
            steering: scheduler_core::model::Steering::NONE,
            job_name: "other",
            runner_id: "r2",
            max_attempts: 3,
            stale_timeout: Duration::from_secs(1),
            allow_stale_reentry: false,
            keys: &keys("other", 1, plan),
        })
        .await
        .unwrap()[0]
        .lease()
        .cloned()
        .unwrap();
    clock.advance(Duration::from_secs(5));
    let unknown = Lease {
        id: Uuid::now_v7(),
        token: Uuid::new_v4(),
        ..live[0].clone()
    };
    vec![
        (live[0].clone(), success(3)),
        (short[0].clone(), success(4)), // stolen: old token
        (live[1].clone(), failure(30)), // attempts left: a retry is scheduled
        (finished, failure(30)),        // already SUCCESS
        (exhausted, failure(30)),       // last attempt: no retry
        (live[0].clone(), failure(0)),  // the same lease again: finished above
        (stale_other, success(5)),      // stale but never taken: still held
        (swept, success(6)),            // closed by the sweep
        (unknown, success(7)),          // no such execution
        (thief, failure(0)),            // the stealer's token is live
        (live[2].clone(), success(8)),
        (live[3].clone(), failure(90)),
    ]
}

/// What a result says, with the item's own lease id checked.
fn seen(lease: &Lease, result: &Result<(), StoreError>) -> String {
    match result {
        Ok(()) => "ok".to_owned(),
        Err(StoreError::LeaseLost { id }) => {
            assert_eq!(*id, lease.id, "a lost lease names its own execution");
            "lease lost".to_owned()
        }
        Err(other) => format!("{other}"),
    }
}

/// Every row of every job, in key order, with the random id and token blanked.
async fn rows(store: &dyn ExecutionAudit) -> Vec<Execution> {
    let mut rows: Vec<Execution> = store
        .list_executions(&ExecutionFilter::default())
        .await
        .expect("list")
        .into_iter()
        .map(|row| Execution {
            id: Uuid::nil(),
            lease_token: Uuid::nil(),
            ..row
        })
        .collect();
    rows.sort_by(|a, b| {
        (&a.job_name, &a.scope, a.plan_time).cmp(&(&b.job_name, &b.scope, b.plan_time))
    });
    rows
}

async fn file_store(dir: &Path, name: &str, clock: &ManualClock) -> SqliteLeaseStore {
    SqliteStoreOptions::new(dir.join(name))
        .clock(Arc::new(clock.clone()))
        .open()
        .await
        .expect("the store opens")
}

#[tokio::test]
async fn a_mixed_batch_answers_and_writes_as_finish_one_by_one_on_a_twin_store() {
    let dir = tempfile::tempdir().unwrap();
    let (batch_clock, single_clock, memory_clock) = (
        ManualClock::new(T0),
        ManualClock::new(T0),
        ManualClock::new(T0),
    );
    let batched = file_store(dir.path(), "batched.db", &batch_clock).await;
    let single = file_store(dir.path(), "single.db", &single_clock).await;
    let memory = MemoryLeaseStore::with_clock(Arc::new(memory_clock.clone()));

    let batch_items = mixed_batch(&batched, &batch_clock).await;
    let single_items = mixed_batch(&single, &single_clock).await;
    let memory_items = mixed_batch(&memory, &memory_clock).await;
    assert_eq!(rows(&batched).await, rows(&single).await, "same start");

    let refs: Vec<(&Lease, &Finish)> = batch_items.iter().map(|(l, f)| (l, f)).collect();
    let results = batched.finish_many(&refs).await;
    assert_eq!(results.len(), batch_items.len(), "one result per item");
    let got: Vec<String> = batch_items
        .iter()
        .zip(&results)
        .map(|((lease, _), r)| seen(lease, r))
        .collect();

    let mut expected = Vec::new();
    for (lease, finish) in &single_items {
        expected.push(seen(lease, &single.finish(lease, finish).await));
    }
    assert_eq!(got, expected, "per-item results");
    // The scenario covers both answers, several times, interleaved.
    assert_eq!(
        got,
        [
            "ok",
            "lease lost",
            "ok",
            "lease lost",
            "ok",
            "lease lost",
            "ok",
            "lease lost",
            "lease lost",
            "ok",
            "ok",
            "ok"
        ]
    );
    let after = rows(&batched).await;
    assert_eq!(after, rows(&single).await, "rows, field by field");

    // The reference: the memory store applies `machine` directly.
    let refs: Vec<(&Lease, &Finish)> = memory_items.iter().map(|(l, f)| (l, f)).collect();
    let reference: Vec<String> = memory_items
        .iter()
        .zip(memory.finish_many(&refs).await)
        .map(|((lease, _), r)| seen(lease, &r))
        .collect();
    assert_eq!(got, reference, "per-item results against the memory store");
    assert_eq!(after, rows(&memory).await, "rows against the memory store");

    // Every terminal write of the batch carries the one store time.
    let now = batched.now().await.unwrap();
    let written: Vec<&Execution> = after
        .iter()
        .filter(|r| r.status != Status::Running && r.finished_at == Some(now))
        .collect();
    let written_ok = got.iter().filter(|s| *s == "ok").count();
    assert_eq!(written.len(), written_ok, "{after:#?}");
    assert!(written.iter().all(|r| r.updated_at == now));
}

/// The number of commits in a WAL file: frames of the current WAL
/// generation (their salts equal the header's) whose "database size after
/// commit" field is set, which SQLite writes only on a transaction's last
/// frame. See <https://www.sqlite.org/fileformat.html#the_write_ahead_log>.
fn wal_commits(db: &Path) -> usize {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let bytes = fs::read(&wal).unwrap_or_default();
    if bytes.len() < 32 {
        return 0;
    }
    let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    assert!(matches!(word(0), 0x377f_0682 | 0x377f_0683), "a WAL header");
    let page_size = word(8) as usize;
    let salts = (word(16), word(20));
    bytes[32..]
        .chunks_exact(24 + page_size)
        .filter(|frame| {
            let w = |at: usize| u32::from_be_bytes(frame[at..at + 4].try_into().unwrap());
            (w(8), w(12)) == salts && w(4) != 0
        })
        .count()
}

/// Empties the WAL into the database file, from a connection of its own,
/// so the commits that follow are the only ones in it.
fn empty_wal(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let (busy, _, _): (i64, i64, i64) = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!(busy, 0, "the checkpoint completed");
    assert_eq!(wal_commits(db), 0);
}

#[tokio::test]
async fn a_batch_of_a_thousand_finishes_is_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let path = dir.path().join("thousand.db");
    let store = file_store(dir.path(), "thousand.db", &clock).await;

    // The control: one by one, every finish is a commit of its own.
    let few = leases(&store, &keys("few", 12, T0), 3, 600).await;
    empty_wal(&path);
    for lease in &few {
        store.finish(lease, &success(1)).await.unwrap();
    }
    assert_eq!(wal_commits(&path), few.len(), "one commit per finish call");

    let many = leases(&store, &keys("many", 1_000, T0), 3, 600).await;
    clock.advance(Duration::from_secs(2));
    empty_wal(&path);
    let done = success(1);
    let items: Vec<(&Lease, &Finish)> = many.iter().map(|l| (l, &done)).collect();
    let results = store.finish_many(&items).await;
    assert_eq!(wal_commits(&path), 1, "the whole batch is one commit");
    assert_eq!(results.len(), 1_000);
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    let now = store.now().await.unwrap();
    let rows = store
        .list_executions(&ExecutionFilter::default())
        .await
        .unwrap();
    assert_eq!(rows.len(), 1_012);
    assert!(rows.iter().all(|r| r.status == Status::Success));
    let batch_rows: Vec<&Execution> = rows
        .iter()
        .filter(|r| r.scope.id.starts_with("many-"))
        .collect();
    assert_eq!(batch_rows.len(), 1_000);
    assert!(
        batch_rows
            .iter()
            .all(|r| r.finished_at == Some(now) && r.rows_affected == Some(1)),
        "one store time for the batch"
    );

    // Finishing them again: every lease is lost, and nothing is written.
    let again = store.finish_many(&items).await;
    assert!(
        again
            .iter()
            .zip(&many)
            .all(|(r, l)| matches!(r, Err(StoreError::LeaseLost { id }) if *id == l.id)),
        "{again:?}"
    );
}

fn quick_locks(path: &Path, clock: &ManualClock) -> SqliteStoreOptions {
    SqliteStoreOptions::new(path)
        .clock(Arc::new(clock.clone()))
        .busy_timeout(Duration::from_millis(20))
        .max_lock_wait(Duration::from_secs(1))
}

fn backend_message(result: &Result<(), StoreError>) -> &str {
    match result {
        Err(StoreError::Backend { message, .. }) => message,
        other => panic!("expected a backend error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_locked_database_fails_every_item_and_an_empty_batch_does_not_wait_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let path = dir.path().join("locked.db");
    let store = quick_locks(&path, &clock).open().await.unwrap();
    let held = leases(&store, &keys("held", 3, T0), 3, 600).await;
    let done = success(1);
    let items: Vec<(&Lease, &Finish)> = held.iter().map(|l| (l, &done)).collect();

    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE;").unwrap();

    // An empty batch never asks for the lock another program holds.
    let started = Instant::now();
    assert!(store.finish_many(&[]).await.is_empty());
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "answered without waiting: {:?}",
        started.elapsed()
    );

    // A batch waits for it like every write, then fails whole.
    let started = Instant::now();
    let results = store.finish_many(&items).await;
    assert!(started.elapsed() >= Duration::from_millis(500), "it waited");
    assert_eq!(results.len(), 3);
    for result in &results {
        let message = backend_message(result);
        assert!(message.contains("database is locked"), "{message}");
    }
    other.execute_batch("ROLLBACK").unwrap();
    assert!(store
        .list_executions(&ExecutionFilter::default())
        .await
        .unwrap()
        .iter()
        .all(|r| r.status == Status::Running));

    // The leases survived; the same batch now goes through.
    let results = store.finish_many(&items).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
}

#[tokio::test]
async fn a_driver_error_mid_batch_rolls_the_whole_batch_back() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let path = dir.path().join("trigger.db");
    let store = file_store(dir.path(), "trigger.db", &clock).await;
    let held = leases(&store, &keys("held", 3, T0), 3, 600).await;

    // Another program's trigger refuses the terminal write of the middle row.
    let other = rusqlite::Connection::open(&path).unwrap();
    other
        .execute_batch(&format!(
            "CREATE TRIGGER refuse BEFORE UPDATE ON sys_cron_executions
             WHEN OLD.id = '{}' AND NEW.status <> 'RUNNING'
             BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END;",
            held[1].id.hyphenated()
        ))
        .unwrap();

    let done = success(1);
    let items: Vec<(&Lease, &Finish)> = held.iter().map(|l| (l, &done)).collect();
    let results = store.finish_many(&items).await;
    assert_eq!(results.len(), 3);
    for result in &results {
        let message = backend_message(result);
        assert!(message.contains("refused by a trigger"), "{message}");
    }
    assert!(
        store
            .list_executions(&ExecutionFilter::default())
            .await
            .unwrap()
            .iter()
            .all(|r| r.status == Status::Running),
        "the first item's write was rolled back with the batch"
    );

    // One by one, only the refused write fails.
    let mut one_by_one = Vec::new();
    for (lease, finish) in &items {
        one_by_one.push(store.finish(lease, finish).await.is_ok());
    }
    assert_eq!(one_by_one, [true, false, true]);
}
