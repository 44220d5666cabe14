//! [`PgStoreOptions`]: where the table lives and how to connect.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use scheduler_core::{Clock, StoreError};
use sqlx_postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};

use crate::names::{Table, DEFAULT_TABLE};
use crate::statements::Statements;
use crate::store_time::TimeSource;

/// Where the table lives and, for
/// [`PgLeaseStore::connect_with`](crate::PgLeaseStore::connect_with), how
/// to connect. Names are checked when the store is built.
#[derive(Debug, Clone)]
pub struct PgStoreOptions {
    pub(crate) schema: Option<String>,
    pub(crate) table: String,
    pub(crate) application_name: Option<String>,
    pub(crate) max_connections: u32,
    pub(crate) acquire_timeout: Duration,
    pub(crate) migrate_on_connect: bool,
    pub(crate) clock: Option<Arc<dyn Clock>>,
    pub(crate) partitioned: Option<PartitionInterval>,
}

/// The plan-time range of each partition of a partitioned executions table
/// ([`PgStoreOptions::partitioned`]), in UTC: a day from midnight, or a
/// week from Monday's midnight.
///
/// Retention drops a partition once every row of it is prunable, so the
/// interval is the granularity of the retention that costs nothing: a day
/// suits a retention of weeks, a week one of months. A partition holds
/// every plan of its range, so a fleet planning N rows a day has partitions
/// of N (daily) or 7N (weekly) rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionInterval {
    /// One partition per UTC day.
    Day,
    /// One partition per ISO week (Monday to Sunday, UTC).
    Week,
}

impl Default for PgStoreOptions {
    fn default() -> Self {
        PgStoreOptions {
            schema: None,
            table: DEFAULT_TABLE.to_owned(),
            application_name: None,
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
            migrate_on_connect: true,
            clock: None,
            partitioned: None,
        }
    }
}

impl PgStoreOptions {
    /// The defaults: table [`DEFAULT_TABLE`] found through the connection's
    /// `search_path`, 10 connections, a 10 s acquire timeout, migrations on
    /// connect.
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts the table in `schema` (created by
    /// [`PgLeaseStore::migrate`](crate::PgLeaseStore::migrate) if missing)
    /// instead of resolving it through the `search_path`. Must be a plain
    /// identifier (`[A-Za-z_][A-Za-z0-9_]*`, at most 63 bytes); it is used
    /// exactly as given, quoted.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// The table's name instead of [`DEFAULT_TABLE`]; a plain identifier, as
    /// for [`schema`](Self::schema). Its constraints and indexes get names
    /// derived from it (the default table keeps the seed's names).
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// The `application_name` of the store's connections (shown in
    /// `pg_stat_activity`); by default the URL's, if any. `connect` only.
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = Some(name.into());
        self
    }

    /// The pool's size. `connect` only: a caller's pool keeps its own.
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = max;
        self
    }

    /// How long a call waits for a connection before failing with
    /// [`StoreError::Backend`] (while the server is unreachable, say), and
    /// how long [`connect_with`](crate::PgLeaseStore::connect_with) waits
    /// for the server to answer its first connection. `connect` only.
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// Whether `connect` runs
    /// [`PgLeaseStore::migrate`](crate::PgLeaseStore::migrate), and a lazily
    /// connected store migrates on its first connection (default true).
    pub fn migrate_on_connect(mut self, migrate: bool) -> Self {
        self.migrate_on_connect = migrate;
        self
    }

    /// **For tests only**: store time is read from `clock` (say a
    /// [`ManualClock`](scheduler_core::ManualClock) shared with the memory
    /// and SQLite stores) instead of the server's `now()`, so rows carry
    /// exactly the instants a test chose. Differential tests need that to
    /// compare rows field by field across stores; the server clock gives
    /// instants no test can predict.
    ///
    /// Every statement then computes store time as `'epoch'::timestamptz +
    /// $1::interval`, `$1` bound to the clock's reading (plus the
    /// [`TimeOffset`](crate::TimeOffset), if a test moves that too) in
    /// microseconds since the Unix epoch; a claim reads the clock once for
    /// both of its statements.
    /// The statement texts are chosen when the store is built. Production
    /// must never set this: the server is the only clock every replica
    /// shares, and replicas on their own hosts' clocks would disagree about
    /// which leases are stale and which retries are due.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }
}

impl PgStoreOptions {
    /// **For new installations**: creates the executions table partitioned
    /// by range of `plan_time`, one partition per `interval`, with a
    /// DEFAULT partition for the plans no range partition covers, so that
    /// retention ([`prune_finished`](scheduler_core::ExecutionAudit::prune_finished))
    /// drops whole partitions instead of deleting their rows one by one
    /// (`docs/contract.md` §10, "Partitioned executions"). The store creates
    /// the current partition and the next [`PARTITIONS_AHEAD`](crate::PARTITIONS_AHEAD)
    /// when it migrates and at every prune, and on
    /// [`PgLeaseStore::create_partitions`](crate::PgLeaseStore::create_partitions).
    ///
    /// Only a table that does not exist yet is created partitioned: the
    /// seed's table, or any existing unpartitioned one, is never
    /// repartitioned, and [`PgLeaseStore::migrate`](crate::PgLeaseStore::migrate)
    /// refuses this option on one (`StoreError::InvalidInput`). Without it, a
    /// store adopts an existing partitioned table as it is: every statement
    /// works on both shapes, and its prunes drop partitions too (found in
    /// the catalog); only the partitions ahead are this option's upkeep.
    pub fn partitioned(mut self, interval: PartitionInterval) -> Self {
        self.partitioned = Some(interval);
        self
    }
}

impl PgStoreOptions {
    /// The pool's settings and the server's address from `url`.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] for a malformed URL, or one holding a
    /// secret the driver would not read (see [`refuse_unread_secrets`]);
    /// the message never repeats the URL.
    pub(crate) fn pool(&self, url: &str) -> Result<(PgPoolOptions, PgConnectOptions), StoreError> {
        refuse_unread_secrets(url)?;
        let mut connect = PgConnectOptions::from_str(url).map_err(|e| {
            StoreError::InvalidInput(format!("invalid postgres connection url: {e}"))
        })?;
        if let Some(name) = &self.application_name {
            connect = connect.application_name(name);
        }
        if matches!(connect.get_ssl_mode(), PgSslMode::Require) && names_root_cert(url) {
            // libpq checks the server's certificate under `require` when it
            // has a root certificate to check it with, as under
            // `verify-ca`; sqlx never does. A user who named the CA expects
            // it to be used.
            connect = connect.ssl_mode(PgSslMode::VerifyCa);
        }
        let pool = PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.acquire_timeout)
            .test_before_acquire(true);
        Ok((pool, connect))
    }

    /// The statements for these options' table and time source.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] for names that are not plain identifiers.
    pub(crate) fn statements(&self) -> Result<Statements, StoreError> {
        let time = match self.clock {
            None => TimeSource::Server,
            Some(_) => TimeSource::Client,
        };
        let mut table = Table::new(self.schema.as_deref(), &self.table)?;
        table.partitioned = self.partitioned;
        Ok(Statements::new(table, time))
    }
}

/// Refuses a URL with a query parameter that holds a secret the driver does
/// not read: any whose name contains `password` but `password` itself, such
/// as libpq's `sslpassword` (the key of an encrypted client key). sqlx
/// ignores parameters it does not know and logs each at WARN, value and
/// all, so such a URL would put the secret in the service's logs. Checked
/// before the driver parses the URL; the message names the parameter, never
/// its value.
fn refuse_unread_secrets(url: &str) -> Result<(), StoreError> {
    let Ok(parsed) = sqlx_core::Url::parse(url) else {
        // The driver's parser refuses it too, before reading any parameter.
        return Ok(());
    };
    let unread = parsed
        .query_pairs()
        .find(|(key, _)| key != "password" && key.to_ascii_lowercase().contains("password"));
    match unread {
        Some((key, _)) => Err(StoreError::InvalidInput(format!(
            "postgres connection url: the parameter {key} is not supported (the driver would \
             ignore it and log its value); leave it out (an encrypted client key cannot be \
             used: decrypt it), and pass a password as the URL's password or password="
        ))),
        None => Ok(()),
    }
}

/// Whether a root certificate is named, in the URL (`sslrootcert`, or
/// sqlx's spellings `ssl-root-cert` and `ssl-ca`) or in `PGSSLROOTCERT`,
/// which the driver reads as libpq does.
fn names_root_cert(url: &str) -> bool {
    let in_url = sqlx_core::Url::parse(url).is_ok_and(|parsed| {
        parsed
            .query_pairs()
            .any(|(key, _)| matches!(&*key, "sslrootcert" | "ssl-root-cert" | "ssl-ca"))
    });
    in_url || std::env::var_os("PGSSLROOTCERT").is_some()
}
