//! How to open a [`SqliteLeaseStore`]: a path or URL, and the options.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, MAIN_DB};
use scheduler_core::{Clock, StoreError, SystemClock};

use crate::error::Location;
use crate::store::SqliteLeaseStore;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    File(PathBuf),
    Memory,
}

/// Options for opening a [`SqliteLeaseStore`], in the manner of sqlx's
/// `SqliteConnectOptions`.
///
/// Defaults: the file is created if missing; each try for a lock waits up to
/// a 5 s busy timeout inside SQLite, and a call keeps retrying a busy
/// database for up to 30 s in all before it fails; store time is the host
/// clock ([`SystemClock`]).
#[derive(Debug, Clone)]
pub struct SqliteStoreOptions {
    pub(crate) target: Target,
    pub(crate) busy_timeout: Duration,
    pub(crate) max_lock_wait: Duration,
    pub(crate) create_if_missing: bool,
    pub(crate) clock: Arc<dyn Clock>,
}

impl SqliteStoreOptions {
    /// A database file at `path`. The path is taken literally (no `file:`
    /// URI parsing); the special name `:memory:` means
    /// [`SqliteStoreOptions::memory`].
    pub fn new(path: impl AsRef<Path>) -> Self {
        let path = path.as_ref();
        let target = if path == Path::new(":memory:") {
            Target::Memory
        } else {
            Target::File(path.to_owned())
        };
        SqliteStoreOptions {
            target,
            busy_timeout: Duration::from_secs(5),
            max_lock_wait: Duration::from_secs(30),
            create_if_missing: true,
            clock: Arc::new(SystemClock),
        }
    }

    /// A private in-memory database, gone when the store is dropped. It has
    /// a single connection (a second one would see another database), so
    /// reads queue behind writes.
    pub fn memory() -> Self {
        SqliteStoreOptions::new(":memory:")
    }

    /// Parses `sqlite:PATH`, `sqlite://PATH` (so `sqlite:///abs/path` is
    /// absolute) or `sqlite::memory:`. The path is taken literally; query
    /// parameters are not supported (set options with the methods instead).
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] for another scheme, an empty path or a
    /// query string. The message never repeats the URL, which for other
    /// schemes may hold a password.
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        let rest = url
            .get(..7)
            .filter(|scheme| scheme.eq_ignore_ascii_case("sqlite:"))
            .map(|_| &url[7..])
            .ok_or_else(|| {
                let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
                let scheme: String = scheme.chars().take(32).collect();
                StoreError::InvalidInput(format!(
                    "unsupported database url scheme {scheme:?}: expected sqlite:PATH, \
                     sqlite://PATH or sqlite::memory:"
                ))
            })?;
        let path = rest.strip_prefix("//").unwrap_or(rest);
        if path.is_empty() {
            return Err(StoreError::InvalidInput(
                "sqlite url has no path: use sqlite:PATH or sqlite::memory:".into(),
            ));
        }
        if path.contains('?') {
            return Err(StoreError::InvalidInput(
                "sqlite url query parameters are not supported: set them with SqliteStoreOptions"
                    .into(),
            ));
        }
        Ok(SqliteStoreOptions::new(path))
    }

    /// How long one try waits inside SQLite for another connection's lock
    /// (`PRAGMA busy_timeout`).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// How long one call keeps retrying a busy database, with backoff,
    /// before it fails with [`StoreError::Backend`] ("database is locked").
    /// No new try starts after this much time; the last one may still wait
    /// its [`busy_timeout`](Self::busy_timeout).
    pub fn max_lock_wait(mut self, wait: Duration) -> Self {
        self.max_lock_wait = wait;
        self
    }

    /// Whether a missing database file is created (default `true`). The
    /// directory must exist either way.
    pub fn create_if_missing(mut self, create: bool) -> Self {
        self.create_if_missing = create;
        self
    }

    /// The clock that gives store time (default [`SystemClock`]). Every
    /// process sharing a file should use the host clock; tests inject a
    /// [`ManualClock`](scheduler_core::ManualClock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The database file, or `None` for an in-memory database.
    pub fn path(&self) -> Option<&Path> {
        match &self.target {
            Target::File(path) => Some(path),
            Target::Memory => None,
        }
    }

    /// Opens the store: sets WAL mode and `synchronous=NORMAL`, runs the
    /// migrations, and starts the writer (and, for a file, reader)
    /// connection threads.
    ///
    /// # Errors
    /// [`StoreError::SchemaTooNew`] when the database was migrated by a
    /// newer version of this crate; [`StoreError::Backend`] when the file
    /// cannot be opened, is not a database, or stays locked past
    /// [`max_lock_wait`](Self::max_lock_wait).
    pub async fn open(self) -> Result<SqliteLeaseStore, StoreError> {
        SqliteLeaseStore::open_with(self).await
    }

    pub(crate) fn location(&self) -> Location {
        match &self.target {
            Target::File(path) => Location::file(path),
            Target::Memory => Location::memory(),
        }
    }

    /// The writer connection, set up for many processes sharing one file.
    pub(crate) fn open_writer(&self) -> Result<Connection, StoreError> {
        let location = self.location();
        let Target::File(path) = &self.target else {
            let conn = Connection::open_in_memory().map_err(|e| location.error(e.into()))?;
            return self.tune(conn, &location);
        };
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if self.create_if_missing {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let conn = self.open_file(path, flags, &location)?;
        // SQLite quietly opens a write-protected file read-only; say so now
        // rather than at the first claim.
        if conn
            .is_readonly(MAIN_DB)
            .map_err(|e| location.error(e.into()))?
        {
            return Err(StoreError::backend_msg(format!(
                "sqlite {}: the database file is read-only",
                location.0
            )));
        }
        // WAL lets the readers of every process run beside the one writer;
        // the mode is stored in the file, so all connections share it.
        // Reading it is the first access to the file, which is where "not a
        // database" shows up, and it needs a lock, so it waits like any call.
        let mode: String = location.retry_busy(self.max_lock_wait, || {
            Ok(conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?)
        })?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::backend_msg(format!(
                "sqlite {}: cannot switch to the wal journal mode (it stays {mode:?})",
                location.0
            )));
        }
        self.tune(conn, &location)
    }

    /// A second connection to the file at `path`, for reads, which WAL lets
    /// run while the writer (of this or another process) holds the write
    /// lock.
    pub(crate) fn open_reader(&self, path: &Path) -> Result<Connection, StoreError> {
        let location = self.location();
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = self.open_file(path, flags, &location)?;
        // A guard against a write slipping onto the connection that does
        // not take the write lock with BEGIN IMMEDIATE.
        conn.pragma_update(None, "query_only", true)
            .map_err(|e| location.error(e.into()))?;
        self.tune(conn, &location)
    }

    /// Opens `path` with the busy timeout already set, so that even the
    /// first access waits for other connections' locks as configured.
    fn open_file(
        &self,
        path: &Path,
        flags: OpenFlags,
        location: &Location,
    ) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(path, flags).map_err(|e| {
            if e.sqlite_error_code() != Some(ErrorCode::CannotOpen) {
                return location.error(e.into());
            }
            let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
            let reason = match parent {
                Some(dir) if !dir.is_dir() => {
                    format!("directory {} does not exist", dir.display())
                }
                _ if path.is_dir() => "the path is a directory".to_owned(),
                _ if !self.create_if_missing && !path.exists() => {
                    "the file does not exist (create_if_missing is off)".to_owned()
                }
                _ => return location.error(e.into()),
            };
            StoreError::Backend {
                message: format!("sqlite {}: cannot open the database: {reason}", location.0),
                source: Some(Box::new(e)),
            }
        })?;
        conn.busy_timeout(self.busy_timeout)
            .map_err(|e| location.error(e.into()))?;
        Ok(conn)
    }

    fn tune(&self, conn: Connection, location: &Location) -> Result<Connection, StoreError> {
        // In WAL mode NORMAL never loses a committed transaction to a
        // process crash (only to a power loss), and spares an fsync per
        // commit: one per claim batch would dominate a tick.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| location.error(e.into()))?;
        // list_executions has up to 16 statement shapes besides the others.
        conn.set_prepared_statement_cache_capacity(64);
        Ok(conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Target {
        SqliteStoreOptions::from_url(url)
            .expect("a valid url")
            .target
    }

    #[test]
    fn url_forms() {
        assert_eq!(target("sqlite::memory:"), Target::Memory);
        assert_eq!(target("sqlite://:memory:"), Target::Memory);
        assert_eq!(
            target("sqlite:data/jobs.db"),
            Target::File("data/jobs.db".into())
        );
        assert_eq!(target("sqlite://jobs.db"), Target::File("jobs.db".into()));
        assert_eq!(
            target("sqlite:///var/lib/jobs.db"),
            Target::File("/var/lib/jobs.db".into())
        );
        assert_eq!(target("SQLite:/tmp/x.db"), Target::File("/tmp/x.db".into()));
        assert_eq!(SqliteStoreOptions::new(":memory:").target, Target::Memory);
    }

    #[test]
    fn bad_urls_are_invalid_input_without_echoing_secrets() {
        for (url, needle) in [
            (
                "postgres://user:hunter2@db/app",
                "unsupported database url scheme \"postgres\"",
            ),
            ("jobs.db", "unsupported database url scheme"),
            ("sqlite:", "no path"),
            ("sqlite://", "no path"),
            ("sqlite:jobs.db?mode=ro", "query parameters"),
        ] {
            match SqliteStoreOptions::from_url(url) {
                Err(StoreError::InvalidInput(msg)) => {
                    assert!(msg.contains(needle), "{url}: {msg}");
                    assert!(!msg.contains("hunter2"), "{msg}");
                }
                other => panic!("{url}: expected invalid input, got {other:?}"),
            }
        }
    }
}
