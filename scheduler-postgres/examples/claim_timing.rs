//! Prints what the PostgreSQL store costs on this machine: the round trip of
//! `now()`, and batch claims, conflicting re-claims, the latest-execution
//! view and terminal writes for 1, 100 and 10,000 scopes: one lease per
//! `finish` call (serially and from 8 tasks) and all of them in one
//! `finish_many` call.
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo run --release -p scheduler-postgres --example claim_timing [POLICY]
//! ```
//!
//! POLICY is the claims' overlap policy (`allow_all` by default, which
//! weighs no live run; `buffer_all` makes every claim read the job's live
//! runs under the job's exclusive claim lock: after the fresh claim of n
//! scopes, the conflicting one reads n live runs).
//!
//! It works in a schema of its own (`sched_timing_<uuid>`), dropped at the
//! end. Numbers are printed, never asserted: they are for the notes.

use scheduler_core::LeaseStoreExt as _;
use std::time::{Duration, Instant};

use scheduler_core::model::{OverlapPolicy, Steering};
use scheduler_core::plan::floor;
use scheduler_core::{ClaimOutcome, ClaimRequest, Finish, LeaseStore, PlanKey, Scope};
use scheduler_postgres::{PgLeaseStore, PgStoreOptions};
use sqlx_core::raw_sql::raw_sql;
use sqlx_core::sql_str::AssertSqlSafe;
use uuid::Uuid;

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

async fn timed<T>(f: impl std::future::Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    let out = f.await;
    (out, start.elapsed())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("set DATABASE_URL, e.g. postgres://postgres@127.0.0.1:5432/postgres");
        std::process::exit(2);
    };
    let overlap: OverlapPolicy = match std::env::args().nth(1) {
        Some(policy) => policy.parse()?,
        None => OverlapPolicy::AllowAll,
    };
    println!("overlap policy: {overlap}");
    let schema = format!("sched_timing_{}", Uuid::new_v4().simple());
    let options = PgStoreOptions::new()
        .schema(&schema)
        .max_connections(8)
        .application_name("claim_timing");
    let store = PgLeaseStore::connect_with(&url, &options).await?;

    for _ in 0..50 {
        store.now().await?; // warm the connections and statement caches
    }
    let mut round_trips = Vec::new();
    for _ in 0..500 {
        round_trips.push(timed(store.now()).await.1);
    }
    println!(
        "round trip of now(): median {} (min {}, 500 calls)",
        ms(median(round_trips.clone())),
        ms(*round_trips.iter().min().unwrap())
    );

    println!(
        "{:>7} | {:>12} | {:>14} | {:>14} | {:>16} | {:>18} | {:>12}",
        "scopes",
        "claim fresh",
        "claim (all\u{a0}lost)",
        "latest view",
        "finish, serial",
        "finish, 8 parallel",
        "finish_many"
    );
    let plan_time = floor(store.now().await?, Duration::from_secs(60));
    for (n, reps) in [(1usize, 50usize), (100, 20), (10_000, 3)] {
        let mut fresh = Vec::new();
        let mut lost = Vec::new();
        let mut latest = Vec::new();
        let mut serial = Vec::new();
        let mut parallel = Vec::new();
        let mut many = Vec::new();
        for rep in 0..reps {
            let job = format!("timing_{n}_{rep}");
            let scopes: Vec<Scope> = (0..n)
                .map(|i| Scope::new("tenant", format!("t{i:05}")))
                .collect();
            let keys = PlanKey::each(&scopes, plan_time);
            let request = |runner| ClaimRequest {
                finishing: &[],
                steering: Steering::scheduled(overlap),
                job_name: &job,
                runner_id: runner,
                max_attempts: 3,
                stale_timeout: Duration::from_secs(600),
                allow_stale_reentry: true,
                keys: &keys,
            };
            let (won, took) = timed(store.claim(&request("timing-a"))).await;
            let won = won?;
            assert!(won.iter().all(|o| matches!(o, ClaimOutcome::Won(_))));
            fresh.push(took);
            let (again, took) = timed(store.claim(&request("timing-b"))).await;
            assert!(again?.iter().all(|o| *o == ClaimOutcome::Conflicted));
            lost.push(took);
            let (views, took) = timed(store.latest_executions(&job, &scopes)).await;
            assert!(views?.iter().all(Option::is_some));
            latest.push(took);

            let leases: Vec<_> = won.iter().filter_map(|o| o.lease().cloned()).collect();
            let done = Finish::success(Duration::from_millis(1), 1, Default::default());
            // Half serially, half from 8 tasks: one lease per `finish` call,
            // what a store without a batched `finish_many` costs a tick.
            let (first, second) = leases.split_at(leases.len() / 2);
            let start = Instant::now();
            for lease in first {
                store.finish(lease, &done).await?;
            }
            if !first.is_empty() {
                serial.push(start.elapsed() * (leases.len() as u32) / (first.len() as u32));
            }
            let chunks: Vec<Vec<_>> = second
                .chunks(second.len().div_ceil(8))
                .map(<[_]>::to_vec)
                .collect();
            let start = Instant::now();
            let tasks = chunks.into_iter().map(|chunk| {
                let (store, done) = (store.clone(), done.clone());
                tokio::spawn(async move {
                    for lease in &chunk {
                        store.finish(lease, &done).await?;
                    }
                    Ok::<_, scheduler_core::StoreError>(())
                })
            });
            for joined in futures::future::join_all(tasks).await {
                joined??;
            }
            parallel.push(start.elapsed() * (leases.len() as u32) / (second.len() as u32));

            // The same number of fresh leases, all finished in one call.
            let many_job = format!("timing_many_{n}_{rep}");
            let won = store
                .claim(&ClaimRequest {
                    job_name: &many_job,
                    ..request("timing-a")
                })
                .await?;
            let leases: Vec<_> = won.iter().filter_map(|o| o.lease().cloned()).collect();
            assert_eq!(leases.len(), n);
            let items: Vec<_> = leases.iter().map(|lease| (lease, &done)).collect();
            let (results, took) = timed(store.finish_many(&items)).await;
            for result in results {
                result?;
            }
            many.push(took);
        }
        let show = |v: &Vec<Duration>| {
            if v.is_empty() {
                "-".to_owned()
            } else {
                ms(median(v.clone()))
            }
        };
        println!(
            "{n:>7} | {:>12} | {:>14} | {:>14} | {:>16} | {:>18} | {:>12}",
            show(&fresh),
            show(&lost),
            show(&latest),
            show(&serial),
            show(&parallel),
            show(&many)
        );
    }
    println!(
        "(finish columns: time to finish all n leases, the one-by-one ones extrapolated \
         from half of them each way, finish_many measured on n other fresh leases in one \
         call; medians over repetitions)"
    );

    drop(store);
    let admin = sqlx_postgres::PgPool::connect(&url).await?;
    raw_sql(AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE")))
        .execute(&admin)
        .await?;
    Ok(())
}
