//! Claims: one winner among racing claimers, batches answered key by key,
//! the ids and tokens a claim mints, refused budgets, and the
//! latest-execution view that planning reads back (`docs/contract.md` §4).

use std::collections::HashSet;
use std::time::Duration;

use scheduler_core::{ClaimOutcome, Lease, PlanKey, Scope, Status, StoreError};

use crate::fixtures::{
    claim, claim_one, failed, finish, key, ok, plan_key, race, request, row, rows_of, runners,
    this_minute, unique, Harness, MINUTE, PAST_STALE,
};

/// `claimers` concurrent claims of one key: exactly one lease, the others
/// conflict, and the row's runner is the winner.
pub async fn concurrent_claimers_have_one_winner(h: &Harness, claimers: usize) {
    let job = unique("race");
    let key = [plan_key(h, Scope::global()).await];
    let runners = runners(claimers);
    let outcomes = race(h, &job, &key, &runners).await;
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
    let row = row(h, lease.id).await;
    assert_eq!(row.runner_id.as_deref(), Some(winners[0].1.as_str()));
    assert_eq!(rows_of(h, &job).await.len(), 1, "one row for the key");
}

/// Concurrent reclaimers of one key, on the update paths: `claimers` race
/// to steal one stale lease, then to retry one failed row. Exactly one wins
/// each race, with the attempt incremented once.
pub async fn concurrent_reclaimers_have_one_winner(h: &Harness, claimers: usize) {
    let job = unique("reclaim_race");
    let key = [plan_key(h, Scope::global()).await];
    let runners = runners(claimers);
    // The one lease of a race, which every other claimer must have lost,
    // and which `how` (a steal, a retry) must have won.
    let sole_winner = |outcomes: Vec<ClaimOutcome>, how: fn(&ClaimOutcome) -> bool, what| {
        let won: Vec<Lease> = outcomes.iter().filter_map(|o| o.lease().cloned()).collect();
        assert_eq!(won.len(), 1, "exactly one winner: {outcomes:?}");
        assert!(outcomes
            .iter()
            .all(|o| o.lease().is_some() || *o == ClaimOutcome::Conflicted));
        assert!(outcomes.iter().any(how), "{what}");
        won[0].clone()
    };
    let first = claim_one(h, &request(&job, "first", &key, true)).await;
    let first = first.lease().cloned().expect("fresh claim wins");
    h.time.advance(PAST_STALE);
    let stolen = sole_winner(
        race(h, &job, &key, &runners).await,
        |o| matches!(o, ClaimOutcome::Stolen(_)),
        "a steal",
    );
    assert_eq!((stolen.id, stolen.attempt), (first.id, 2));
    finish(h, &stolen, &failed(Duration::ZERO)).await;
    let retried = sole_winner(
        race(h, &job, &key, &runners).await,
        |o| matches!(o, ClaimOutcome::Retried(_)),
        "a retry",
    );
    assert_eq!(retried.attempt, 3);
    let row = row(h, first.id).await;
    assert_eq!((row.attempt, row.lease_token), (3, retried.token));
}

/// A batch returns one outcome per key in order; claiming again conflicts;
/// a key repeated within one batch wins once.
pub async fn batch_claim_returns_outcomes_in_order(h: &Harness) {
    let job = unique("batch");
    let base = this_minute(h).await;
    let keys: Vec<PlanKey> = (0..50)
        .map(|i| {
            key(
                Scope::new("tenant", format!("t{:03}", 49 - i)),
                base - MINUTE * (i % 3),
            )
        })
        .collect();
    let outcomes = claim(h, &request(&job, "r1", &keys, true)).await;
    assert_eq!(outcomes.len(), keys.len());
    for (key, outcome) in keys.iter().zip(&outcomes) {
        let ClaimOutcome::Won(lease) = outcome else {
            panic!("fresh key should be won: {outcome:?}");
        };
        assert_eq!((&lease.scope, lease.plan_time), (&key.scope, key.plan_time));
        assert_eq!((lease.attempt, lease.max_attempts), (1, 3));
    }
    let again = claim(h, &request(&job, "r2", &keys, true)).await;
    assert!(again.iter().all(|o| *o == ClaimOutcome::Conflicted));

    let dup = vec![keys[0].clone(), keys[0].clone()];
    let job2 = unique("batch_dup");
    let outcomes = claim(h, &request(&job2, "r1", &dup, true)).await;
    let won = outcomes.iter().filter(|o| o.lease().is_some()).count();
    assert_eq!((outcomes.len(), won), (2, 1), "{outcomes:?}");
    assert!(claim(h, &request(&job2, "r1", &[], true)).await.is_empty());
}

/// Ids are UUID v7 and tokens UUID v4; every claim mints a new token.
pub async fn ids_are_v7_and_tokens_v4(h: &Harness) {
    let job = unique("ids");
    let plan_time = this_minute(h).await;
    let keys: Vec<PlanKey> = (0..10)
        .map(|i| key(Scope::new("tenant", format!("{i}")), plan_time))
        .collect();
    let outcomes = claim(h, &request(&job, "r1", &keys, true)).await;
    let mut tokens = HashSet::new();
    for outcome in &outcomes {
        let lease = outcome.lease().unwrap();
        assert_eq!(lease.id.get_version_num(), 7, "id {}", lease.id);
        assert_eq!(lease.token.get_version_num(), 4, "token {}", lease.token);
        assert!(tokens.insert(lease.token));
        let row = row(h, lease.id).await;
        assert_eq!((row.id, row.lease_token), (lease.id, lease.token));
    }
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
    assert!(rows_of(h, &job).await.is_empty());
}

/// The latest-execution view answers many scopes in input order: the
/// highest plan time of each, `None` for scopes without rows.
pub async fn latest_executions_view(h: &Harness) {
    let job = unique("latest");
    let base = this_minute(h).await;
    let a = Scope::new("tenant", "a");
    let b = Scope::new("tenant", "b");
    let keys = [
        key(a.clone(), base - MINUTE * 2),
        key(a.clone(), base - MINUTE),
        key(b.clone(), base - MINUTE * 5),
    ];
    let outcomes = claim(h, &request(&job, "r1", &keys, true)).await;
    finish(h, outcomes[0].lease().unwrap(), &ok()).await;
    finish(
        h,
        outcomes[1].lease().unwrap(),
        &failed(Duration::from_secs(5)),
    )
    .await;
    // same scope ids under another job must not leak in
    let other = unique("latest_other");
    let leak = [key(a.clone(), base)];
    claim(h, &request(&other, "r1", &leak, true)).await;

    let scopes = [b.clone(), Scope::new("tenant", "none"), a.clone()];
    let views = h.store.latest_executions(&job, &scopes).await.unwrap();
    assert_eq!(views.len(), 3);
    let vb = views[0].as_ref().unwrap();
    assert_eq!(
        (vb.plan_time, vb.status, vb.attempt),
        (base - MINUTE * 5, Status::Running, 1)
    );
    assert_eq!(views[1], None);
    let va = views[2].as_ref().unwrap();
    assert_eq!((va.plan_time, va.status), (base - MINUTE, Status::Failed));
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
