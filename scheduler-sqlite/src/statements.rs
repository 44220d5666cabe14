//! Every statement of the store, from the files under `sql/`: one
//! statement per file, named as in `scheduler-postgres`, so the two stores
//! read side by side. What each statement does, and why it is written as it
//! is, is said in its file. The rules of the lease state machine that guard
//! several statements are written once, as fragments: `retry_eligible.sql`
//! and `steal_eligible.sql` (see [`Statements::load`] for where each goes).
//!
//! The texts are rendered once, at first use (fragments spliced in, comment
//! lines dropped: [`scheduler_core::store::sql::render`]), and are then
//! fixed, so each connection prepares them once.

use std::sync::LazyLock;

use scheduler_core::store::sql::{render, rule, summary_rules};

/// The text of `sql/<path>`.
macro_rules! sql_file {
    ($path:literal) => {
        include_str!(concat!("../sql/", $path))
    };
}

/// `fragments/tally_add.sql`: the ended FAILED rows of `rows` (a relation)
/// added `sign` times to the tally.
pub(crate) fn tally_add(rows: &str, sign: &str) -> String {
    render(
        sql_file!("fragments/tally_add.sql"),
        &[("rows", rows), ("sign", sign)],
    )
}

/// `tally_rebuild.sql`: run by migration 8 as its backfill, and by
/// [`SqliteLeaseStore::rebuild_tally`](crate::SqliteLeaseStore::rebuild_tally).
pub(crate) fn tally_rebuild() -> String {
    render(
        sql_file!("tally_rebuild.sql"),
        &[("tally_add_all", &tally_add("sys_cron_executions", "1"))],
    )
}

/// The parts migration 8 splices in (`migrations/0008_failed_tally.sql`):
/// the partial index's predicate, what each trigger adds to the tally (the
/// row it saw, as `fragments/tally_row.sql` makes it a relation), and the
/// backfill.
pub(crate) fn tally_migration_parts() -> Vec<(&'static str, String)> {
    let row = |row: &str, sign: &str| {
        render(
            sql_file!("fragments/tally_row.sql"),
            &[("row", row), ("sign", sign)],
        )
    };
    let of = |rows: &[String]| tally_add(&format!("({})", rows.join(" UNION ALL ")), "r.sign");
    vec![
        (
            "failed_retryable",
            render(sql_file!("fragments/failed_retryable.sql"), &[]),
        ),
        ("tally_add_inserted", of(&[row("NEW", "1")])),
        (
            "tally_add_updated",
            of(&[row("NEW", "1"), row("OLD", "-1")]),
        ),
        ("tally_add_deleted", of(&[row("OLD", "-1")])),
        ("tally_rebuild", tally_rebuild()),
    ]
}

/// The scope walk's {job} and {after} for the job bound as `:job`.
const ONE_JOB: (&str, &str) = (
    "job_name = :job",
    "e.job_name = :job AND (e.scope_kind, e.scope_id, e.plan_time) \
     > (+k.scope_kind, +k.scope_id, 9223372036854775807)",
);

/// Every statement, rendered (see the module docs).
pub(crate) static SQL: LazyLock<Statements> = LazyLock::new(Statements::load);

/// The rendered statements, one field per file of `sql/`.
pub(crate) struct Statements {
    /// `claim_insert.sql`: a claim's fresh row.
    pub(crate) claim_insert: String,
    /// `claim_reclaim.sql`: a claim's retry or takeover of an existing row.
    pub(crate) claim_reclaim: String,
    /// `claim_steal_log.sql`: the record of the attempt a takeover ends.
    pub(crate) claim_steal_log: String,
    /// `finish_log.sql`: the record of the attempt a finish ended.
    pub(crate) finish_log: String,
    /// `sweep_log.sql`: the record of an attempt the sweep, or the overlap
    /// policy, ended.
    pub(crate) sweep_log: String,
    /// `prune_log.sql`: the attempts logs of pruned rows.
    pub(crate) prune_log: String,
    /// `prune_replicas.sql`: registry rows of replicas not seen since the cutoff.
    pub(crate) prune_replicas: String,
    /// `attempts.sql`: the attempts log of a page of executions.
    pub(crate) attempts: String,
    /// `heartbeat.sql`.
    pub(crate) heartbeat: String,
    /// `finish.sql`: one terminal write, once per item of `finish_many`.
    pub(crate) finish: String,
    /// `sweep.sql`.
    pub(crate) sweep: String,
    /// `latest.sql`.
    pub(crate) latest: String,
    /// `retry_due.sql`.
    pub(crate) retry_due: String,
    /// `get.sql`: one row by id.
    pub(crate) get: String,
    /// `list.sql` up to its filters, and from them on (ties broken by id).
    pub(crate) list: (String, String),
    /// `list.sql` from its filters on, for one scope: no tie-break (plan
    /// times are unique within a scope), so the unique index gives the
    /// order.
    pub(crate) list_tail_of_scope: String,
    /// `summaries.sql` over every job.
    pub(crate) summaries_all: String,
    /// `summaries.sql` over one job (`:job`).
    pub(crate) summaries_of_job: String,
    /// `plan_times.sql`: one job's plan times since an instant, every
    /// scope's.
    pub(crate) plan_times: String,
    /// `tally_rebuild.sql`: the tally of ended FAILED rows counted again,
    /// two statements for one transaction.
    pub(crate) tally_rebuild: String,
    /// `operator_retry.sql`: the write-back of an operator's retry.
    pub(crate) operator_retry: String,
    /// `prune_count.sql`: a dry run of pruning.
    pub(crate) prune_count: String,
    /// `prune.sql`: one bounded DELETE.
    pub(crate) prune: String,
    /// `announce.sql`: a replica's upsert into the registry.
    pub(crate) announce: String,
    /// `replicas.sql`: the registry.
    pub(crate) replicas: String,
    /// `claim_admission.sql`: a claim's pauses in force and live runs.
    pub(crate) claim_admission: String,
    /// `claim_skip.sql`: the row of a plan the overlap policy skipped.
    pub(crate) claim_skip: String,
    /// `claim_cancel.sql`: a live run the overlap policy replaced.
    pub(crate) claim_cancel: String,
    /// `controls.sql` over every job.
    pub(crate) controls_all: String,
    /// `controls.sql` over the jobs of a JSON array (`:jobs`).
    pub(crate) controls_of_jobs: String,
    /// `control_get.sql`: one control by id.
    pub(crate) control_get: String,
    /// `control_held.sql`: the pause in force a new pause would repeat.
    pub(crate) control_held: String,
    /// `control_add.sql`.
    pub(crate) control_add: String,
    /// `control_update.sql`: the write-back of a change.
    pub(crate) control_update: String,
    /// `control_progress.sql`.
    pub(crate) control_progress: String,
    /// `schedules.sql`: every stored schedule.
    pub(crate) schedules: String,
    /// `schedule_get.sql`: one stored schedule by name.
    pub(crate) schedule_get: String,
    /// `schedule_version.sql`: a stored schedule's current version, for a
    /// claim's guard.
    pub(crate) schedule_version: String,
    /// `schedule_put.sql`: a stored schedule created or replaced.
    pub(crate) schedule_put: String,
    /// `schedule_delete.sql`.
    pub(crate) schedule_delete: String,
}

impl Statements {
    /// Renders every file. The rules go where `machine` applies them: the
    /// retry rule into the claim's reclaim and the retry read, decided at
    /// `:now`, and into the summaries, decided at each row's due time
    /// ([`summary_rules`]); the takeover rule into the claim's reclaim and
    /// the record of the attempt it ends.
    fn load() -> Self {
        let columns = render(sql_file!("fragments/columns.sql"), &[]);
        let attempt_columns = render(sql_file!("fragments/attempt_columns.sql"), &[]);
        let attempt_columns = [("attempt_columns", attempt_columns.as_str())];
        let prunable = render(sql_file!("fragments/prunable.sql"), &[]);
        let failed_retryable = render(sql_file!("fragments/failed_retryable.sql"), &[]);
        let control_columns = render(sql_file!("fragments/control_columns.sql"), &[]);
        let control_columns = [("control_columns", control_columns.as_str())];
        let controls = |filter: &str| {
            render(
                sql_file!("controls.sql"),
                &[control_columns[0], ("filter", filter)],
            )
        };
        let retry_eligible = sql_file!("fragments/retry_eligible.sql");
        let decided_now = rule(retry_eligible, ":now", ":allow_stale_reentry");
        let steal_eligible = rule(
            sql_file!("fragments/steal_eligible.sql"),
            ":now",
            ":allow_stale_reentry",
        );
        let [pending, pending_if_reentrant] = summary_rules(retry_eligible, ":now", ["0", "1"]);
        // The loose index scan of a job's scopes, or of every scope.
        let scope_walk = |job: &str, after: &str| {
            render(
                sql_file!("fragments/scope_walk.sql"),
                &[("job", job), ("after", after)],
            )
        };
        let summaries = |job: &str, after: &str| {
            render(
                sql_file!("summaries.sql"),
                &[
                    (pending.0, &pending.1),
                    (pending_if_reentrant.0, &pending_if_reentrant.1),
                    ("scope_walk", &scope_walk(job, after)),
                    ("job", job),
                    ("failed_retryable", &failed_retryable),
                ],
            )
        };
        // The filters stay a placeholder, where the call's conditions go.
        let list = render(
            sql_file!("list.sql"),
            &[
                ("columns", &columns),
                ("filters", "{filters}"),
                ("tie", "{tie}"),
            ],
        );
        let (head, tail) = list
            .split_once("{filters}")
            .expect("list.sql has a {filters} placeholder");
        let tie = |tie: &str| tail.replace("{tie}", tie);
        Statements {
            claim_insert: render(sql_file!("claim_insert.sql"), &[]),
            claim_reclaim: render(
                sql_file!("claim_reclaim.sql"),
                &[
                    ("retry_eligible", &decided_now),
                    ("steal_eligible", &steal_eligible),
                ],
            ),
            claim_steal_log: render(
                sql_file!("claim_steal_log.sql"),
                &[("steal_eligible", &steal_eligible), attempt_columns[0]],
            ),
            finish_log: render(sql_file!("finish_log.sql"), &attempt_columns),
            sweep_log: render(sql_file!("sweep_log.sql"), &attempt_columns),
            prune_log: render(sql_file!("prune_log.sql"), &[]),
            prune_replicas: render(sql_file!("prune_replicas.sql"), &[]),
            attempts: render(sql_file!("attempts.sql"), &attempt_columns),
            heartbeat: render(sql_file!("heartbeat.sql"), &[]),
            finish: render(sql_file!("finish.sql"), &[]),
            sweep: render(sql_file!("sweep.sql"), &[]),
            latest: render(sql_file!("latest.sql"), &[]),
            retry_due: render(
                sql_file!("retry_due.sql"),
                &[("retry_eligible", &decided_now)],
            ),
            get: render(sql_file!("get.sql"), &[("columns", &columns)]),
            list: (head.to_owned(), tie(", id DESC")),
            list_tail_of_scope: tie(""),
            summaries_all: summaries(
                "1",
                "(e.job_name, e.scope_kind, e.scope_id, e.plan_time) \
                 > (+k.job_name, +k.scope_kind, +k.scope_id, 9223372036854775807)",
            ),
            tally_rebuild: tally_rebuild(),
            summaries_of_job: summaries(ONE_JOB.0, ONE_JOB.1),
            plan_times: render(
                sql_file!("plan_times.sql"),
                &[("scope_walk", &scope_walk(ONE_JOB.0, ONE_JOB.1))],
            ),
            operator_retry: render(sql_file!("operator_retry.sql"), &[("columns", &columns)]),
            prune_count: render(sql_file!("prune_count.sql"), &[("prunable", &prunable)]),
            prune: render(sql_file!("prune.sql"), &[("prunable", &prunable)]),
            announce: render(sql_file!("announce.sql"), &[]),
            replicas: render(sql_file!("replicas.sql"), &[]),
            claim_admission: render(sql_file!("claim_admission.sql"), &control_columns),
            claim_skip: render(sql_file!("claim_skip.sql"), &[]),
            claim_cancel: render(sql_file!("claim_cancel.sql"), &[]),
            controls_all: controls("1"),
            controls_of_jobs: controls("job_name IN (SELECT value FROM json_each(:jobs))"),
            control_get: render(sql_file!("control_get.sql"), &control_columns),
            control_held: render(sql_file!("control_held.sql"), &control_columns),
            control_add: render(sql_file!("control_add.sql"), &control_columns),
            control_update: render(sql_file!("control_update.sql"), &[]),
            control_progress: render(sql_file!("control_progress.sql"), &[]),
            schedules: render(sql_file!("schedules.sql"), &[]),
            schedule_get: render(sql_file!("schedule_get.sql"), &[]),
            schedule_version: render(sql_file!("schedule_version.sql"), &[]),
            schedule_put: render(sql_file!("schedule_put.sql"), &[]),
            schedule_delete: render(sql_file!("schedule_delete.sql"), &[]),
        }
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;
    use scheduler_core::machine::OPERATOR_RETRY_CODE;
    use scheduler_core::model::Origin;
    use scheduler_core::{AttemptOutcome, ErrorCode};

    use super::*;
    use crate::schema;

    fn plan(conn: &Connection, sql: &str) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let mut rows = stmt.raw_query();
        let mut steps = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            steps.push(row.get::<_, String>(3).unwrap());
        }
        steps.join("; ")
    }

    /// The planner trap of `docs/contract.md` §10: plans must hold on a
    /// fresh, never analysed table.
    #[test]
    fn every_statement_uses_an_index_on_a_fresh_table() {
        let mut conn = Connection::open_in_memory().unwrap();
        schema::migrate(&mut conn, 0).unwrap();
        let unique = "sqlite_autoindex_sys_cron_executions_2";
        let primary = "sqlite_autoindex_sys_cron_executions_1";
        let list = format!("{} AND job_name = :job{}", SQL.list.0, SQL.list.1);
        let attempts_pk = "sys_cron_execution_attempts USING PRIMARY KEY";
        for (sql, index) in [
            (&SQL.attempts, attempts_pk),
            (&SQL.prune_log, attempts_pk),
            (&SQL.claim_steal_log, unique),
            (&SQL.finish_log, primary),
            (&SQL.latest, unique),
            (&SQL.claim_reclaim, unique),
            (&SQL.retry_due, "idx_sys_cron_exec_failed_recent"),
            (&SQL.retry_due, "idx_sys_cron_exec_operator_retry"),
            (&SQL.retry_due, "idx_sys_cron_exec_forced_retry"),
            (&SQL.claim_admission, "idx_sys_cron_exec_running_stale"),
            (&SQL.claim_cancel, primary),
            (&SQL.control_progress, "idx_sys_cron_exec_control_id"),
            (&SQL.sweep, "idx_sys_cron_exec_running_stale"),
            (&SQL.get, primary),
            (&SQL.heartbeat, primary),
            (&SQL.finish, primary),
            (&SQL.summaries_of_job, unique),
            (&SQL.plan_times, unique),
            (&SQL.operator_retry, primary),
            (&SQL.prune_count, "idx_sys_cron_exec_finished"),
            (&SQL.prune, "idx_sys_cron_exec_finished"),
            (&list, unique),
        ] {
            let plan = plan(&conn, sql);
            assert!(plan.contains(index), "{sql}\n=> {plan}");
            assert!(
                !plan.contains("SCAN sys_cron_execution"),
                "{sql}\n=> {plan}"
            );
            assert!(!plan.contains("FOR GROUP BY"), "{sql}\n=> {plan}");
        }
        // The operator's summaries (`summaries.sql`): the scopes by a loose
        // scan of the unique key, one probe per scope, the rare rows
        // through their partial indexes (the FAILED ones with an attempt
        // left only: the ended ones are the tally's), and the tally by its
        // key; over every job those two indexes are walked whole (they hold
        // only RUNNING rows and FAILED ones with an attempt left), never
        // the table, and nothing is grouped through a temporary b-tree.
        let running = "idx_sys_cron_exec_running_scope";
        let failed = "idx_sys_cron_exec_failed_retryable";
        let tally = "sys_cron_failed_tally USING PRIMARY KEY";
        for sql in [&SQL.summaries_all, &SQL.summaries_of_job] {
            let steps = plan(&conn, sql);
            let plan = steps;
            for index in [unique, running, failed, tally] {
                assert!(plan.contains(index), "{sql}\n=> {plan}");
            }
            // Over every job, the first scope is the first entry of the
            // unique index (a scan stopped by `LIMIT 1`), and the partial
            // indexes are read whole.
            let scans = plan
                .split("; ")
                .filter(|s| s.starts_with("SCAN sys_cron_exec"));
            for scan in scans {
                assert!(
                    sql == &SQL.summaries_all
                        && [unique, running, failed].iter().any(|i| scan.contains(i)),
                    "{sql}\n=> {plan}"
                );
            }
            // Each step of the loose scan is a range on the whole key.
            let step = if sql == &SQL.summaries_all {
                "(job_name,scope_kind,scope_id,plan_time)>(?,?,?,?)"
            } else {
                "(job_name=? AND (scope_kind,scope_id,plan_time)>(?,?,?))"
            };
            assert!(plan.contains(step), "{sql}\n=> {plan}");
            assert!(!plan.contains("FOR GROUP BY"), "{sql}\n=> {plan}");
        }
        // One scope's history, newest first: the unique index read
        // backwards, no sort (a limit stops the walk).
        let of_scope = format!(
            "{} AND job_name = :job AND scope_kind = :kind AND scope_id = :id{}",
            SQL.list.0, SQL.list_tail_of_scope
        );
        let steps = plan(&conn, &of_scope);
        assert!(steps.contains(unique), "{of_scope}\n=> {steps}");
        assert!(!steps.contains("TEMP B-TREE"), "{of_scope}\n=> {steps}");
        // The controls: the claim's pauses, the per-tick read (its active
        // and its recently ended controls, two ranges of one index), one
        // control by id; never a pass over the table.
        let controls_pk = "sqlite_autoindex_sys_cron_controls_1";
        for (sql, index) in [
            (
                &SQL.claim_admission,
                "idx_sys_cron_controls_job (job_name=? AND ended_at=?)",
            ),
            (
                &SQL.controls_of_jobs,
                "idx_sys_cron_controls_job (job_name=? AND ended_at=?)",
            ),
            (
                &SQL.controls_of_jobs,
                "idx_sys_cron_controls_job (job_name=? AND ended_at>?)",
            ),
            (
                &SQL.control_held,
                "idx_sys_cron_controls_job (job_name=? AND ended_at=?)",
            ),
            (&SQL.control_get, controls_pk),
            (&SQL.control_update, controls_pk),
        ] {
            let plan = plan(&conn, sql);
            assert!(plan.contains(index), "{sql}\n=> {plan}");
            assert!(!plan.contains("SCAN sys_cron_controls"), "{sql}\n=> {plan}");
        }
        // The stored schedules: by name, through the primary key, listed
        // in its order without a sort.
        let schedules_pk = "sqlite_autoindex_sys_cron_schedules_1";
        for sql in [
            &SQL.schedules,
            &SQL.schedule_get,
            &SQL.schedule_version,
            &SQL.schedule_delete,
        ] {
            let plan = plan(&conn, sql);
            assert!(plan.contains(schedules_pk), "{sql}\n=> {plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{sql}\n=> {plan}");
        }
        let registry = plan(&conn, &SQL.replicas);
        assert!(
            registry.contains("sqlite_autoindex_sys_cron_replicas_1"),
            "{registry}"
        );
        assert!(!registry.contains("TEMP B-TREE"), "{registry}");
    }

    /// Summarising every job reads no row of history: the table itself is
    /// only ever probed (the first scope, one step per scope, the latest
    /// and last SUCCESS rows per scope), and the only walks are of the two
    /// partial indexes of rare rows. (The only sort left is of the output,
    /// one row per scope.)
    #[test]
    fn the_summary_of_every_job_reads_no_history() {
        let mut conn = Connection::open_in_memory().unwrap();
        schema::migrate(&mut conn, 0).unwrap();
        let plan = plan(&conn, &SQL.summaries_all);
        let unique = "sqlite_autoindex_sys_cron_executions_2";
        for probe in [
            "SEARCH l USING INTEGER PRIMARY KEY".to_owned(),
            "SEARCH s USING INTEGER PRIMARY KEY".to_owned(),
            "SEARCH x USING INTEGER PRIMARY KEY".to_owned(),
            format!("SEARCH e USING COVERING INDEX {unique}"),
        ] {
            assert_eq!(plan.matches(&probe).count(), 1, "{probe}: {plan}");
        }
        assert_eq!(
            plan.matches(&format!("SEARCH x USING COVERING INDEX {unique} (job_name=? AND scope_kind=? AND scope_id=?)"))
                .count(),
            1,
            "{plan}"
        );
        assert_eq!(
            plan.matches(&format!(
                "SEARCH x USING INDEX {unique} (job_name=? AND scope_kind=? AND scope_id=?)"
            ))
            .count(),
            1,
            "{plan}"
        );
        assert_eq!(
            plan.matches("SCAN sys_cron_executions").count(),
            3,
            "{plan}"
        );
        assert!(!plan.contains("FOR GROUP BY"), "{plan}");
    }

    /// The attempts log's outcomes the table accepts are exactly the core's.
    #[test]
    fn the_attempt_outcomes_the_table_accepts_are_the_cores() {
        let mut conn = Connection::open_in_memory().unwrap();
        schema::migrate(&mut conn, 0).unwrap();
        conn.execute_batch(
            "INSERT INTO sys_cron_executions (id, job_name, plan_time, status, lease_token) \
             VALUES ('e', 'j', 0, 'FAILED', 't')",
        )
        .unwrap();
        let insert = |attempt: i32, outcome: &str| {
            conn.execute(
                "INSERT INTO sys_cron_execution_attempts (execution_id, attempt, ended_at, outcome) \
                 VALUES ('e', ?1, 0, ?2)",
                rusqlite::params![attempt, outcome],
            )
        };
        for (attempt, outcome) in (1..).zip(AttemptOutcome::ALL) {
            insert(attempt, outcome.as_str()).unwrap();
        }
        assert!(insert(9, "RUNNING").is_err());
    }

    /// The error codes the statements write out (see
    /// `fragments/retry_eligible.sql`) are the ones the core names.
    #[test]
    fn the_codes_written_out_are_the_cores() {
        let stale = format!("'{}'", ErrorCode::StaleTimeout.as_str());
        let operator = format!("'{OPERATOR_RETRY_CODE}'");
        for sql in [
            &SQL.claim_reclaim,
            &SQL.retry_due,
            &SQL.summaries_all,
            &SQL.sweep,
        ] {
            assert!(sql.contains(&stale), "{sql}");
        }
        assert_eq!(SQL.retry_due.matches(&operator).count(), 3);
        assert!(sql_file!("migrations/0002_operator_retry_index.sql").contains(&operator));
        let overlap = format!(
            "('{}', '{}')",
            ErrorCode::OverlapSkipped.as_str(),
            ErrorCode::OverlapCanceled.as_str()
        );
        assert_eq!(SQL.summaries_all.matches(&overlap).count(), 1);
        assert_eq!(SQL.tally_rebuild.matches(&overlap).count(), 2);
        let backfill = format!("'{}'", Origin::Backfill.column().unwrap());
        assert!(SQL.latest.contains(&backfill), "{}", SQL.latest);
    }
}
