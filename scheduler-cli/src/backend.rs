//! Picking a store from a URL at run time, and printing URLs safely.

use std::path::Path;
use std::sync::Arc;

use scheduler_core::{ExecutionAudit, StoreError};
use scheduler_memory::MemoryLeaseStore;
use scheduler_postgres::{PgLeaseStore, PgStoreOptions};
use scheduler_sqlite::SqliteLeaseStore;

/// Which backend a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `memory:`
    Memory,
    /// `sqlite:PATH`, `sqlite://PATH`, `sqlite::memory:`
    Sqlite,
    /// `postgres://...`, `postgresql://...`
    Postgres,
}

/// A validated `--database` URL.
#[derive(Clone)]
pub struct DatabaseUrl {
    raw: String,
    kind: Kind,
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl DatabaseUrl {
    /// Recognises the scheme.
    ///
    /// # Errors
    /// A message naming the accepted forms (the URL itself is redacted).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let kind = if raw == "memory:" {
            Kind::Memory
        } else if raw.starts_with("sqlite:") {
            Kind::Sqlite
        } else if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            Kind::Postgres
        } else {
            return Err(format!(
                "unsupported database URL {}: use sqlite:PATH, sqlite::memory:, postgres://USER@HOST/DB or memory:",
                redact(raw)
            ));
        };
        Ok(DatabaseUrl {
            raw: raw.to_owned(),
            kind,
        })
    }

    /// The URL with any password replaced by `***`: the only form printed.
    pub fn redacted(&self) -> String {
        redact(&self.raw)
    }

    /// The SQLite file, if the URL names one.
    fn sqlite_path(&self) -> Option<&Path> {
        let rest = self.raw.strip_prefix("sqlite:")?;
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        (rest != ":memory:").then(|| Path::new(rest))
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`. A URL
/// that cannot be parsed is cut after its scheme rather than risk a leak.
pub fn redact(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(_) => raw.to_owned(),
        Err(_) if raw.contains('@') => {
            let scheme = raw.split(':').next().unwrap_or("");
            format!("{scheme}://*** (unparseable; details withheld)")
        }
        Err(_) => raw.to_owned(),
    }
}

/// Makes a store error printable: no URL in it, and a hint when the table
/// is missing.
fn explain(url: &DatabaseUrl, e: StoreError) -> String {
    let text = e.to_string();
    if text.contains("does not exist") || text.contains("no such table") {
        format!(
            "{}: the executions table is missing; run `scheduler migrate --database {}` first ({text})",
            url.redacted(),
            url.redacted()
        )
    } else {
        format!("{}: {text}", url.redacted())
    }
}

/// Opens the store. With `create`, a missing SQLite file is created and
/// migrated (the demo); without, a missing file is an error that suggests
/// `migrate`, and PostgreSQL is not migrated, so operator commands change
/// nothing they were not asked to.
///
/// # Errors
/// A one-line, password-free message.
pub async fn open(url: &DatabaseUrl, create: bool) -> Result<Arc<dyn ExecutionAudit>, String> {
    match url.kind {
        Kind::Memory if create => Ok(Arc::new(MemoryLeaseStore::new())),
        Kind::Memory => Err(
            "memory: keeps nothing between runs, so only `demo` can use it; pass a sqlite: or postgres:// URL"
                .to_owned(),
        ),
        Kind::Sqlite => {
            match url.sqlite_path() {
                None if !create => {
                    return Err("sqlite::memory: keeps nothing between runs, so only `demo` can use it".to_owned())
                }
                Some(path) if !create && !path.exists() => {
                    return Err(format!(
                        "no database at {}; run `scheduler migrate --database {}` to create it",
                        path.display(),
                        url.redacted()
                    ))
                }
                _ => {}
            }
            let store = SqliteLeaseStore::connect(&url.raw)
                .await
                .map_err(|e| explain(url, e))?;
            Ok(Arc::new(store))
        }
        Kind::Postgres => {
            let options = PgStoreOptions::new()
                .migrate_on_connect(create)
                .application_name("scheduler-cli");
            let store = PgLeaseStore::connect_with(&url.raw, &options)
                .await
                .map_err(|e| explain(url, e))?;
            Ok(Arc::new(store))
        }
    }
}

/// Creates or upgrades the schema.
///
/// # Errors
/// A one-line, password-free message.
pub async fn migrate(url: &DatabaseUrl) -> Result<(), String> {
    match url.kind {
        Kind::Memory => Err("memory: has no schema to migrate".to_owned()),
        Kind::Sqlite => {
            let store = SqliteLeaseStore::connect(&url.raw)
                .await
                .map_err(|e| explain(url, e))?;
            store.migrate().await.map_err(|e| explain(url, e))
        }
        Kind::Postgres => {
            let options = PgStoreOptions::new()
                .migrate_on_connect(false)
                .application_name("scheduler-cli");
            let store = PgLeaseStore::connect_with(&url.raw, &options)
                .await
                .map_err(|e| explain(url, e))?;
            store.migrate().await.map_err(|e| explain(url, e))
        }
    }
}

/// Maps a store error from a command to a printable message.
pub fn error(url: &DatabaseUrl, e: StoreError) -> String {
    explain(url, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_print() {
        assert_eq!(
            redact("postgres://app:s3cret@db.internal:5432/prod"),
            "postgres://app:***@db.internal:5432/prod"
        );
        assert_eq!(redact("postgres://app@db/prod"), "postgres://app@db/prod");
        assert!(!redact("postgres://app:s3cr et@db/%%%").contains("s3cr"));
        let err = DatabaseUrl::parse("mysql://root:hunter2@localhost/db").unwrap_err();
        assert!(err.contains("unsupported database URL"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn schemes_are_recognised() {
        let kind = |u: &str| DatabaseUrl::parse(u).unwrap().kind;
        assert_eq!(kind("memory:"), Kind::Memory);
        assert_eq!(kind("sqlite:scheduler.db"), Kind::Sqlite);
        assert_eq!(kind("sqlite::memory:"), Kind::Sqlite);
        assert_eq!(kind("postgresql://u@h/d"), Kind::Postgres);
        let sqlite = DatabaseUrl::parse("sqlite:///tmp/x.db").unwrap();
        assert_eq!(sqlite.sqlite_path(), Some(Path::new("/tmp/x.db")));
        assert_eq!(
            DatabaseUrl::parse("sqlite::memory:").unwrap().sqlite_path(),
            None
        );
    }
}
