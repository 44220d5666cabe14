//! The shared conformance suite against the memory store.

use std::sync::Arc;

use scheduler_conformance::Harness;
use scheduler_core::ManualClock;
use scheduler_memory::MemoryLeaseStore;
use time::OffsetDateTime;

async fn setup() -> Option<Harness> {
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let store = MemoryLeaseStore::with_clock(Arc::new(clock.clone()));
    Some(Harness::new(Arc::new(store), Arc::new(clock)))
}

scheduler_conformance::conformance_tests!(setup());
