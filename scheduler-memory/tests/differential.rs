//! The shared differential check (`scheduler_conformance::differential`)
//! on two memory stores on one manual clock: the memory store is every
//! other store's reference there, so this holds the check itself to
//! account. Every operation, steering's included, must run without an
//! unexpected error, and everything the check compares (outcomes, rows,
//! attempts logs, controls labelled by creation order, summaries, reads)
//! must come out the same from two stores that apply the same rules, so
//! that a difference another backend's run reports is that backend's.

use std::sync::Arc;

use proptest::prelude::*;
use scheduler_conformance::differential::{self, Op};
use scheduler_core::{ExecutionAudit, ManualClock};
use scheduler_memory::MemoryLeaseStore;

/// Two fresh memory stores on one clock at `differential::START`, then
/// the check.
fn run(ops: &[Op]) {
    let clock = ManualClock::new(differential::START);
    let store = || -> Arc<dyn ExecutionAudit> {
        Arc::new(MemoryLeaseStore::with_clock(Arc::new(clock.clone())))
    };
    let stores = [("memory", store()), ("memory-again", store())];
    futures::executor::block_on(differential::check(ops, &clock, &stores));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn two_memory_stores_agree(ops in differential::ops()) {
        run(&ops);
    }
}

/// Every recorded regression sequence, on two memory stores.
#[test]
fn recorded_regressions_run_cleanly() {
    for (name, ops) in differential::regressions() {
        println!("regression {name}");
        run(&ops);
    }
}
