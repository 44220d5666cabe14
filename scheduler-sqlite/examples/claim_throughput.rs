//! Claims per second for a 1,000-scope tick on a database file: one batch
//! claim of 1,000 fresh keys (one IMMEDIATE transaction), the same batch
//! again (all conflicts), and 1,000 finishes, one call each and then (on
//! a second 1,000-lease batch) one `finish_many` call, which is one
//! IMMEDIATE transaction; compared, in the same run, with claiming the same
//! number of keys one call each.
//!
//! ```text
//! cargo run --release -p scheduler-sqlite --example claim_throughput [ROUNDS]
//! ```

use scheduler_core::LeaseStoreExt as _;
use std::time::{Duration, Instant};

use futures::future::try_join_all;
use scheduler_core::{
    ClaimOutcome, ClaimRequest, Finish, Lease, LeaseStore, PlanKey, Scope, StoreError,
};
use scheduler_sqlite::SqliteLeaseStore;

const SCOPES: usize = 1_000;

fn request<'a>(job: &'a str, keys: &'a [PlanKey]) -> ClaimRequest<'a> {
    ClaimRequest {
        finishing: &[],
        steering: scheduler_core::model::Steering::NONE,
        job_name: job,
        runner_id: "bench",
        max_attempts: 3,
        stale_timeout: Duration::from_secs(600),
        allow_stale_reentry: false,
        keys,
    }
}

fn per_second(n: usize, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64()
}

#[tokio::main]
async fn main() -> Result<(), StoreError> {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteLeaseStore::open(dir.path().join("bench.db")).await?;
    let scopes: Vec<Scope> = (0..SCOPES)
        .map(|i| Scope::new("tenant", format!("tenant-{i:05}")))
        .collect();
    let start = store.now().await?;

    let (mut fresh, mut again, mut finish, mut finish_many, mut single) = (
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
    );
    for round in 0..rounds {
        let plan_time = start + Duration::from_secs(60 * round as u64);
        let keys = PlanKey::each(&scopes, plan_time);

        let t = Instant::now();
        let outcomes = store.claim(&request("batch", &keys)).await?;
        fresh += t.elapsed();
        assert!(outcomes.iter().all(|o| matches!(o, ClaimOutcome::Won(_))));

        let t = Instant::now();
        let conflicts = store.claim(&request("batch", &keys)).await?;
        again += t.elapsed();
        assert!(conflicts.iter().all(|o| *o == ClaimOutcome::Conflicted));

        let done = Finish::success(Duration::from_millis(1), 1, Default::default());
        let t = Instant::now();
        try_join_all(
            outcomes
                .iter()
                .filter_map(ClaimOutcome::lease)
                .map(|l| store.finish(l, &done)),
        )
        .await?;
        finish += t.elapsed();

        // The same again on a second job, finished in one batch.
        let batched = store.claim(&request("many", &keys)).await?;
        let items: Vec<(&Lease, &Finish)> = batched
            .iter()
            .filter_map(ClaimOutcome::lease)
            .map(|l| (l, &done))
            .collect();
        assert_eq!(items.len(), SCOPES);
        let t = Instant::now();
        let results = store.finish_many(&items).await;
        finish_many += t.elapsed();
        results.into_iter().collect::<Result<Vec<()>, _>>()?;

        let t = Instant::now();
        for key in &keys {
            store
                .claim(&request("single", std::slice::from_ref(key)))
                .await?;
        }
        single += t.elapsed();
    }

    let n = SCOPES * rounds;
    println!(
        "{rounds} rounds of a {SCOPES}-scope tick on a WAL file database (synchronous=NORMAL):"
    );
    println!(
        "  batch claim, fresh keys:    {:>9.0} claims/s  ({:.1} ms per {SCOPES}-key batch)",
        per_second(n, fresh),
        fresh.as_secs_f64() * 1e3 / rounds as f64
    );
    println!(
        "  batch claim, all conflicts: {:>9.0} claims/s  ({:.1} ms per batch)",
        per_second(n, again),
        again.as_secs_f64() * 1e3 / rounds as f64
    );
    println!(
        "  finish, one call each:      {:>9.0} finishes/s",
        per_second(n, finish)
    );
    println!(
        "  finish_many, one batch:     {:>9.0} finishes/s  ({:.1} ms per {SCOPES}-lease batch, {:.1}x one call each)",
        per_second(n, finish_many),
        finish_many.as_secs_f64() * 1e3 / rounds as f64,
        finish.as_secs_f64() / finish_many.as_secs_f64()
    );
    println!(
        "  claim + finish of a tick:   {:>9.0} executions/s  (one call per finish)",
        per_second(n, fresh + finish)
    );
    println!(
        "  claim + finish_many:        {:>9.0} executions/s",
        per_second(n, fresh + finish_many)
    );
    println!(
        "  claim one key per call:     {:>9.0} claims/s  (batching is {:.1}x faster)",
        per_second(n, single),
        single.as_secs_f64() / fresh.as_secs_f64()
    );
    Ok(())
}
