//! Store-level guarantees on a real server beyond the shared suite: races on
//! separate connections, adoption of the seed's table, migrations, hostile
//! error text and connection loss.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use scheduler_conformance::Harness;
use scheduler_core::model::{Origin, MAX_ERROR_MSG_BYTES};
use scheduler_core::plan::floor;
use scheduler_core::{
    ClaimOutcome, ClaimRequest, ErrorCode, ExecutionAudit, Finish, Lease, LeaseStore,
    LeaseStoreExt, PlanKey, Prune, Scope, ScopeSummary, Status, StoreError, TimeControl,
};
use scheduler_postgres::{
    PgLeaseStore, PgStoreOptions, TimeOffset, MIGRATIONS_TABLE, SCHEMA_VERSION,
};
use sqlx_core::query_scalar::query_scalar;
use sqlx_core::raw_sql::raw_sql;
use sqlx_core::row::Row;
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_postgres::PgPool;
use tokio::sync::Barrier;

use common::{harness_on, test_db, TestDb, SEED_SQL};

const STALE: Duration = Duration::from_secs(60);

fn request<'a>(job: &'a str, runner: &'a str, keys: &'a [PlanKey]) -> ClaimRequest<'a> {
    ClaimRequest {
        finishing: &[],
        steering: scheduler_core::model::Steering::NONE,
        job_name: job,
        runner_id: runner,
        max_attempts: 3,
        stale_timeout: STALE,
        allow_stale_reentry: true,
        keys,
    }
}

async fn key_now(store: &dyn LeaseStore, scope: Scope) -> PlanKey {
    let now = store.now().await.unwrap();
    PlanKey {
        scope,
        plan_time: floor(now, Duration::from_secs(60)),
    }
}

/// Claims `key` from every store at once (each on its own connection);
/// returns each runner's outcome.
async fn race(stores: &[PgLeaseStore], key: &[PlanKey]) -> Vec<(String, ClaimOutcome)> {
    let barrier = Arc::new(Barrier::new(stores.len()));
    let claims = stores.iter().enumerate().map(|(i, store)| {
        let (barrier, key, store) = (barrier.clone(), key.to_vec(), store.clone());
        tokio::spawn(async move {
            let runner = format!("runner-{i}");
            barrier.wait().await;
            let outcome = store.claim(&request("race", &runner, &key)).await.unwrap();
            (runner, outcome.into_iter().next().unwrap())
        })
    });
    futures::future::join_all(claims)
        .await
        .into_iter()
        .map(|joined| joined.unwrap())
        .collect()
}

/// The one runner whose outcome is `Some`, and its lease; all others must
/// have conflicted.
fn one_winner(
    outcomes: &[(String, ClaimOutcome)],
    won: impl Fn(&ClaimOutcome) -> bool,
) -> (String, Lease) {
    let winners: Vec<&(String, ClaimOutcome)> = outcomes.iter().filter(|(_, o)| won(o)).collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    let losers = outcomes
        .iter()
        .filter(|(_, o)| *o == ClaimOutcome::Conflicted);
    assert_eq!(losers.count(), outcomes.len() - 1, "{outcomes:?}");
    (winners[0].0.clone(), winners[0].1.lease().unwrap().clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_claimers_on_separate_connections_have_one_winner() {
    let Some(db) = test_db().await else { return };
    let offset = TimeOffset::new();
    let mut stores = Vec::new();
    for i in 0..16 {
        let options = db.options(&format!("claimer-{i}"), 1);
        let store = PgLeaseStore::connect_with(&db.url, &options).await.unwrap();
        stores.push(store.with_time_offset(offset.clone()));
    }
    let key = [key_now(&stores[0], Scope::global()).await];
    let row = |db: &TestDb| {
        let sql = format!("SELECT runner_id, status, attempt FROM {}", db.table());
        let admin = db.admin.clone();
        async move {
            let rows = sqlx_core::query::query(AssertSqlSafe(sql))
                .fetch_all(&admin)
                .await
                .unwrap();
            assert_eq!(rows.len(), 1, "one row for the plan");
            let r = &rows[0];
            (
                r.get::<String, _>(0),
                r.get::<String, _>(1),
                r.get::<i32, _>(2),
            )
        }
    };

    // The INSERT branch.
    let outcomes = race(&stores, &key).await;
    let (winner, lease) = one_winner(&outcomes, |o| matches!(o, ClaimOutcome::Won(_)));
    assert_eq!(row(&db).await, (winner, "RUNNING".into(), 1));

    // The UPDATE branch: a stale lease is taken over once...
    offset.advance(STALE + Duration::from_secs(1));
    let outcomes = race(&stores, &key).await;
    let (winner, stolen) = one_winner(&outcomes, |o| matches!(o, ClaimOutcome::Stolen(_)));
    assert_eq!((stolen.id, stolen.attempt), (lease.id, 2));
    assert_eq!(row(&db).await, (winner, "RUNNING".into(), 2));

    // ...and a failed run is retried once.
    let failure = Finish::failure(Duration::ZERO, ErrorCode::HandlerError, "x", Duration::ZERO);
    stores[0].finish(&stolen, &failure).await.unwrap();
    let outcomes = race(&stores, &key).await;
    let (winner, retried) = one_winner(&outcomes, |o| matches!(o, ClaimOutcome::Retried(_)));
    assert_eq!((retried.id, retried.attempt), (lease.id, 3));
    assert_eq!(row(&db).await, (winner, "RUNNING".into(), 3));
    drop(stores);
    db.drop_schema().await;
}

/// Columns, constraints and indexes of `schema.sys_cron_executions`, and
/// what else the schema holds beside it (its other tables but the ledger of
/// migrations, their indexes, the constraints that refer to the table),
/// with the schema's name written as `<s>`.
async fn shape(admin: &PgPool, schema: &str) -> Vec<String> {
    let table = format!("\"{schema}\".sys_cron_executions");
    let mut shape: Vec<String> = Vec::new();
    let tables: Vec<String> = query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = $1 AND tablename <> $2 \
         ORDER BY tablename",
    )
    .bind(schema)
    .bind(MIGRATIONS_TABLE)
    .fetch_all(admin)
    .await
    .unwrap();
    shape.extend(tables.iter().map(|t| format!("table {t}")));
    let columns = sqlx_core::query::query(
        "SELECT ordinal_position, column_name::text, data_type::text, is_nullable::text, \
                coalesce(column_default::text, '') AS column_default \
         FROM information_schema.columns \
         WHERE table_schema = $1 AND table_name = 'sys_cron_executions' \
         ORDER BY ordinal_position",
    )
    .bind(schema)
    .fetch_all(admin)
    .await
    .unwrap();
    for c in &columns {
        shape.push(format!(
            "column {} {} {} null={} default={}",
            c.get::<i32, _>(0),
            c.get::<String, _>(1),
            c.get::<String, _>(2),
            c.get::<String, _>(3),
            c.get::<String, _>(4)
        ));
    }
    let constraints: Vec<(String, String)> = sqlx_core::query_as::query_as(AssertSqlSafe(format!(
        "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint \
         WHERE conrelid = '{table}'::regclass OR confrelid = '{table}'::regclass \
         ORDER BY conname"
    )))
    .fetch_all(admin)
    .await
    .unwrap();
    shape.extend(
        constraints
            .iter()
            .map(|(n, d)| format!("constraint {n} {d}")),
    );
    let indexes: Vec<(String, String)> = sqlx_core::query_as::query_as(
        "SELECT indexname::text, indexdef FROM pg_indexes \
         WHERE schemaname = $1 AND tablename <> $2 ORDER BY indexname",
    )
    .bind(schema)
    .bind(MIGRATIONS_TABLE)
    .fetch_all(admin)
    .await
    .unwrap();
    shape.extend(indexes.iter().map(|(n, d)| format!("index {n} {d}")));
    shape
        .into_iter()
        .map(|line| line.replace(schema, "<s>"))
        .collect()
}

/// The table's storage file: a rewrite (ALTER TABLE ... TYPE, say) changes it.
async fn relfilenode(admin: &PgPool, schema: &str) -> i64 {
    query_scalar(AssertSqlSafe(format!(
        "SELECT relfilenode::bigint FROM pg_class \
         WHERE oid = '\"{schema}\".sys_cron_executions'::regclass"
    )))
    .fetch_one(admin)
    .await
    .unwrap()
}

/// What our migrations add beside the seed's table, as [`shape`] lines
/// start: the index of operator retries (migration 2), the attempts log's
/// table and its primary key's index (migration 3), the replica registry's
/// (migration 4), and steering's (migration 5): two nullable columns of the
/// seed's table (see [`seed_statements_run_on`]), two partial indexes on
/// it, and the controls' table with its indexes; and the stored schedules'
/// table with its primary key's index (migration 6); the partial indexes of
/// the RUNNING and FAILED rows by scope, for the operator's reads
/// (migration 7); the tally of ended FAILED rows with its primary key's
/// index, and the partial index of the other FAILED rows (migration 8,
/// whose triggers on the seed's table [`shape`] does not list: the seed's
/// statements fire them and run unchanged). The seed never reads
/// them, and its statements run unchanged. (No constraint refers to the
/// seed's table: [`shape`] would list it.)
const OURS: [&str; 19] = [
    "index idx_sys_cron_exec_operator_retry ",
    "table sys_cron_execution_attempts",
    "index pk_sys_cron_execution_attempts ",
    "table sys_cron_replicas",
    "index sys_cron_replicas_pkey ",
    "column 23 origin ",
    "column 24 control_id ",
    "index idx_sys_cron_exec_control_id ",
    "index idx_sys_cron_exec_forced_retry ",
    "table sys_cron_controls",
    "index pk_sys_cron_controls ",
    "index idx_sys_cron_controls_job ",
    "table sys_cron_schedules",
    "index pk_sys_cron_schedules ",
    "index idx_sys_cron_exec_running_scope ",
    "index idx_sys_cron_exec_failed_scope ",
    "table sys_cron_failed_tally",
    "index pk_sys_cron_failed_tally ",
    "index idx_sys_cron_exec_failed_retryable ",
];

fn without_ours(shape: Vec<String>) -> Vec<String> {
    shape
        .into_iter()
        .filter(|l| !OURS.iter().any(|ours| l.starts_with(ours)))
        .collect()
}

/// Panics unless `shape` holds each of [`OURS`] exactly once.
fn has_ours(shape: &[String]) {
    for ours in OURS {
        assert_eq!(
            shape.iter().filter(|l| l.starts_with(ours)).count(),
            1,
            "{ours:?} in {shape:#?}"
        );
    }
}

/// Steering's two columns (migration 5) on the table in `db`, as the
/// catalog has them: nullable, without a default, so that the seed's own
/// statements, which never name them, still run: its claim (an insert with
/// its column list, `benches/ceiling/per_plan.pgbench`) and its finish (a
/// guarded update) are run here, in its form, and the row reads back as a
/// scheduled run of no control.
async fn seed_statements_run_on(db: &TestDb, store: &PgLeaseStore) {
    let columns: Vec<(String, String, bool, bool)> = sqlx_core::query_as::query_as(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull, \
                a.atthasdef \
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relname = 'sys_cron_executions' \
           AND a.attname IN ('origin', 'control_id') ORDER BY a.attnum",
    )
    .bind(&db.schema)
    .fetch_all(&db.admin)
    .await
    .unwrap();
    assert_eq!(
        columns,
        [
            ("origin".into(), "text".into(), false, false),
            ("control_id".into(), "uuid".into(), false, false)
        ],
        "nullable, no default: the seed's inserts need not know them"
    );
    let t = db.table();
    let (id, token): (uuid::Uuid, uuid::Uuid) =
        sqlx_core::query_as::query_as(AssertSqlSafe(format!(
            "INSERT INTO {t} (id, job_name, scope_kind, scope_id, plan_time, status, attempt, \
                          max_attempts, runner_id, lease_token, heartbeat_at, stale_after, \
                          started_at, updated_at) \
         VALUES (gen_random_uuid(), 'seed_job', 'tenant', 'acme', now(), 'RUNNING', 1, 3, \
                 'go-replica', gen_random_uuid(), now(), now() + interval '120 seconds', \
                 now(), now()) \
         ON CONFLICT ON CONSTRAINT uq_sys_cron_execution DO NOTHING \
         RETURNING id, lease_token"
        )))
        .fetch_one(&db.admin)
        .await
        .expect("the seed's claim runs on the adopted table");
    let finished = raw_sql(AssertSqlSafe(format!(
        "UPDATE {t} SET status = 'SUCCESS', finished_at = now(), duration_ms = 0, \
             rows_affected = 0, result = '{{}}'::jsonb, error_code = NULL, error_msg = NULL, \
             updated_at = now() \
         WHERE id = '{id}' AND lease_token = '{token}' AND status = 'RUNNING'"
    )))
    .execute(&db.admin)
    .await
    .expect("the seed's finish runs on the adopted table");
    assert_eq!(finished.rows_affected(), 1);
    let row = store.get_execution(id).await.unwrap().unwrap();
    assert_eq!(row.status, Status::Success);
    assert_eq!((row.origin, row.control_id), (Origin::Scheduled, None));
}

/// Runs the seed's own migration inside the test schema.
async fn create_seed_table(db: &TestDb) {
    let mut tx = db.admin.begin().await.unwrap();
    raw_sql(AssertSqlSafe(format!(
        "SET LOCAL search_path TO \"{}\"",
        db.schema
    )))
    .execute(&mut *tx)
    .await
    .unwrap();
    raw_sql(SEED_SQL).execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopting_the_seeds_table_changes_nothing_and_conforms() {
    let Some(db) = test_db().await else { return };
    create_seed_table(&db).await;
    let before = shape(&db.admin, &db.schema).await;
    let storage = relfilenode(&db.admin, &db.schema).await;
    assert!(
        before.len() > 22 + 5,
        "columns, constraints and indexes: {before:#?}"
    );

    // connect migrates once; migrate again by hand.
    let store = db.store("adopt").await;
    store.migrate().await.unwrap();
    let adopted = shape(&db.admin, &db.schema).await;
    assert_eq!(
        without_ours(adopted.clone()),
        before,
        "adoption changes none of the seed's columns, constraints or indexes"
    );
    has_ours(&adopted);
    assert_eq!(
        relfilenode(&db.admin, &db.schema).await,
        storage,
        "no rewrite"
    );
    let versions = versions(&db).await;
    assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());

    let h = harness_on(store);
    scheduler_conformance::concurrent_claimers_have_one_winner(&h, 8).await;
    scheduler_conformance::concurrent_reclaimers_have_one_winner(&h, 8).await;
    scheduler_conformance::batch_claim_returns_outcomes_in_order(&h).await;
    scheduler_conformance::stolen_lease_is_fenced(&h).await;
    scheduler_conformance::swept_lease_is_fenced(&h).await;
    scheduler_conformance::heartbeat_extends_the_lease(&h).await;
    scheduler_conformance::sweep_closes_only_stale_running_rows_of_the_job(&h).await;
    scheduler_conformance::retry_waits_for_next_retry_at(&h).await;
    scheduler_conformance::non_reentrant_stale_row_is_not_retried(&h).await;
    scheduler_conformance::attempts_never_exceed_max(&h).await;
    scheduler_conformance::success_is_final(&h).await;
    scheduler_conformance::ids_are_v7_and_tokens_v4(&h).await;
    scheduler_conformance::plan_times_round_trip_at_microseconds(&h).await;
    scheduler_conformance::latest_executions_view(&h).await;
    scheduler_conformance::retry_due_lists_older_failed_plans(&h).await;
    scheduler_conformance::error_messages_are_stored_safely(&h).await;
    scheduler_conformance::oversized_result_still_succeeds(&h).await;
    scheduler_conformance::hostile_names_are_stored_or_refused_cleanly(&h).await;
    scheduler_conformance::names_are_stored_up_to_the_limit_and_refused_past_it(&h).await;
    scheduler_conformance::retry_due_limits_each_scope_on_its_own(&h).await;
    scheduler_conformance::operator_retries_are_due_whatever_their_plan_time(&h).await;
    scheduler_conformance::audit_reads_filter_and_order(&h).await;
    scheduler_conformance::operator_retry_repairs_failed_rows_and_refuses_others(&h).await;
    scheduler_conformance::scope_summaries_describe_each_scope(&h).await;
    scheduler_conformance::claims_with_no_attempt_budget_are_refused(&h).await;
    scheduler_conformance::announcing_again_updates_the_row_without_duplicating_it(&h).await;
    scheduler_conformance::failure_then_success_logs_both_attempts(&h).await;
    scheduler_conformance::swept_attempt_is_logged_as_stale_timeout(&h).await;
    scheduler_conformance::stolen_attempt_is_logged_for_its_runner(&h).await;
    scheduler_conformance::operator_retries_do_not_stack_messages(&h).await;
    scheduler_conformance::finish_many_logs_each_item_once(&h).await;
    // Last but two: they delete every old terminal row of the table.
    scheduler_conformance::prune_deletes_attempts_with_their_execution(&h).await;
    scheduler_conformance::prune_deletes_only_old_terminal_rows(&h).await;
    scheduler_conformance::store_time_is_utc_micros_and_controllable(&h).await;
    drop(h);
    // After the suite, whose counts the seed's row would disturb.
    seed_statements_run_on(&db, &db.store("seed-form").await).await;
    db.drop_schema().await;
}

/// The versions the ledger records for the default table, ascending.
async fn versions(db: &TestDb) -> Vec<i64> {
    query_scalar(AssertSqlSafe(format!(
        "SELECT version FROM \"{}\".{MIGRATIONS_TABLE} \
         WHERE table_name = 'sys_cron_executions' ORDER BY version",
        db.schema
    )))
    .fetch_all(&db.admin)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_migration_builds_exactly_the_seeds_table() {
    let Some(seeded) = test_db().await else {
        return;
    };
    let Some(fresh) = test_db().await else { return };
    create_seed_table(&seeded).await;
    // Replicas starting together: the advisory lock lets one migrate.
    let connects = (0..4).map(|i| {
        let (url, options) = (fresh.url.clone(), fresh.options(&format!("m{i}"), 1));
        async move { PgLeaseStore::connect_with(&url, &options).await }
    });
    for connected in futures::future::join_all(connects).await {
        connected.expect("concurrent migrations all succeed");
    }
    let fresh_shape = shape(&fresh.admin, &fresh.schema).await;
    assert_eq!(
        without_ours(fresh_shape.clone()),
        shape(&seeded.admin, &seeded.schema).await,
        "the seed's table, and only our own additions beside it"
    );
    has_ours(&fresh_shape);
    seed_statements_run_on(&fresh, &fresh.store("seed-form").await).await;
    let recorded: i64 = query_scalar(AssertSqlSafe(format!(
        "SELECT count(*) FROM \"{}\".{MIGRATIONS_TABLE}",
        fresh.schema
    )))
    .fetch_one(&fresh.admin)
    .await
    .unwrap();
    assert_eq!(recorded, SCHEMA_VERSION, "each version recorded once");
    seeded.drop_schema().await;
    fresh.drop_schema().await;
}

/// A table whose ledger lacks a version below the highest (a later
/// version landed first) gets it at the next migration; nothing runs twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_missing_below_the_highest_is_applied() {
    let Some(db) = test_db().await else { return };
    let store = db.store("gap").await;
    raw_sql(AssertSqlSafe(format!(
        "DELETE FROM \"{s}\".{MIGRATIONS_TABLE} WHERE version = 2; \
         DROP INDEX \"{s}\".idx_sys_cron_exec_operator_retry",
        s = db.schema
    )))
    .execute(&db.admin)
    .await
    .unwrap();
    store.migrate().await.unwrap();
    assert_eq!(
        versions(&db).await,
        (1..=SCHEMA_VERSION).collect::<Vec<_>>()
    );
    let index: i64 = query_scalar(
        "SELECT count(*) FROM pg_indexes WHERE schemaname = $1 \
         AND indexname = 'idx_sys_cron_exec_operator_retry'",
    )
    .bind(&db.schema)
    .fetch_one(&db.admin)
    .await
    .unwrap();
    assert_eq!(index, 1, "the missing migration ran");
    drop(store);
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused_and_left_alone() {
    let Some(db) = test_db().await else { return };
    let store = db.store("too-new").await;
    raw_sql(AssertSqlSafe(format!(
        "INSERT INTO \"{}\".{MIGRATIONS_TABLE} (table_name, version, description) \
         VALUES ('sys_cron_executions', {}, 'from the future')",
        db.schema,
        SCHEMA_VERSION + 1
    )))
    .execute(&db.admin)
    .await
    .unwrap();
    let err = store.migrate().await.unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found, known }
            if found == SCHEMA_VERSION + 1 && known == SCHEMA_VERSION),
        "{err:?}"
    );
    let err = PgLeaseStore::connect_with(&db.url, &db.options("too-new-2", 1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::SchemaTooNew { .. }), "{err:?}");
    drop(store);
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_of_any_valid_name_share_a_schema_independently() {
    let Some(db) = test_db().await else { return };
    let open = |table: &str| {
        let options = db.options(table, 2).table(table);
        let url = db.url.clone();
        async move { PgLeaseStore::connect_with(&url, &options).await.unwrap() }
    };
    // A keyword and a mixed-case name: both are quoted, so both work.
    let (a, b) = (open("user").await, open("Cron_B").await);
    assert_eq!(a.qualified_table(), format!("\"{}\".\"user\"", db.schema));
    let key = [key_now(&a, Scope::global()).await];
    let won_a = a.claim(&request("job", "r1", &key)).await.unwrap();
    let won_b = b.claim(&request("job", "r1", &key)).await.unwrap();
    assert!(matches!(won_a[0], ClaimOutcome::Won(_)));
    assert!(
        matches!(won_b[0], ClaimOutcome::Won(_)),
        "separate tables, separate keys"
    );
    let uniques: Vec<String> = query_scalar(
        "SELECT conname::text FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace \
         WHERE n.nspname = $1 AND c.contype = 'u' ORDER BY 1",
    )
    .bind(&db.schema)
    .fetch_all(&db.admin)
    .await
    .unwrap();
    assert_eq!(uniques, vec!["Cron_B_uq_execution", "user_uq_execution"]);
    // Each table has a replica registry of its own, beside it.
    let registries: Vec<String> = query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = $1 AND table_name LIKE '%replicas' ORDER BY 1",
    )
    .bind(&db.schema)
    .fetch_all(&db.admin)
    .await
    .unwrap();
    assert_eq!(registries, vec!["Cron_B_replicas", "user_replicas"]);

    let bad = PgLeaseStore::connect_with(&db.url, &db.options("bad", 1).table("x; DROP TABLE y"))
        .await
        .unwrap_err();
    assert!(matches!(bad, StoreError::InvalidInput(_)), "{bad:?}");
    drop((a, b));
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_error_text_ends_in_a_failed_row_with_valid_bounded_text() {
    let Some(db) = test_db().await else { return };
    let store = db.store("errors").await;
    let key = [key_now(&store, Scope::new("tenant", "ü\"'")).await];
    let lease = store.claim(&request("errors", "r1", &key)).await.unwrap()[0]
        .lease()
        .cloned()
        .unwrap();
    // 10,000 multi-byte characters of 2, 3 and 4 bytes, NULs between them.
    let text: String = (0..10_000)
        .map(|i| ['ü', '語', '😀'][i % 3])
        .flat_map(|c| [c, '\0'])
        .collect();
    let finish = Finish::failure(
        Duration::from_millis(5),
        ErrorCode::HandlerError,
        &format!("\0handler said: {text}"),
        Duration::from_secs(10),
    );
    store.finish(&lease, &finish).await.unwrap();

    let row = sqlx_core::query::query(AssertSqlSafe(format!(
        "SELECT status, error_code, error_msg, octet_length(error_msg) AS bytes, \
                position(chr(65533) IN error_msg) AS replacement, \
                next_retry_at - finished_at AS retry_in \
         FROM {} WHERE id = $1",
        db.table()
    )))
    .bind(lease.id)
    .fetch_one(&db.admin)
    .await
    .unwrap();
    assert_eq!(row.get::<String, _>("status"), "FAILED");
    assert_eq!(row.get::<String, _>("error_code"), "handler_error");
    let bytes = row.get::<i32, _>("bytes") as usize;
    assert!(
        bytes <= MAX_ERROR_MSG_BYTES && bytes > MAX_ERROR_MSG_BYTES - 4,
        "{bytes}"
    );
    assert_eq!(
        row.get::<i32, _>("replacement"),
        0,
        "no character was mangled"
    );
    let stored: String = row.get("error_msg");
    let expected: String = format!("handler said: {text}").replace('\0', "");
    assert!(
        expected.starts_with(&stored),
        "a clean prefix of the NUL-free text"
    );
    let retry_in: sqlx_postgres::types::PgInterval = row.get("retry_in");
    assert_eq!(retry_in.microseconds, 10_000_000);
    let read_back = store.get_execution(lease.id).await.unwrap().unwrap();
    assert_eq!(read_back.status, Status::Failed);
    assert_eq!(read_back.error_msg.as_deref(), Some(stored.as_str()));
    drop(store);
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connections_fail_the_call_in_flight_and_the_pool_recovers() {
    let Some(db) = test_db().await else { return };
    let store = db.store("victim").await;
    let key = [key_now(&store, Scope::global()).await];
    let lease = store.claim(&request("loss", "r1", &key)).await.unwrap()[0]
        .lease()
        .cloned()
        .unwrap();

    // Hold the row so the store's heartbeat waits on the server.
    let mut blocker = db.admin.begin().await.unwrap();
    sqlx_core::query::query(AssertSqlSafe(format!(
        "SELECT 1 FROM {} WHERE id = $1 FOR UPDATE",
        db.table()
    )))
    .bind(lease.id)
    .execute(&mut *blocker)
    .await
    .unwrap();
    let heartbeat = tokio::spawn({
        let (store, lease) = (store.clone(), lease.clone());
        async move { store.heartbeat(&lease, STALE).await }
    });
    db.wait_until_blocked("victim").await;
    assert!(db.terminate("victim").await >= 1);
    let err = heartbeat.await.unwrap().unwrap_err();
    assert!(matches!(err, StoreError::Backend { .. }), "{err:?}");
    assert!(err.is_transient());
    blocker.rollback().await.unwrap();

    // Every connection the pool holds is now dead; the next calls succeed.
    db.terminate("victim").await;
    let stale_after = store
        .heartbeat(&lease, STALE)
        .await
        .expect("the pool reconnects");
    assert!(stale_after > lease.stale_after);
    store
        .finish(
            &lease,
            &Finish::success(Duration::ZERO, 1, Default::default()),
        )
        .await
        .unwrap();
    let row = store.get_execution(lease.id).await.unwrap().unwrap();
    assert_eq!(row.status, Status::Success);
    drop(store);
    db.drop_schema().await;
}

/// Nothing listens: the connect fails at once, not after the pool's
/// acquire timeout, and says where it tried and why it failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_reported_at_once_with_its_address() {
    // Port 1 on loopback: nothing listens there.
    let started = Instant::now();
    let err = PgLeaseStore::connect_with(
        "postgres://nobody:hunter2@127.0.0.1:1/none",
        &PgStoreOptions::new().acquire_timeout(Duration::from_secs(30)),
    )
    .await
    .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, StoreError::Backend { .. }), "{err:?}");
    let shown = err.to_string();
    assert!(
        shown.contains("not reachable at 127.0.0.1:1: connection refused"),
        "{shown}"
    );
    assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
}

/// A server that accepts connections and never answers: the connect gives
/// up after the acquire timeout, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_fails_the_connect_after_the_acquire_timeout() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let started = Instant::now();
    let err = PgLeaseStore::connect_with(
        &format!("postgres://nobody@127.0.0.1:{port}/none"),
        &PgStoreOptions::new().acquire_timeout(Duration::from_millis(300)),
    )
    .await
    .unwrap_err();
    let took = started.elapsed();
    assert!(
        Duration::from_millis(300) <= took && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert!(matches!(err, StoreError::Backend { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!(
            "no answer from the server at 127.0.0.1:{port} within"
        )),
        "{err}"
    );
}

/// The server's own complaint, as the server words it, with its SQLSTATE
/// and advice that fits, without the driver's "at line N" of the server's
/// C source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_database_is_named_with_its_sqlstate() {
    let Some(db) = test_db().await else { return };
    let missing = format!("sched_test_missing_{}", uuid::Uuid::new_v4().simple());
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_path(&missing);
    let err = PgLeaseStore::connect_with(url.as_str(), &PgStoreOptions::new())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Backend { .. }), "{err:?}");
    let shown = err.to_string();
    let addr = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    for expected in [
        format!("the server at {addr} refused the connection"),
        format!("database \"{missing}\" does not exist (SQLSTATE 3D000)"),
        "create the database".to_owned(),
    ] {
        assert!(shown.contains(&expected), "{expected:?} in {shown}");
    }
    assert!(!shown.contains(" at line "), "{shown}");
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_time_is_shared_by_stores_with_one_offset() {
    let Some(db) = test_db().await else { return };
    let offset = TimeOffset::new();
    let a = db.store("a").await.with_time_offset(offset.clone());
    let b = db.store("b").await.with_time_offset(offset.clone());
    let h = Harness::new(Arc::new(a.clone()), Arc::new(offset));
    let before = b.now().await.unwrap();
    h.time.advance(Duration::from_secs(7200));
    let (ta, tb) = (a.now().await.unwrap(), b.now().await.unwrap());
    assert!(ta >= before + Duration::from_secs(7200));
    assert!(tb >= before + Duration::from_secs(7200));
    drop((a, b, h));
    db.drop_schema().await;
}

/// A FAILED row of job `job`, finished `ago` before store time moves on by
/// as much again: a prune with a cutoff of the current store time sees it.
async fn old_failed_row(store: &PgLeaseStore, offset: &TimeOffset, job: &str) -> Lease {
    let key = [key_now(store, Scope::global()).await];
    let lease = store.claim(&request(job, "r1", &key)).await.unwrap()[0]
        .lease()
        .cloned()
        .unwrap();
    let failure = Finish::failure(Duration::ZERO, ErrorCode::HandlerError, "x", Duration::ZERO);
    store.finish(&lease, &failure).await.unwrap();
    offset.advance(Duration::from_secs(3600));
    lease
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_spares_a_row_a_claim_retries_meanwhile() {
    let Some(db) = test_db().await else { return };
    let offset = TimeOffset::new();
    let store = db.store("pruner").await.with_time_offset(offset.clone());
    let lease = old_failed_row(&store, &offset, "prune_race").await;
    let cutoff = store.now().await.unwrap();
    assert_eq!(
        store.prune_finished(&Prune::count(cutoff)).await.unwrap(),
        1
    );

    // A claim retrying the row, caught between its write and its commit:
    // the prune has already chosen the row (its snapshot says FAILED) and
    // waits for the lock; the row it then finds is a live lease.
    let mut claimer = db.admin.begin().await.unwrap();
    sqlx_core::query::query(AssertSqlSafe(format!(
        "UPDATE {} SET status = 'RUNNING', attempt = attempt + 1, finished_at = NULL, \
            next_retry_at = NULL, error_code = NULL, error_msg = NULL, \
            stale_after = now() + interval '1 day' \
         WHERE id = $1",
        db.table()
    )))
    .bind(lease.id)
    .execute(&mut *claimer)
    .await
    .unwrap();
    let prune = tokio::spawn({
        let store = store.clone();
        async move { store.prune_finished(&Prune::batch(cutoff, 10)).await }
    });
    db.wait_until_blocked("pruner").await;
    claimer.commit().await.unwrap();
    assert_eq!(
        prune.await.unwrap().unwrap(),
        0,
        "a live lease is never pruned"
    );
    let row = store.get_execution(lease.id).await.unwrap().unwrap();
    assert_eq!((row.status, row.attempt), (Status::Running, 2));

    // Sub-microsecond cutoffs: a row finished at t is pruned by any cutoff
    // after t, however little after.
    let lease = old_failed_row(&store, &offset, "prune_micros").await;
    let finished = store
        .get_execution(lease.id)
        .await
        .unwrap()
        .unwrap()
        .finished_at
        .unwrap();
    let just_after = finished + Duration::from_nanos(1);
    assert_eq!(
        store.prune_finished(&Prune::count(finished)).await.unwrap(),
        0
    );
    assert_eq!(
        store
            .prune_finished(&Prune::count(just_after))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .prune_finished(&Prune::batch(just_after, 0))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .prune_finished(&Prune::batch(just_after, 10))
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.get_execution(lease.id).await.unwrap(), None);
    drop(store);
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_retry_waits_for_a_writer_holding_the_row() {
    let Some(db) = test_db().await else { return };
    let offset = TimeOffset::new();
    let store = db.store("operator").await.with_time_offset(offset.clone());
    let lease = old_failed_row(&store, &offset, "operator_race").await;
    let hold_as_running = |admin: PgPool, table: String, id| async move {
        let mut tx = admin.begin().await.unwrap();
        sqlx_core::query::query(AssertSqlSafe(format!(
            "UPDATE {table} SET status = 'RUNNING', attempt = attempt + 1, finished_at = NULL \
             WHERE id = $1"
        )))
        .bind(id)
        .execute(&mut *tx)
        .await
        .unwrap();
        tx
    };
    let id = lease.id;
    let retry = move |store: &PgLeaseStore| {
        let store = store.clone();
        tokio::spawn(async move { store.retry_execution(id).await })
    };

    // A writer that gives up: the repair then goes ahead on the row as it was.
    let writer = hold_as_running(db.admin.clone(), db.table(), lease.id).await;
    let repair = retry(&store);
    db.wait_until_blocked("operator").await;
    writer.rollback().await.unwrap();
    let repaired = repair.await.unwrap().unwrap();
    assert_eq!(
        (repaired.status, repaired.attempt, repaired.max_attempts),
        (Status::Failed, 1, 3)
    );
    assert_eq!(repaired.error_code.as_deref(), Some("operator_retry"));

    // A writer that commits: the repair sees RUNNING and changes nothing.
    let writer = hold_as_running(db.admin.clone(), db.table(), lease.id).await;
    let repair = retry(&store);
    db.wait_until_blocked("operator").await;
    writer.commit().await.unwrap();
    let refused = repair.await.unwrap();
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    let row = store.get_execution(lease.id).await.unwrap().unwrap();
    assert_eq!((row.status, row.attempt), (Status::Running, 2));
    assert_eq!(row.error_code.as_deref(), Some("operator_retry"));

    // Rows of other writers: a JSON null result is left as it is (only the
    // repaired columns are written), and an attempt at the largest INTEGER
    // is refused rather than overflowed.
    let odd: Vec<uuid::Uuid> = query_scalar(AssertSqlSafe(format!(
        "INSERT INTO {} (job_name, plan_time, status, attempt, max_attempts, result, \
                         finished_at, error_code) \
         VALUES ('odd', now(), 'FAILED', 3, 3, 'null'::jsonb, now(), NULL), \
                ('odd', now() - interval '1 minute', 'FAILED', 2147483647, 2147483647, \
                 '{{}}'::jsonb, now(), 'handler_error') \
         RETURNING id",
        db.table()
    )))
    .fetch_all(&db.admin)
    .await
    .unwrap();
    let repaired = store.retry_execution(odd[0]).await.unwrap();
    assert_eq!((repaired.attempt, repaired.max_attempts), (3, 4));
    assert_eq!(
        repaired.error_msg.as_deref(),
        Some("operator retry; last error: unknown")
    );
    let null_result: bool = query_scalar(AssertSqlSafe(format!(
        "SELECT result = 'null'::jsonb FROM {} WHERE id = $1",
        db.table()
    )))
    .bind(odd[0])
    .fetch_one(&db.admin)
    .await
    .unwrap();
    assert!(null_result, "the result column was not rewritten");
    let before = store.get_execution(odd[1]).await.unwrap().unwrap();
    let refused = store.retry_execution(odd[1]).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    assert_eq!(store.get_execution(odd[1]).await.unwrap().unwrap(), before);
    drop(store);
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_summaries_classify_rows_other_writers_leave() {
    let Some(db) = test_db().await else { return };
    let store = db.store("summaries").await;
    // Shapes the seed (or a hand) may leave: a RUNNING row without
    // stale_after, FAILED rows without error code or retry time, a SUCCESS
    // without finished_at; and scopes whose byte order ("T" < "t",
    // "z" < "é") differs from a natural-language collation's.
    sqlx_core::query::query(AssertSqlSafe(format!(
        "INSERT INTO {} (job_name, scope_kind, scope_id, plan_time, status, attempt, \
                         max_attempts, next_retry_at, stale_after, finished_at, error_code) \
         SELECT job, kind, id, now() - back * interval '1 minute', status, attempt, \
                max_attempts, now() + retry_in * interval '1 minute', \
                now() + stale_in * interval '1 minute', \
                now() - finished_ago * interval '1 minute', code \
         FROM (VALUES \
           ('sum', 't', 'a', 1, 'RUNNING', 1, 3, NULL, NULL, NULL, NULL), \
           ('sum', 't', 'a', 2, 'RUNNING', 1, 3, NULL, -30, NULL, NULL), \
           ('sum', 't', 'a', 3, 'RUNNING', 2, 3, NULL, 30, NULL, NULL), \
           ('sum', 't', 'a', 4, 'FAILED', 1, 3, NULL, NULL, 4, NULL), \
           ('sum', 't', 'a', 5, 'FAILED', 1, 3, 90, NULL, 5, 'handler_error'), \
           ('sum', 't', 'a', 6, 'FAILED', 1, 3, NULL, NULL, 6, 'stale_timeout'), \
           ('sum', 't', 'a', 7, 'FAILED', 3, 3, NULL, NULL, 7, 'stale_timeout'), \
           ('sum', 't', 'a', 8, 'SUCCESS', 1, 3, NULL, NULL, NULL, NULL), \
           ('sum', 't', 'a', 9, 'SUCCESS', 1, 3, NULL, NULL, 9, NULL), \
           ('sum', 't', 'z', 0, 'FAILED', 2, 3, -20, NULL, 30, 'operator_retry'), \
           ('sum', 't', 'z', 1, 'FAILED', 1, 3, NULL, NULL, 30, 'handler_error'), \
           ('sum', 't', 'é', 0, 'SUCCESS', 1, 1, NULL, NULL, 1, NULL), \
           ('sum', 'T', 'a', 0, 'FAILED', 1, 1, NULL, NULL, 1, 'handler_error'), \
           ('other', 't', 'a', 0, 'SUCCESS', 1, 1, NULL, NULL, 1, NULL) \
         ) AS v(job, kind, id, back, status, attempt, max_attempts, retry_in, stale_in, \
                finished_ago, code)",
        db.table()
    )))
    .execute(&db.admin)
    .await
    .unwrap();

    let before = store.now().await.unwrap();
    let summaries = store.scope_summaries(Some("sum")).await.unwrap();
    let after = store.now().await.unwrap();
    let scopes: Vec<(&str, &str)> = summaries
        .iter()
        .map(|s| (s.scope.kind.as_str(), s.scope.id.as_str()))
        .collect();
    assert_eq!(scopes, [("T", "a"), ("t", "a"), ("t", "z"), ("t", "é")]);
    for summary in &summaries {
        let filter = scheduler_core::ExecutionFilter {
            job_name: Some("sum".into()),
            scope: Some(summary.scope.clone()),
            ..Default::default()
        };
        let rows = store.list_executions(&filter).await.unwrap();
        let mut expected = ScopeSummary::of_rows(&rows, before).unwrap();
        if summary.scope == Scope::new("t", "a") {
            // Its only pending retry has no retry time: due at store time,
            // which the statement read between `before` and `after`.
            let due = summary.next_retry_at.unwrap();
            assert!(before <= due && due <= after, "{before} {due} {after}");
            expected.next_retry_at = Some(due);
            assert_eq!(
                (expected.running, expected.stale, expected.retry_pending),
                (2, 1, 2)
            );
            assert_eq!((expected.exhausted, expected.stale_timeout), (1, 1));
            assert_eq!(expected.last_success_finished_at, None);
        }
        assert_eq!(summary, &expected);
    }
    let z = &summaries[2];
    assert_eq!(z.retry_pending, 2);
    assert!(
        z.next_retry_at.unwrap() < before - Duration::from_secs(19 * 60),
        "the earlier of a past retry time and one due now"
    );

    let all = store.scope_summaries(None).await.unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all[0].job_name, "other");
    // The same, but for the due time read at the later call's store time.
    let mut again = all[1..].to_vec();
    let later_due = again[1].next_retry_at.take().unwrap();
    assert!(later_due >= summaries[1].next_retry_at.unwrap());
    let mut first = summaries.clone();
    first[1].next_retry_at = None;
    assert_eq!(again, first);
    assert!(store
        .scope_summaries(Some("none"))
        .await
        .unwrap()
        .is_empty());
    assert!(store.scope_summaries(Some("s\0")).await.unwrap().is_empty());
    drop(store);
    db.drop_schema().await;
}

/// Whether the seed's retry branch would pick the row up at `at` (an
/// expression): FAILED with an attempt left and `next_retry_at` NULL or
/// past, whatever `error_code` says.
async fn seed_would_retry(store: &PgLeaseStore, id: uuid::Uuid, at: &str) -> bool {
    query_scalar(AssertSqlSafe(format!(
        "SELECT count(*) = 1 FROM {} WHERE id = $1 AND status = 'FAILED' \
         AND attempt < max_attempts AND (next_retry_at IS NULL OR next_retry_at <= {at})",
        store.qualified_table()
    )))
    .bind(id)
    .fetch_one(store.pool())
    .await
    .unwrap()
}

/// A mixed fleet: a non-reentrant job's lease that our sweep closed stays
/// out of the seed's retry branch (even a century later) until an
/// operator's retry; a reentrant job's swept lease is due at once for
/// both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_retry_branch_leaves_our_swept_non_reentrant_rows_alone() {
    let Some(db) = test_db().await else { return };
    let offset = TimeOffset::new();
    let store = db.store("mixed").await.with_time_offset(offset.clone());
    let mut swept = Vec::new();
    for reentrant in [false, true] {
        let job = format!("mixed_{reentrant}");
        let key = [key_now(&store, Scope::global()).await];
        let mut req = request(&job, "dead-go-or-rust-replica", &key);
        req.allow_stale_reentry = reentrant;
        let lease = store.claim(&req).await.unwrap()[0]
            .lease()
            .cloned()
            .unwrap();
        swept.push((job, reentrant, lease.id));
    }
    offset.advance(STALE + Duration::from_secs(1));
    for (job, reentrant, _) in &swept {
        assert_eq!(store.sweep_stale(job, *reentrant).await.unwrap(), 1);
    }
    let later = "now() + interval '100 years'";
    let [(_, _, non_reentrant), (_, _, reentrant)] = swept.as_slice() else {
        unreachable!()
    };
    assert!(!seed_would_retry(&store, *non_reentrant, later).await);
    assert!(seed_would_retry(&store, *reentrant, "now()").await);
    store.retry_execution(*non_reentrant).await.unwrap();
    assert!(seed_would_retry(&store, *non_reentrant, "now() + interval '1 hour'").await);
    drop(store);
    db.drop_schema().await;
}
