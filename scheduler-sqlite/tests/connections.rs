//! Several stores (so several connections, as several processes would have)
//! on one file race for the same keys: `BEGIN IMMEDIATE` serialises the
//! batches, so each key has exactly one winner and nobody sees an error.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use scheduler_core::{ClaimOutcome, ClaimRequest, LeaseStore, PlanKey, Scope};
use scheduler_sqlite::SqliteLeaseStore;

const STORES: usize = 6;
const KEYS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_connections_race_for_each_key_and_exactly_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("race.db");
    let mut stores = Vec::new();
    for _ in 0..STORES {
        stores.push(Arc::new(SqliteLeaseStore::open(&path).await.unwrap()));
    }
    let plan_time = stores[0].now().await.unwrap();
    let keys: Vec<PlanKey> = (0..KEYS)
        .map(|i| PlanKey {
            scope: Scope::new("tenant", format!("t{i:03}")),
            plan_time,
        })
        .collect();
    let claims = stores.iter().enumerate().map(|(n, store)| {
        // Each store walks the keys from a different starting point, so the
        // batches interleave in every order the lock allows.
        let mut mine = keys.clone();
        mine.rotate_left(n * KEYS / STORES);
        let store = store.clone();
        tokio::spawn(async move {
            let runner = format!("store-{n}");
            let request = ClaimRequest {
                finishing: &[],
                steering: scheduler_core::model::Steering::NONE,
                job_name: "race",
                runner_id: &runner,
                max_attempts: 3,
                stale_timeout: Duration::from_secs(60),
                allow_stale_reentry: true,
                keys: &mine,
            };
            let outcomes = store.claim(&request).await.expect("no store sees an error");
            mine.into_iter().zip(outcomes).collect::<Vec<_>>()
        })
    });
    let mut winners: HashMap<Scope, usize> = HashMap::new();
    for result in join_all(claims).await {
        for (key, outcome) in result.unwrap() {
            match outcome {
                ClaimOutcome::Won(lease) => {
                    assert_eq!(lease.scope, key.scope);
                    *winners.entry(key.scope).or_default() += 1;
                }
                ClaimOutcome::Conflicted => {}
                other => panic!("a fresh key is won or conflicts: {other:?}"),
            }
        }
    }
    assert_eq!(winners.len(), KEYS, "every key has a winner");
    assert!(
        winners.values().all(|&n| n == 1),
        "and only one: {winners:?}"
    );
}
