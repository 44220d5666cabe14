//! The shared conformance suite, against a temporary database file and
//! against `sqlite::memory:`. Store time is a [`ManualClock`] injected as the
//! store's clock, which the harness moves.

use std::sync::Arc;
use std::time::Duration;

use scheduler_conformance::Harness;
use scheduler_core::{ManualClock, TimeControl};
use scheduler_sqlite::SqliteStoreOptions;
use tempfile::TempDir;
use time::OffsetDateTime;

/// The harness's time control, which also owns the temporary directory:
/// the harness drops its store before its time control, so the file
/// outlives every connection to it.
struct ClockInDir {
    clock: ManualClock,
    _dir: TempDir,
}

impl TimeControl for ClockInDir {
    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

mod file {
    use super::*;

    async fn setup() -> Option<Harness> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let clock = ManualClock::new(OffsetDateTime::now_utc());
        let store = SqliteStoreOptions::new(dir.path().join("conformance.db"))
            .clock(Arc::new(clock.clone()))
            .open()
            .await
            .expect("the store opens");
        let time = ClockInDir { clock, _dir: dir };
        Some(Harness::new(Arc::new(store), Arc::new(time)))
    }

    scheduler_conformance::conformance_tests!(setup());
}

mod memory {
    use super::*;

    async fn setup() -> Option<Harness> {
        let clock = ManualClock::new(OffsetDateTime::now_utc());
        let store = SqliteStoreOptions::from_url("sqlite::memory:")
            .expect("a valid url")
            .clock(Arc::new(clock.clone()))
            .open()
            .await
            .expect("the store opens");
        Some(Harness::new(Arc::new(store), Arc::new(clock)))
    }

    scheduler_conformance::conformance_tests!(setup());
}
