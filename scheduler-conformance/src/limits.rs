//! Storage limits: names up to [`MAX_NAME_BYTES`] and no further, hostile
//! text, error messages and results that can never fail a terminal write,
//! plan times at microsecond precision, and store time itself
//! (`docs/contract.md` §3).

use std::time::Duration;

use serde_json::{Map, Value};
use time::OffsetDateTime;

use scheduler_core::model::{MAX_ERROR_MSG_BYTES, RESULT_TOO_LARGE_KEY};
use scheduler_core::time::to_micros;
use scheduler_core::{
    ErrorCode, Finish, Lease, PlanKey, Scope, Status, StoreError, MAX_NAME_BYTES,
};

use crate::fixtures::{
    finish, incompressible, key, keys_of, leased, leases, plan_key, request, row, rows_of,
    this_minute, unique, Harness,
};

/// Claims `keys` for `job` by `runner`, which the store must refuse as
/// [`StoreError::InvalidInput`], writing nothing of the batch.
async fn assert_refused(h: &Harness, job: &str, runner: &str, keys: &[PlanKey]) -> StoreError {
    match h.store.claim(&request(job, runner, keys, true)).await {
        Err(e @ StoreError::InvalidInput(_)) => e,
        other => panic!("expected invalid input, got {other:?}"),
    }
}

/// Error messages with NUL bytes, over-long text and multi-byte characters
/// are stored as valid, bounded text.
pub async fn error_messages_are_stored_safely(h: &Harness) {
    let job = unique("errmsg");
    let key = [plan_key(h, Scope::global()).await];
    let lease = leased(h, &request(&job, "r1", &key, true)).await;
    let msg = format!("bad\0input: {}", "日本語".repeat(10_000));
    let failure = Finish::failure(
        Duration::ZERO,
        ErrorCode::HandlerError,
        &msg,
        Duration::ZERO,
    );
    // The terminal write must not fail (the fixture panics if it does).
    finish(h, &lease, &failure).await;
    let stored = row(h, lease.id).await.error_msg.unwrap();
    assert!(stored.starts_with("badinput: 日本語"));
    assert!(!stored.contains('\0'));
    assert!(stored.len() <= MAX_ERROR_MSG_BYTES && stored.len() > MAX_ERROR_MSG_BYTES - 4);
}

/// An oversized result still ends SUCCESS, with a marker instead of the
/// result; NUL characters inside a result are dropped.
pub async fn oversized_result_still_succeeds(h: &Harness) {
    let job = unique("big_result");
    let keys = keys_of("t", &["big", "nul"], this_minute(h).await);
    let leases = leases(h, &request(&job, "r1", &keys, true)).await;
    let mut big = Map::new();
    big.insert("blob".into(), Value::from("x".repeat(100_000)));
    finish(h, &leases[0], &Finish::success(Duration::ZERO, 1, big)).await;
    let stored = row(h, leases[0].id).await;
    assert_eq!(stored.status, scheduler_core::Status::Success);
    assert!(stored.result[RESULT_TOO_LARGE_KEY].as_u64().unwrap() > 100_000);
    let mut nul = Map::new();
    nul.insert("note".into(), Value::from("a\0b"));
    finish(h, &leases[1], &Finish::success(Duration::ZERO, 1, nul)).await;
    let stored = row(h, leases[1].id).await;
    assert_eq!(
        Value::Object(stored.result),
        serde_json::json!({"note": "ab"})
    );
}

/// Names and scopes with quotes, non-ASCII and long text are stored as
/// given; a NUL character is refused as invalid input and nothing is written.
pub async fn hostile_names_are_stored_or_refused_cleanly(h: &Harness) {
    let job = format!("{}'\"; DROP TABLE x; --ü", unique("hostile"));
    let plan_time = this_minute(h).await;
    // Two bytes a character: exactly at the limit.
    let long = "ß".repeat(MAX_NAME_BYTES / 2);
    let keys = [key(Scope::new("kind'\"", long.clone()), plan_time)];
    let lease = leased(h, &request(&job, "r'1", &keys, true)).await;
    let stored = row(h, lease.id).await;
    assert_eq!(
        (stored.job_name.as_str(), stored.scope.id.as_str()),
        (job.as_str(), long.as_str())
    );
    assert_eq!(stored.runner_id.as_deref(), Some("r'1"));

    let bad_job = unique("nul");
    let bad = keys_of("t", &["fine", "a\0b"], plan_time);
    assert_refused(h, &bad_job, "r1", &bad).await;
    assert_refused(h, &format!("{bad_job}\0"), "r1", &bad[..1]).await;
    assert!(
        rows_of(h, &bad_job).await.is_empty(),
        "nothing of a refused batch is written"
    );
}

/// A job name, scope kind, scope id and runner id of [`MAX_NAME_BYTES`]
/// each are stored together (every store can index its unique key over
/// them); one byte more in any of them, or a 10,000-character id of
/// three-byte characters, is refused as [`StoreError::InvalidInput`]
/// (never a transient error) and nothing of the batch is written.
pub async fn names_are_stored_up_to_the_limit_and_refused_past_it(h: &Harness) {
    let prefix = unique("limit");
    let job = format!("{prefix}{}", incompressible(MAX_NAME_BYTES - prefix.len()));
    let runner = incompressible(MAX_NAME_BYTES);
    let plan_time = this_minute(h).await;
    let at_limit = Scope::new(
        incompressible(MAX_NAME_BYTES),
        incompressible(MAX_NAME_BYTES),
    );
    let key_at_limit = [key(at_limit.clone(), plan_time)];
    let lease = leased(h, &request(&job, &runner, &key_at_limit, true)).await;
    let stored = row(h, lease.id).await;
    assert_eq!(
        (&stored.job_name, &stored.scope),
        (&job.as_str().into(), &at_limit)
    );
    assert_eq!(stored.runner_id.as_deref(), Some(runner.as_str()));

    let over = incompressible(MAX_NAME_BYTES + 1);
    let refused_job = unique("over");
    let fine = key(Scope::new("t", "fine"), plan_time);
    let with = |scope: Scope| [fine.clone(), key(scope, plan_time)];
    let cases: Vec<(String, String, [PlanKey; 2])> = vec![
        (
            refused_job.clone(),
            "r1".into(),
            with(Scope::new("t", over.clone())),
        ),
        (
            refused_job.clone(),
            "r1".into(),
            with(Scope::new(over.clone(), "x")),
        ),
        (
            refused_job.clone(),
            "r1".into(),
            with(Scope::new("t", "語".repeat(10_000))),
        ),
        (
            refused_job.clone(),
            over.clone(),
            with(Scope::new("t", "x")),
        ),
        (
            format!("{refused_job}{over}"),
            "r1".into(),
            with(Scope::new("t", "x")),
        ),
    ];
    for (job, runner, keys) in &cases {
        let e = assert_refused(h, job, runner, keys).await;
        assert!(!e.is_transient(), "invalid input is never transient");
        assert!(e.to_string().contains("limit"), "{e}");
    }
    assert!(
        rows_of(h, &refused_job).await.is_empty(),
        "nothing of a refused batch is written"
    );
}

/// Plan times round-trip at microsecond precision (sub-microsecond parts
/// are dropped before storing) and come back in UTC.
pub async fn plan_times_round_trip_at_microseconds(h: &Harness) {
    let job = unique("micros");
    let odd = time::macros::datetime!(2026-03-05 12:34:56.123456 UTC);
    let keys = [
        key(Scope::new("t", "a"), odd),
        key(
            Scope::new("t", "b"),
            time::macros::datetime!(1999-12-31 23:59:59.999999 UTC),
        ),
    ];
    let leases = leases(h, &request(&job, "r1", &keys, true)).await;
    for (key, lease) in keys.iter().zip(&leases) {
        assert_eq!(lease.plan_time, key.plan_time);
        let stored = row(h, lease.id).await;
        assert_eq!(stored.plan_time, key.plan_time);
        assert_eq!(stored.plan_time.offset(), time::UtcOffset::UTC);
        assert_eq!(
            stored.started_at.map(to_micros),
            stored.started_at,
            "stored instants are micros"
        );
    }
    let latest = h
        .store
        .latest_executions(&job, &[Scope::new("t", "a")])
        .await
        .unwrap();
    assert_eq!(latest[0].as_ref().unwrap().plan_time, odd);
}

/// Store time is UTC at microsecond precision and moves with the harness.
pub async fn store_time_is_utc_micros_and_controllable(h: &Harness) {
    let before = h.store.now().await.unwrap();
    assert_eq!(before.offset(), time::UtcOffset::UTC);
    assert_eq!(to_micros(before), before);
    h.time.advance(Duration::from_secs(3600));
    let after = h.store.now().await.unwrap();
    assert!(after >= before + Duration::from_secs(3600));
    assert!(
        after < before + Duration::from_secs(3600 + 600),
        "{before} -> {after}"
    );
    let _: OffsetDateTime = after;
}

/// A batch of more keys than PostgreSQL (65,535) or SQLite (32,766) binds
/// parameters in one statement: a claim, a `finish_many` and a
/// latest-execution read of that many each go through in one call, whole
/// (`docs/contract.md` §7: a replica of a million scopes claims and reads
/// in batches of any size).
pub async fn batches_past_every_parameter_limit_go_through_whole(h: &Harness) {
    const KEYS: usize = 70_000;
    let job = unique("huge_batch");
    let ids: Vec<String> = (0..KEYS).map(|i| format!("s{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let keys = keys_of("t", &ids, this_minute(h).await);
    let leases: Vec<Lease> = leases(h, &request(&job, "r1", &keys, true)).await;
    assert_eq!(leases.len(), KEYS);
    let done = Finish::success(Duration::ZERO, 0, Map::new());
    let items: Vec<(&Lease, &Finish)> = leases.iter().map(|l| (l, &done)).collect();
    let results = h.store.finish_many(&items).await;
    assert_eq!(results.len(), KEYS);
    assert!(results.iter().all(Result::is_ok), "every terminal write");
    let scopes: Vec<Scope> = keys.into_iter().map(|k| k.scope).collect();
    let views = h
        .store
        .latest_executions(&job, &scopes)
        .await
        .expect("latest executions");
    assert_eq!(views.len(), KEYS);
    assert!(
        views
            .iter()
            .all(|v| v.as_ref().is_some_and(|v| v.status == Status::Success)),
        "every scope's row, SUCCESS"
    );
}
