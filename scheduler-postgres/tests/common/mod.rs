//! Set-up shared by the PostgreSQL tests.
//!
//! `DATABASE_URL` selects the server. Without it a test prints a loud
//! `SKIPPED` line and returns; with `SCHEDULER_REQUIRE_POSTGRES=1` a missing
//! or unreachable server fails the test instead, so CI can never pass by
//! skipping. Every test works in a schema of its own, so tests run in
//! parallel, and drops it when it passes (the conformance suite's through
//! its harness's teardown); a test that fails leaves its schema for a look,
//! and a later run drops it once it is 15 minutes old.
//!
//! The crate's unit tests that need a server use this module too (from
//! `src/lib.rs`, by path).
#![allow(dead_code)] // each test binary uses its own part of this module

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use scheduler_conformance::Harness;
use scheduler_postgres::{PartitionInterval, PgLeaseStore, PgStoreOptions, TimeOffset};
use sqlx_core::raw_sql::raw_sql;
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_postgres::{PgPool, PgPoolOptions};
use uuid::Uuid;

/// The seed's migration, verbatim: the DDL with which the Go scheduler this
/// design was ported from (`docs/contract.md` §1) creates its table. The
/// repository keeps one copy, which the ceiling benchmark loads too.
pub const SEED_SQL: &str = include_str!("../../../benches/ceiling/executions.sql");

fn required() -> bool {
    std::env::var("SCHEDULER_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

/// Reports a test that cannot run (`why`), or fails it when PostgreSQL
/// tests are required.
pub fn skip(why: &str) {
    assert!(
        !required(),
        "SCHEDULER_REQUIRE_POSTGRES=1 but {why}: the PostgreSQL tests cannot run"
    );
    // Straight to the process's stderr: libtest captures eprintln! of
    // passing tests, and a skip must be seen.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {why}: this PostgreSQL test did not run"
    );
}

/// Why the server could not be reached, once known: later tests of the same
/// process skip at once instead of waiting out the timeout again.
static UNREACHABLE: OnceLock<String> = OnceLock::new();

/// A fresh schema on the test server, and an admin pool to inspect it.
#[derive(Clone)]
pub struct TestDb {
    pub url: String,
    pub schema: String,
    pub admin: PgPool,
}

static JANITOR_RAN: AtomicBool = AtomicBool::new(false);

/// A fresh schema, or `None` (after saying so) when no server is configured.
pub async fn test_db() -> Option<TestDb> {
    let url = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            skip("DATABASE_URL not set");
            return None;
        }
    };
    if let Some(why) = UNREACHABLE.get() {
        skip(why);
        return None;
    }
    let admin = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&url)
        .await;
    let admin = match admin {
        Ok(pool) => pool,
        Err(e) => {
            skip(UNREACHABLE.get_or_init(|| format!("PostgreSQL unreachable ({e})")));
            return None;
        }
    };
    if !JANITOR_RAN.swap(true, Ordering::SeqCst) {
        drop_abandoned_schemas(&admin).await;
    }
    let schema = format!("sched_test_{}", Uuid::new_v4().simple());
    // Created and stamped in one statement, so the janitor of a concurrent
    // test process never sees it without its creation time.
    raw_sql(AssertSqlSafe(format!(
        "DO $$ BEGIN \
           CREATE SCHEMA \"{schema}\"; \
           EXECUTE format('COMMENT ON SCHEMA \"{schema}\" IS %L', \
                          'created ' || extract(epoch FROM now())::bigint); \
         END $$"
    )))
    .execute(&admin)
    .await
    .expect("create the test schema");
    Some(TestDb { url, schema, admin })
}

async fn drop_abandoned_schemas(admin: &PgPool) {
    let old: Vec<String> = sqlx_core::query_scalar::query_scalar(
        "SELECT nspname::text FROM pg_namespace \
         WHERE nspname LIKE 'sched\\_test\\_%' \
           AND coalesce(substring(obj_description(oid, 'pg_namespace') \
                                  FROM '^created (\\d+)$')::bigint, 0) \
               < extract(epoch FROM now())::bigint - 900",
    )
    .fetch_all(admin)
    .await
    .expect("list abandoned test schemas");
    for schema in old {
        // Another test process may be dropping the same one.
        let _ = raw_sql(AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
        )))
        .execute(admin)
        .await;
    }
}

impl TestDb {
    /// Store options for this schema; connections are named
    /// `<schema>/<name>` so a test can find (and kill) exactly them.
    pub fn options(&self, name: &str, max_connections: u32) -> PgStoreOptions {
        PgStoreOptions::new()
            .schema(&self.schema)
            .max_connections(max_connections)
            .application_name(self.application_name(name))
    }

    /// The server's address (the URL's host and port, 5432 when it names
    /// none), for a stand-in a test puts in front of it.
    pub fn server_addr(&self) -> std::net::SocketAddr {
        let url = url::Url::parse(&self.url).expect("DATABASE_URL is a URL");
        url.socket_addrs(|| Some(5432))
            .expect("the server's host resolves")
            .into_iter()
            .next()
            .expect("the server's host has an address")
    }

    pub fn application_name(&self, name: &str) -> String {
        format!("{}/{name}", self.schema)
    }

    /// A migrated store on its own pool of at most 4 connections.
    pub async fn store(&self, name: &str) -> PgLeaseStore {
        PgLeaseStore::connect_with(&self.url, &self.options(name, 4))
            .await
            .expect("connect the store")
    }

    /// `"schema"."sys_cron_executions"`.
    pub fn table(&self) -> String {
        format!("\"{}\".sys_cron_executions", self.schema)
    }

    /// Terminates every server connection of the store named `name`;
    /// returns how many there were.
    pub async fn terminate(&self, name: &str) -> usize {
        let killed: Vec<bool> = sqlx_core::query_scalar::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = $1 AND pid <> pg_backend_pid()",
        )
        .bind(self.application_name(name))
        .fetch_all(&self.admin)
        .await
        .expect("terminate backends");
        killed.len()
    }

    /// Whether a connection of the store named `name` waits on a lock.
    pub async fn blocked(&self, name: &str) -> bool {
        let waiting: i64 = sqlx_core::query_scalar::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE application_name = $1 AND wait_event_type = 'Lock'",
        )
        .bind(self.application_name(name))
        .fetch_one(&self.admin)
        .await
        .expect("read pg_stat_activity");
        waiting > 0
    }

    /// A transaction of our own that holds job `job`'s claim lock of the
    /// default table (the key is `claim_lock.sql`'s), standing for a claim
    /// in flight: the store's calls that take the lock queue behind it
    /// until it ends.
    pub async fn hold_claim_lock(
        &self,
        job: &str,
    ) -> sqlx_core::transaction::Transaction<'static, sqlx_postgres::Postgres> {
        let mut holder = self.admin.begin().await.unwrap();
        sqlx_core::query::query(AssertSqlSafe(format!(
            "SELECT pg_advisory_xact_lock(hashtextextended('{}'::regclass::oid::text \
             || ':' || $1, 0))::text",
            self.table()
        )))
        .bind(job)
        .execute(&mut *holder)
        .await
        .unwrap();
        holder
    }

    /// Polls (bounded, 5 s) until a connection of the store named `name`
    /// waits on a lock: a condition, not a timing assumption.
    pub async fn wait_until_blocked(&self, name: &str) {
        for _ in 0..500 {
            if self.blocked(name).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the statement of {name:?} never waited on the lock");
    }

    /// Drops the schema (tests that pass clean up after themselves; the
    /// janitor takes the rest).
    pub async fn drop_schema(self) {
        raw_sql(AssertSqlSafe(format!(
            "DROP SCHEMA \"{}\" CASCADE",
            self.schema
        )))
        .execute(&self.admin)
        .await
        .expect("drop the test schema");
    }
}

/// A conformance harness on a fresh schema: the store, and its time offset
/// as the harness's time control; its teardown drops the schema.
pub async fn harness() -> Option<Harness> {
    harness_of(None).await
}

/// As [`harness`], on a table created partitioned by day
/// (`PgStoreOptions::partitioned`): the suite holds on both shapes.
pub async fn partitioned_harness() -> Option<Harness> {
    harness_of(Some(PartitionInterval::Day)).await
}

/// A conformance harness on a fresh schema, its table partitioned by
/// `partitioned` if given.
async fn harness_of(partitioned: Option<PartitionInterval>) -> Option<Harness> {
    let db = test_db().await?;
    let mut options = db.options("conformance", 4);
    if let Some(interval) = partitioned {
        options = options.partitioned(interval);
    }
    let store = PgLeaseStore::connect_with(&db.url, &options)
        .await
        .expect("connect the store");
    Some(harness_on(store).with_teardown(move || db.clone().drop_schema()))
}

pub fn harness_on(store: PgLeaseStore) -> Harness {
    let offset = TimeOffset::new();
    let store = store.with_time_offset(offset.clone());
    Harness::new(Arc::new(store), Arc::new(offset))
}
