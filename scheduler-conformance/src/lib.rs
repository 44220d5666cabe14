//! The shared conformance suite: one `pub async fn` per guarantee of the
//! lease state machine (the contract, `docs/contract.md` §4), which every
//! [`LeaseStore`](scheduler_core::LeaseStore) implementation runs against itself, in the manner of
//! object_store's `integration` module.
//!
//! Each function takes a [`Harness`]: the store and a way to move its store
//! time forward. Capability differences between stores are parameters (e.g.
//! how many concurrent claimers to race), never `cfg` forks. Every function
//! uses job names of its own, so tests may share one database.
//!
//! [`differential`] holds stores to one another instead: random operation
//! sequences applied to several stores in lockstep.
//!
//! [`conformance_tests!`](crate::conformance_tests) expands to one
//! `#[tokio::test]` per function:
//!
//! ```text
//! scheduler_conformance::conformance_tests!(async {
//!     let clock = ManualClock::new(OffsetDateTime::now_utc());
//!     let store = MemoryLeaseStore::with_clock(Arc::new(clock.clone()));
//!     Some(Harness::new(Arc::new(store), Arc::new(clock)))
//! });
//! ```

pub mod differential;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use scheduler_core::model::{MAX_ERROR_MSG_BYTES, RESULT_TOO_LARGE_KEY};
use scheduler_core::plan::floor;
use scheduler_core::time::{to_micros, TimeControl};
use scheduler_core::StoreError;
use scheduler_core::{
    ClaimOutcome, ClaimRequest, ErrorCode, ExecutionFilter, Finish, Lease, PlanKey, ScopeSummary,
    Status,
};
use scheduler_core::{ExecutionAudit, LeaseStoreExt, Scope, MAX_NAME_BYTES};

/// A store under test and control over its store time.
#[derive(Clone)]
pub struct Harness {
    /// The store.
    pub store: Arc<dyn ExecutionAudit>,
    /// Moves the store's time forward.
    pub time: Arc<dyn TimeControl>,
}

impl Harness {
    /// A harness over `store` whose time `time` controls.
    pub fn new(store: Arc<dyn ExecutionAudit>, time: Arc<dyn TimeControl>) -> Self {
        Harness { store, time }
    }
}

const STALE: Duration = Duration::from_secs(60);

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", Uuid::new_v4().simple())
}

fn request<'a>(
    job: &'a str,
    runner: &'a str,
    keys: &'a [PlanKey],
    reentrant: bool,
) -> ClaimRequest<'a> {
    ClaimRequest {
        job_name: job,
        runner_id: runner,
        max_attempts: 3,
        stale_timeout: STALE,
        allow_stale_reentry: reentrant,
        keys,
    }
}

async fn plan_key(h: &Harness, scope: Scope) -> PlanKey {
    let now = h.store.now().await.expect("store time");
    PlanKey {
        scope,
        plan_time: floor(now, Duration::from_secs(60)),
    }
}

async fn claim_one(h: &Harness, req: &ClaimRequest<'_>) -> ClaimOutcome {
    let mut outcomes = h.store.claim(req).await.expect("claim");
    assert_eq!(outcomes.len(), 1, "one outcome per key");
    outcomes.remove(0)
}

/// Claims the one key of `req`, which must yield a lease (won, retried
/// or stolen).
async fn leased(h: &Harness, req: &ClaimRequest<'_>) -> Lease {
    match claim_one(h, req).await.lease() {
        Some(lease) => lease.clone(),
        None => panic!("expected a lease for {:?}", req.keys),
    }
}

fn ok() -> Finish {
    Finish::success(Duration::from_millis(3), 7, Map::new())
}

fn failed(retry_after: Duration) -> Finish {
    Finish::failure(
        Duration::from_millis(3),
        ErrorCode::HandlerError,
        "boom",
        retry_after,
    )
}

/// `claimers` concurrent claims of one key: exactly one lease, the others
/// conflict, and the row's runner is the winner.
pub async fn concurrent_claimers_have_one_winner(h: &Harness, claimers: usize) {
    let job = unique("race");
    let key = [plan_key(h, Scope::global()).await];
    let runners: Vec<String> = (0..claimers).map(|i| format!("runner-{i}")).collect();
    let claims = runners.iter().map(|runner| {
        let req = request(&job, runner, &key, true);
        let store = h.store.clone();
        async move { store.claim(&req).await.expect("claim").remove(0) }
    });
    let outcomes = futures::future::join_all(claims).await;
    let winners: Vec<_> = outcomes
        .iter()
        .zip(&runners)
        .filter(|(o, _)| matches!(o, ClaimOutcome::Won(_)))
        .collect();
    assert_eq!(winners.len(), 1, "exactly one winner: {outcomes:?}");
    assert!(
        outcomes
            .iter()
            .filter(|o| !matches!(o, ClaimOutcome::Won(_)))
            .all(|o| *o == ClaimOutcome::Conflicted),
        "the rest conflict"
    );
    let lease = winners[0].0.lease().unwrap();
    let row = h.store.get_execution(lease.id).await.unwrap().unwrap();
    assert_eq!(row.runner_id.as_deref(), Some(winners[0].1.as_str()));
    let rows = h
        .store
        .list_executions(&ExecutionFilter {
            job_name: Some(job.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "one row for the key");
}

/// A batch returns one outcome per key in order; claiming again conflicts;
/// a key repeated within one batch wins once.
pub async fn batch_claim_returns_outcomes_in_order(h: &Harness) {
    let job = unique("batch");
    let base = plan_key(h, Scope::global()).await.plan_time;
    let keys: Vec<PlanKey> = (0..50)
        .map(|i| PlanKey {
            scope: Scope::new("tenant", format!("t{:03}", 49 - i)),
            plan_time: base - Duration::from_secs(60 * (i % 3)),
        })
        .collect();
    let outcomes = h
        .store
        .claim(&request(&job, "r1", &keys, true))
        .await
        .unwrap();
    assert_eq!(outcomes.len(), keys.len());
    for (key, outcome) in keys.iter().zip(&outcomes) {
        let ClaimOutcome::Won(lease) = outcome else {
            panic!("fresh key should be won: {outcome:?}");
        };
        assert_eq!((&lease.scope, lease.plan_time), (&key.scope, key.plan_time));
        assert_eq!((lease.attempt, lease.max_attempts), (1, 3));
    }
    let again = h
        .store
        .claim(&request(&job, "r2", &keys, true))
        .await
        .unwrap();
    assert!(again.iter().all(|o| *o == ClaimOutcome::Conflicted));

    let dup = vec![keys[0].clone(), keys[0].clone()];
    let job2 = unique("batch_dup");
    let outcomes = h
        .store
        .claim(&request(&job2, "r1", &dup, true))
        .await
        .unwrap();
    let won = outcomes.iter().filter(|o| o.lease().is_some()).count();
    assert_eq!((outcomes.len(), won), (2, 1), "{outcomes:?}");
    assert!(h
        .store
        .claim(&request(&job2, "r1", &[], true))
        .await
        .unwrap()
        .is_empty());
}

/// A lease taken over after going stale gets a new token and attempt + 1;
/// the old holder can no longer heartbeat or finish.
pub async fn stolen_lease_is_fenced(h: &Harness) {
    let job = unique("steal");
    let key = [plan_key(h, Scope::global()).await];
    let ClaimOutcome::Won(old) = claim_one(h, &request(&job, "r1", &key, true)).await else {
        panic!("fresh claim should win");
    };
    assert_eq!(
        claim_one(h, &request(&job, "r2", &key, true)).await,
        ClaimOutcome::Conflicted,
        "a live lease is not stolen"
    );
    h.time.advance(STALE + Duration::from_secs(1));
    let ClaimOutcome::Stolen(new) = claim_one(h, &request(&job, "r2", &key, true)).await else {
        panic!("a stale lease of a reentrant job should be stolen");
    };
    assert_eq!(new.id, old.id);
    assert_ne!(new.token, old.token);
    assert_eq!(new.attempt, 2);
    assert!(matches!(
        h.store.heartbeat(&old, STALE).await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(matches!(
        h.store.finish(&old, &ok()).await,
        Err(StoreError::LeaseLost { .. })
    ));
    let row = h.store.get_execution(new.id).await.unwrap().unwrap();
    assert_eq!(row.status, Status::Running);
    assert_eq!(row.runner_id.as_deref(), Some("r2"));
    h.store
        .finish(&new, &ok())
        .await
        .expect("the new holder finishes");
}

/// A swept lease can no longer heartbeat or finish.
pub async fn swept_lease_is_fenced(h: &Harness) {
    let job = unique("swept");
    let key = [plan_key(h, Scope::global()).await];
    let lease = leased(h, &request(&job, "r1", &key, false)).await;
    h.time.advance(STALE + Duration::from_secs(1));
    assert_eq!(h.store.sweep_stale(&job, false).await.unwrap(), 1);
    assert!(matches!(
        h.store.heartbeat(&lease, STALE).await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(matches!(
        h.store.finish(&lease, &ok()).await,
        Err(StoreError::LeaseLost { .. })
    ));
    let row = h.store.get_execution(lease.id).await.unwrap().unwrap();
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
    let row = h.store.get_execution(lease.id).await.unwrap().unwrap();
    assert_eq!(row.stale_after, Some(stale_after));
    assert!(row.heartbeat_at.unwrap() >= before);
    h.time.advance(Duration::from_secs(20));
    assert_eq!(
        h.store.sweep_stale(&job, true).await.unwrap(),
        0,
        "the lease is live"
    );
    assert_eq!(
        claim_one(h, &request(&job, "r2", &key, true)).await,
        ClaimOutcome::Conflicted
    );
}

/// The sweep closes stale RUNNING rows of its job only: live leases, other
/// jobs and terminal rows are untouched.
pub async fn sweep_closes_only_stale_running_rows_of_the_job(h: &Harness) {
    let job = unique("sweep");
    let other = unique("sweep_other");
    let now = h.store.now().await.unwrap();
    let key_at = |id: &str| PlanKey {
        scope: Scope::new("tenant", id),
        plan_time: floor(now, Duration::from_secs(60)),
    };
    let stale_keys = [key_at("a"), key_at("b")];
    let done_key = [key_at("c")];
    let stale = h
        .store
        .claim(&request(&job, "r1", &stale_keys, true))
        .await
        .unwrap();
    let done = claim_one(h, &request(&job, "r1", &done_key, true)).await;
    h.store.finish(done.lease().unwrap(), &ok()).await.unwrap();
    let other_lease = claim_one(h, &request(&other, "r1", &done_key, true)).await;
    h.time.advance(STALE + Duration::from_secs(1));
    let live = claim_one(h, &request(&job, "r1", &[key_at("d")], true)).await;
    assert_eq!(h.store.sweep_stale(&job, true).await.unwrap(), 2);
    assert_eq!(
        h.store.sweep_stale(&job, true).await.unwrap(),
        0,
        "idempotent"
    );
    for outcome in &stale {
        let row = h
            .store
            .get_execution(outcome.lease().unwrap().id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (row.status, row.error_code.as_deref()),
            (Status::Failed, Some("stale_timeout"))
        );
    }
    let status_of = |o: &ClaimOutcome| {
        let id = o.lease().unwrap().id;
        let store = h.store.clone();
        async move { store.get_execution(id).await.unwrap().unwrap().status }
    };
    assert_eq!(status_of(&done).await, Status::Success);
    assert_eq!(status_of(&live).await, Status::Running);
    assert_eq!(
        status_of(&other_lease).await,
        Status::Running,
        "other job untouched"
    );
}

/// A failed plan is retried only once `next_retry_at` has passed, and the
/// retry rotates the token and clears the error.
pub async fn retry_waits_for_next_retry_at(h: &Harness) {
    let job = unique("retry");
    let key = [plan_key(h, Scope::global()).await];
    let first = leased(h, &request(&job, "r1", &key, true)).await;
    h.store
        .finish(&first, &failed(Duration::from_secs(30)))
        .await
        .unwrap();
    let row = h.store.get_execution(first.id).await.unwrap().unwrap();
    assert_eq!(row.status, Status::Failed);
    assert_eq!(row.error_code.as_deref(), Some("handler_error"));
    assert_eq!(row.error_msg.as_deref(), Some("boom"));
    assert_eq!(row.duration_ms, Some(3));
    let due = row.next_retry_at.expect("attempts remain");
    assert_eq!(due, row.finished_at.unwrap() + Duration::from_secs(30));
    assert_eq!(
        claim_one(h, &request(&job, "r2", &key, true)).await,
        ClaimOutcome::Conflicted,
        "retry not yet due"
    );
    let since = key[0].plan_time - Duration::from_secs(3600);
    assert!(h
        .store
        .retry_due(&job, since, true, 10)
        .await
        .unwrap()
        .is_empty());
    h.time.advance(Duration::from_secs(31));
    let due_list = h.store.retry_due(&job, since, true, 10).await.unwrap();
    assert_eq!(due_list.len(), 1);
    assert_eq!(due_list[0].plan_time, key[0].plan_time);
    let ClaimOutcome::Retried(second) = claim_one(h, &request(&job, "r2", &key, true)).await else {
        panic!("a due retry should be claimed");
    };
    assert_eq!((second.id, second.attempt), (first.id, 2));
    assert_ne!(second.token, first.token);
    let row = h.store.get_execution(second.id).await.unwrap().unwrap();
    assert_eq!(row.status, Status::Running);
    assert_eq!(
        (
            row.error_code,
            row.error_msg,
            row.next_retry_at,
            row.finished_at
        ),
        (None, None, None, None)
    );
}

/// A row the sweep closed is never retried automatically when the job
/// forbids stale re-entry, and is retried when it allows it.
pub async fn non_reentrant_stale_row_is_not_retried(h: &Harness) {
    for reentrant in [false, true] {
        let job = unique("non_reentrant");
        let key = [plan_key(h, Scope::global()).await];
        let lease = leased(h, &request(&job, "r1", &key, reentrant)).await;
        h.time.advance(STALE + Duration::from_secs(1));
        if !reentrant {
            assert_eq!(
                claim_one(h, &request(&job, "r2", &key, false)).await,
                ClaimOutcome::Conflicted,
                "a stale lease of a non-reentrant job is not stolen"
            );
        }
        assert_eq!(h.store.sweep_stale(&job, reentrant).await.unwrap(), 1);
        let row = h.store.get_execution(lease.id).await.unwrap().unwrap();
        let expected = if reentrant {
            None
        } else {
            Some(scheduler_core::machine::NEVER)
        };
        assert_eq!(row.next_retry_at, expected, "reentrant: {reentrant}");
        h.time.advance(Duration::from_secs(3600));
        let since = key[0].plan_time - Duration::from_secs(7200);
        let due = h.store.retry_due(&job, since, reentrant, 10).await.unwrap();
        let outcome = claim_one(h, &request(&job, "r2", &key, reentrant)).await;
        if reentrant {
            assert_eq!(due.len(), 1);
            assert!(
                matches!(outcome, ClaimOutcome::Retried(ref l) if l.id == lease.id && l.attempt == 2)
            );
        } else {
            assert!(due.is_empty(), "waits for an operator");
            assert_eq!(outcome, ClaimOutcome::Conflicted);
        }
    }
}

/// Attempts never pass `max_attempts`, through retries and takeovers; the
/// last failure leaves no `next_retry_at`.
pub async fn attempts_never_exceed_max(h: &Harness) {
    let job = unique("attempts");
    let key = [plan_key(h, Scope::global()).await];
    let mut lease = leased(h, &request(&job, "r1", &key, true)).await;
    // attempt 1 fails, attempt 2 goes stale and is stolen as attempt 3
    h.store
        .finish(&lease, &failed(Duration::ZERO))
        .await
        .unwrap();
    lease = leased(h, &request(&job, "r1", &key, true)).await;
    assert_eq!(lease.attempt, 2);
    h.time.advance(STALE + Duration::from_secs(1));
    lease = leased(h, &request(&job, "r2", &key, true)).await;
    assert_eq!(lease.attempt, 3);
    h.time.advance(STALE + Duration::from_secs(1));
    assert_eq!(
        claim_one(h, &request(&job, "r3", &key, true)).await,
        ClaimOutcome::Conflicted,
        "no steal past max_attempts"
    );
    h.store
        .finish(&lease, &failed(Duration::ZERO))
        .await
        .unwrap();
    let row = h.store.get_execution(lease.id).await.unwrap().unwrap();
    assert_eq!(
        (row.attempt, row.max_attempts, row.next_retry_at),
        (3, 3, None)
    );
    h.time.advance(Duration::from_secs(3600));
    assert_eq!(
        claim_one(h, &request(&job, "r3", &key, true)).await,
        ClaimOutcome::Conflicted,
        "no retry past max_attempts"
    );
    let since = key[0].plan_time - Duration::from_secs(7200);
    assert!(h
        .store
        .retry_due(&job, since, true, 10)
        .await
        .unwrap()
        .is_empty());
}

/// A SUCCESS row never changes again: no claim, heartbeat, finish or sweep
/// touches it.
pub async fn success_is_final(h: &Harness) {
    let job = unique("success");
    let key = [plan_key(h, Scope::global()).await];
    let lease = leased(h, &request(&job, "r1", &key, true)).await;
    let mut result = Map::new();
    result.insert("processed".into(), Value::from(7));
    h.store
        .finish(
            &lease,
            &Finish::success(Duration::from_millis(12), 7, result.clone()),
        )
        .await
        .unwrap();
    let row = h.store.get_execution(lease.id).await.unwrap().unwrap();
    assert_eq!(row.status, Status::Success);
    assert_eq!((row.rows_affected, row.duration_ms), (Some(7), Some(12)));
    assert_eq!(row.result, result);
    assert_eq!((row.error_code.as_deref(), row.next_retry_at), (None, None));
    h.time.advance(STALE * 10);
    assert_eq!(
        claim_one(h, &request(&job, "r2", &key, true)).await,
        ClaimOutcome::Conflicted
    );
    assert!(h.store.heartbeat(&lease, STALE).await.is_err());
    assert!(h
        .store
        .finish(&lease, &failed(Duration::ZERO))
        .await
        .is_err());
    assert!(h.store.finish(&lease, &ok()).await.is_err());
    assert_eq!(h.store.sweep_stale(&job, true).await.unwrap(), 0);
    assert_eq!(h.store.get_execution(lease.id).await.unwrap().unwrap(), row);
}

/// Ids are UUID v7 and tokens UUID v4; every claim mints a new token.
pub async fn ids_are_v7_and_tokens_v4(h: &Harness) {
    let job = unique("ids");
    let now = h.store.now().await.unwrap();
    let keys: Vec<PlanKey> = (0..10)
        .map(|i| PlanKey {
            scope: Scope::new("tenant", format!("{i}")),
            plan_time: floor(now, Duration::from_secs(60)),
        })
        .collect();
    let outcomes = h
        .store
        .claim(&request(&job, "r1", &keys, true))
        .await
        .unwrap();
    let mut tokens = HashSet::new();
    for outcome in &outcomes {
        let lease = outcome.lease().unwrap();
        assert_eq!(lease.id.get_version_num(), 7, "id {}", lease.id);
        assert_eq!(lease.token.get_version_num(), 4, "token {}", lease.token);
        assert!(tokens.insert(lease.token));
        let row = h.store.get_execution(lease.id).await.unwrap().unwrap();
        assert_eq!((row.id, row.lease_token), (lease.id, lease.token));
    }
}

/// Plan times round-trip at microsecond precision (sub-microsecond parts
/// are dropped before storing) and come back in UTC.
pub async fn plan_times_round_trip_at_microseconds(h: &Harness) {
    let job = unique("micros");
    let odd = time::macros::datetime!(2026-03-05 12:34:56.123456 UTC);
    let keys = [
        PlanKey {
            scope: Scope::new("t", "a"),
            plan_time: odd,
        },
        PlanKey {
            scope: Scope::new("t", "b"),
            plan_time: time::macros::datetime!(1999-12-31 23:59:59.999999 UTC),
        },
    ];
    let outcomes = h
        .store
        .claim(&request(&job, "r1", &keys, true))
        .await
        .unwrap();
    for (key, outcome) in keys.iter().zip(&outcomes) {
        let lease = outcome.lease().unwrap();
        assert_eq!(lease.plan_time, key.plan_time);
        let row = h.store.get_execution(lease.id).await.unwrap().unwrap();
        assert_eq!(row.plan_time, key.plan_time);
        assert_eq!(row.plan_time.offset(), time::UtcOffset::UTC);
        assert_eq!(
            row.started_at.map(to_micros),
            row.started_at,
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

/// The latest-execution view answers many scopes in input order: the
/// highest plan time of each, `None` for scopes without rows.
pub async fn latest_executions_view(h: &Harness) {
    let job = unique("latest");
    let base = floor(h.store.now().await.unwrap(), Duration::from_secs(60));
    let min = Duration::from_secs(60);
    let a = Scope::new("tenant", "a");
    let b = Scope::new("tenant", "b");
    let keys = [
        PlanKey {
            scope: a.clone(),
            plan_time: base - min * 2,
        },
        PlanKey {
            scope: a.clone(),
            plan_time: base - min,
        },
        PlanKey {
            scope: b.clone(),
            plan_time: base - min * 5,
        },
    ];
    let outcomes = h
        .store
        .claim(&request(&job, "r1", &keys, true))
        .await
        .unwrap();
    h.store
        .finish(outcomes[0].lease().unwrap(), &ok())
        .await
        .unwrap();
    h.store
        .finish(
            outcomes[1].lease().unwrap(),
            &failed(Duration::from_secs(5)),
        )
        .await
        .unwrap();
    // same scope ids under another job must not leak in
    let other = unique("latest_other");
    let leak = [PlanKey {
        scope: a.clone(),
        plan_time: base,
    }];
    h.store
        .claim(&request(&other, "r1", &leak, true))
        .await
        .unwrap();

    let scopes = [b.clone(), Scope::new("tenant", "none"), a.clone()];
    let views = h.store.latest_executions(&job, &scopes).await.unwrap();
    assert_eq!(views.len(), 3);
    let vb = views[0].as_ref().unwrap();
    assert_eq!(
        (vb.plan_time, vb.status, vb.attempt),
        (base - min * 5, Status::Running, 1)
    );
    assert_eq!(views[1], None);
    let va = views[2].as_ref().unwrap();
    assert_eq!((va.plan_time, va.status), (base - min, Status::Failed));
    assert_eq!((va.attempt, va.max_attempts), (1, 3));
    assert_eq!(va.error_code.as_deref(), Some("handler_error"));
    assert!(va.next_retry_at.is_some());
    assert!(h
        .store
        .latest_executions(&job, &[])
        .await
        .unwrap()
        .is_empty());
}

/// `retry_due` lists FAILED plans with their retry due inside the window,
/// oldest first, and respects its limit.
pub async fn retry_due_lists_older_failed_plans(h: &Harness) {
    let job = unique("retry_due");
    let base = floor(h.store.now().await.unwrap(), Duration::from_secs(60));
    let min = Duration::from_secs(60);
    let scope = Scope::new("tenant", "a");
    let keys: Vec<PlanKey> = (1..=4u32)
        .map(|i| PlanKey {
            scope: scope.clone(),
            plan_time: base - min * i,
        })
        .collect();
    let outcomes = h
        .store
        .claim(&request(&job, "r1", &keys, true))
        .await
        .unwrap();
    // base-1: FAILED due; base-2: FAILED not due; base-3: SUCCESS; base-4: FAILED due but outside window
    h.store
        .finish(outcomes[0].lease().unwrap(), &failed(Duration::ZERO))
        .await
        .unwrap();
    h.store
        .finish(
            outcomes[1].lease().unwrap(),
            &failed(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    h.store
        .finish(outcomes[2].lease().unwrap(), &ok())
        .await
        .unwrap();
    h.store
        .finish(outcomes[3].lease().unwrap(), &failed(Duration::ZERO))
        .await
        .unwrap();
    let since = base - min * 3;
    let due = h.store.retry_due(&job, since, true, 10).await.unwrap();
    assert_eq!(
        due.iter().map(|d| d.plan_time).collect::<Vec<_>>(),
        vec![base - min]
    );
    assert_eq!(due[0].scope, scope);
    let all = h
        .store
        .retry_due(&job, base - min * 10, true, 10)
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|d| d.plan_time).collect::<Vec<_>>(),
        vec![base - min * 4, base - min],
        "oldest first"
    );
    assert_eq!(
        h.store
            .retry_due(&job, base - min * 10, true, 1)
            .await
            .unwrap()
            .len(),
        1
    );
}

/// Error messages with NUL bytes, over-long text and multi-byte characters
/// are stored as valid, bounded text.
pub async fn error_messages_are_stored_safely(h: &Harness) {
    let job = unique("errmsg");
    let key = [plan_key(h, Scope::global()).await];
    let lease = leased(h, &request(&job, "r1", &key, true)).await;
    let msg = format!("bad\0input: {}", "日本語".repeat(10_000));
    let finish = Finish::failure(
        Duration::ZERO,
        ErrorCode::HandlerError,
        &msg,
        Duration::ZERO,
    );
    h.store
        .finish(&lease, &finish)
        .await
        .expect("the terminal write must not fail");
    let row = h.store.get_execution(lease.id).await.unwrap().unwrap();
    let stored = row.error_msg.unwrap();
    assert!(stored.starts_with("badinput: 日本語"));
    assert!(!stored.contains('\0'));
    assert!(stored.len() <= MAX_ERROR_MSG_BYTES && stored.len() > MAX_ERROR_MSG_BYTES - 4);
}

/// An oversized result still ends SUCCESS, with a marker instead of the
/// result; NUL characters inside a result are dropped.
pub async fn oversized_result_still_succeeds(h: &Harness) {
    let job = unique("big_result");
    let keys = [
        PlanKey {
            scope: Scope::new("t", "big"),
            plan_time: plan_key(h, Scope::global()).await.plan_time,
        },
        PlanKey {
            scope: Scope::new("t", "nul"),
            plan_time: plan_key(h, Scope::global()).await.plan_time,
        },
    ];
    let outcomes = h
        .store
        .claim(&request(&job, "r1", &keys, true))
        .await
        .unwrap();
    let mut big = Map::new();
    big.insert("blob".into(), Value::from("x".repeat(100_000)));
    h.store
        .finish(
            outcomes[0].lease().unwrap(),
            &Finish::success(Duration::ZERO, 1, big),
        )
        .await
        .unwrap();
    let row = h
        .store
        .get_execution(outcomes[0].lease().unwrap().id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, Status::Success);
    assert!(row.result[RESULT_TOO_LARGE_KEY].as_u64().unwrap() > 100_000);
    let mut nul = Map::new();
    nul.insert("note".into(), Value::from("a\0b"));
    h.store
        .finish(
            outcomes[1].lease().unwrap(),
            &Finish::success(Duration::ZERO, 1, nul),
        )
        .await
        .unwrap();
    let row = h
        .store
        .get_execution(outcomes[1].lease().unwrap().id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(Value::Object(row.result), serde_json::json!({"note": "ab"}));
}

/// Names and scopes with quotes, non-ASCII and long text are stored as
/// given; a NUL character is refused as invalid input and nothing is written.
pub async fn hostile_names_are_stored_or_refused_cleanly(h: &Harness) {
    let job = format!("{}'\"; DROP TABLE x; --ü", unique("hostile"));
    let now = h.store.now().await.unwrap();
    let plan_time = floor(now, Duration::from_secs(60));
    // Two bytes a character: exactly at the limit.
    let long = "ß".repeat(MAX_NAME_BYTES / 2);
    let keys = [PlanKey {
        scope: Scope::new("kind'\"", long.clone()),
        plan_time,
    }];
    let lease = leased(h, &request(&job, "r'1", &keys, true)).await;
    let row = h.store.get_execution(lease.id).await.unwrap().unwrap();
    assert_eq!(
        (row.job_name.as_str(), row.scope.id.as_str()),
        (job.as_str(), long.as_str())
    );
    assert_eq!(row.runner_id.as_deref(), Some("r'1"));

    let bad_job = unique("nul");
    let bad = [
        PlanKey {
            scope: Scope::new("t", "fine"),
            plan_time,
        },
        PlanKey {
            scope: Scope::new("t", "a\0b"),
            plan_time,
        },
    ];
    let refused = h.store.claim(&request(&bad_job, "r1", &bad, true)).await;
    assert!(
        matches!(refused, Err(StoreError::InvalidInput(_))),
        "{refused:?}"
    );
    let nul_job = format!("{bad_job}\0");
    let refused = h
        .store
        .claim(&request(&nul_job, "r1", &bad[..1], true))
        .await;
    assert!(
        matches!(refused, Err(StoreError::InvalidInput(_))),
        "{refused:?}"
    );
    let rows = h
        .store
        .list_executions(&ExecutionFilter {
            job_name: Some(bad_job),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(rows.is_empty(), "nothing of a refused batch is written");
}

/// Text that cannot be compressed: hexadecimal UUIDs, `bytes` long.
fn incompressible(bytes: usize) -> String {
    let mut text = String::new();
    while text.len() < bytes {
        text.push_str(&Uuid::new_v4().simple().to_string());
    }
    text.truncate(bytes);
    text
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
    let plan_time = floor(h.store.now().await.unwrap(), Duration::from_secs(60));
    let at_limit = Scope::new(
        incompressible(MAX_NAME_BYTES),
        incompressible(MAX_NAME_BYTES),
    );
    let key = [PlanKey {
        scope: at_limit.clone(),
        plan_time,
    }];
    let lease = leased(h, &request(&job, &runner, &key, true)).await;
    let row = h.store.get_execution(lease.id).await.unwrap().unwrap();
    assert_eq!((&row.job_name, &row.scope), (&job, &at_limit));
    assert_eq!(row.runner_id.as_deref(), Some(runner.as_str()));

    let over = incompressible(MAX_NAME_BYTES + 1);
    let refused_job = unique("over");
    let fine = PlanKey {
        scope: Scope::new("t", "fine"),
        plan_time,
    };
    let with = |scope: Scope| [fine.clone(), PlanKey { scope, plan_time }];
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
        let refused = h.store.claim(&request(job, runner, keys, true)).await;
        match refused {
            Err(e @ StoreError::InvalidInput(_)) => {
                assert!(!e.is_transient(), "invalid input is never transient");
                assert!(e.to_string().contains("limit"), "{e}");
            }
            other => panic!("expected invalid input, got {other:?}"),
        }
    }
    let rows = h
        .store
        .list_executions(&ExecutionFilter {
            job_name: Some(refused_job),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(rows.is_empty(), "nothing of a refused batch is written");
}

/// The retry read's limit is per scope: one scope's many old failures
/// never crowd another scope's due retry out of the answer, and each
/// scope's rows are its oldest.
pub async fn retry_due_limits_each_scope_on_its_own(h: &Harness) {
    let job = unique("retry_per_scope");
    let minute = Duration::from_secs(60);
    let base = floor(h.store.now().await.unwrap(), minute) - minute * 10;
    let (busy, quiet) = (Scope::new("t", "busy"), Scope::new("t", "quiet"));
    let mut keys: Vec<PlanKey> = (0..6)
        .map(|i| PlanKey {
            scope: busy.clone(),
            plan_time: base + minute * i,
        })
        .collect();
    keys.push(PlanKey {
        scope: quiet.clone(),
        plan_time: base + minute * 5,
    });
    let leases: Vec<Lease> = h
        .store
        .claim(&request(&job, "r1", &keys, true))
        .await
        .unwrap()
        .iter()
        .map(|o| o.lease().cloned().unwrap())
        .collect();
    for lease in &leases {
        h.store
            .finish(lease, &failed(Duration::ZERO))
            .await
            .unwrap();
    }
    let due = h.store.retry_due(&job, base, true, 2).await.unwrap();
    let seen: Vec<(&str, OffsetDateTime)> = due
        .iter()
        .map(|d| (d.scope.id.as_str(), d.plan_time))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("busy", base),
            ("busy", base + minute),
            ("quiet", base + minute * 5)
        ],
        "two of the busy scope's oldest, and the quiet scope's one"
    );
    assert!(due.iter().all(|d| !d.operator_retry));
}

/// A row an operator retried is due whatever its plan time (even before
/// `since`), marked as such, and counted apart from the scope's other
/// retries.
pub async fn operator_retries_are_due_whatever_their_plan_time(h: &Harness) {
    let job = unique("operator_due");
    let minute = Duration::from_secs(60);
    let now = floor(h.store.now().await.unwrap(), minute);
    let scope = Scope::new("t", "a");
    let keys: Vec<PlanKey> = [now - minute * 120, now - minute * 2, now - minute]
        .into_iter()
        .map(|plan_time| PlanKey {
            scope: scope.clone(),
            plan_time,
        })
        .collect();
    let leases: Vec<Lease> = h
        .store
        .claim(&request(&job, "r1", &keys, false))
        .await
        .unwrap()
        .iter()
        .map(|o| o.lease().cloned().unwrap())
        .collect();
    for lease in &leases {
        h.store
            .finish(lease, &failed(Duration::from_secs(3600)))
            .await
            .unwrap();
    }
    let since = now - minute * 2;
    assert!(
        h.store
            .retry_due(&job, since, false, 1)
            .await
            .unwrap()
            .is_empty(),
        "not due yet"
    );
    h.store.retry_execution(leases[0].id).await.unwrap();
    h.store.retry_execution(leases[2].id).await.unwrap();
    let due = h.store.retry_due(&job, since, false, 1).await.unwrap();
    let seen: Vec<(OffsetDateTime, bool)> = due
        .iter()
        .map(|d| (d.plan_time, d.operator_retry))
        .collect();
    assert_eq!(
        seen,
        vec![(keys[0].plan_time, true)],
        "the old one before since; the limit of one per kind keeps the oldest"
    );
    let due = h.store.retry_due(&job, since, false, 5).await.unwrap();
    let seen: Vec<(OffsetDateTime, bool)> = due
        .iter()
        .map(|d| (d.plan_time, d.operator_retry))
        .collect();
    assert_eq!(
        seen,
        vec![(keys[0].plan_time, true), (keys[2].plan_time, true)]
    );
}

/// A job whose scope provider returns one scope that can never be stored
/// (an id far over [`MAX_NAME_BYTES`]) between two good ones: the manager
/// skips that scope and runs the others in the same tick, on every store,
/// with no error reported for the job.
pub async fn manager_runs_the_storable_scopes_of_a_job(h: &Harness) {
    use scheduler_core::{JobOutput, JobSpec, Scopes};
    use scheduler_core::{Manager, ManagerOptions};

    let job = unique("poison_scope");
    let poison = incompressible(10_000);
    let scopes = Scopes::dynamic(move |_now| {
        let poison = poison.clone();
        async move {
            Ok(vec![
                Scope::new("t", "short-a"),
                Scope::new("t", poison),
                Scope::new("t", "short-b"),
            ])
        }
    });
    let manager =
        Manager::new(h.store.clone(), ManagerOptions::default()).expect("valid manager options");
    manager
        .register(
            JobSpec::new(&job, scopes, |_| async { Ok(JobOutput::rows(1)) })
                .cadence(Duration::from_secs(60)),
        )
        .expect("valid job");
    let report = manager.run_once().await;
    assert_eq!((report.succeeded, report.errors), (2, 0), "{report:?}");
    let rows = h
        .store
        .list_executions(&ExecutionFilter {
            job_name: Some(job),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut ids: Vec<&str> = rows.iter().map(|r| r.scope.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["short-a", "short-b"]);
}

/// Audit reads: get by id (unknown id is `None`) and list with filters,
/// newest plan time first, limited.
pub async fn audit_reads_filter_and_order(h: &Harness) {
    let job = unique("audit");
    let base = floor(h.store.now().await.unwrap(), Duration::from_secs(60));
    let min = Duration::from_secs(60);
    let a = Scope::new("tenant", "a");
    let keys: Vec<PlanKey> = (0..4u32)
        .map(|i| PlanKey {
            scope: if i % 2 == 0 {
                a.clone()
            } else {
                Scope::new("tenant", "b")
            },
            plan_time: base - min * i,
        })
        .collect();
    let outcomes = h
        .store
        .claim(&request(&job, "r1", &keys, true))
        .await
        .unwrap();
    h.store
        .finish(outcomes[0].lease().unwrap(), &ok())
        .await
        .unwrap();
    h.store
        .finish(outcomes[1].lease().unwrap(), &failed(Duration::ZERO))
        .await
        .unwrap();
    assert_eq!(h.store.get_execution(Uuid::now_v7()).await.unwrap(), None);
    let list = |filter: ExecutionFilter| {
        let store = h.store.clone();
        async move { store.list_executions(&filter).await.unwrap() }
    };
    let all = list(ExecutionFilter {
        job_name: Some(job.clone()),
        ..Default::default()
    })
    .await;
    assert_eq!(
        all.iter().map(|r| r.plan_time).collect::<Vec<_>>(),
        vec![base, base - min, base - min * 2, base - min * 3]
    );
    let only_a = list(ExecutionFilter {
        job_name: Some(job.clone()),
        scope: Some(a),
        ..Default::default()
    })
    .await;
    assert_eq!(only_a.len(), 2);
    let failed_rows = list(ExecutionFilter {
        job_name: Some(job.clone()),
        status: Some(Status::Failed),
        ..Default::default()
    })
    .await;
    assert_eq!(failed_rows.len(), 1);
    assert_eq!(failed_rows[0].plan_time, base - min);
    let recent = list(ExecutionFilter {
        job_name: Some(job.clone()),
        plan_time_from: Some(base - min),
        limit: Some(1),
        ..Default::default()
    })
    .await;
    assert_eq!(
        recent.iter().map(|r| r.plan_time).collect::<Vec<_>>(),
        vec![base]
    );
    let running = list(ExecutionFilter {
        job_name: Some(job),
        status: Some(Status::Running),
        ..Default::default()
    })
    .await;
    assert_eq!(running.len(), 2);
}

/// Concurrent reclaimers of one key, on the update paths: `claimers` race
/// to steal one stale lease, then to retry one failed row. Exactly one wins
/// each race, with the attempt incremented once.
pub async fn concurrent_reclaimers_have_one_winner(h: &Harness, claimers: usize) {
    let job = unique("reclaim_race");
    let key = [plan_key(h, Scope::global()).await];
    let runners: Vec<String> = (0..claimers).map(|i| format!("runner-{i}")).collect();
    let race = || {
        let claims = runners.iter().map(|runner| {
            let req = request(&job, runner, &key, true);
            let store = h.store.clone();
            async move { store.claim(&req).await.expect("claim").remove(0) }
        });
        futures::future::join_all(claims)
    };
    // The one lease of a race, which every other claimer must have lost.
    let sole_winner = |outcomes: Vec<ClaimOutcome>| {
        let won: Vec<Lease> = outcomes.iter().filter_map(|o| o.lease().cloned()).collect();
        assert_eq!(won.len(), 1, "exactly one winner: {outcomes:?}");
        assert!(outcomes
            .iter()
            .all(|o| o.lease().is_some() || *o == ClaimOutcome::Conflicted));
        (won[0].clone(), outcomes)
    };
    let first = claim_one(h, &request(&job, "first", &key, true)).await;
    let first = first.lease().cloned().expect("fresh claim wins");
    h.time.advance(STALE + Duration::from_secs(1));
    let (stolen, outcomes) = sole_winner(race().await);
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, ClaimOutcome::Stolen(_))),
        "a steal"
    );
    assert_eq!((stolen.id, stolen.attempt), (first.id, 2));
    h.store
        .finish(&stolen, &failed(Duration::ZERO))
        .await
        .unwrap();
    let (retried, outcomes) = sole_winner(race().await);
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, ClaimOutcome::Retried(_))),
        "a retry"
    );
    assert_eq!(retried.attempt, 3);
    let row = h.store.get_execution(first.id).await.unwrap().unwrap();
    assert_eq!((row.attempt, row.lease_token), (3, retried.token));
}

/// An operator's retry makes a FAILED row run again on the next claim, even
/// a non-reentrant job's `stale_timeout` row or one with no attempt left;
/// RUNNING, SUCCESS and unknown rows are refused and unchanged.
pub async fn operator_retry_repairs_failed_rows_and_refuses_others(h: &Harness) {
    // A non-reentrant job's swept row.
    let job = unique("operator_stale");
    let key = [plan_key(h, Scope::global()).await];
    let lease = leased(h, &request(&job, "dead", &key, false)).await;
    h.time.advance(STALE + Duration::from_secs(1));
    assert_eq!(h.store.sweep_stale(&job, false).await.unwrap(), 1);
    assert_eq!(
        claim_one(h, &request(&job, "r2", &key, false)).await,
        ClaimOutcome::Conflicted
    );
    let before = h.store.now().await.unwrap();
    let repaired = h.store.retry_execution(lease.id).await.unwrap();
    let after = h.store.now().await.unwrap();
    assert_eq!(repaired.status, Status::Failed);
    assert_eq!(
        repaired.error_code.as_deref(),
        Some(scheduler_core::machine::OPERATOR_RETRY_CODE)
    );
    assert!(repaired
        .error_msg
        .as_deref()
        .unwrap()
        .starts_with("operator retry after stale_timeout"));
    let due = repaired.next_retry_at.unwrap();
    assert!(due >= before && due <= after);
    assert_eq!((repaired.attempt, repaired.max_attempts), (1, 3));
    assert_eq!(
        h.store.get_execution(lease.id).await.unwrap().unwrap(),
        repaired
    );
    let ClaimOutcome::Retried(again) = claim_one(h, &request(&job, "r2", &key, false)).await else {
        panic!("the repaired row runs again");
    };
    assert_eq!(again.attempt, 2);
    // RUNNING and SUCCESS rows are refused, unchanged.
    let running = h.store.get_execution(again.id).await.unwrap().unwrap();
    assert!(matches!(
        h.store.retry_execution(again.id).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        h.store.get_execution(again.id).await.unwrap().unwrap(),
        running
    );
    h.store.finish(&again, &ok()).await.unwrap();
    let done = h.store.get_execution(again.id).await.unwrap().unwrap();
    assert!(matches!(
        h.store.retry_execution(again.id).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        h.store.get_execution(again.id).await.unwrap().unwrap(),
        done
    );
    let unknown = Uuid::now_v7();
    assert!(
        matches!(h.store.retry_execution(unknown).await, Err(StoreError::NotFound { id }) if id == unknown)
    );

    // An exhausted row gets one more attempt.
    let job = unique("operator_exhausted");
    let key = [plan_key(h, Scope::global()).await];
    let mut lease = leased(h, &request(&job, "r1", &key, true)).await;
    for _ in 0..2 {
        h.store
            .finish(&lease, &failed(Duration::ZERO))
            .await
            .unwrap();
        lease = leased(h, &request(&job, "r1", &key, true)).await;
    }
    h.store
        .finish(&lease, &failed(Duration::ZERO))
        .await
        .unwrap();
    assert_eq!(
        claim_one(h, &request(&job, "r1", &key, true)).await,
        ClaimOutcome::Conflicted
    );
    let repaired = h.store.retry_execution(lease.id).await.unwrap();
    assert_eq!((repaired.attempt, repaired.max_attempts), (3, 4));
    let ClaimOutcome::Retried(last) = claim_one(h, &request(&job, "r1", &key, true)).await else {
        panic!("one more attempt is granted");
    };
    assert_eq!((last.attempt, last.max_attempts), (4, 4));
}

/// Pruning deletes terminal rows finished before the cutoff, at most
/// `limit` per call, oldest first; a dry run counts without deleting;
/// RUNNING rows and newer rows stay.
pub async fn prune_deletes_only_old_terminal_rows(h: &Harness) {
    let job = unique("prune");
    let base = floor(h.store.now().await.unwrap(), Duration::from_secs(60));
    let key = |id: &str| PlanKey {
        scope: Scope::new("t", id),
        plan_time: base,
    };
    let old_keys = [key("old_ok"), key("old_failed"), key("old_running")];
    let old = h
        .store
        .claim(&request(&job, "r1", &old_keys, true))
        .await
        .unwrap();
    h.store
        .finish(old[0].lease().unwrap(), &ok())
        .await
        .unwrap();
    h.time.advance(Duration::from_secs(1));
    h.store
        .finish(old[1].lease().unwrap(), &failed(Duration::ZERO))
        .await
        .unwrap();
    h.time.advance(Duration::from_secs(3600));
    let cutoff = h.store.now().await.unwrap();
    h.time.advance(Duration::from_secs(1));
    let fresh = claim_one(h, &request(&job, "r1", &[key("new_ok")], true)).await;
    h.store.finish(fresh.lease().unwrap(), &ok()).await.unwrap();
    let mine = |store: Arc<dyn ExecutionAudit>, job: String| async move {
        let filter = ExecutionFilter {
            job_name: Some(job),
            ..Default::default()
        };
        let mut ids: Vec<String> = store
            .list_executions(&filter)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.scope.id)
            .collect();
        ids.sort();
        ids
    };
    // Other rows of this store (other tests' jobs) may be old too, so count
    // only this job's.
    let counted = h.store.prune_finished(cutoff, 1, true).await.unwrap();
    assert!(
        counted >= 2,
        "the dry run counts both old terminal rows: {counted}"
    );
    assert_eq!(
        mine(h.store.clone(), job.clone()).await.len(),
        4,
        "a dry run deletes nothing"
    );
    assert!(
        h.store.prune_finished(cutoff, 1, false).await.unwrap() <= 1,
        "at most `limit` per call"
    );
    while h.store.prune_finished(cutoff, 1, false).await.unwrap() > 0 {}
    assert_eq!(
        mine(h.store.clone(), job.clone()).await,
        vec!["new_ok".to_owned(), "old_running".to_owned()]
    );
    assert_eq!(h.store.prune_finished(cutoff, 10, true).await.unwrap(), 0);
}

/// Scope summaries: one per (job, scope), in order, equal to
/// [`ScopeSummary::of_rows`] over the scope's rows.
pub async fn scope_summaries_describe_each_scope(h: &Harness) {
    let job = unique("summary");
    let base = floor(h.store.now().await.unwrap(), Duration::from_secs(60));
    let min = Duration::from_secs(60);
    let (a, b) = (Scope::new("tenant", "a"), Scope::new("tenant", "b"));
    let at = |scope: &Scope, back: u32| PlanKey {
        scope: scope.clone(),
        plan_time: base - min * back,
    };
    // a: SUCCESS (5 back), FAILED retry pending (4), FAILED exhausted (3),
    //    stale_timeout (2, swept), RUNNING stale (1, after the sweep), RUNNING live (0)
    let keys = [at(&a, 5), at(&a, 4), at(&a, 3), at(&a, 2)];
    let leases: Vec<Lease> = h
        .store
        .claim(&request(&job, "r1", &keys, true))
        .await
        .unwrap()
        .iter()
        .map(|o| o.lease().cloned().unwrap())
        .collect();
    h.store.finish(&leases[0], &ok()).await.unwrap();
    h.store
        .finish(&leases[1], &failed(Duration::from_secs(7200)))
        .await
        .unwrap();
    let mut exhausted = leases[2].clone();
    for _ in 0..2 {
        h.store
            .finish(&exhausted, &failed(Duration::ZERO))
            .await
            .unwrap();
        exhausted = leased(h, &request(&job, "r1", &[at(&a, 3)], true)).await;
    }
    h.store
        .finish(&exhausted, &failed(Duration::ZERO))
        .await
        .unwrap();
    h.time.advance(STALE + Duration::from_secs(1));
    assert_eq!(
        h.store.sweep_stale(&job, true).await.unwrap(),
        1,
        "at(a, 2) is closed"
    );
    let stale = claim_one(h, &request(&job, "r1", &[at(&a, 1)], true)).await;
    h.time.advance(STALE + Duration::from_secs(1));
    let live = claim_one(h, &request(&job, "r1", &[at(&a, 0)], true)).await;
    let b_lease = claim_one(h, &request(&job, "r1", &[at(&b, 9)], true)).await;
    h.store
        .finish(b_lease.lease().unwrap(), &ok())
        .await
        .unwrap();
    assert!(stale.lease().is_some() && live.lease().is_some());

    let now = h.store.now().await.unwrap();
    let summaries = h.store.scope_summaries(Some(&job)).await.unwrap();
    assert_eq!(summaries.len(), 2);
    let sa = &summaries[0];
    assert_eq!((&sa.job_name, &sa.scope), (&job, &a));
    assert_eq!(
        (sa.latest.plan_time, sa.latest.status),
        (base, Status::Running)
    );
    assert_eq!(sa.last_success_plan_time, Some(base - min * 5));
    assert!(sa.last_success_finished_at.is_some());
    assert_eq!((sa.running, sa.stale), (1, 1));
    assert_eq!(
        (sa.retry_pending, sa.exhausted, sa.stale_timeout),
        (1, 1, 1)
    );
    assert!(sa.next_retry_at.unwrap() > now);
    assert_eq!(summaries[1].scope, b);
    assert_eq!(summaries[1].latest.status, Status::Success);
    for summary in &summaries {
        let filter = ExecutionFilter {
            job_name: Some(job.clone()),
            scope: Some(summary.scope.clone()),
            ..Default::default()
        };
        let rows = h.store.list_executions(&filter).await.unwrap();
        assert_eq!(Some(summary), ScopeSummary::of_rows(&rows, now).as_ref());
    }
    let all = h.store.scope_summaries(None).await.unwrap();
    assert!(all
        .windows(2)
        .all(|w| (&w[0].job_name, &w[0].scope) < (&w[1].job_name, &w[1].scope)));
    assert!(all.iter().filter(|s| s.job_name == job).count() == 2);
}

/// A batch of terminal writes gives each lease exactly what `finish` would:
/// live leases are written, a stolen lease's old token and a lease written
/// earlier in the same batch are `LeaseLost`, and the others are unaffected.
pub async fn finish_many_guards_each_lease(h: &Harness) {
    let job = unique("finish_many");
    let base = floor(h.store.now().await.unwrap(), Duration::from_secs(60));
    let keys: Vec<PlanKey> = ["ok", "failed", "stolen"]
        .iter()
        .map(|id| PlanKey {
            scope: Scope::new("t", *id),
            plan_time: base,
        })
        .collect();
    let leases: Vec<Lease> = h
        .store
        .claim(&request(&job, "r1", &keys, true))
        .await
        .unwrap()
        .iter()
        .map(|o| o.lease().cloned().unwrap())
        .collect();
    // Keep the first two alive; let the third go stale and be taken over.
    h.time.advance(STALE - Duration::from_secs(5));
    for lease in &leases[..2] {
        h.store.heartbeat(lease, STALE).await.unwrap();
    }
    h.time.advance(Duration::from_secs(10));
    let thief = claim_one(h, &request(&job, "r2", &keys[2..], true)).await;
    assert!(matches!(thief, ClaimOutcome::Stolen(_)));
    let (success, failure) = (ok(), failed(Duration::from_secs(30)));
    let items = [
        (&leases[0], &success),
        (&leases[1], &failure),
        (&leases[2], &success),
        (&leases[0], &failure),
    ];
    let results = h.store.finish_many(&items).await;
    assert_eq!(results.len(), 4, "one result per item");
    assert!(results[0].is_ok() && results[1].is_ok(), "{results:?}");
    assert!(
        matches!(results[2], Err(StoreError::LeaseLost { .. })),
        "{results:?}"
    );
    assert!(
        matches!(results[3], Err(StoreError::LeaseLost { .. })),
        "{results:?}"
    );
    let status = |id| {
        let store = h.store.clone();
        async move { store.get_execution(id).await.unwrap().unwrap() }
    };
    assert_eq!(status(leases[0].id).await.status, Status::Success);
    let failed_row = status(leases[1].id).await;
    assert_eq!(
        (failed_row.status, failed_row.error_msg.as_deref()),
        (Status::Failed, Some("boom"))
    );
    assert!(failed_row.next_retry_at.is_some());
    let stolen_row = status(leases[2].id).await;
    assert_eq!(
        (stolen_row.status, stolen_row.runner_id.as_deref()),
        (Status::Running, Some("r2"))
    );
    assert!(h.store.finish_many(&[]).await.is_empty());
}

/// `max_attempts` below 1 is refused as invalid input; nothing is written.
pub async fn claims_with_no_attempt_budget_are_refused(h: &Harness) {
    let job = unique("no_budget");
    let key = [plan_key(h, Scope::global()).await];
    let mut req = request(&job, "r1", &key, true);
    req.max_attempts = 0;
    assert!(matches!(
        h.store.claim(&req).await,
        Err(StoreError::InvalidInput(_))
    ));
    let filter = ExecutionFilter {
        job_name: Some(job),
        ..Default::default()
    };
    assert!(h.store.list_executions(&filter).await.unwrap().is_empty());
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

/// A manager started while its store is unavailable must keep ticking
/// (backing off, capped), neither exit nor panic, and run its job once the
/// store is back. The caller makes `store` unavailable before the call (a
/// server that is not up, a file another program keeps locked, ...);
/// `end_outage` makes it available again. Not part of
/// [`conformance_tests!`](crate::conformance_tests): how to cause an outage
/// depends on the store.
///
/// The outage ends once the manager has begun at least three ticks against
/// the unavailable store; the job must then run within a minute.
pub async fn manager_rides_out_a_store_down_at_start(
    store: Arc<dyn ExecutionAudit>,
    end_outage: impl std::future::Future<Output = ()>,
) {
    use scheduler_core::store::CountingStore;
    use scheduler_core::{JobOutput, JobSpec, Scopes};
    use scheduler_core::{Manager, ManagerOptions};

    let job = unique("down_at_start");
    let counting = Arc::new(CountingStore::new(store.clone()));
    let manager = Manager::new(
        counting.clone(),
        ManagerOptions {
            tick_interval: Duration::from_millis(50),
            ..Default::default()
        },
    )
    .expect("valid manager options");
    manager
        .register(
            JobSpec::new(&job, Scopes::global(), |_| async { Ok(JobOutput::rows(1)) })
                .cadence(Duration::from_secs(1)),
        )
        .expect("valid job");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        let report = manager
            .run(async {
                let _ = stopped.await;
            })
            .await;
        (manager, report)
    });

    // Every tick begins by reading store time.
    let mut ticks = 0;
    wait_for("three ticks against the unavailable store", || {
        ticks += counting.take().get("now").copied().unwrap_or(0);
        async move { ticks >= 3 }
    })
    .await;
    assert!(
        !running.is_finished(),
        "the manager gave up while the store was down"
    );
    end_outage.await;

    let filter = ExecutionFilter {
        job_name: Some(job.clone()),
        status: Some(Status::Success),
        ..Default::default()
    };
    wait_for("the job to run once the store is back", || {
        let (store, filter) = (store.clone(), filter.clone());
        async move {
            store
                .list_executions(&filter)
                .await
                .is_ok_and(|rows| !rows.is_empty())
        }
    })
    .await;
    stop.send(()).expect("the manager is running");
    let (_manager, report) = running.await.expect("the manager did not panic");
    assert!(report.succeeded >= 1, "{report:?}");
    assert!(report.errors >= 1, "the outage was not seen: {report:?}");
}

/// Polls `done` every 10 ms (real time) until it holds; panics after a
/// minute naming `what`.
async fn wait_for<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !done().await {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Expands to one `#[tokio::test]` per conformance function. `$setup` is an
/// expression of type `impl Future<Output = Option<Harness>>`, evaluated
/// afresh for each test; `None` means the backend is unavailable and the
/// setup has already reported why (the test returns without running).
#[macro_export]
macro_rules! conformance_tests {
    ($setup:expr) => {
        $crate::conformance_tests!(@one $setup, concurrent_claimers_have_one_winner, 16);
        $crate::conformance_tests!(@one $setup, concurrent_reclaimers_have_one_winner, 16);
        $crate::conformance_tests!(@each $setup;
            batch_claim_returns_outcomes_in_order,
            stolen_lease_is_fenced,
            swept_lease_is_fenced,
            heartbeat_extends_the_lease,
            sweep_closes_only_stale_running_rows_of_the_job,
            retry_waits_for_next_retry_at,
            non_reentrant_stale_row_is_not_retried,
            attempts_never_exceed_max,
            success_is_final,
            ids_are_v7_and_tokens_v4,
            plan_times_round_trip_at_microseconds,
            latest_executions_view,
            retry_due_lists_older_failed_plans,
            error_messages_are_stored_safely,
            oversized_result_still_succeeds,
            hostile_names_are_stored_or_refused_cleanly,
            names_are_stored_up_to_the_limit_and_refused_past_it,
            retry_due_limits_each_scope_on_its_own,
            operator_retries_are_due_whatever_their_plan_time,
            manager_runs_the_storable_scopes_of_a_job,
            audit_reads_filter_and_order,
            operator_retry_repairs_failed_rows_and_refuses_others,
            prune_deletes_only_old_terminal_rows,
            scope_summaries_describe_each_scope,
            claims_with_no_attempt_budget_are_refused,
            finish_many_guards_each_lease,
            store_time_is_utc_micros_and_controllable
        );
    };
    (@one $setup:expr, $name:ident, $($arg:expr),*) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            if let Some(harness) = $setup.await {
                $crate::$name(&harness, $($arg),*).await;
            }
        }
    };
    (@each $setup:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(harness) = $setup.await {
                    $crate::$name(&harness).await;
                }
            }
        )*
    };
}
