//! Dispatch latency (issue 18, part 4): one job of 100 scopes on a 1 s
//! cadence, from a plan's eligibility to its handler's start, measured in
//! several runs so that the spread shows; plain, and with every terminal
//! write stalled by 1 s (a [`CountingStore`] finish delay: a commit behind
//! a slow fsync or a lock), which must not delay the next bucket
//! (`docs/contract.md` §7).
//!
//! ```text
//! cargo run -p benches --release -- dispatch [memory|sqlite|postgres] [SECONDS]
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use scheduler_core::store::CountingStore;
use scheduler_core::{JobOutput, JobSpec, RunContext, Scopes};
use time::OffsetDateTime;

use crate::{scopes, stores, Backend};

/// Measured runs per row: one run's p99 says little on a noisy machine.
const RUNS: usize = 5;

/// The job's scopes, all due at every bucket.
const SCOPES: usize = 100;

/// How long a stalled terminal write waits.
const STALL: Duration = Duration::from_secs(1);

/// One run's dispatch lateness, in ms.
#[derive(Debug, Clone, Copy)]
struct Run {
    p50: f64,
    p99: f64,
    max: f64,
}

/// One run of `run_for`: the lateness of every plan that became eligible
/// while the manager ran, its terminal writes stalled by `finish_delay`.
async fn run(backend: Backend, run_for: Duration, finish_delay: Duration) -> Run {
    let stores = stores(backend, 1).await;
    let store =
        Arc::new(CountingStore::new(stores.handles[0].clone()).with_finish_delay(finish_delay));
    let late = Arc::new(Mutex::new(Vec::new()));
    let l = late.clone();
    // Capacity for every scope: a bucket is then one claim. With the
    // default 64 the rest of a bucket waits for a tick after the first
    // runs end, behind one more claim commit (measured here: ~100 ms when
    // the disk's fsync is slow), which is queueing for capacity, not the
    // dispatch this measures.
    let manager = crate::capped_manager(store, SCOPES);
    manager
        .register(
            JobSpec::new(
                "latency",
                Scopes::fixed(scopes(SCOPES)),
                move |ctx: RunContext| {
                    let l = l.clone();
                    async move {
                        let late = OffsetDateTime::now_utc() - ctx.plan_time();
                        l.lock()
                            .unwrap()
                            .push((ctx.plan_time(), late.as_seconds_f64() * 1000.0));
                        Ok(JobOutput::default())
                    }
                },
            )
            .cadence(Duration::from_secs(1)),
        )
        .unwrap();
    let started = OffsetDateTime::now_utc();
    manager.run(tokio::time::sleep(run_for)).await;
    // Only plans that became eligible while the manager ran: the first
    // tick's bucket was already due (by up to a second) when it started.
    let mut late: Vec<f64> = late
        .lock()
        .unwrap()
        .iter()
        .filter(|(plan, _)| *plan > started)
        .map(|(_, ms)| *ms)
        .collect();
    late.sort_by(f64::total_cmp);
    let pct = |p: f64| late[((late.len() as f64 - 1.0) * p).round() as usize];
    Run {
        p50: pct(0.5),
        p99: pct(0.99),
        max: *late.last().expect("plans ran"),
    }
}

/// `RUNS` runs: each one's figures on stderr as it ends, and the row's
/// figure: the spread (min–max over the runs) of p50, p99 and max.
async fn runs(backend: Backend, run_for: Duration, finish_delay: Duration) -> String {
    let mut runs = Vec::with_capacity(RUNS);
    for i in 1..=RUNS {
        let r = run(backend, run_for, finish_delay).await;
        eprintln!(
            "  {} run {i}/{RUNS} (writes delayed {finish_delay:?}): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            backend.name(),
            r.p50,
            r.p99,
            r.max
        );
        runs.push(r);
    }
    let spread = |f: fn(&Run) -> f64| {
        let (lo, hi) = runs
            .iter()
            .map(f)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
                (lo.min(x), hi.max(x))
            });
        format!("{lo:.1}–{hi:.1}")
    };
    format!(
        "p50 {} ms, p99 {} ms, max {} ms ({RUNS} runs, min–max)",
        spread(|r| r.p50),
        spread(|r| r.p99),
        spread(|r| r.max)
    )
}

/// The dispatch rows of `backends`: plain, then with terminal writes
/// stalled, each over [`RUNS`] runs of `run_for`.
pub(crate) async fn rows(backends: &[Backend], run_for: Duration) -> Vec<[String; 4]> {
    let mut rows = Vec::new();
    for &backend in backends {
        for (finish_delay, what) in [
            (Duration::ZERO, ""),
            (STALL, ", terminal writes delayed 1 s"),
        ] {
            let name = backend.name();
            eprintln!("{name}: dispatch latency{what}, {RUNS} runs of {run_for:?} ...");
            let figure = runs(backend, run_for, finish_delay).await;
            rows.push([
                format!("{name} dispatch latency, 100 scopes @1s{what}"),
                figure,
                "-".into(),
                "-".into(),
            ]);
        }
    }
    rows
}
