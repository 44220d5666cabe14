//! Fencing: a lease taken over or swept can no longer heartbeat or
//! finish, a heartbeat keeps a lease live, the sweep closes only what is
//! stale, a success is final, and a batch of terminal writes guards each
//! lease on its own (`docs/contract.md` §4).

use std::time::Duration;

use serde_json::{Map, Value};

use scheduler_core::{ClaimOutcome, Finish, LeaseStoreExt, Scope, Status};

use crate::fixtures::{
    assert_conflicts, assert_lease_lost, claim_one, failed, finish, finish_a_mixed_batch, key,
    keys_of, leased, leases, ok, plan_key, request, row, sweep, swept, this_minute, unique,
    Harness, PAST_STALE, STALE,
};

/// A lease taken over after going stale gets a new token and attempt + 1;
/// the old holder can no longer heartbeat or finish.
pub async fn stolen_lease_is_fenced(h: &Harness) {
    let job = unique("steal");
    let key = [plan_key(h, Scope::global()).await];
    let ClaimOutcome::Won(old) = claim_one(h, &request(&job, "r1", &key, true)).await else {
        panic!("fresh claim should win");
    };
    assert_conflicts(
        h,
        &request(&job, "r2", &key, true),
        "a live lease is not stolen",
    )
    .await;
    h.time.advance(PAST_STALE);
    let ClaimOutcome::Stolen(new) = claim_one(h, &request(&job, "r2", &key, true)).await else {
        panic!("a stale lease of a reentrant job should be stolen");
    };
    assert_eq!(new.id, old.id);
    assert_ne!(new.token, old.token);
    assert_eq!(new.attempt, 2);
    assert_lease_lost(h.store.heartbeat(&old, STALE).await);
    assert_lease_lost(h.store.finish(&old, &ok()).await);
    let row = row(h, new.id).await;
    assert_eq!(row.status, Status::Running);
    assert_eq!(row.runner_id.as_deref(), Some("r2"));
    finish(h, &new, &ok()).await;
}

/// A swept lease can no longer heartbeat or finish.
pub async fn swept_lease_is_fenced(h: &Harness) {
    let (_, lease) = swept(h, &unique("swept"), "r1").await;
    assert_lease_lost(h.store.heartbeat(&lease, STALE).await);
    assert_lease_lost(h.store.finish(&lease, &ok()).await);
    let row = row(h, lease.id).await;
    assert_eq!(row.status, Status::Failed);
    assert_eq!(row.error_code.as_deref(), Some("stale_timeout"));
    assert_eq!(
        row.next_retry_at,
        Some(scheduler_core::machine::NEVER),
        "a non-reentrant job's swept row is never due by itself"
    );
    assert!(row.finished_at.is_some());
}

/// A heartbeat moves `stale_after` to store time + `stale_timeout`, which
/// keeps the lease from being swept or stolen.
pub async fn heartbeat_extends_the_lease(h: &Harness) {
    let job = unique("heartbeat");
    let key = [plan_key(h, Scope::global()).await];
    let lease = leased(h, &request(&job, "r1", &key, true)).await;
    h.time.advance(STALE - Duration::from_secs(10));
    let before = h.store.now().await.unwrap();
    let stale_after = h.store.heartbeat(&lease, STALE).await.unwrap();
    let after = h.store.now().await.unwrap();
    assert!(stale_after >= before + STALE && stale_after <= after + STALE);
    assert!(stale_after > lease.stale_after);
    let row = row(h, lease.id).await;
    assert_eq!(row.stale_after, Some(stale_after));
    assert!(row.heartbeat_at.unwrap() >= before);
    h.time.advance(Duration::from_secs(20));
    assert_eq!(sweep(h, &job, true).await, 0, "the lease is live");
    assert_conflicts(h, &request(&job, "r2", &key, true), "the lease is live").await;
}

/// The sweep closes stale RUNNING rows of its job only: live leases, other
/// jobs and terminal rows are untouched.
pub async fn sweep_closes_only_stale_running_rows_of_the_job(h: &Harness) {
    let job = unique("sweep");
    let other = unique("sweep_other");
    let plan_time = this_minute(h).await;
    let stale_keys = keys_of("tenant", &["a", "b"], plan_time);
    let done_key = keys_of("tenant", &["c"], plan_time);
    let stale = leases(h, &request(&job, "r1", &stale_keys, true)).await;
    let done = leased(h, &request(&job, "r1", &done_key, true)).await;
    finish(h, &done, &ok()).await;
    let other_lease = leased(h, &request(&other, "r1", &done_key, true)).await;
    h.time.advance(PAST_STALE);
    let live_key = [key(Scope::new("tenant", "d"), plan_time)];
    let live = leased(h, &request(&job, "r1", &live_key, true)).await;
    assert_eq!(sweep(h, &job, true).await, 2);
    assert_eq!(sweep(h, &job, true).await, 0, "idempotent");
    for lease in &stale {
        let row = row(h, lease.id).await;
        assert_eq!(
            (row.status, row.error_code.as_deref()),
            (Status::Failed, Some("stale_timeout"))
        );
    }
    assert_eq!(row(h, done.id).await.status, Status::Success);
    assert_eq!(row(h, live.id).await.status, Status::Running);
    assert_eq!(
        row(h, other_lease.id).await.status,
        Status::Running,
        "other job untouched"
    );
}

/// A SUCCESS row never changes again: no claim, heartbeat, finish or sweep
/// touches it.
pub async fn success_is_final(h: &Harness) {
    let job = unique("success");
    let key = [plan_key(h, Scope::global()).await];
    let lease = leased(h, &request(&job, "r1", &key, true)).await;
    let mut result = Map::new();
    result.insert("processed".into(), Value::from(7));
    let success = Finish::success(Duration::from_millis(12), 7, result.clone());
    finish(h, &lease, &success).await;
    let stored = row(h, lease.id).await;
    assert_eq!(stored.status, Status::Success);
    assert_eq!(
        (stored.rows_affected, stored.duration_ms),
        (Some(7), Some(12))
    );
    assert_eq!(stored.result, result);
    assert_eq!(
        (stored.error_code.as_deref(), stored.next_retry_at),
        (None, None)
    );
    h.time.advance(STALE * 10);
    assert_conflicts(h, &request(&job, "r2", &key, true), "a success is final").await;
    assert!(h.store.heartbeat(&lease, STALE).await.is_err());
    assert!(h
        .store
        .finish(&lease, &failed(Duration::ZERO))
        .await
        .is_err());
    assert!(h.store.finish(&lease, &ok()).await.is_err());
    assert_eq!(sweep(h, &job, true).await, 0);
    assert_eq!(row(h, lease.id).await, stored);
}

/// A batch of terminal writes gives each lease exactly what `finish` would:
/// live leases are written, a stolen lease's old token and a lease written
/// earlier in the same batch are `LeaseLost`, and the others are unaffected.
pub async fn finish_many_guards_each_lease(h: &Harness) {
    let job = unique("finish_many");
    let (leases, _) = finish_a_mixed_batch(h, &job).await;
    assert_eq!(row(h, leases[0].id).await.status, Status::Success);
    let failed_row = row(h, leases[1].id).await;
    assert_eq!(
        (failed_row.status, failed_row.error_msg.as_deref()),
        (Status::Failed, Some("boom"))
    );
    assert!(failed_row.next_retry_at.is_some());
    let stolen_row = row(h, leases[2].id).await;
    assert_eq!(
        (stolen_row.status, stolen_row.runner_id.as_deref()),
        (Status::Running, Some("r2"))
    );
    assert!(h.store.finish_many(&[]).await.is_empty());
}
