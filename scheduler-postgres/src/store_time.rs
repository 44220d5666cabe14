//! Store time: where the statements take it from ([`TimeSource`], fixed
//! when the store is built) and the offset tests move it by
//! ([`TimeOffset`]).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use scheduler_core::time::to_micros;
use scheduler_core::{Clock, TimeControl};
use sqlx_postgres::types::PgInterval;

/// An offset added to the server's `now()` (or to a test's client clock,
/// [`PgStoreOptions::clock`](crate::PgStoreOptions::clock)) to give store
/// time: zero in production, moved forward by tests (it implements
/// [`TimeControl`], so it is what a conformance `Harness` advances).
///
/// Clones share one offset, so several stores built with the same handle
/// (replicas in one test) agree on store time.
#[derive(Debug, Clone, Default)]
pub struct TimeOffset {
    micros: Arc<AtomicI64>,
}

impl TimeOffset {
    /// A zero offset.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current offset.
    pub fn get(&self) -> Duration {
        // Never negative: it only ever advances.
        Duration::from_micros(u64::try_from(self.micros.load(Ordering::SeqCst)).unwrap_or(0))
    }

    pub(crate) fn interval(&self) -> PgInterval {
        PgInterval {
            months: 0,
            days: 0,
            microseconds: self.micros.load(Ordering::SeqCst),
        }
    }

    /// `$1` for a store on a client clock: the clock's reading plus the
    /// offset, as microseconds since the Unix epoch (see
    /// [`PgStoreOptions::clock`](crate::PgStoreOptions::clock)).
    pub(crate) fn since_epoch(&self, clock: &dyn Clock) -> PgInterval {
        // Every OffsetDateTime (years -9999..=9999) is within ±3.2e17 µs,
        // far inside i64 and inside PostgreSQL's interval.
        let read = to_micros(clock.now()).unix_timestamp_nanos() / 1_000;
        PgInterval {
            months: 0,
            days: 0,
            microseconds: i64::try_from(read)
                .unwrap_or(i64::MAX)
                .saturating_add(self.micros.load(Ordering::SeqCst)),
        }
    }
}

impl TimeControl for TimeOffset {
    fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        let _ = self
            .micros
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |m| {
                Some(m.saturating_add(by))
            });
    }
}

/// Where the statements take store time from. Chosen once, when the store
/// is built, so the statement texts are fixed for its whole life; either
/// way `$1` is the one time parameter, an `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeSource {
    /// The server's `now()` plus the test offset bound as `$1`: production,
    /// where the server is the one clock every replica agrees on.
    Server,
    /// The instant bound as `$1`, as microseconds since the Unix epoch,
    /// read from a client clock: tests that need exact instants.
    Client,
}

impl TimeSource {
    /// The store-time expression, without parentheses.
    pub(crate) fn bare(self) -> &'static str {
        match self {
            TimeSource::Server => "now() + $1::interval",
            TimeSource::Client => "'epoch'::timestamptz + $1::interval",
        }
    }

    /// The store-time expression at the moment the statement runs, not at
    /// its transaction's start, without parentheses: on the server's clock
    /// `clock_timestamp()` plus the test offset, for a decision taken after
    /// waiting for a lock; on a client clock the same as [`bare`](Self::bare)
    /// (the caller reads the clock after the wait).
    pub(crate) fn current(self) -> &'static str {
        match self {
            TimeSource::Server => "clock_timestamp() + $1::interval",
            TimeSource::Client => self.bare(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_offsets_are_shared_by_clones_and_saturate() {
        let offset = TimeOffset::new();
        let clone = offset.clone();
        clone.advance(Duration::from_secs(90));
        assert_eq!(offset.get(), Duration::from_secs(90));
        assert_eq!(offset.interval().microseconds, 90_000_000);
        offset.advance(Duration::MAX);
        assert_eq!(offset.interval().microseconds, i64::MAX);
    }
}
