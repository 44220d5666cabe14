//! The embedded, versioned migrations (the table of `docs/contract.md` §3 in
//! SQLite's types), from `sql/migrations/`, and what applies them.
//!
//! Applied versions are recorded in `sys_cron_schema_migrations`
//! (`sql/migrations/ledger.sql` says why there). A migration runs when the
//! ledger lacks its version, not only when it is above the highest
//! recorded, so a ledger with a gap (a version skipped by a development
//! build) is completed.

use std::borrow::Cow;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use scheduler_core::store::sql::render;
use scheduler_core::StoreError;

use crate::error::Failure;
use crate::statements::tally_migration_parts;

struct Migration {
    version: i64,
    description: &'static str,
    sql: &'static str,
    /// Whether `sql` has placeholders, filled from
    /// [`tally_migration_parts`] (migration 8 splices in the store's own
    /// fragments, so the tally is written one way).
    spliced: bool,
}

impl Migration {
    /// The statements to run.
    fn text(&self) -> Cow<'static, str> {
        if !self.spliced {
            return Cow::Borrowed(self.sql);
        }
        let parts = tally_migration_parts();
        let values: Vec<(&str, &str)> = parts.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Cow::Owned(render(self.sql, &values))
    }
}

/// Version 1: the executions table with the seed's names.
const V1: &str = include_str!("../sql/migrations/0001_executions.sql");

/// Version 2: a partial index of the rows an operator retried.
const V2: &str = include_str!("../sql/migrations/0002_operator_retry_index.sql");

/// Version 3: the attempts log.
const V3: &str = include_str!("../sql/migrations/0003_attempts.sql");

/// Version 4: the replica registry.
const V4: &str = include_str!("../sql/migrations/0004_replicas.sql");

/// Version 5: steering: the executions' origin and control, the controls.
const V5: &str = include_str!("../sql/migrations/0005_steering.sql");

/// Version 6: stored schedules, and the kinds each replica registered.
const V6: &str = include_str!("../sql/migrations/0006_stored_schedules.sql");

/// Version 7: partial indexes of the RUNNING and FAILED rows by scope, for
/// the operator's reads.
const V7: &str = include_str!("../sql/migrations/0007_operator_reads.sql");

/// Version 8: the tally of ended FAILED rows by scope, kept by triggers,
/// and a partial index of the other FAILED rows, for the operator's reads.
const V8: &str = include_str!("../sql/migrations/0008_failed_tally.sql");

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "create sys_cron_executions",
        sql: V1,
        spliced: false,
    },
    Migration {
        version: 2,
        description: "index of operator retries",
        sql: V2,
        spliced: false,
    },
    Migration {
        version: 3,
        description: "attempts log",
        sql: V3,
        spliced: false,
    },
    Migration {
        version: 4,
        description: "create sys_cron_replicas",
        sql: V4,
        spliced: false,
    },
    Migration {
        version: 5,
        description: "steering: origin, control_id, sys_cron_controls",
        sql: V5,
        spliced: false,
    },
    Migration {
        version: 6,
        description: "stored schedules: sys_cron_schedules, replicas' kinds",
        sql: V6,
        spliced: false,
    },
    Migration {
        version: 7,
        description: "operator reads: RUNNING and FAILED rows by scope",
        sql: V7,
        spliced: false,
    },
    Migration {
        version: 8,
        description: "operator reads: tally of ended FAILED rows, index of the others",
        sql: V8,
        spliced: true,
    },
];

/// The newest schema version this code knows.
pub const SCHEMA_VERSION: i64 = 8;

/// The table of applied versions.
const LEDGER: &str = include_str!("../sql/migrations/ledger.sql");

/// The applied versions, ascending; none for a database the store never
/// touched.
fn applied_versions(conn: &Connection) -> rusqlite::Result<Vec<i64>> {
    let has_ledger = conn
        .prepare_cached(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'sys_cron_schema_migrations'",
        )?
        .query_row([], |_| Ok(()))
        .optional()?
        .is_some();
    if !has_ledger {
        return Ok(Vec::new());
    }
    conn.prepare_cached("SELECT version FROM sys_cron_schema_migrations ORDER BY version")?
        .query_map([], |r| r.get(0))?
        .collect()
}

/// Refuses a database a newer version of this code migrated.
fn too_new(applied: &[i64]) -> Result<(), Failure> {
    match applied.last() {
        Some(&found) if found > SCHEMA_VERSION => Err(StoreError::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        }
        .into()),
        _ => Ok(()),
    }
}

/// The migrations the ledger lacks, in version order.
fn missing(applied: &[i64]) -> impl Iterator<Item = &'static Migration> + '_ {
    MIGRATIONS
        .iter()
        .filter(|m| applied.binary_search(&m.version).is_err())
}

/// Applies every migration the ledger lacks; a no-op (and no write lock)
/// when it lacks none.
///
/// The version is checked again inside the IMMEDIATE transaction because
/// another process may have migrated between the first look and the lock;
/// each migration and its ledger row commit together, so a crash leaves
/// either both or neither.
pub(crate) fn migrate(conn: &mut Connection, now_micros: i64) -> Result<(), Failure> {
    let applied = applied_versions(conn)?;
    too_new(&applied)?;
    if missing(&applied).next().is_none() {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let applied = applied_versions(&tx)?;
    too_new(&applied)?;
    tx.execute_batch(LEDGER)?;
    for m in missing(&applied) {
        tx.execute_batch(&m.text())?;
        tx.execute(
            "INSERT INTO sys_cron_schema_migrations (version, description, applied_at) VALUES (?1, ?2, ?3)",
            params![m.version, m.description, now_micros],
        )?;
        tracing::info!(
            version = m.version,
            description = m.description,
            "applied sqlite migration"
        );
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use scheduler_core::model::{ControlAction, ControlState};

    #[test]
    fn the_last_migration_is_the_known_version() {
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(SCHEMA_VERSION));
        assert!(MIGRATIONS.windows(2).all(|w| w[0].version < w[1].version));
    }

    /// The ledger's rows: (version, applied_at), by version.
    fn ledger(conn: &Connection) -> Vec<(i64, i64)> {
        conn.prepare("SELECT version, applied_at FROM sys_cron_schema_migrations ORDER BY version")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn migrating_twice_is_a_no_op_and_adopts_an_existing_table() {
        let mut conn = Connection::open_in_memory().unwrap();
        // a table created from the same DDL before the ledger existed
        conn.execute_batch(V1).unwrap();
        migrate(&mut conn, 1).unwrap();
        migrate(&mut conn, 2).unwrap();
        assert_eq!(
            ledger(&conn),
            [
                (1, 1),
                (2, 1),
                (3, 1),
                (4, 1),
                (5, 1),
                (6, 1),
                (7, 1),
                (8, 1)
            ]
        );
        let indexes: Vec<String> = conn
            .prepare(
                "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'sys_cron_executions' \
                 AND name LIKE 'idx_%' ORDER BY name",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            indexes,
            [
                "idx_sys_cron_exec_control_id",
                "idx_sys_cron_exec_failed_recent",
                "idx_sys_cron_exec_failed_retryable",
                "idx_sys_cron_exec_failed_scope",
                "idx_sys_cron_exec_finished",
                "idx_sys_cron_exec_forced_retry",
                "idx_sys_cron_exec_operator_retry",
                "idx_sys_cron_exec_running_scope",
                "idx_sys_cron_exec_running_stale"
            ]
        );
    }

    /// A database that got a later version before an earlier one (the
    /// ledger has a gap) gets the earlier one, and nothing runs twice.
    #[test]
    fn a_version_missing_below_the_highest_is_applied() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, 1).unwrap();
        conn.execute_batch(
            "DELETE FROM sys_cron_schema_migrations WHERE version = 2; \
             DROP INDEX idx_sys_cron_exec_operator_retry",
        )
        .unwrap();
        migrate(&mut conn, 2).unwrap();
        assert_eq!(
            ledger(&conn),
            [
                (1, 1),
                (2, 2),
                (3, 1),
                (4, 1),
                (5, 1),
                (6, 1),
                (7, 1),
                (8, 1)
            ]
        );
        let index: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'idx_sys_cron_exec_operator_retry'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(index, 1);
    }

    /// A database the release of schema `version` left: every migration up
    /// to it applied and recorded at instant 1.
    fn at_version(version: i64) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(LEDGER).unwrap();
        for m in MIGRATIONS.iter().filter(|m| m.version <= version) {
            conn.execute_batch(&m.text()).unwrap();
            conn.execute(
                "INSERT INTO sys_cron_schema_migrations (version, description, applied_at) VALUES (?1, ?2, 1)",
                params![m.version, m.description],
            )
            .unwrap();
        }
        conn
    }

    /// A database the previous release left at version 4 gets version 5:
    /// its rows read as scheduled (NULL origin and control), and the
    /// controls table takes the model's kinds and states and refuses what
    /// no control can be.
    #[test]
    fn version_5_adds_steering_to_a_version_4_database() {
        let mut conn = at_version(4);
        conn.execute_batch(
            "INSERT INTO sys_cron_executions (id, job_name, plan_time, status, lease_token) \
             VALUES ('e', 'j', 0, 'FAILED', 't')",
        )
        .unwrap();
        migrate(&mut conn, 2).unwrap();
        assert_eq!(
            ledger(&conn),
            [
                (1, 1),
                (2, 1),
                (3, 1),
                (4, 1),
                (5, 2),
                (6, 2),
                (7, 2),
                (8, 2)
            ]
        );
        let steering: (Option<String>, Option<String>) = conn
            .query_row(
                "SELECT origin, control_id FROM sys_cron_executions",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(steering, (None, None));

        let insert = |kind: &str,
                      state: &str,
                      ended: Option<i64>,
                      scope: [Option<&str>; 2],
                      until: Option<i64>,
                      range: [Option<i64>; 3]| {
            conn.execute(
                "INSERT INTO sys_cron_controls (id, kind, job_name, scope_kind, scope_id, note, \
                 state, created_at, ended_at, until_time, from_time, to_time, cursor_time, \
                 updated_at) VALUES (lower(hex(randomblob(16))), ?1, 'j', ?2, ?3, '', ?4, 0, \
                 ?5, ?6, ?7, ?8, ?9, 0)",
                params![
                    kind, scope[0], scope[1], state, ended, until, range[0], range[1], range[2]
                ],
            )
        };
        let (all, none) = ([None, None], [None, None, None]);
        let tenant = [Some("tenant"), Some("a")];
        let backfill = [Some(0), Some(10), Some(0)];
        // What the model stores is taken: every state, every kind.
        for state in [
            ControlState::Active,
            ControlState::Done,
            ControlState::Cancelled,
            ControlState::Rejected,
        ] {
            let ended = (state != ControlState::Active).then_some(5);
            let pause = ControlAction::Pause {
                until: None,
                skip_missed: false,
            };
            insert(pause.kind(), state.as_str(), ended, all, Some(9), none).unwrap();
            insert(
                ControlAction::Trigger.kind(),
                state.as_str(),
                ended,
                tenant,
                None,
                none,
            )
            .unwrap();
            insert("backfill", state.as_str(), ended, tenant, None, backfill).unwrap();
        }
        // What no control can be is refused.
        let refused = [
            ("kind", insert("resume", "active", None, all, None, none)),
            ("state", insert("pause", "paused", Some(5), all, None, none)),
            (
                "active, ended",
                insert("pause", "active", Some(5), all, None, none),
            ),
            (
                "ended, no end",
                insert("pause", "done", None, all, None, none),
            ),
            (
                "half a scope",
                insert("pause", "active", None, [Some("t"), None], None, none),
            ),
            (
                "a trigger's until",
                insert("trigger", "active", None, all, Some(9), none),
            ),
            (
                "a pause's range",
                insert("pause", "active", None, all, None, backfill),
            ),
            (
                "no cursor",
                insert(
                    "backfill",
                    "active",
                    None,
                    all,
                    None,
                    [Some(0), Some(10), None],
                ),
            ),
            (
                "no start",
                insert(
                    "backfill",
                    "active",
                    None,
                    all,
                    None,
                    [None, Some(10), Some(0)],
                ),
            ),
            (
                "empty range",
                insert(
                    "backfill",
                    "active",
                    None,
                    all,
                    None,
                    [Some(10), Some(10), Some(10)],
                ),
            ),
        ];
        for (why, result) in refused {
            assert!(result.is_err(), "{why}");
        }
    }

    /// A database the previous release left at version 5 gets version 6:
    /// its replicas read as having registered no kind, and the stored
    /// schedules' table refuses what no stored schedule can be.
    #[test]
    fn version_6_adds_stored_schedules_to_a_version_5_database() {
        let mut conn = at_version(5);
        conn.execute_batch(
            "INSERT INTO sys_cron_replicas (runner_id, host, pid, version, refresh_interval_ms, \
             started_at, last_seen_at) VALUES ('r', 'h', 1, 'v', 1000, 0, 0)",
        )
        .unwrap();
        migrate(&mut conn, 2).unwrap();
        assert_eq!(
            ledger(&conn),
            [
                (1, 1),
                (2, 1),
                (3, 1),
                (4, 1),
                (5, 1),
                (6, 2),
                (7, 2),
                (8, 2)
            ]
        );
        let kinds: String = conn
            .query_row("SELECT kinds FROM sys_cron_replicas", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kinds, "[]");
        assert!(
            conn.execute("UPDATE sys_cron_replicas SET kinds = '[oops'", [])
                .is_err(),
            "kinds are json"
        );
        let insert = |name: &str, version: i64, definition: &str| {
            conn.execute(
                "INSERT INTO sys_cron_schedules (name, kind, version, definition, created_at, \
                 updated_at) VALUES (?1, 'k', ?2, ?3, 0, 0)",
                params![name, version, definition],
            )
        };
        insert("a", 1, "{}").unwrap();
        assert!(insert("a", 2, "{}").is_err(), "one row per name");
        assert!(insert("b", 0, "{}").is_err(), "versions start at 1");
        assert!(insert("c", 1, "{oops").is_err(), "the definition is json");
    }

    #[test]
    fn the_constraints_hold() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, 1).unwrap();
        let insert = |status: &str, attempt: i64, max: i64, duration: Option<i64>, result: &str| {
            conn.execute(
                "INSERT INTO sys_cron_executions (id, job_name, plan_time, status, attempt, max_attempts, lease_token, duration_ms, result) \
                 VALUES (lower(hex(randomblob(16))), 'j', abs(random()), ?1, ?2, ?3, 't', ?4, ?5)",
                params![status, attempt, max, duration, result],
            )
        };
        assert!(insert("RUNNING", 1, 3, None, "{}").is_ok());
        assert!(insert("STALE", 1, 3, None, "{}").is_err(), "status check");
        assert!(insert("RUNNING", 0, 3, None, "{}").is_err(), "attempt >= 1");
        assert!(
            insert("RUNNING", 4, 3, None, "{}").is_err(),
            "attempt <= max_attempts"
        );
        assert!(
            insert("SUCCESS", 1, 3, Some(-1), "{}").is_err(),
            "duration >= 0"
        );
        assert!(
            insert("SUCCESS", 1, 3, None, "{not json").is_err(),
            "result is json"
        );
        let created: i64 = conn
            .query_row("SELECT created_at FROM sys_cron_executions", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(
            created > 1_700_000_000_000_000,
            "defaults to now in µs: {created}"
        );
        let dup = conn.execute(
            "INSERT INTO sys_cron_executions (id, job_name, plan_time, status, lease_token) \
             SELECT id || 'x', job_name, plan_time, status, lease_token FROM sys_cron_executions",
            [],
        );
        assert!(dup.is_err(), "uq_sys_cron_execution");
    }
}
