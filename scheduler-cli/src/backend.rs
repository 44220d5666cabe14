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
        if kind == Kind::Postgres {
            refuse_unread_secrets(raw)?;
        }
        Ok(DatabaseUrl {
            raw: raw.to_owned(),
            kind,
        })
    }

    /// The URL with any password replaced by `***`: the only form printed.
    pub fn redacted(&self) -> String {
        redact(&self.raw)
    }

    /// `text` (a message about this database, say a driver's error) with
    /// the URL and each of its secrets replaced, so a driver that echoes
    /// its input cannot leak a password through us.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.replace(&self.raw, &self.redacted());
        for secret in secrets(&self.raw) {
            out = out.replace(&secret, "***");
        }
        out
    }

    /// The SQLite file, if the URL names one.
    fn sqlite_path(&self) -> Option<&Path> {
        let rest = self.raw.strip_prefix("sqlite:")?;
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        (rest != ":memory:").then(|| Path::new(rest))
    }
}

/// A URL with every secret replaced by `***`: the password of the user
/// info (`postgres://user:secret@host/db`) and the value of every query
/// parameter whose name contains `password` (`?password=…`,
/// `?user=…&password=…`, libpq's `sslpassword`), which the PostgreSQL URL
/// parser accepts as well. A URL that cannot be parsed is cut after its
/// scheme when it could hold a secret, rather than risk a leak.
pub fn redact(raw: &str) -> String {
    let could_hold_secret =
        |text: &str| text.contains('@') || text.to_ascii_lowercase().contains("password");
    match url::Url::parse(raw) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            if u.query_pairs().any(|(k, _)| is_secret(&k)) {
                let pairs: Vec<(String, String)> = u
                    .query_pairs()
                    .map(|(k, v)| {
                        let v = if is_secret(&k) { "***".into() } else { v };
                        (k.into_owned(), v.into_owned())
                    })
                    .collect();
                u.query_pairs_mut().clear().extend_pairs(pairs);
            }
            u.to_string()
        }
        Err(_) if could_hold_secret(raw) => {
            let scheme = raw.split(':').next().unwrap_or("");
            format!("{scheme}://*** (unparseable; details withheld)")
        }
        Err(_) => raw.to_owned(),
    }
}

/// Refuses a PostgreSQL URL with a secret parameter the driver does not
/// read (libpq's `sslpassword`, for an encrypted client key): the driver
/// would ignore it, logging its value in a warning.
fn refuse_unread_secrets(raw: &str) -> Result<(), String> {
    let Ok(u) = url::Url::parse(raw) else {
        return Ok(());
    };
    match u
        .query_pairs()
        .find(|(k, _)| is_secret(k) && k != "password")
    {
        Some((key, _)) => Err(format!(
            "{}: the parameter {key} is not supported (an encrypted client key cannot be \
             used; decrypt it, or pass the password as password=)",
            redact(raw)
        )),
        None => Ok(()),
    }
}

fn is_secret(query_key: &str) -> bool {
    query_key.to_ascii_lowercase().contains("password")
}

/// The secrets a URL holds, as they may appear in a driver's message:
/// decoded and as written. Only those of three characters or more: a
/// shorter one would blank out ordinary words of the message, and is not
/// what a driver echoes.
fn secrets(raw: &str) -> Vec<String> {
    let Ok(u) = url::Url::parse(raw) else {
        return Vec::new();
    };
    let mut found: Vec<String> = u.password().map(str::to_owned).into_iter().collect();
    found.extend(
        u.query_pairs()
            .filter(|(k, _)| is_secret(k))
            .map(|(_, v)| v.into_owned()),
    );
    let decoded: Vec<String> = found.iter().filter_map(|s| percent_decode(s)).collect();
    found.extend(decoded);
    found.retain(|s| s.chars().count() >= 3);
    found.sort_by_key(|s| std::cmp::Reverse(s.len()));
    found.dedup();
    found
}

fn percent_decode(s: &str) -> Option<String> {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .filter(|v| v != s)
}

/// Makes a store error printable: no URL or secret in it, and advice that
/// fits what went wrong. A missing executions table (SQLite's "no such
/// table", PostgreSQL's undefined_table) is what `migrate` cures. Nothing
/// else is: the PostgreSQL store's connect errors already name the server
/// and say what to check (a server not reachable at host:port, a database
/// to create, a password or pg_hba.conf to check), so they are printed as
/// they are.
fn explain(url: &DatabaseUrl, e: StoreError) -> String {
    let text = url.scrub(&e.to_string());
    let table_missing = text.contains("no such table") || text.contains("(SQLSTATE 42P01)");
    if table_missing {
        format!(
            "{}: a table of the schema is missing (never migrated, or migrated by an older version); run `scheduler migrate --database {}` first ({text})",
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
            Ok(Arc::new(connect_sqlite(url).await?))
        }
        Kind::Postgres => Ok(Arc::new(connect_postgres(url, create).await?)),
    }
}

/// The SQLite store a URL names (opening it migrates it).
async fn connect_sqlite(url: &DatabaseUrl) -> Result<SqliteLeaseStore, String> {
    SqliteLeaseStore::connect(&url.raw)
        .await
        .map_err(|e| explain(url, e))
}

/// The PostgreSQL store a URL names, migrated on connect only if `migrate`.
async fn connect_postgres(url: &DatabaseUrl, migrate: bool) -> Result<PgLeaseStore, String> {
    let options = PgStoreOptions::new()
        .migrate_on_connect(migrate)
        .application_name("scheduler-cli");
    PgLeaseStore::connect_with(&url.raw, &options)
        .await
        .map_err(|e| explain(url, e))
}

/// Creates or upgrades the schema.
///
/// # Errors
/// A one-line, password-free message.
pub async fn migrate(url: &DatabaseUrl) -> Result<(), String> {
    match url.kind {
        Kind::Memory => Err("memory: has no schema to migrate".to_owned()),
        Kind::Sqlite => connect_sqlite(url)
            .await?
            .migrate()
            .await
            .map_err(|e| explain(url, e)),
        Kind::Postgres => connect_postgres(url, false)
            .await?
            .migrate()
            .await
            .map_err(|e| explain(url, e)),
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
        for form in [
            "postgres://db/prod?password=s3cret",
            "postgres://db/prod?user=app&password=s3cret&sslmode=require",
            "postgres://app:s3cret@db/prod?password=s3cret",
            "postgresql://db/prod?Password=s3cr%20et",
        ] {
            let redacted = redact(form);
            assert!(!redacted.contains("s3cr"), "{form} -> {redacted}");
            assert!(redacted.contains("***"), "{form} -> {redacted}");
        }
        assert!(redact("postgres://db/prod?sslmode=require").contains("sslmode=require"));
        let url = DatabaseUrl::parse("postgres://db/prod?password=s3cr%20et").unwrap();
        assert_eq!(
            url.scrub("driver said: password s3cr et was wrong"),
            "driver said: password *** was wrong"
        );
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
