//! Errors at the boundaries of the core crate: job registration and store calls.

use uuid::Uuid;

/// A boxed error, as returned by handlers, scope providers and backends.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error from a [`LeaseStore`](crate::store::LeaseStore) call.
///
/// Store implementations map their driver errors onto these variants so that
/// the manager can react to the meaning (a lost lease is final, a backend
/// failure is worth retrying) without knowing the backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The execution is no longer held with the presented lease token: it was
    /// stolen, swept, finished, or never existed. Final for that lease.
    #[error("lease lost: execution {id} is not RUNNING under this lease token")]
    LeaseLost {
        /// The execution whose lease was presented.
        id: Uuid,
    },
    /// No execution has this id.
    #[error("no execution with id {id}")]
    NotFound {
        /// The id asked for.
        id: Uuid,
    },
    /// The operation is refused because of the row's current state (for
    /// example an operator retry of a row that is not FAILED). Nothing changed.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The arguments can never be stored (for example a NUL byte in a scope
    /// id, which PostgreSQL text rejects). Nothing changed.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The stored schema is newer than this code understands.
    #[error(
        "schema version {found} is newer than the {known} this code knows; upgrade the library"
    )]
    SchemaTooNew {
        /// The version found in the database.
        found: i64,
        /// The newest version this code knows.
        known: i64,
    },
    /// The backend failed (connection lost, I/O error, injected fault, ...).
    /// Retrying later may succeed; nothing is known to have changed.
    #[error("backend error: {message}")]
    Backend {
        /// A readable description, never containing credentials.
        message: String,
        /// The underlying driver error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
}

impl StoreError {
    /// A backend error from a driver error.
    pub fn backend(source: impl Into<BoxError>) -> Self {
        let source = source.into();
        StoreError::Backend {
            message: source.to_string(),
            source: Some(source),
        }
    }

    /// A backend error with only a message.
    pub fn backend_msg(message: impl Into<String>) -> Self {
        StoreError::Backend {
            message: message.into(),
            source: None,
        }
    }

    /// Whether retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Backend { .. })
    }
}

/// A job spec refused at registration. The message names the job and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("job {job:?}: {field}: {reason}")]
pub struct SpecError {
    /// The job's name as given (possibly empty).
    pub job: String,
    /// The offending option, e.g. `stale_timeout`.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl SpecError {
    pub(crate) fn new(job: &str, field: &'static str, reason: impl Into<String>) -> Self {
        SpecError {
            job: job.to_owned(),
            field,
            reason: reason.into(),
        }
    }
}

/// Manager options refused by [`Manager::new`](crate::Manager::new). The
/// message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("manager options: {field}: {reason}")]
pub struct OptionsError {
    /// The offending option, e.g. `runner_id`.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}
