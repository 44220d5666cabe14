//! Every statement of the store, from the files under `sql/`: one
//! statement per file, named as in `scheduler-sqlite`, so the two stores
//! read side by side. What each statement does, and why it is written as it
//! is, is said in its file. The rules of the lease state machine that guard
//! several statements are written once, as fragments: `retry_eligible.sql`
//! and `steal_eligible.sql` (see [`Statements::new`] for where each goes).
//!
//! The texts are rendered once per store, when it is built, for its table
//! and its [`TimeSource`] ([`scheduler_core::store::sql::render`]: fragments
//! spliced in, `{table}` and `{now}` filled, comment lines dropped). Every
//! instant is store time, always from `$1`: in production the server's
//! `now()` (fixed for the whole transaction) plus the test offset; with a
//! client clock, its reading. The texts are then fixed for the store's
//! life, so sqlx prepares each once per connection.

use std::sync::Arc;

use scheduler_core::store::sql::{render, rule, summary_rules};

use crate::controls::CONTROLS_CHANNEL;
use crate::names::{quote, Table};
use crate::store_time::TimeSource;

/// The text of `sql/<path>`.
macro_rules! sql_file {
    ($path:literal) => {
        include_str!(concat!("../sql/", $path))
    };
}
pub(crate) use sql_file;

/// `fragments/tally_add.sql` on `table`'s tally: the ended FAILED rows of
/// `rows` (a relation, or a placeholder left for a later rendering) added
/// `sign` times.
pub(crate) fn tally_add(table: &Table, rows: &str, sign: &str) -> String {
    render(
        sql_file!("fragments/tally_add.sql"),
        &[
            ("tally", &table.tally),
            ("tally_pk", &quote(&table.names.tally_pk)),
            ("rows", rows),
            ("sign", sign),
        ],
    )
}

/// `tally_rebuild.sql` on `table`: run by migration 8 as its backfill, and
/// by [`PgLeaseStore::rebuild_tally`](crate::PgLeaseStore::rebuild_tally).
pub(crate) fn tally_rebuild(table: &Table) -> String {
    render(
        sql_file!("tally_rebuild.sql"),
        &[
            ("table", &table.display),
            ("tally", &table.tally),
            ("tally_add_all", &tally_add(table, &table.display, "1")),
        ],
    )
}

/// Where the executions table lives, and every statement on it.
#[derive(Debug)]
pub(crate) struct Statements {
    /// The table the statements name.
    pub table: Table,
    /// `now.sql`.
    pub now: Arc<str>,
    /// `claim_insert.sql`: a batch claim's fresh rows.
    pub claim_insert: Arc<str>,
    /// `claim_reclaim.sql`: a batch claim's retries and takeovers.
    pub claim_reclaim: Arc<str>,
    /// `claim_lock.sql`, exclusive: the job's claim lock, taken by claims
    /// whose admission weighs live runs and by additions of controls.
    pub claim_lock: Arc<str>,
    /// `claim_lock.sql`, shared: the same lock, taken by claims that weigh
    /// no live run (policy allow_all).
    pub claim_lock_shared: Arc<str>,
    /// `claim_admission.sql`: the pauses in force and the live runs.
    pub claim_admission: Arc<str>,
    /// `claim_admission` reads the live runs of the batch's scopes, bound
    /// as `$4` (kinds) and `$5` (ids): `fragments/live_by_scope.sql`, for
    /// an unpartitioned table.
    pub admission_by_scope: bool,
    /// `claim_skip.sql`: the rows of the plans admission skipped.
    pub claim_skip: Arc<str>,
    /// `claim_cancel.sql`: ends the live runs a claim replaced.
    pub claim_cancel: Arc<str>,
    /// `heartbeat.sql`.
    pub heartbeat: Arc<str>,
    /// `attempts.sql`: the attempts log of a page of executions.
    pub attempts: Arc<str>,
    /// `finish.sql`: one terminal write.
    pub finish: Arc<str>,
    /// `finish.sql` at the instant the statement runs (on the server's
    /// clock, `clock_timestamp()`): a transactional job's guarded SUCCESS,
    /// written in a transaction that began before its handler ran, whose
    /// `now()` is that beginning, not the finish.
    pub finish_in_tx: Arc<str>,
    /// `finish_many.sql`: many terminal writes in one statement.
    pub finish_many: Arc<str>,
    /// `sweep.sql`.
    pub sweep: Arc<str>,
    /// `latest.sql`.
    pub latest: Arc<str>,
    /// `retry_due.sql`.
    pub retry_due: Arc<str>,
    /// `get.sql`.
    pub get: Arc<str>,
    /// `list.sql` up to its filters, and from them on (ties broken by id).
    pub list: (String, String),
    /// `list.sql` from its filters on, for one scope: no tie-break (plan
    /// times are unique within a scope), so the unique index gives the
    /// order.
    pub list_tail_of_scope: String,
    /// `summaries.sql` over every job.
    pub summaries_all: Arc<str>,
    /// `summaries.sql` over one job, bound as `$2`.
    pub summaries_of_job: Arc<str>,
    /// `plan_times.sql`: one job's plan times since an instant, every
    /// scope's.
    pub plan_times: Arc<str>,
    /// `operator_retry_lock.sql`: reads and locks the row, with store time.
    pub operator_retry_lock: Arc<str>,
    /// `operator_retry.sql`: writes the repaired row back.
    pub operator_retry: Arc<str>,
    /// `prune_count.sql`: a dry run of pruning.
    pub prune_count: Arc<str>,
    /// `prune.sql`: one bounded DELETE.
    pub prune: Arc<str>,
    /// `tally_rebuild.sql`: the tally of ended FAILED rows counted again,
    /// several statements for one transaction.
    pub tally_rebuild: Arc<str>,
    /// `partitions/untally.sql`, its `{partition}` left to fill.
    pub untally: Arc<str>,
    /// `announce.sql`: a replica's upsert into the registry.
    pub announce: Arc<str>,
    /// `replicas.sql`: the registry.
    pub replicas: Arc<str>,
    /// `controls.sql` over every job.
    pub controls_all: Arc<str>,
    /// `controls.sql` over the jobs bound as `$2`.
    pub controls_of_jobs: Arc<str>,
    /// `control_held.sql`: the pause in force on a pause's exact target.
    pub control_held: Arc<str>,
    /// `control_add.sql`: stores a new control.
    pub control_add: Arc<str>,
    /// `control_lock.sql`: reads and locks a control, with store time.
    pub control_lock: Arc<str>,
    /// `control_update.sql`: writes a changed control back.
    pub control_update: Arc<str>,
    /// `control_progress.sql`: a control's runs by status.
    pub control_progress: Arc<str>,
    /// `control_notify.sql`: tells listeners a job's controls changed.
    pub control_notify: Arc<str>,
    /// `schedules.sql`: every stored schedule.
    pub schedules: Arc<str>,
    /// `schedule_get.sql`: one stored schedule, with the store time at
    /// which the statement runs.
    pub schedule_get: Arc<str>,
    /// `schedule_version.sql`: a stored schedule's current version, for a
    /// claim's guard.
    pub schedule_version: Arc<str>,
    /// `schedule_put.sql`: a stored schedule created or replaced.
    pub schedule_put: Arc<str>,
    /// `schedule_delete.sql`.
    pub schedule_delete: Arc<str>,
}

impl Statements {
    /// The statements on `table`, with store time from `time`. The rules go
    /// where `machine` applies them: the retry rule into the claim's reclaim
    /// and the retry read, decided at store time, and into the summaries,
    /// decided at each row's due time ([`summary_rules`]); the takeover rule
    /// into the claim's reclaim. The attempts log's append
    /// (`fragments/log_ended.sql`) goes into every statement whose
    /// transition ends attempts: the finishes, the sweep, the reclaim and
    /// the claim's cancellation of replaced runs.
    pub(crate) fn new(table: Table, time: TimeSource) -> Self {
        let now = format!("({})", time.bare());
        let clock = format!("({})", time.current());
        let columns = render(sql_file!("fragments/columns.sql"), &[]);
        let control_columns = render(sql_file!("fragments/control_columns.sql"), &[]);
        let prunable = render(sql_file!("fragments/prunable.sql"), &[]);
        let failed_retryable = render(sql_file!("fragments/failed_retryable.sql"), &[]);
        let retry_eligible = sql_file!("fragments/retry_eligible.sql");
        // In the claim, $5 is allow_stale_reentry; in retry_due, $4.
        let claim_retry = rule(retry_eligible, &now, "$5");
        let claim_steal = rule(sql_file!("fragments/steal_eligible.sql"), &now, "$5");
        let [pending, pending_if_reentrant] =
            summary_rules(retry_eligible, "n.now", ["false", "true"]);
        let uq = quote(&table.names.unique);
        let t = table.display.as_str();
        let attempt_columns = render(sql_file!("fragments/attempt_columns.sql"), &[]);
        let values = [
            ("table", t),
            ("replicas", table.replicas.as_str()),
            ("controls", table.controls.as_str()),
            ("schedules", table.schedules.as_str()),
            ("control_columns", control_columns.as_str()),
            ("attempts", table.attempts.as_str()),
            ("now", now.as_str()),
            ("columns", columns.as_str()),
            ("attempt_columns", attempt_columns.as_str()),
            ("uq", uq.as_str()),
            ("prunable", prunable.as_str()),
        ];
        // A statement's own values come first, so they may override the
        // common ones (`render` takes the first match).
        let text = |template: &str, more: &[(&str, &str)]| -> Arc<str> {
            render(template, &[more, &values[..]].concat()).into()
        };
        // The append of the attempts a statement's transition ended: from
        // its CTE `ended`, at `ended_at`, recording `ending`. A finish
        // records what it wrote; the sweep and a takeover what their
        // `Ending` says, bound.
        let log_ended = |ended: &str, ended_at: &str, ending: &str| {
            text(
                sql_file!("fragments/log_ended.sql"),
                &[("ended", ended), ("ended_at", ended_at), ("ending", ending)],
            )
        };
        let finished = log_ended(
            "written",
            "finished_at",
            "status, error_code, error_msg, duration_ms",
        );
        let swept = log_ended("swept", "finished_at", "$5, $6, $7, $8::int4");
        let taken = log_ended("taken", &now, "$10, $11, $12, $13::int4");
        let canceled = log_ended("canceled", &now, "$5, $6, $7, $8::int4");
        let lock = |function: &str| text(sql_file!("claim_lock.sql"), &[("lock", function)]);
        // Admission's live runs: by the batch's scopes, unless a probe per
        // scope would be one per partition (see claim_admission.sql).
        let admission_by_scope = table.partitioned.is_none();
        let live = if admission_by_scope {
            text(sql_file!("fragments/live_by_scope.sql"), &[])
        } else {
            text(sql_file!("fragments/live_by_lease.sql"), &[])
        };
        let controls = |filter: &str| text(sql_file!("controls.sql"), &[("filter", filter)]);
        let channel = format!("'{CONTROLS_CHANNEL}'");
        // The loose index scan of a job's scopes, or of every scope.
        let scope_walk = |job: &str, before: &str| {
            text(
                sql_file!("fragments/scope_walk.sql"),
                &[("job", job), ("before", before)],
            )
        };
        let one_job = |job: &str| {
            (
                format!("e.job_name = {job}"),
                format!(
                    "e.job_name = {job} AND (e.scope_kind, e.scope_id) < (k.scope_kind, k.scope_id)"
                ),
            )
        };
        let summaries = |job: &str, before: &str| {
            text(
                sql_file!("summaries.sql"),
                &[
                    (pending.0, &pending.1),
                    (pending_if_reentrant.0, &pending_if_reentrant.1),
                    ("scope_walk", &scope_walk(job, before)),
                    ("job", job),
                    ("tally", &table.tally),
                    ("failed_retryable", &failed_retryable),
                ],
            )
        };
        // The filters stay a placeholder, where the call's conditions go.
        let list = text(
            sql_file!("list.sql"),
            &[("filters", "{filters}"), ("tie", "{tie}")],
        );
        let (head, tail) = list
            .split_once("{filters}")
            .expect("list.sql has a {filters} placeholder");
        let tie = |tie: &str| tail.replace("{tie}", tie);
        Statements {
            now: text(sql_file!("now.sql"), &[]),
            claim_insert: text(sql_file!("claim_insert.sql"), &[]),
            claim_reclaim: text(
                sql_file!("claim_reclaim.sql"),
                &[
                    ("retry_eligible", &claim_retry),
                    ("steal_eligible", &claim_steal),
                    ("log_ended", &taken),
                ],
            ),
            claim_lock: lock("pg_advisory_xact_lock"),
            claim_lock_shared: lock("pg_advisory_xact_lock_shared"),
            claim_admission: text(sql_file!("claim_admission.sql"), &[("live", &live)]),
            admission_by_scope,
            claim_skip: text(sql_file!("claim_skip.sql"), &[]),
            claim_cancel: text(sql_file!("claim_cancel.sql"), &[("log_ended", &canceled)]),
            heartbeat: text(sql_file!("heartbeat.sql"), &[]),
            attempts: text(sql_file!("attempts.sql"), &[]),
            finish: text(sql_file!("finish.sql"), &[("log_ended", &finished)]),
            finish_in_tx: text(
                sql_file!("finish.sql"),
                &[("log_ended", &finished), ("now", &clock)],
            ),
            finish_many: text(sql_file!("finish_many.sql"), &[("log_ended", &finished)]),
            sweep: text(sql_file!("sweep.sql"), &[("log_ended", &swept)]),
            latest: text(sql_file!("latest.sql"), &[]),
            retry_due: text(
                sql_file!("retry_due.sql"),
                &[("retry_eligible", &rule(retry_eligible, &now, "$4"))],
            ),
            get: text(sql_file!("get.sql"), &[]),
            list: (head.to_owned(), tie(", id DESC")),
            list_tail_of_scope: tie(""),
            summaries_all: summaries(
                "true",
                "(e.job_name, e.scope_kind, e.scope_id) < (k.job_name, k.scope_kind, k.scope_id)",
            ),
            summaries_of_job: {
                let (job, before) = one_job("$2");
                summaries(&job, &before)
            },
            plan_times: {
                let (job, before) = one_job("$1");
                text(
                    sql_file!("plan_times.sql"),
                    &[("scope_walk", &scope_walk(&job, &before))],
                )
            },
            operator_retry_lock: text(sql_file!("operator_retry_lock.sql"), &[]),
            operator_retry: text(sql_file!("operator_retry.sql"), &[]),
            prune_count: text(sql_file!("prune_count.sql"), &[]),
            prune: text(sql_file!("prune.sql"), &[]),
            tally_rebuild: tally_rebuild(&table).into(),
            untally: render(
                sql_file!("partitions/untally.sql"),
                &[(
                    "tally_add_partition",
                    &tally_add(&table, "{partition}", "-1"),
                )],
            )
            .into(),
            announce: text(sql_file!("announce.sql"), &[]),
            replicas: text(sql_file!("replicas.sql"), &[]),
            controls_all: controls(""),
            controls_of_jobs: controls("job_name = ANY($2) AND"),
            control_held: text(sql_file!("control_held.sql"), &[]),
            control_add: text(sql_file!("control_add.sql"), &[]),
            control_lock: text(sql_file!("control_lock.sql"), &[]),
            control_update: text(sql_file!("control_update.sql"), &[]),
            control_progress: text(sql_file!("control_progress.sql"), &[]),
            control_notify: text(sql_file!("control_notify.sql"), &[("channel", &channel)]),
            schedules: text(sql_file!("schedules.sql"), &[]),
            schedule_get: text(sql_file!("schedule_get.sql"), &[("clock", &clock)]),
            schedule_version: text(sql_file!("schedule_version.sql"), &[]),
            schedule_put: text(sql_file!("schedule_put.sql"), &[]),
            schedule_delete: text(sql_file!("schedule_delete.sql"), &[]),
            table,
        }
    }
}

#[cfg(test)]
mod tests {
    use scheduler_core::machine::OPERATOR_RETRY_CODE;
    use scheduler_core::model::{ControlAction, ControlState, Origin};
    use scheduler_core::{AttemptOutcome, ErrorCode};
    use sqlx_core::raw_sql::raw_sql;
    use sqlx_core::sql_str::AssertSqlSafe;

    use super::*;
    use crate::common::test_db;
    use crate::names::{ObjectNames, DEFAULT_TABLE};
    use crate::schema;

    /// The statements on `table` in `schema`, on store time from `time`.
    fn on(schema: Option<&str>, table: &str, time: TimeSource) -> Statements {
        Statements::new(Table::new(schema, table).unwrap(), time)
    }

    /// The generic plan of `text` (what a connection settles on for a
    /// prepared statement), prepared with parameter `types` and explained
    /// with the literal `args`.
    async fn generic_plan(
        conn: &mut sqlx_postgres::PgConnection,
        types: &str,
        text: &str,
        args: &str,
    ) -> Vec<String> {
        plan_in(conn, "force_generic_plan", types, text, args).await
    }

    /// The plan of `text` under `plan_cache_mode` `mode`, prepared with
    /// parameter `types` and explained with the literal `args`.
    async fn plan_in(
        conn: &mut sqlx_postgres::PgConnection,
        mode: &str,
        types: &str,
        text: &str,
        args: &str,
    ) -> Vec<String> {
        raw_sql(AssertSqlSafe(format!(
            "PREPARE plan_probe({types}) AS {text}; SET plan_cache_mode = {mode}"
        )))
        .execute(&mut *conn)
        .await
        .unwrap();
        let plan = sqlx_core::query_scalar::query_scalar(AssertSqlSafe(format!(
            "EXPLAIN EXECUTE plan_probe({args})"
        )))
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        raw_sql("DEALLOCATE plan_probe; RESET plan_cache_mode")
            .execute(&mut *conn)
            .await
            .unwrap();
        plan
    }

    /// The bounded DELETE of pruning finds its rows by walking the partial
    /// index on `finished_at` (the seed's name, or the derived one), and
    /// their attempts logs through the log's primary key, in a custom plan
    /// and in a generic one, on tables large enough for the planner to care.
    /// The read of a page of logs probes the same key.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pruning_walks_the_finished_index() {
        let Some(db) = test_db().await else { return };
        let pool = &db.admin;
        for table in [DEFAULT_TABLE, "prune_plan"] {
            let sql = on(Some(&db.schema), table, TimeSource::Server);
            schema::migrate(&sql.table, pool).await.unwrap();
            let t = &sql.table.display;
            let mut conn = pool.acquire().await.unwrap();
            raw_sql(AssertSqlSafe(format!(
                "INSERT INTO {t} (job_name, scope_kind, scope_id, plan_time, status, finished_at) \
                 SELECT 'job', 't', 'x' || i % 100, now() - i * interval '1 minute', \
                        CASE WHEN i % 100 = 0 THEN 'RUNNING' \
                             WHEN i % 7 = 0 THEN 'FAILED' ELSE 'SUCCESS' END, \
                        CASE WHEN i % 100 <> 0 THEN now() - i * interval '1 minute' END \
                 FROM generate_series(1, 50000) i; \
                 INSERT INTO {a} SELECT id, n, 'r', now(), now(), 'FAILED', NULL, NULL, 1 \
                 FROM {t}, generate_series(1, 2) n; \
                 ANALYZE {t}; ANALYZE {a}",
                a = sql.table.attempts
            )))
            .execute(&mut *conn)
            .await
            .unwrap();
            // "Index Scan using <index> on", "Bitmap Index Scan on <index>".
            let uses = |plan: &[String], index: &str| {
                let wanted = format!(" {index} ");
                plan.iter().any(|line| line.contains(&wanted))
            };
            let names = &sql.table.names;
            let uses_index =
                |plan: &[String]| uses(plan, &names.idx_finished) && uses(plan, &names.attempts_pk);
            let page: Vec<String> = sqlx_core::query_scalar::query_scalar(AssertSqlSafe(format!(
                "EXPLAIN {}",
                sql.attempts
            )))
            .bind(vec![uuid::Uuid::now_v7(); 50])
            .fetch_all(&mut *conn)
            .await
            .unwrap();
            assert!(uses(&page, &names.attempts_pk), "{table}: {page:#?}");
            let custom: Vec<String> = sqlx_core::query_scalar::query_scalar(AssertSqlSafe(
                format!("EXPLAIN {}", sql.prune),
            ))
            .bind(time::OffsetDateTime::now_utc())
            .bind(1000_i64)
            .fetch_all(&mut *conn)
            .await
            .unwrap();
            assert!(uses_index(&custom), "{table}: {custom:#?}");
            let generic =
                generic_plan(&mut conn, "timestamptz, bigint", &sql.prune, "now(), 1000").await;
            assert!(uses_index(&generic), "{table}: {generic:#?}");
        }
        db.drop_schema().await;
    }

    /// The batched terminal write finds its rows by lease, never by
    /// walking the RUNNING rows once per lease, even when the statistics
    /// say no row is RUNNING and 10,000 are: in a custom plan and in a
    /// generic one (the first shows its cost, the second is what a
    /// connection settles on).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn finishing_many_probes_by_lease_whatever_the_statistics_say() {
        let Some(db) = test_db().await else { return };
        let sql = on(Some(&db.schema), DEFAULT_TABLE, TimeSource::Server);
        schema::migrate(&sql.table, &db.admin).await.unwrap();
        let t = &sql.table.display;
        let mut conn = db.admin.acquire().await.unwrap();
        // Statistics taken while every row was terminal, kept stale (no
        // autovacuum) while 10,000 leases are claimed.
        raw_sql(AssertSqlSafe(format!(
            "ALTER TABLE {t} SET (autovacuum_enabled = false); \
             INSERT INTO {t} (job_name, scope_kind, scope_id, plan_time, status, finished_at) \
             SELECT 'old', 't', 'x' || i, now(), 'SUCCESS', now() \
             FROM generate_series(1, 20000) i; \
             ANALYZE {t}; \
             INSERT INTO {t} (job_name, scope_kind, scope_id, plan_time, status, stale_after) \
             SELECT 'new', 't', 'x' || i, now(), 'RUNNING', now() + interval '1 hour' \
             FROM generate_series(1, 10000) i"
        )))
        .execute(&mut *conn)
        .await
        .unwrap();
        let leases: Vec<(uuid::Uuid, uuid::Uuid, time::OffsetDateTime)> =
            sqlx_core::query_as::query_as(AssertSqlSafe(format!(
                "SELECT id, lease_token, plan_time FROM {t} WHERE status = 'RUNNING' \
                 ORDER BY id LIMIT 5000"
            )))
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        let n = leases.len();
        let arrays = (
            leases.iter().map(|l| l.0).collect::<Vec<_>>(),
            leases.iter().map(|l| l.1).collect::<Vec<_>>(),
            vec!["SUCCESS"; n],
            vec![1_i32; n],
            vec![Some(1_i64); n],
            vec![Some(sqlx_core::types::Json(serde_json::json!({}))); n],
            vec![None::<&str>; n],
            vec![None::<&str>; n],
            vec![None::<sqlx_postgres::types::PgInterval>; n],
            leases.iter().map(|l| l.2).collect::<Vec<_>>(),
        );
        let zero = sqlx_postgres::types::PgInterval {
            months: 0,
            days: 0,
            microseconds: 0,
        };
        let sane = |plan: &[String]| {
            let running = format!("using {} on", sql.table.names.idx_running_stale);
            !plan
                .iter()
                .any(|line| line.contains(&running) || line.contains("Join Filter"))
        };
        // A custom plan (EXPLAIN with the values bound), then the generic
        // one (EXPLAIN EXECUTE of a prepared statement, generic forced; its
        // plan does not depend on the values, which it cannot take as
        // parameters anyway).
        let custom: Vec<String> = sqlx_core::query_scalar::query_scalar(AssertSqlSafe(format!(
            "EXPLAIN {}",
            sql.finish_many
        )))
        .bind(zero)
        .bind(&arrays.0)
        .bind(&arrays.1)
        .bind(&arrays.2)
        .bind(&arrays.3)
        .bind(&arrays.4)
        .bind(&arrays.5)
        .bind(&arrays.6)
        .bind(&arrays.7)
        .bind(&arrays.8)
        .bind(&arrays.9)
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        assert!(sane(&custom), "{custom:#?}");
        let generic = generic_plan(
            &mut conn,
            "interval, uuid[], uuid[], text[], int4[], int8[], jsonb[], text[], text[], interval[], \
             timestamptz[]",
            &sql.finish_many,
            "'0', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}'",
        )
        .await;
        assert!(sane(&generic), "{generic:#?}");
        drop(conn);
        db.drop_schema().await;
    }

    /// Asserts that the plans of `text` (prepared with parameter `types`,
    /// explained with the literal `args`) read through `index` and never
    /// through any of `avoided`, on a table just filled with a long history
    /// (200 scopes of 250 ended plans each) and 2,000 RUNNING rows, a tenth
    /// of them stale, with no statistics and after ANALYZE; in a custom plan
    /// and in a generic one; panics with the first plan that does not.
    async fn assert_reads_running_rows_through(
        text: impl Fn(&Statements) -> &str,
        (types, args): (&str, &str),
        index: impl Fn(&ObjectNames) -> &str,
        avoided: impl Fn(&ObjectNames) -> Vec<&str>,
    ) {
        let Some(db) = test_db().await else { return };
        let sql = on(Some(&db.schema), DEFAULT_TABLE, TimeSource::Server);
        schema::migrate(&sql.table, &db.admin).await.unwrap();
        let t = &sql.table.display;
        let mut conn = db.admin.acquire().await.unwrap();
        raw_sql(AssertSqlSafe(format!(
            "ALTER TABLE {t} SET (autovacuum_enabled = false); \
             INSERT INTO {t} (job_name, scope_kind, scope_id, plan_time, status, finished_at) \
             SELECT 'job', 't', 'x' || s, now() - p * interval '5 minutes', 'SUCCESS', now() \
             FROM generate_series(1, 200) s, generate_series(1, 250) p; \
             INSERT INTO {t} (job_name, scope_kind, scope_id, plan_time, status, stale_after) \
             SELECT 'job', 't', 'x' || s, now(), 'RUNNING', \
                    now() + CASE WHEN s % 10 = 0 THEN -1 ELSE 1 END * interval '1 hour' \
             FROM generate_series(1, 2000) s"
        )))
        .execute(&mut *conn)
        .await
        .unwrap();
        let names = &sql.table.names;
        let uses = |plan: &[String], index: &str| {
            let index = format!(" {index} ");
            plan.iter().any(|line| line.contains(&index))
        };
        for analysed in [false, true] {
            if analysed {
                raw_sql(AssertSqlSafe(format!("ANALYZE {t}")))
                    .execute(&mut *conn)
                    .await
                    .unwrap();
            }
            for mode in ["force_custom_plan", "force_generic_plan"] {
                let plan = plan_in(&mut conn, mode, types, text(&sql), args).await;
                let sane = uses(&plan, index(names))
                    && !avoided(names).into_iter().any(|a| uses(&plan, a));
                assert!(sane, "analysed: {analysed}, {mode}: {plan:#?}");
            }
        }
        drop(conn);
        db.drop_schema().await;
    }

    /// Admission's read finds the live runs of the batch's scopes through
    /// the index of RUNNING rows by scope: never through the unique key (a
    /// walk through each scope's history), nor by `stale_after` (every
    /// live run, and every run ended lately, of any scope; see
    /// fragments/live_by_scope.sql).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn admission_reads_live_runs_through_the_running_index() {
        assert_reads_running_rows_through(
            |sql| &sql.claim_admission,
            (
                "interval, text, boolean, text[], text[]",
                "'0', 'job', true, '{t,t}', '{x1,x2}'",
            ),
            |names| &names.idx_running_scope,
            |names| vec![&names.unique, &names.idx_running_stale],
        )
        .await;
    }

    /// The sweep finds a job's stale leases through the index of RUNNING
    /// rows by `stale_after`: never by walking the job's RUNNING entries
    /// (the index by scope) or its history (the unique key; see sweep.sql).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_sweep_finds_stale_leases_through_the_stale_index() {
        assert_reads_running_rows_through(
            |sql| &sql.sweep,
            (
                "interval, text, text, timestamptz, text, text, text, int4",
                "'0', 'job', 'stale', NULL, 'FAILED', 'stale_timeout', 'stale', NULL",
            ),
            |names| &names.idx_running_stale,
            |names| vec![&names.unique, &names.idx_running_scope],
        )
        .await;
    }

    /// A client clock changes the store-time expressions and nothing else;
    /// the server's statements never mention the client's epoch (they may
    /// extract an interval's seconds, `extract(epoch FROM ...)`).
    #[test]
    fn a_client_clock_changes_only_the_store_time_expression() {
        for (schema, table) in [(None, DEFAULT_TABLE), (Some("s"), "t")] {
            let server = format!("{:?}", on(schema, table, TimeSource::Server));
            let client = format!("{:?}", on(schema, table, TimeSource::Client));
            assert!(!server.contains("'epoch'"), "{server}");
            assert!(!client.contains("now()"), "{client}");
            // The one statement that reads the time when it runs says
            // so in its own expression on the server's clock.
            let server = server.replace(TimeSource::Server.current(), TimeSource::Server.bare());
            assert_eq!(
                client.replace(TimeSource::Client.bare(), TimeSource::Server.bare()),
                server
            );
        }
    }

    #[test]
    fn names_are_quoted_and_qualified() {
        let sql = on(Some("Sched"), "user", TimeSource::Server);
        assert_eq!(sql.table.display, "\"Sched\".\"user\"");
        assert!(sql.get.contains("FROM \"Sched\".\"user\" WHERE id = $1"));
        assert_eq!(
            on(None, DEFAULT_TABLE, TimeSource::Server).table.display,
            "\"sys_cron_executions\""
        );
    }

    /// The attempts log's outcomes the table accepts are exactly the core's.
    #[test]
    fn the_attempt_outcomes_the_table_accepts_are_the_cores() {
        let ddl = sql_file!("migrations/0003_attempts.sql");
        let accepted = AttemptOutcome::ALL.map(|o| format!("'{o}'")).join(", ");
        assert!(ddl.contains(&format!("outcome IN ({accepted})")), "{ddl}");
    }

    /// The error codes the statements write out (see
    /// `fragments/retry_eligible.sql`) are the ones the core names.
    #[test]
    fn the_codes_written_out_are_the_cores() {
        let sql = on(None, DEFAULT_TABLE, TimeSource::Server);
        let stale = format!("'{}'", ErrorCode::StaleTimeout.as_str());
        let operator = format!("'{OPERATOR_RETRY_CODE}'");
        for text in [
            &sql.claim_reclaim,
            &sql.retry_due,
            &sql.summaries_all,
            &sql.sweep,
        ] {
            assert!(text.contains(&stale), "{text}");
        }
        assert_eq!(sql.retry_due.matches(&operator).count(), 3);
        assert!(sql_file!("migrations/0002_operator_retry_index.sql").contains(&operator));
        let skipped = format!("'{}'", ErrorCode::OverlapSkipped.as_str());
        let canceled = format!("'{}'", ErrorCode::OverlapCanceled.as_str());
        assert!(sql.claim_skip.contains(&skipped), "{}", sql.claim_skip);
        assert!(sql.claim_cancel.contains(&canceled), "{}", sql.claim_cancel);
        let overlap = format!("IN ({skipped}, {canceled})");
        assert!(
            sql.summaries_all.contains(&overlap),
            "{}",
            sql.summaries_all
        );
    }

    /// The words the steering statements write out are the core's: the
    /// origins (`latest.sql` tells a backfill from a trigger, the claim
    /// binds `Origin::column`) and the controls' kinds and states the
    /// table accepts.
    #[test]
    fn the_steering_words_written_out_are_the_cores() {
        let sql = on(None, DEFAULT_TABLE, TimeSource::Server);
        let backfill = format!("x.origin = '{}'", Origin::Backfill);
        assert!(sql.latest.contains(&backfill), "{}", sql.latest);
        let ddl = sql_file!("migrations/0005_steering.sql");
        let kinds = [
            ControlAction::Pause {
                until: None,
                skip_missed: false,
            },
            ControlAction::Trigger,
            ControlAction::Backfill {
                from: time::OffsetDateTime::UNIX_EPOCH,
                to: time::OffsetDateTime::UNIX_EPOCH,
            },
        ]
        .map(|a| format!("'{}'", a.kind()))
        .join(", ");
        assert!(ddl.contains(&format!("kind IN ({kinds})")), "{ddl}");
        let states = [
            ControlState::Active,
            ControlState::Done,
            ControlState::Cancelled,
            ControlState::Rejected,
        ]
        .map(|s| format!("'{s}'"))
        .join(", ");
        assert!(ddl.contains(&format!("state IN ({states})")), "{ddl}");
        assert!(sql.claim_admission.contains("kind = 'pause'"));
        assert!(sql.control_add.contains("'active'"));
    }
    /// The scope summaries read no table in full: every (job, scope) is
    /// found by probes of the unique key (the loose index scan), each
    /// scope's newest row and newest success by walks of it, the RUNNING
    /// rows by a partial index (migration 7's; for the few RUNNING rows the
    /// planner may as well take the older partial index of RUNNING rows, by
    /// `stale_after`), the FAILED rows with an attempt left by theirs
    /// (migration 8), and the ended FAILED rows from the tally alone, probed
    /// by its key scope by scope: never an index that holds them (those of
    /// every FAILED row) — for every job
    /// and for one, in a custom plan and in a generic one, on a table whose
    /// history dwarfs its scopes (`docs/contract.md` §10, "Operator reads").
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn summaries_read_indexes_not_the_history() {
        let Some(db) = test_db().await else { return };
        let sql = on(Some(&db.schema), DEFAULT_TABLE, TimeSource::Server);
        schema::migrate(&sql.table, &db.admin).await.unwrap();
        let t = &sql.table.display;
        let names = &sql.table.names;
        let mut conn = db.admin.acquire().await.unwrap();
        // 100 scopes of 2 jobs, 1,000 plans each: ~1% FAILED, the newest
        // plan of every 10th scope RUNNING.
        raw_sql(AssertSqlSafe(format!(
            "INSERT INTO {t} (job_name, scope_kind, scope_id, plan_time, status, attempt, \
                              max_attempts, error_code, stale_after, finished_at) \
             SELECT 'job_' || s % 2, 't', 'x' || s, now() - n * interval '5 minutes', \
                    CASE WHEN n = 0 AND s % 10 = 0 THEN 'RUNNING' \
                         WHEN (n * 31 + s) % 97 = 0 THEN 'FAILED' ELSE 'SUCCESS' END, \
                    1 + n % 3, 3, \
                    CASE WHEN (n * 31 + s) % 97 = 0 THEN 'handler_error' END, \
                    CASE WHEN n = 0 AND s % 10 = 0 THEN now() + interval '1 minute' END, \
                    CASE WHEN NOT (n = 0 AND s % 10 = 0) THEN now() - n * interval '5 minutes' END \
             FROM generate_series(0, 999) n CROSS JOIN generate_series(0, 99) s"
        )))
        .execute(&mut *conn)
        .await
        .unwrap();
        // Vacuumed, so that the visibility map lets index-only scans be
        // what they are on a settled table (VACUUM runs outside a
        // transaction block: a statement of its own).
        raw_sql(AssertSqlSafe(format!("VACUUM ANALYZE {t}")))
            .execute(&mut *conn)
            .await
            .unwrap();
        let table = &sql.table.name;
        let reads_indexes = |plan: &[String]| {
            let uses = |index: &str| plan.iter().any(|l| l.contains(&format!(" {index} ")));
            !plan
                .iter()
                .any(|l| l.contains(&format!("Seq Scan on {table} ")))
                && uses(&names.unique)
                && (uses(&names.idx_running_scope) || uses(&names.idx_running_stale))
                && uses(&names.idx_failed_retryable)
                && plan
                    .iter()
                    .any(|l| l.contains(&format!(" {} ", names.tally)))
                // The tally by probes of its key, scope by scope: a join
                // was planned as a nested loop over all of the job's
                // tally rows per scope when its statistics were stale.
                && plan
                    .iter()
                    .filter(|l| l.contains(&format!(" {} ", names.tally_pk)))
                    .all(|l| l.contains("Index Scan using") || l.contains("Index Only Scan using"))
                && plan
                    .iter()
                    .any(|l| l.contains(&format!(" {} ", names.tally_pk)))
                && !uses(&names.idx_failed_scope)
                && !uses(&names.idx_failed_recent)
        };
        let zero = sqlx_postgres::types::PgInterval {
            months: 0,
            days: 0,
            microseconds: 0,
        };
        for (what, text, job) in [
            ("every job", &sql.summaries_all, None),
            ("one job", &sql.summaries_of_job, Some("job_1")),
        ] {
            let explain =
                sqlx_core::query_scalar::query_scalar(AssertSqlSafe(format!("EXPLAIN {text}")))
                    .bind(zero);
            let custom: Vec<String> = match job {
                Some(job) => explain.bind(job),
                None => explain,
            }
            .fetch_all(&mut *conn)
            .await
            .unwrap();
            assert!(reads_indexes(&custom), "{what}: {custom:#?}");
            let (types, args) = match job {
                Some(job) => ("interval, text", format!("'0', '{job}'")),
                None => ("interval", "'0'".to_owned()),
            };
            let generic = generic_plan(&mut conn, types, text, &args).await;
            assert!(reads_indexes(&generic), "{what}, generic: {generic:#?}");
        }
        drop(conn);
        db.drop_schema().await;
    }
}
