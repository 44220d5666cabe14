//! Clocks for stores whose time is not a database server's `now()`.
//!
//! Store time decides every lease and plan. The memory and SQLite stores read
//! it from a [`Clock`]; tests inject a [`ManualClock`] (moved by hand) or a
//! [`TokioClock`] (which follows tokio's clock, so `tokio::time::pause` and
//! auto-advance move store time and timers together, without real sleeping).

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;

/// A source of store time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant, in UTC, at microsecond precision.
    fn now(&self) -> OffsetDateTime;
}

/// A way for tests to move store time forward, whatever the store.
///
/// The conformance suite takes one next to the store: a [`ManualClock`] for
/// stores with an injected clock, an offset on the server's `now()` for
/// PostgreSQL.
pub trait TimeControl: Send + Sync {
    /// Moves store time forward by `by`.
    fn advance(&self, by: Duration);
}

/// Truncates an instant to microseconds and converts it to UTC: the precision
/// every store keeps (the contract, `docs/contract.md` §3), applied before
/// anything is planned, stored or compared.
pub fn to_micros(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .expect("a truncated nanosecond is in range")
}

/// The smallest whole-microsecond instant not before `t`, in UTC: the bound
/// a store compares its whole-microsecond instants with, for `stored < t`
/// or `stored >= t`, since a stored instant `s` satisfies `s < t` exactly
/// when `s < ceil_to_micros(t)`. Truncating instead ([`to_micros`]) would
/// misplace the rows at `to_micros(t)`, which the reference store,
/// comparing at full precision, finds before `t`.
///
/// Inside the last microsecond of year 9999, where no later whole
/// microsecond exists, it saturates at that microsecond rather than panic.
/// Part of the store-author interface (not semver-stable).
pub fn ceil_to_micros(t: OffsetDateTime) -> OffsetDateTime {
    let down = to_micros(t);
    if down < t {
        down.checked_add(time::Duration::MICROSECOND)
            .unwrap_or(down)
    } else {
        down
    }
}

/// `t + by`, saturating at the latest representable instant: an absurd
/// timeout or backoff (say `Duration::MAX`) must not panic or fail the
/// write it belongs to.
pub fn later(t: OffsetDateTime, by: Duration) -> OffsetDateTime {
    time::Duration::try_from(by)
        .ok()
        .and_then(|by| t.checked_add(by))
        .unwrap_or_else(|| to_micros(time::PrimitiveDateTime::MAX.assume_utc()))
}

/// An instant shown as RFC 3339 in UTC (`2026-03-05T12:30:00Z`), the form
/// log lines and messages use: `OffsetDateTime`'s own `Display` is meant
/// for debugging (`2026-03-05 12:30:00.0 +00:00:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rfc3339(pub OffsetDateTime);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self
            .0
            .to_offset(time::UtcOffset::UTC)
            .format(&time::format_description::well_known::Rfc3339)
        {
            Ok(text) => f.write_str(&text),
            Err(_) => write!(f, "{}", self.0),
        }
    }
}

/// The host's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        to_micros(OffsetDateTime::now_utc())
    }
}

/// A clock that only moves when told to. Clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<OffsetDateTime>>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: OffsetDateTime) -> Self {
        ManualClock {
            now: Arc::new(Mutex::new(to_micros(start))),
        }
    }

    /// Sets the time (it may go backwards, as a misbehaving host clock can).
    pub fn set(&self, t: OffsetDateTime) {
        *self.now.lock().expect("clock lock") = to_micros(t);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.now.lock().expect("clock lock")
    }
}

impl TimeControl for ManualClock {
    fn advance(&self, by: Duration) {
        let mut now = self.now.lock().expect("clock lock");
        *now = to_micros(*now + by);
    }
}

/// Store time that follows tokio's clock from a fixed start, plus any manual
/// jumps. Under `tokio::time::pause` it is fully deterministic: timers and
/// store time advance together. Clones share the same time.
#[derive(Debug, Clone)]
pub struct TokioClock {
    base: OffsetDateTime,
    origin: tokio::time::Instant,
    jumped: Arc<Mutex<Duration>>,
}

impl TokioClock {
    /// A clock reading `start` now and moving with `tokio::time::Instant`.
    pub fn new(start: OffsetDateTime) -> Self {
        TokioClock {
            base: to_micros(start),
            origin: tokio::time::Instant::now(),
            jumped: Arc::new(Mutex::new(Duration::ZERO)),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> OffsetDateTime {
        let jumped = *self.jumped.lock().expect("clock lock");
        to_micros(self.base + self.origin.elapsed() + jumped)
    }
}

impl TimeControl for TokioClock {
    /// Jumps store time forward without moving tokio's timers, as a host
    /// clock correction would.
    fn advance(&self, by: Duration) {
        *self.jumped.lock().expect("clock lock") += by;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn instants_show_as_rfc3339_in_utc() {
        let t = datetime!(2026-03-05 13:30:00.25 +01:00);
        assert_eq!(Rfc3339(t).to_string(), "2026-03-05T12:30:00.25Z");
    }

    #[test]
    fn manual_clock_truncates_to_micros_and_advances() {
        let clock = ManualClock::new(datetime!(2026-01-01 00:00:00.123456789 UTC));
        assert_eq!(clock.now(), datetime!(2026-01-01 00:00:00.123456 UTC));
        clock.advance(Duration::from_nanos(1_999));
        assert_eq!(clock.now(), datetime!(2026-01-01 00:00:00.123457 UTC));
    }

    #[test]
    fn later_saturates_instead_of_panicking() {
        let t = datetime!(2026-01-01 00:00 UTC);
        assert_eq!(
            later(t, Duration::from_secs(60)),
            datetime!(2026-01-01 00:01 UTC)
        );
        assert_eq!(
            later(t, Duration::MAX),
            datetime!(9999-12-31 23:59:59.999999 UTC)
        );
    }

    #[test]
    fn lower_bounds_round_up_to_the_next_microsecond() {
        let exact = datetime!(2026-01-01 00:00:00.000001 UTC);
        assert_eq!(ceil_to_micros(exact), exact);
        assert_eq!(
            ceil_to_micros(datetime!(2026-01-01 00:00:00.0000011 UTC)),
            datetime!(2026-01-01 00:00:00.000002 UTC)
        );
    }

    #[test]
    fn micros_ceil_rounds_up_only_sub_microsecond_instants() {
        let whole = datetime!(2026-03-05 12:34:56.123456 UTC);
        assert_eq!(ceil_to_micros(whole), whole);
        let sub = datetime!(2026-03-05 12:34:56.1234561 UTC);
        assert_eq!(ceil_to_micros(sub), whole + Duration::from_micros(1));
        let before_epoch = datetime!(1969-12-31 23:59:59.9999995 UTC);
        assert_eq!(ceil_to_micros(before_epoch), OffsetDateTime::UNIX_EPOCH);
        let last = datetime!(9999-12-31 23:59:59.9999995 UTC);
        assert_eq!(
            ceil_to_micros(last),
            datetime!(9999-12-31 23:59:59.999999 UTC),
            "saturates"
        );
    }

    #[test]
    fn to_micros_converts_offsets_to_utc() {
        let t = datetime!(2026-01-01 02:00:00.0000019 +02:00);
        let u = to_micros(t);
        assert_eq!(u.offset(), time::UtcOffset::UTC);
        assert_eq!(u, datetime!(2026-01-01 00:00:00.000001 UTC));
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time_and_jumps() {
        let clock = TokioClock::new(datetime!(2026-01-01 00:00 UTC));
        tokio::time::sleep(Duration::from_secs(90)).await;
        assert_eq!(clock.now(), datetime!(2026-01-01 00:01:30 UTC));
        clock.advance(Duration::from_secs(3600));
        assert_eq!(clock.now(), datetime!(2026-01-01 01:01:30 UTC));
    }
}
