//! The cadence grid: plan times on multiples of a cadence counted from
//! 0001-01-01T00:00:00Z (the seed's zero time, `docs/contract.md` §5), and
//! the stable per-scope offsets of a spread.

use std::time::Duration;

use time::OffsetDateTime;

use crate::model::Scope;
use crate::time::to_micros;

/// Microseconds from 0001-01-01T00:00:00Z (the seed language's zero time) to
/// the Unix epoch.
const ZERO_TO_UNIX_MICROS: i128 = 62_135_596_800 * 1_000_000;

/// A scope's stable offset inside `[0, spread)`, from a hash of the job
/// name and the scope, so that thousands of scopes do not all start at the
/// same millisecond. The hash (64-bit FNV-1a over `job \0 kind \0 id`) is
/// fixed here, not taken from `std`, so every replica and every version of
/// this library computes the same offsets.
pub fn scope_offset(job: &str, scope: &Scope, spread: Duration) -> Duration {
    let spread_us = u64::try_from(spread.as_micros()).unwrap_or(u64::MAX);
    if spread_us == 0 {
        return Duration::ZERO;
    }
    let hash = stable_hash(&[
        job.as_bytes(),
        b"\0",
        scope.kind.as_bytes(),
        b"\0",
        scope.id.as_bytes(),
    ]);
    Duration::from_micros(hash % spread_us)
}

/// 64-bit FNV-1a over the concatenated parts ([`crate::hash`]): fixed
/// there, not taken from `std`, so every replica and every version of this
/// library agrees on it.
pub use crate::hash::fnv1a_64 as stable_hash;

pub(crate) fn micros_since_zero(t: OffsetDateTime) -> i128 {
    t.unix_timestamp_nanos().div_euclid(1_000) + ZERO_TO_UNIX_MICROS
}

fn from_micros_since_zero(micros: i128) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos((micros - ZERO_TO_UNIX_MICROS) * 1_000)
        .expect("a floored instant stays in range")
}

pub(crate) fn cadence_micros(cadence: Duration) -> i128 {
    i128::try_from(cadence.as_micros()).unwrap_or(i128::MAX)
}

/// Rounds `t` down to a multiple of `cadence` counted from
/// 0001-01-01T00:00:00Z, as the seed's `Truncate` does. For cadences that
/// divide a day this equals Unix-epoch flooring; a 7-day cadence starts on
/// Mondays. A cadence under one microsecond leaves `t` (normalised) as is.
pub fn floor(t: OffsetDateTime, cadence: Duration) -> OffsetDateTime {
    let step = cadence_micros(cadence);
    let micros = micros_since_zero(t);
    if step == 0 {
        return from_micros_since_zero(micros);
    }
    from_micros_since_zero(micros - micros.rem_euclid(step))
}

/// The first grid point at or after `t`.
pub fn ceil(t: OffsetDateTime, cadence: Duration) -> OffsetDateTime {
    let down = floor(t, cadence);
    if down < to_micros(t) {
        down + cadence
    } else {
        down
    }
}
