//! Mapping rusqlite errors onto [`StoreError`], and the bounded retry of a
//! busy database.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::ErrorCode;
use scheduler_core::StoreError;

/// Why an operation on a connection failed: the driver, or a decision of
/// the store that must not be retried (a lost lease, a newer schema).
#[derive(Debug)]
pub(crate) enum Failure {
    Sqlite(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Failure::Sqlite(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

/// The answer of a guarded write whose guard did not match: the lease is
/// lost, a decision of the store that leaves the transaction usable.
pub(crate) fn lease_lost(id: uuid::Uuid) -> Failure {
    StoreError::LeaseLost { id }.into()
}

/// Whether another connection holds the lock this operation needs.
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// A hint for the errors people meet when pointing the store at the wrong
/// file, so the message says what to do rather than only what SQLite saw.
fn hint(e: &rusqlite::Error) -> Option<&'static str> {
    Some(match e.sqlite_error_code()? {
        ErrorCode::NotADatabase => "the file is not a sqlite database (or is encrypted)",
        ErrorCode::DatabaseCorrupt => "the database file is corrupt or truncated",
        ErrorCode::CannotOpen => {
            "cannot open the database file: check that its directory exists and is writable"
        }
        ErrorCode::ReadOnly => "the database or its directory is read-only",
        ErrorCode::DiskFull => "the disk is full",
        ErrorCode::SystemIoFailure => "an i/o error occurred on the database file",
        _ => return None,
    })
}

/// Where a store's database lives, for messages.
#[derive(Debug, Clone)]
pub(crate) struct Location(pub(crate) String);

impl Location {
    pub(crate) fn file(path: &Path) -> Self {
        Location(path.display().to_string())
    }

    pub(crate) fn memory() -> Self {
        Location("in-memory database".to_owned())
    }

    /// A [`StoreError`] for a failure on this database.
    pub(crate) fn error(&self, failure: Failure) -> StoreError {
        match failure {
            Failure::Store(e) => e,
            Failure::Sqlite(e) => {
                let message = match hint(&e) {
                    Some(hint) => format!("sqlite {}: {hint}: {e}", self.0),
                    None => format!("sqlite {}: {e}", self.0),
                };
                StoreError::Backend {
                    message,
                    source: Some(Box::new(e)),
                }
            }
        }
    }

    /// Runs `op` until it gets its locks, at most `max_wait` (each try
    /// already waits up to the connection's busy timeout inside SQLite).
    ///
    /// A busy database is contention, not a verdict: a claim that lost the
    /// race for the write lock must not be reported as a failed claim, so
    /// it is tried again with a growing, jittered pause; only when the
    /// budget is spent does the caller see [`StoreError::Backend`]. `op`
    /// must leave nothing behind when it fails (an uncommitted transaction
    /// rolls back when dropped), so repeating it is safe.
    pub(crate) fn retry_busy<T>(
        &self,
        max_wait: Duration,
        mut op: impl FnMut() -> Result<T, Failure>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(2);
        let mut tries = 0u32;
        loop {
            tries += 1;
            match op() {
                Err(Failure::Sqlite(e)) if is_busy(&e) => {
                    let waited = started.elapsed();
                    if waited + pause > max_wait {
                        return Err(StoreError::Backend {
                            message: format!(
                                "sqlite {}: database is locked: gave up after {} tries in {} ms",
                                self.0,
                                tries,
                                waited.as_millis()
                            ),
                            source: Some(Box::new(e)),
                        });
                    }
                    tracing::debug!(database = %self.0, tries, "sqlite database busy; retrying");
                    thread::sleep(pause + jitter(pause));
                    pause = (pause * 2).min(Duration::from_millis(250));
                }
                other => return other.map_err(|f| self.error(f)),
            }
        }
    }
}

/// Up to half of `pause` again, so processes that collided do not retry in
/// lockstep. Randomness quality does not matter here.
fn jitter(pause: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    pause.mul_f64(f64::from(nanos % 1_000) / 2_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::ffi;

    fn busy() -> Failure {
        Failure::Sqlite(rusqlite::Error::SqliteFailure(
            ffi::Error::new(ffi::SQLITE_BUSY),
            Some("database is locked".into()),
        ))
    }

    #[test]
    fn busy_is_retried_until_it_clears() {
        let mut left = 3;
        let got = Location::memory().retry_busy(Duration::from_secs(5), || {
            if left > 0 {
                left -= 1;
                Err(busy())
            } else {
                Ok(7)
            }
        });
        assert_eq!(got.unwrap(), 7);
        assert_eq!(left, 0);
    }

    #[test]
    fn busy_past_the_budget_is_a_backend_error() {
        let mut tries = 0;
        let err = Location::memory()
            .retry_busy(Duration::from_millis(20), || -> Result<(), Failure> {
                tries += 1;
                Err(busy())
            })
            .unwrap_err();
        assert!(tries > 1, "retried before giving up");
        let StoreError::Backend { message, .. } = err else {
            panic!("expected a backend error, got {err:?}");
        };
        assert!(message.contains("database is locked"), "{message}");
    }

    #[test]
    fn store_decisions_are_not_retried() {
        let mut tries = 0;
        let err = Location::memory()
            .retry_busy(Duration::from_secs(5), || -> Result<(), Failure> {
                tries += 1;
                Err(StoreError::InvalidInput("no".into()).into())
            })
            .unwrap_err();
        assert_eq!(tries, 1);
        assert!(matches!(err, StoreError::InvalidInput(_)));
    }
}
