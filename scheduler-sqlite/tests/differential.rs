//! Random operation sequences give identical results on the memory store
//! (the reference, which applies `machine` directly) and on SQLite: the
//! shared differential check of `scheduler_conformance::differential`
//! (outcomes, rows field by field, scope summaries, retry-due reads), both
//! stores on one manual clock. The sequences it once failed on are kept in
//! `differential::regressions` and run here too.

use std::sync::Arc;

use proptest::prelude::*;
use scheduler_conformance::differential::{self, Op};
use scheduler_core::{ExecutionAudit, ManualClock};
use scheduler_memory::MemoryLeaseStore;
use scheduler_sqlite::SqliteStoreOptions;

/// Fresh stores on one clock at `differential::START`, then the check.
async fn run(ops: &[Op]) {
    let clock = ManualClock::new(differential::START);
    let memory = MemoryLeaseStore::with_clock(Arc::new(clock.clone()));
    let sqlite = SqliteStoreOptions::memory()
        .clock(Arc::new(clock.clone()))
        .open()
        .await
        .expect("open");
    let stores: [(&'static str, Arc<dyn ExecutionAudit>); 2] =
        [("memory", Arc::new(memory)), ("sqlite", Arc::new(sqlite))];
    differential::check(ops, &clock, &stores).await;
}

fn block_on(ops: &[Op]) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(ops));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn sqlite_matches_the_memory_store(ops in differential::ops()) {
        block_on(&ops);
    }
}

/// Every recorded regression sequence, on memory and SQLite.
#[test]
fn recorded_regressions_agree() {
    for (name, ops) in differential::regressions() {
        println!("regression {name}");
        block_on(&ops);
    }
}
