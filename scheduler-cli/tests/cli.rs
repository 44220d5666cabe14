//! The real `scheduler` binary against SQLite files and PostgreSQL.

mod common;

use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use assert_cmd::Command;
use common::{
    on_database, postgres_admin, postgres_db, psql, scheduler, skip, stderr, stdout_json,
};
use scheduler_conformance::fixtures;
use scheduler_core::{
    ClaimRequest, ErrorCode, ExecutionAudit, ExecutionFilter, Finish, JobOutput, JobSpec,
    LeaseStore, LeaseStoreExt, Manager, ManagerOptions, ManualClock, PlanKey, Scope, Scopes,
    Status,
};
use scheduler_sqlite::{SqliteLeaseStore, SqliteStoreOptions};
use serde_json::Value;
use time::OffsetDateTime;

fn sqlite_url(dir: &Path) -> String {
    format!("sqlite:{}", dir.join("jobs.db").display())
}

/// Rows for the operator commands: a SUCCESS, a FAILED and a RUNNING
/// execution of `report` (scopes tenant/ok, tenant/bad, tenant/busy), at
/// the current minute of store time.
async fn seed_rows(store: &dyn LeaseStore) -> Vec<uuid::Uuid> {
    let leases = fixtures::claim_now(store, "report", "seed", &["ok", "bad", "busy"], 1).await;
    store
        .finish(
            &leases[0],
            &Finish::success(Duration::from_millis(12), 5, Default::default()),
        )
        .await
        .unwrap();
    store
        .finish(
            &leases[1],
            &Finish::failure(
                Duration::from_millis(7),
                ErrorCode::HandlerError,
                "upstream 503",
                Duration::ZERO,
            ),
        )
        .await
        .unwrap();
    leases.iter().map(|l| l.id).collect()
}

/// A runtime for the test's own store calls, and the seeded rows' ids.
fn seeded(url: &str) -> (tokio::runtime::Runtime, Vec<uuid::Uuid>) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ids = rt.block_on(async {
        let store = SqliteLeaseStore::connect(url).await.unwrap();
        seed_rows(&store).await
    });
    (rt, ids)
}

#[test]
fn demo_on_a_sqlite_file_passes_its_check_and_the_table_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    // What a demo killed while its pause was in force leaves behind: the
    // next one cancels it, and its own pause goes ahead.
    assert!(scheduler(&url, &["migrate"]).status.success());
    let left = stdout_json(&scheduler(
        &url,
        &[
            "pause",
            "tenant_rollup",
            "--note",
            "demo: paused for a moment",
            "--json",
        ],
    ));
    // And a stored schedule an earlier demo left: the next one deletes it
    // and creates its own.
    let earlier = scheduler(
        &url,
        &[
            "schedule", "create", "digest", "--kind", "report", "--every", "1h",
        ],
    );
    assert!(earlier.status.success(), "{}", stderr(&earlier));
    let out = scheduler(&url, &["demo", "--duration", "9s", "--json"]);
    let report = stdout_json(&out);
    assert_eq!(report["ok"], true, "{report}");
    assert!(report["takeovers"].as_u64().unwrap() >= 1, "{report}");
    assert!(
        report["failures_by_code"]["handler_panic"]
            .as_u64()
            .unwrap()
            >= 1,
        "{report}"
    );
    assert!(
        report["failures_by_code"]["handler_error"]
            .as_u64()
            .unwrap()
            >= 1,
        "{report}"
    );
    // The operator's steps, each shown and checked.
    let checks = report["steering"]["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 5, "{report}");
    assert!(
        checks.iter().all(|c| c["shown"] == true && c["ok"] == true),
        "{report}"
    );
    let progress = stderr(&out);
    for step in [
        "PAUSED",
        "RESUMED",
        "TRIGGERED",
        "BACKFILL",
        "[trigger]",
        "[backfill]",
        "deleted the stored schedule digest v1 an earlier demo run left",
        "CREATED stored schedule digest v1 (kind report): every 2 seconds",
        "UPDATED digest to v2: every 4 seconds",
        "report of v1: every 2 seconds",
        "report of v2: every 4 seconds",
    ] {
        assert!(progress.contains(step), "{step}: {progress}");
    }
    assert!(progress.contains("CRASHED"), "{progress}");
    assert!(
        progress.contains("TAKEOVER") || progress.contains("stale lease"),
        "{progress}"
    );
    assert!(
        progress.contains("cancelled a pause of tenant_rollup left by an earlier demo run"),
        "{progress}"
    );
    // The demo's stored schedule stays, at its second version; its runs
    // are marked by version.
    let digest = stdout_json(&scheduler(&url, &["schedule", "show", "digest", "--json"]));
    assert_eq!(digest["version"], 2, "{digest}");
    assert_eq!(digest["schedule_words"], "every 4 seconds", "{digest}");
    let history = stdout_json(&scheduler(&url, &["history", "--job", "digest", "--json"]));
    let sources: std::collections::BTreeSet<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["source"].as_str().unwrap())
        .collect();
    assert_eq!(
        sources,
        ["stored v2", "stored, before v2"].into(),
        "{history}"
    );
    let cancelled = &all_controls(&url)[0];
    assert_eq!(
        (&cancelled["id"], &cancelled["state"]),
        (&left["id"], &Value::from("cancelled")),
        "{cancelled}"
    );
    // The table itself: nothing RUNNING, the doomed job taken over and done.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = SqliteLeaseStore::connect(&url).await.unwrap();
        let rows = store
            .list_executions(&ExecutionFilter::default())
            .await
            .unwrap();
        assert!(rows.len() >= 10, "{}", rows.len());
        assert!(rows.iter().all(|r| r.status != Status::Running));
        // Five triggered runs (one per tenant), fifteen backfilled ones.
        let by_origin = |origin| rows.iter().filter(|r| r.origin == origin).count();
        assert_eq!(by_origin(scheduler_core::Origin::Trigger), 5);
        assert_eq!(by_origin(scheduler_core::Origin::Backfill), 15);
        let doomed: Vec<_> = rows
            .iter()
            .filter(|r| r.job_name == "doomed_export")
            .collect();
        assert!(
            doomed
                .iter()
                .any(|r| r.status == Status::Success && r.attempt >= 2),
            "{doomed:?}"
        );
    });
}

/// A replica crashes 1.5 s in and its lease can only be taken over about
/// 5 s in: shorter runs used to end with that lease RUNNING and a failed
/// check. The six runs go in parallel to keep the test short.
#[test]
fn demo_passes_its_check_when_the_duration_ends_before_the_takeover() {
    let cases: Vec<(&str, &str)> = ["memory:", "sqlite::memory:"]
        .into_iter()
        .flat_map(|db| ["0s", "3s", "5s"].map(|d| (db, d)))
        .collect();
    let outs: Vec<Output> = std::thread::scope(|s| {
        let runs: Vec<_> = cases
            .iter()
            .map(|&(db, d)| s.spawn(move || scheduler(db, &["demo", "--duration", d, "--json"])))
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    for (&(db, d), out) in cases.iter().zip(&outs) {
        let report = stdout_json(out);
        assert_eq!(report["ok"], true, "{db} {d}: {report}");
        assert_eq!(report["still_running"], Value::Array(vec![]), "{db} {d}");
        assert_eq!(report["duplicates"], Value::Array(vec![]), "{db} {d}");
        if d == "0s" {
            continue; // over before the crash is staged
        }
        let crashed = report["replicas_crashed"].as_array().unwrap();
        assert_eq!(crashed.len(), 1, "{db} {d}: {report}");
        assert!(
            report["takeovers"].as_u64().unwrap() >= 1,
            "{db} {d}: {report}"
        );
        let progress = stderr(out);
        assert!(
            progress.contains("TAKEOVER") || progress.contains("stale lease"),
            "{db} {d}: {progress}"
        );
        // At 5 s the takeover may just have happened before the end.
        if d == "3s" {
            assert!(progress.contains("duration over; waiting"), "{progress}");
        }
    }
}

#[test]
fn status_and_history_reflect_the_rows() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let (_rt, ids) = seeded(&url);
    let history = stdout_json(&scheduler(&url, &["history", "--job", "report", "--json"]));
    let rows = history.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let failed = rows.iter().find(|r| r["status"] == "FAILED").unwrap();
    assert_eq!(failed["id"], ids[1].to_string());
    assert_eq!(failed["error_code"], "handler_error");
    assert_eq!(failed["error_msg"], "upstream 503");
    assert_eq!(failed["duration_ms"], 7);
    let attempts = |r: &Value| r["attempts"].as_array().expect("an attempts array").clone();
    let logged = attempts(failed);
    assert_eq!(logged.len(), 1, "{failed}");
    assert_eq!(
        (
            &logged[0]["attempt"],
            &logged[0]["outcome"],
            &logged[0]["runner_id"],
            &logged[0]["error_msg"],
            &logged[0]["duration_ms"]
        ),
        (
            &Value::from(1),
            &Value::from("FAILED"),
            &Value::from("seed"),
            &Value::from("upstream 503"),
            &Value::from(7)
        )
    );
    assert_eq!(logged[0]["ended_at"], failed["finished_at"]);
    let busy = rows.iter().find(|r| r["status"] == "RUNNING").unwrap();
    assert_eq!(
        attempts(busy),
        Vec::<Value>::new(),
        "a running attempt has not ended"
    );
    let only_ok = stdout_json(&scheduler(
        &url,
        &[
            "history",
            "--job",
            "report",
            "--scope",
            "tenant/ok",
            "--status",
            "success",
            "--since",
            "1h",
            "--json",
        ],
    ));
    assert_eq!(only_ok.as_array().unwrap().len(), 1);
    assert_eq!(only_ok[0]["rows_affected"], 5);

    let status = stdout_json(&scheduler(&url, &["status", "--job", "report", "--json"]));
    let scopes = status["scopes"].as_array().unwrap();
    assert_eq!(scopes.len(), 3);
    let by = |id: &str| {
        scopes
            .iter()
            .find(|s| s["scope"] == format!("tenant/{id}"))
            .unwrap()
            .clone()
    };
    assert_eq!(by("ok")["latest_status"], "SUCCESS");
    assert!(by("ok")["last_success_finished_at"].is_string());
    assert_eq!(
        by("bad")["failed_exhausted"],
        1,
        "max_attempts 1: no attempt left"
    );
    assert_eq!(by("busy")["running"], 1);

    let table = scheduler(&url, &["status"]);
    assert!(table.status.success());
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("tenant/busy") && text.contains("last success"),
        "{text}"
    );
}

#[test]
fn retry_repairs_a_failed_row_and_refuses_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let (rt, ids) = seeded(&url);
    let out = scheduler(&url, &["retry", &ids[1].to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("will run again on the next tick"));
    for (id, why) in [(ids[0], "already succeeded"), (ids[2], "RUNNING")] {
        let out = scheduler(&url, &["retry", &id.to_string()]);
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains(why), "{}", stderr(&out));
    }
    let unknown = uuid::Uuid::now_v7().to_string();
    let out = scheduler(&url, &["retry", &unknown]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no execution with id"));
    let out = scheduler(&url, &["retry", "not-a-uuid"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a malformed id is a usage error"
    );

    // The repaired row runs again on the next tick, with one more attempt.
    rt.block_on(async {
        let store = Arc::new(SqliteLeaseStore::connect(&url).await.unwrap());
        let manager =
            Manager::new(store.clone(), ManagerOptions::default()).expect("valid manager options");
        manager
            .register(
                JobSpec::new(
                    "report",
                    Scopes::fixed([Scope::new("tenant", "bad")]),
                    |_ctx| async { Ok(JobOutput::rows(1)) },
                )
                .cadence(Duration::from_secs(60))
                .catch_up(scheduler_core::CatchUpMode::EveryPlan)
                .catch_up_window(Duration::from_secs(3600))
                .max_plans_per_tick(5),
            )
            .unwrap();
        let report = manager.run_once().await;
        assert_eq!(report.retried, 1, "{report:?}");
        let row = store.get_execution(ids[1]).await.unwrap().unwrap();
        assert_eq!(
            (row.status, row.attempt, row.max_attempts),
            (Status::Success, 2, 2)
        );
        let running = store.get_execution(ids[2]).await.unwrap().unwrap();
        assert_eq!(
            running.status,
            Status::Running,
            "refused rows are unchanged"
        );
    });
}

/// A failed execution retried by an operator and then run again: `history
/// --attempts`, `history --json` and `show` list both attempts, the first
/// with its error; `show` prints every field.
#[test]
fn history_and_show_list_every_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let (rt, ids) = seeded(&url);
    let (bad, busy) = (ids[1], ids[2]);
    rt.block_on(async {
        let store = SqliteLeaseStore::connect(&url).await.unwrap();
        let row = store.retry_execution(bad).await.unwrap();
        let key = PlanKey {
            scope: row.scope,
            plan_time: row.plan_time,
        };
        // The repaired row runs again: its key must be granted.
        let leases = fixtures::claim_keys(&store, "report", "again", &[key], 1).await;
        let ok = Finish::success(Duration::from_millis(4), 2, Default::default());
        store.finish(&leases[0], &ok).await.unwrap();
    });

    let text = String::from_utf8_lossy(
        &scheduler(&url, &["history", "--job", "report", "--attempts"]).stdout,
    )
    .into_owned();
    assert!(
        text.lines().next().unwrap().contains("started (UTC)"),
        "{text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with(&bad.to_string()))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        lines[at].contains("#1")
            && lines[at].contains("FAILED")
            && lines[at].contains("upstream 503"),
        "{text}"
    );
    assert!(
        lines[at + 1].trim_start().starts_with("#2") && lines[at + 1].contains("SUCCESS"),
        "the second attempt on a line of its own: {text}"
    );
    let running = lines
        .iter()
        .find(|l| l.starts_with(&busy.to_string()))
        .unwrap();
    assert!(
        running.contains("#1") && running.contains("RUNNING"),
        "{text}"
    );

    let history = stdout_json(&scheduler(&url, &["history", "--job", "report", "--json"]));
    let row = history
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == bad.to_string())
        .unwrap();
    let outcomes: Vec<&Value> = row["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["outcome"])
        .collect();
    assert_eq!(outcomes, [&Value::from("FAILED"), &Value::from("SUCCESS")]);
    assert_eq!(
        row["error_msg"],
        Value::Null,
        "the row shows only the success"
    );

    let shown = stdout_json(&scheduler(&url, &["show", &bad.to_string(), "--json"]));
    assert_eq!(shown["attempts"], row["attempts"]);
    for field in [
        "lease_token",
        "heartbeat_at",
        "stale_after",
        "created_at",
        "updated_at",
        "result",
        "next_retry_at",
    ] {
        assert!(shown.get(field).is_some(), "{field} in {shown}");
    }
    let out = scheduler(&url, &["show", &bad.to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    for needle in [
        "plan time (UTC)",
        "attempt              2 of 2",
        "lease token",
        "attempts\n",
        "upstream 503",
        "again",
    ] {
        assert!(text.contains(needle), "{needle:?} in {text}");
    }
    let unknown = uuid::Uuid::now_v7().to_string();
    let out = scheduler(&url, &["show", &unknown]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no execution with id"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        scheduler(&url, &["show", "not-a-uuid"]).status.code(),
        Some(2)
    );
}

#[test]
fn prune_dry_run_deletes_nothing_and_prune_deletes_exactly_the_old_terminal_rows() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // Old rows: written with a store clock three days in the past.
        let old_clock =
            ManualClock::new(OffsetDateTime::now_utc() - Duration::from_secs(3 * 86_400));
        let old = SqliteStoreOptions::new(dir.path().join("jobs.db"))
            .clock(Arc::new(old_clock))
            .open()
            .await
            .unwrap();
        seed_rows(&old).await;
        drop(old);
        let store = SqliteLeaseStore::connect(&url).await.unwrap();
        seed_rows(&store).await;
    });
    let count = || {
        rt.block_on(async {
            let store = SqliteLeaseStore::connect(&url).await.unwrap();
            store
                .list_executions(&ExecutionFilter::default())
                .await
                .unwrap()
        })
    };
    assert_eq!(count().len(), 6);
    let dry = stdout_json(&scheduler(
        &url,
        &["prune", "--older-than", "1day", "--dry-run", "--json"],
    ));
    assert_eq!(
        (dry["dry_run"].as_bool(), dry["executions"].as_u64()),
        (Some(true), Some(2))
    );
    assert_eq!(count().len(), 6, "a dry run deletes nothing");
    let done = stdout_json(&scheduler(
        &url,
        &["prune", "--older-than", "1day", "--batch", "1", "--json"],
    ));
    assert_eq!(done["executions"], 2);
    let left = count();
    assert_eq!(left.len(), 4);
    let old_running = left.iter().filter(|r| r.status == Status::Running).count();
    assert_eq!(old_running, 2, "RUNNING rows are never pruned, however old");
}

#[test]
fn bad_input_gets_one_line_and_the_right_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("sqlite:{}", dir.path().join("nope.db").display());
    let cases: [(&str, &[&str], i32, &str); 7] = [
        (
            "mysql://root:hunter2@localhost/db",
            &["status"],
            2,
            "unsupported database URL",
        ),
        (
            "postgres://app:s3cret@127.0.0.1:1/db",
            &["status"],
            1,
            "postgres://app:***@127.0.0.1:1/db",
        ),
        (&missing, &["status"], 1, "run `scheduler migrate"),
        (
            &missing,
            &["history", "--job", "x", "--since", "soon"],
            2,
            "invalid duration",
        ),
        (
            &missing,
            &["prune", "--older-than", "ten days"],
            2,
            "invalid duration",
        ),
        (
            &missing,
            &["prune", "--older-than", "1day", "--nice-ratio", "-1"],
            2,
            "invalid nice ratio",
        ),
        ("memory:", &["status"], 1, "only `demo`"),
    ];
    for (url, args, code, expect) in cases {
        let out = scheduler(url, args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{url} {args:?}: {err}");
        assert!(err.contains(expect), "{url} {args:?}: {err}");
        assert!(!err.contains("hunter2") && !err.contains("s3cret"), "{err}");
    }
    assert!(!dir.path().join("nope.db").exists(), "nothing was created");
}

#[test]
fn migrate_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    for _ in 0..2 {
        let out = scheduler(&url, &["migrate"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let history = stdout_json(&scheduler(&url, &["history", "--job", "none", "--json"]));
    assert_eq!(history, Value::Array(vec![]));
}

#[test]
fn on_postgres_the_demo_passes_and_operator_commands_work() {
    let Some(db) = postgres_db("demo") else {
        return;
    };
    let url = db.url.clone();
    // Before migrate: the table is missing, and the error says what to do.
    let out = scheduler(&url, &["status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("scheduler migrate"),
        "{}",
        stderr(&out)
    );
    assert!(scheduler(&url, &["migrate"]).status.success());
    let report = stdout_json(&scheduler(
        &url,
        &["demo", "--duration", "9s", "--json", "--replicas", "3"],
    ));
    assert_eq!(report["ok"], true, "{report}");
    let history = stdout_json(&scheduler(
        &url,
        &["history", "--job", "doomed_export", "--json"],
    ));
    let rows = history.as_array().unwrap();
    // The crashed replica's attempt is in the log, ended by the sweep or
    // a takeover, and each attempt of the row is logged once.
    let taken_over = rows
        .iter()
        .find(|r| r["status"] == "SUCCESS" && r["attempt"].as_i64().unwrap() >= 2)
        .unwrap_or_else(|| panic!("{history}"));
    let log = taken_over["attempts"].as_array().unwrap();
    assert_eq!(
        log.len() as i64,
        taken_over["attempt"].as_i64().unwrap(),
        "{taken_over}"
    );
    assert!(
        ["SWEPT", "STOLEN"].contains(&log[0]["outcome"].as_str().unwrap())
            && log[0]["error_code"] == "stale_timeout",
        "{taken_over}"
    );
    let status = stdout_json(&scheduler(&url, &["status", "--json"]));
    let scopes = status["scopes"].as_array().unwrap();
    assert!(scopes.iter().any(|s| s["job"] == "tenant_rollup"));
    // The demo's three replicas announced themselves; those that were not
    // made to crash stopped cleanly.
    let replicas = stdout_json(&scheduler(&url, &["replicas", "--json"]));
    let listed = replicas["replicas"].as_array().unwrap();
    assert_eq!(listed.len(), 3, "{replicas}");
    assert_eq!(
        listed.iter().filter(|r| r["state"] == "stopped").count(),
        2,
        "{replicas}"
    );
    assert!(
        scopes.iter().all(|s| s["running"] == 0 && s["stale"] == 0),
        "{status}"
    );
}

/// TLS as libpq users ask for it: the server's certificate (Debian's
/// snakeoil on the machines this project runs on) is not checked by
/// `require`, only that the connection is encrypted.
#[test]
fn migrate_and_status_work_over_tls_with_sslmode_require() {
    let Some(db) = postgres_db("tls") else {
        return;
    };
    if psql(&db.admin, "SHOW ssl") != "on" {
        skip("the server has ssl = off (Debian's package turns it on)");
        return;
    }
    let url = format!("{}?sslmode=require", db.url);
    let out = scheduler(&url, &["migrate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let status = stdout_json(&scheduler(&url, &["status", "--json"]));
    assert_eq!(status["scopes"], Value::Array(vec![]), "{status}");
    // The migration really ran in that database.
    let tables = psql(
        &db.url,
        "SELECT count(*) FROM pg_tables WHERE tablename = 'sys_cron_executions'",
    );
    assert_eq!(tables, "1");
}

/// A database that does not exist: named, with the server's SQLSTATE, and
/// the advice to create it; `migrate` cannot help, so it is not advised.
#[test]
fn migrate_on_a_database_that_does_not_exist_names_it_and_says_to_create_it() {
    let Some(admin) = postgres_admin() else {
        return;
    };
    let missing = format!("cli_missing_{}", uuid::Uuid::new_v4().simple());
    let out = scheduler(&on_database(&admin, &missing), &["migrate"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "database \"{missing}\" does not exist (SQLSTATE 3D000)"
        )),
        "{err}"
    );
    assert!(err.contains("create the database"), "{err}");
    assert!(!err.contains(" at line "), "{err}");
    assert!(!err.contains("scheduler migrate"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}

/// Nothing listens on the port: the command fails at once (not after the
/// pool's 10 s acquire timeout) and says the server is not reachable there.
#[test]
fn status_on_a_closed_port_fails_at_once_saying_connection_refused() {
    let started = std::time::Instant::now();
    let out = scheduler("postgres://postgres@127.0.0.1:1/postgres", &["status"]);
    let took = started.elapsed();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(took < Duration::from_secs(5), "{took:?}: {err}");
    assert!(
        err.contains("the server is not reachable at 127.0.0.1:1: connection refused"),
        "{err}"
    );
    assert!(!err.contains("scheduler migrate"), "{err}");
}

/// The last five plan times of an hourly job `hourly`, newest first, each
/// run to SUCCESS but those at the positions in `missing`, which have no
/// row at all.
async fn hourly_plans_that_ran_but(
    store: &SqliteLeaseStore,
    missing: &[usize],
) -> Vec<OffsetDateTime> {
    let hour = Duration::from_secs(3600);
    let newest = scheduler_core::plan::floor(store.now().await.unwrap(), hour);
    let plans: Vec<OffsetDateTime> = (0..5u32).map(|k| newest - hour * k).collect();
    let keys: Vec<PlanKey> = plans
        .iter()
        .enumerate()
        .filter(|(i, _)| !missing.contains(i))
        .map(|(_, t)| PlanKey {
            scope: Scope::global(),
            plan_time: *t,
        })
        .collect();
    for lease in fixtures::claim_keys(store, "hourly", "seed", &keys, 3).await {
        let ok = Finish::success(Duration::ZERO, 0, Default::default());
        store.finish(&lease, &ok).await.unwrap();
    }
    plans
}

#[test]
fn status_reports_plan_times_that_have_no_execution_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let hole = rt.block_on(async {
        let store = SqliteLeaseStore::connect(&url).await.unwrap();
        // Every hourly plan of the last five hours ran, except one.
        let plans = hourly_plans_that_ran_but(&store, &[2]).await;
        plans[2]
    });
    let status = stdout_json(&scheduler(
        &url,
        &[
            "status", "--job", "hourly", "--every", "1h", "--window", "5h", "--json",
        ],
    ));
    let missed = status["scopes"][0]["missed_plans"]
        .as_array()
        .unwrap()
        .clone();
    let expected = hole
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert_eq!(missed, vec![Value::String(expected)], "{status}");
    let table = scheduler(
        &url,
        &[
            "status",
            "--job",
            "hourly",
            "--cron",
            "0 * * * *",
            "--window",
            "5h",
        ],
    );
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("missed plans") && text.contains("1: "),
        "{text}"
    );
}

/// The forms of a PostgreSQL URL that carry a password, `SECRET` standing
/// for it.
const PASSWORD_FORMS: [&str; 4] = [
    "postgres://postgres:SECRET@HOST/DB",
    "postgres://postgres@HOST/DB?password=SECRET",
    "postgres://HOST/DB?user=postgres&password=SECRET",
    "postgres://postgres@HOST/DB?sslmode=prefer&password=SECRET&application_name=x",
];

#[test]
fn a_secret_parameter_the_driver_ignores_is_refused_unprinted() {
    let out = scheduler(
        "postgres://postgres@127.0.0.1/db?sslpassword=pw-0a1b2c3d",
        &["status"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("sslpassword is not supported"), "{err}");
    assert!(!err.contains("pw-0a1b2c3d"), "{err}");
}

#[test]
fn a_password_in_any_url_form_is_never_printed() {
    let Some(db) = postgres_db("secret") else {
        return;
    };
    let host = db
        .url
        .split("://")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let host = host.rsplit('@').next().unwrap().to_owned();
    let secret = "pw-0a1b2c3d";
    for form in PASSWORD_FORMS {
        let url = |database: &str| {
            form.replace("SECRET", secret)
                .replace("HOST", &host)
                .replace("DB", database)
        };
        let good = url(&db.name);
        let missing = url("no_such_database_here");
        // Every output path: success (migrate, migrate --json, the demo's
        // header and report) and failure (a database that does not exist,
        // a usage error).
        let runs = [
            scheduler(&good, &["migrate"]),
            scheduler(&good, &["migrate", "--json"]),
            scheduler(&good, &["demo", "--duration", "0s"]),
            scheduler(&missing, &["status"]),
            scheduler(&missing, &["history", "--job", "x", "--since", "soon"]),
        ];
        for (i, out) in runs.iter().enumerate() {
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(!all.contains(secret), "{form}, run {i}: {all}");
        }
        assert!(runs[0].status.success(), "{}", stderr(&runs[0]));
        let migrated = stdout_json(&runs[1]);
        assert!(
            migrated["database"].as_str().unwrap().contains("***"),
            "{migrated}"
        );
        assert!(stderr(&runs[2]).contains("***"), "{}", stderr(&runs[2]));
        assert_eq!(runs[3].status.code(), Some(1), "{}", stderr(&runs[3]));
        assert!(stderr(&runs[3]).contains("***"), "{}", stderr(&runs[3]));
        assert_eq!(runs[4].status.code(), Some(2), "{}", stderr(&runs[4]));
    }
}

#[test]
fn a_wrong_schedule_is_a_usage_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let cases: [(&[&str], &str); 4] = [
        (
            &["--job", "x", "--cron", "61 * * * *"],
            "invalid cron expression",
        ),
        (
            &["--job", "x", "--cron", "not cron"],
            "invalid cron expression",
        ),
        (
            &["--job", "x", "--cron", "0 9 * * *", "--tz", "Mars/Olympus"],
            "unknown time zone",
        ),
        (&["--job", "x", "--every", "0s"], "is zero"),
    ];
    for (args, expect) in cases {
        let mut all = vec!["status"];
        all.extend_from_slice(args);
        let out = scheduler(&url, &all);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(expect), "{args:?}: {}", stderr(&out));
    }
    assert!(!dir.path().join("jobs.db").exists(), "nothing was opened");
}

#[test]
fn output_that_cannot_be_written_is_a_runtime_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    assert!(scheduler(&url, &["migrate"]).status.success());
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full exists on Linux");
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("scheduler"))
        .env_remove("SCHEDULER_DATABASE_URL")
        .args(["--database", &url, "status"])
        .stdout(full)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.starts_with("error: cannot write the output"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn errors_say_what_is_wrong_and_advise_only_what_helps() {
    let dir = tempfile::tempdir().unwrap();
    let out = scheduler("sqlite:/nonexistent/dir/x.db", &["migrate"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("directory /nonexistent/dir does not exist"),
        "{err}"
    );
    assert!(
        !err.contains("scheduler migrate"),
        "no advice to migrate: {err}"
    );
    // A missing file for an operator command: migrate is the advice.
    let missing = format!("sqlite:{}", dir.path().join("nope.db").display());
    let err = stderr(&scheduler(&missing, &["status"]));
    assert!(err.contains("scheduler migrate"), "{err}");
}

#[test]
fn the_default_database_is_named_when_database_url_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("scheduler")
        .unwrap()
        .current_dir(dir.path())
        .env_remove("SCHEDULER_DATABASE_URL")
        .env("DATABASE_URL", "postgres://someone@elsewhere/db")
        .args(["migrate"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("using the default database sqlite:scheduler.db"),
        "{err}"
    );
    assert!(dir.path().join("scheduler.db").exists());
}

#[test]
fn times_are_labelled_and_can_be_local() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let (_rt, _ids) = seeded(&url);
    let utc = String::from_utf8_lossy(&scheduler(&url, &["history", "--job", "report"]).stdout)
        .into_owned();
    assert!(utc.contains("plan time (UTC)"), "{utc}");
    let local = Command::cargo_bin("scheduler")
        .unwrap()
        .env_remove("SCHEDULER_DATABASE_URL")
        .env("TZ", "America/New_York")
        .args([
            "--database",
            &url,
            "--local-time",
            "history",
            "--job",
            "report",
        ])
        .output()
        .unwrap();
    let local = String::from_utf8_lossy(&local.stdout).into_owned();
    assert!(local.contains("plan time (America/New_York)"), "{local}");
    let first_time = |text: &str| {
        text.lines()
            .nth(1)
            .and_then(|l| l.split("  ").map(str::trim).find(|c| c.starts_with("20")))
            .map(str::to_owned)
            .unwrap()
    };
    assert_ne!(first_time(&utc), first_time(&local), "shifted by the zone");
}

/// A replica (a manager on the test's SQLite file) registers a job that
/// has never run: `status` lists it with its schedule in words and its
/// next plan time, `replicas` lists the replica as live; a job with rows
/// but no live replica is marked so; after a clean stop the replica is
/// `stopped` and its job no longer counts as registered.
#[test]
fn registered_jobs_and_live_replicas_show_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let (rt, _) = seeded(&url);
    let (cron, zone) = ("0 9 * * MON-FRI", "Europe/Berlin");
    let (manager, before) = rt.block_on(async {
        let store = Arc::new(SqliteLeaseStore::connect(&url).await.unwrap());
        let manager = Manager::new(
            store.clone(),
            ManagerOptions {
                runner_id: "replica-under-test".into(),
                ..Default::default()
            },
        )
        .unwrap();
        // No tenant yet: the job is registered and can never run.
        let tenants = Scopes::dynamic(|_| async { Ok(Vec::new()) });
        manager
            .register(
                JobSpec::new("weekday_digest", tenants, |_| async {
                    Ok(JobOutput::rows(1))
                })
                .cron(cron, zone),
            )
            .unwrap();
        let report = manager.run_once().await;
        assert_eq!((report.won, report.errors), (0, 0), "{report:?}");
        (manager, store.now().await.unwrap())
    });

    let status = stdout_json(&scheduler(&url, &["status", "--json"]));
    let jobs = status["jobs"].as_array().unwrap();
    let digest = jobs.iter().find(|j| j["job"] == "weekday_digest").unwrap();
    assert_eq!(digest["registered"], true, "{status}");
    assert_eq!(digest["schedule"], "09:00 on weekdays, Europe/Berlin");
    assert_eq!(
        digest["live_replicas"],
        serde_json::json!(["replica-under-test"])
    );
    assert_eq!(digest["scopes_with_rows"], 0);
    assert_eq!(digest["registration"]["scopes"], "dynamic");
    assert_eq!(digest["registration"]["schedule_form"]["expression"], cron);
    let schedule = scheduler_core::plan::CronSchedule::parse(cron, zone).unwrap();
    let after = rt.block_on(async {
        SqliteLeaseStore::connect(&url)
            .await
            .unwrap()
            .now()
            .await
            .unwrap()
    });
    let next = OffsetDateTime::parse(
        digest["next_plan_time"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(
        [schedule.after(before), schedule.after(after)].contains(&Some(next)),
        "{next} is the next weekday 09:00 in Berlin"
    );
    let report = jobs.iter().find(|j| j["job"] == "report").unwrap();
    assert_eq!(report["registered"], false, "rows, but no live replica");
    assert_eq!(report["live_replicas"], serde_json::json!([]));
    assert_eq!(report["scopes_with_rows"], 3);
    assert_eq!(
        status["scopes"].as_array().unwrap().len(),
        3,
        "rows as before"
    );

    let table = scheduler(&url, &["status"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("09:00 on weekdays, Europe/Berlin")
            && text.contains("next plan (UTC)")
            && text.contains("1 live")
            && text.contains("none live (rows only)")
            && text.contains("tenant/busy"),
        "{text}"
    );

    let replicas = stdout_json(&scheduler(&url, &["replicas", "--json"]));
    let listed = replicas["replicas"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{replicas}");
    assert_eq!(listed[0]["runner_id"], "replica-under-test");
    assert_eq!(listed[0]["state"], "live");
    assert_eq!(listed[0]["pid"], std::process::id());
    assert_eq!(listed[0]["jobs"][0]["name"], "weekday_digest");
    assert!(listed[0]["stopped_at"].is_null());
    let table = scheduler(&url, &["replicas"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("1 live, 0 vanished, 0 stopped")
            && text.contains("last seen (UTC)")
            && text.contains("weekday_digest"),
        "{text}"
    );

    // A clean stop: the replica is stopped, and its job is no longer live.
    rt.block_on(manager.run(async {}));
    let replicas = stdout_json(&scheduler(&url, &["replicas", "--json"]));
    assert_eq!(replicas["replicas"][0]["state"], "stopped", "{replicas}");
    assert!(replicas["replicas"][0]["stopped_at"].is_string());
    let status = stdout_json(&scheduler(&url, &["status", "--json"]));
    let jobs = status["jobs"].as_array().unwrap();
    assert!(
        jobs.iter().all(|j| j["job"] != "weekday_digest"),
        "only live replicas' jobs: {status}"
    );
}

/// The refresh interval of the replica the steering tests announce: long,
/// so that it stays live (seen within 3 intervals) however slow the test.
const LIVE_FOR_HOURS: Duration = Duration::from_secs(3600);

/// Announces a live replica on the SQLite file at `url` that runs
/// `rollup` (every 5 minutes, scopes tenant/a and tenant/b), as a
/// manager's first tick would: the Operator checks triggers and backfills
/// against it. Returns the store time.
fn live_replica(rt: &tokio::runtime::Runtime, url: &str) -> OffsetDateTime {
    let tenants = Scopes::fixed(["a", "b"].map(|t| Scope::new("tenant", t)));
    let rollup = JobSpec::new("rollup", tenants, |_| async { Ok(JobOutput::rows(1)) })
        .cadence(Duration::from_secs(300));
    announce(rt, url, &rollup, Vec::new())
}

/// Announces a live replica on the SQLite file at `url` that runs the
/// compiled-in job `rollup` and registered the kinds `kinds`. Returns the
/// store time.
fn announce(
    rt: &tokio::runtime::Runtime,
    url: &str,
    rollup: &JobSpec,
    kinds: Vec<String>,
) -> OffsetDateTime {
    rt.block_on(async {
        let store = SqliteLeaseStore::connect(url).await.unwrap();
        let replica = scheduler_core::ReplicaInfo {
            refresh_interval: LIVE_FOR_HOURS,
            kinds,
            ..fixtures::replica("replica-under-test", vec![rollup.registration()])
        };
        fixtures::announce(&store, replica).await;
        store.now().await.unwrap()
    })
}

/// `controls --all --json`: every control stored in the last 7 days.
fn all_controls(url: &str) -> Vec<Value> {
    let listed = stdout_json(&scheduler(url, &["controls", "--all", "--json"]));
    listed["controls"].as_array().unwrap().clone()
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn parse_rfc3339(v: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(
        v.as_str().unwrap_or_else(|| panic!("an instant: {v}")),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
}

/// Pause, resume, trigger, backfill, cancel and controls, each with
/// `--json` parsed: what they store, and what a second, conflicting
/// request gets.
#[test]
fn steering_commands_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let now = live_replica(&rt, &url);

    let paused = stdout_json(&scheduler(
        &url,
        &["pause", "rollup", "--note", "deploy\nby ana", "--json"],
    ));
    assert_eq!(
        (
            &paused["kind"],
            &paused["job"],
            &paused["state"],
            &paused["in_force"],
            &paused["note"]
        ),
        (
            &Value::from("pause"),
            &Value::from("rollup"),
            &Value::from("active"),
            &Value::from(true),
            &Value::from("deploy\nby ana")
        ),
        "{paused}"
    );
    assert!(paused["scope"].is_null() && paused["ended_at"].is_null());
    assert_eq!(
        paused["action"],
        serde_json::json!({"kind": "pause", "until": null, "skip_missed": false})
    );
    assert_eq!(paused["warnings"], serde_json::json!([]));
    assert!(parse_rfc3339(&paused["created_at"]) >= now);
    // Already paused: a runtime error that changes nothing.
    let again = scheduler(&url, &["pause", "rollup"]);
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("nothing changed"),
        "{}",
        stderr(&again)
    );

    let scope = stdout_json(&scheduler(
        &url,
        &[
            "pause",
            "rollup",
            "--scope",
            "tenant/a",
            "--until",
            "+30m",
            "--skip-missed",
            "--json",
        ],
    ));
    assert_eq!(scope["scope"], "tenant/a");
    assert_eq!(scope["action"]["skip_missed"], true);
    let until = parse_rfc3339(&scope["action"]["until"]);
    let created = parse_rfc3339(&scope["created_at"]);
    assert!(
        until > created + Duration::from_secs(29 * 60)
            && until <= created + Duration::from_secs(30 * 60),
        "{scope}"
    );
    // A job no replica runs yet is paused, with a warning on stderr.
    let ahead = scheduler(&url, &["pause", "not\nyet", "--note", "tab\there"]);
    assert!(ahead.status.success(), "{}", stderr(&ahead));
    assert!(
        stderr(&ahead).starts_with("warning: no live replica runs job"),
        "{}",
        stderr(&ahead)
    );

    // The table escapes what operators wrote: one line per control.
    let table = scheduler(&url, &["controls"]);
    let text = String::from_utf8_lossy(&table.stdout).into_owned();
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(
        text.contains("deploy\\nby ana")
            && text.contains("not\\nyet")
            && text.contains("tab\\there"),
        "{text}"
    );
    assert!(
        text.contains("rollup tenant/a") && text.contains("rollup (every scope)"),
        "{text}"
    );
    let status = stdout_json(&scheduler(&url, &["status", "--json"]));
    let job = |status: &Value, name: &str| {
        status["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["job"] == name)
            .unwrap_or_else(|| panic!("{name} in {status}"))
            .clone()
    };
    let rollup = job(&status, "rollup");
    assert_eq!(rollup["paused"], true, "{rollup}");
    assert_eq!(rollup["paused_scopes"], serde_json::json!(["tenant/a"]));
    assert_eq!(rollup["pauses"].as_array().unwrap().len(), 2);
    assert_eq!(job(&status, "not\nyet")["paused"], true, "paused ahead");
    let text = String::from_utf8_lossy(&scheduler(&url, &["status"]).stdout).into_owned();
    assert!(
        text.contains("whole job")
            && text.contains("controls in force")
            && !text.contains("not\nyet"),
        "{text}"
    );

    // Paused: a trigger is refused; resumes end exactly their target.
    let refused = scheduler(&url, &["trigger", "rollup"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("resume it first"),
        "{}",
        stderr(&refused)
    );
    let resumed = stdout_json(&scheduler(&url, &["resume", "rollup", "--json"]));
    assert_eq!(
        (
            &resumed["id"],
            &resumed["state"],
            &resumed["reason"],
            &resumed["in_force"]
        ),
        (
            &paused["id"],
            &Value::from("done"),
            &Value::from("resumed"),
            &Value::from(false)
        ),
        "{resumed}"
    );
    assert!(parse_rfc3339(&resumed["ended_at"]) >= parse_rfc3339(&paused["created_at"]));
    let not_paused = scheduler(&url, &["resume", "rollup"]);
    assert_eq!(not_paused.status.code(), Some(2), "{}", stderr(&not_paused));
    assert!(
        stderr(&not_paused).contains("not paused"),
        "{}",
        stderr(&not_paused)
    );
    let resumed = stdout_json(&scheduler(
        &url,
        &["resume", "rollup", "--scope", "tenant/a", "--json"],
    ));
    assert_eq!(resumed["state"], "done");

    let trigger = stdout_json(&scheduler(
        &url,
        &[
            "trigger", "rollup", "--scope", "tenant/b", "--note", "by hand", "--json",
        ],
    ));
    assert_eq!(
        (
            &trigger["kind"],
            &trigger["scope"],
            &trigger["note"],
            &trigger["state"]
        ),
        (
            &Value::from("trigger"),
            &Value::from("tenant/b"),
            &Value::from("by hand"),
            &Value::from("active")
        ),
        "{trigger}"
    );
    let hour_ago = rfc3339(
        scheduler_core::plan::floor(now, Duration::from_secs(300)) - Duration::from_secs(3600),
    );
    let backfill = stdout_json(&scheduler(
        &url,
        &[
            "backfill", "rollup", "--from", &hour_ago, "--to", "now", "--json",
        ],
    ));
    // [floor - 1h, now): the 13 five-minute instants floor - 1h .. floor
    // (14 when another boundary passes before the command reads the time).
    let instants = backfill["instants"].as_u64().unwrap();
    assert!((13..=14).contains(&instants), "{backfill}");
    assert_eq!(backfill["kind"], "backfill");
    assert_eq!(backfill["cursor"], backfill["action"]["from"]);
    assert_eq!(backfill["action"]["from"], Value::from(hour_ago.clone()));

    let listed = stdout_json(&scheduler(&url, &["controls", "--job", "rollup", "--json"]));
    let listed = listed["controls"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "the trigger and the backfill: {listed:?}");
    assert_eq!(
        listed[0]["progress"],
        serde_json::json!({"succeeded": 0, "failed": 0, "running": 0})
    );
    assert_eq!(listed[1]["instants_total"], instants);
    assert_eq!(listed[1]["instants_done"], 0);

    let cancelled = stdout_json(&scheduler(
        &url,
        &[
            "cancel",
            trigger["id"].as_str().unwrap(),
            "--reason",
            "not needed",
            "--json",
        ],
    ));
    assert_eq!(
        (&cancelled["state"], &cancelled["reason"]),
        (&Value::from("cancelled"), &Value::from("not needed"))
    );
    let twice = scheduler(&url, &["cancel", trigger["id"].as_str().unwrap()]);
    assert_eq!(twice.status.code(), Some(1), "{}", stderr(&twice));
    assert!(
        stderr(&twice).contains("nothing changed"),
        "{}",
        stderr(&twice)
    );
    let unknown = scheduler(&url, &["cancel", &uuid::Uuid::now_v7().to_string()]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("no control with id"),
        "{}",
        stderr(&unknown)
    );
    let malformed = scheduler(&url, &["cancel", "not-an-id"]);
    assert_eq!(malformed.status.code(), Some(2), "{}", stderr(&malformed));

    // In force: the backfill and the pause of the job not deployed yet;
    // with --all, the two resumed pauses and the cancelled trigger too.
    let active = stdout_json(&scheduler(&url, &["controls", "--json"]));
    assert_eq!(active["controls"].as_array().unwrap().len(), 2, "{active}");
    let all = all_controls(&url);
    assert_eq!(all.len(), 5, "{all:?}");
    let states: Vec<&str> = all.iter().map(|c| c["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["done", "done", "active", "cancelled", "active"]);
}

/// Every refusal is a usage error (exit 2) with one line that says why,
/// and stores nothing; so is a TIME that does not parse, and a backfill
/// without both bounds.
#[test]
fn refused_steering_requests_exit_2_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let now = live_replica(&rt, &url);
    let hour_ago = rfc3339(now - Duration::from_secs(3600));
    let year_ago = rfc3339(now - Duration::from_secs(366 * 86_400));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["trigger", "nope"], "no live replica runs job"),
        (
            vec!["backfill", "nope", "--from", "-1h", "--to", "now"],
            "no live replica runs job",
        ),
        (
            vec!["trigger", "rollup", "--scope", "tenant/zz"],
            "has no scope tenant/zz",
        ),
        (
            vec!["trigger", "rollup", "--scope", "zz"],
            "expected KIND/ID",
        ),
        (
            vec!["backfill", "rollup", "--from", "now", "--to", &hour_ago],
            "empty or inverted",
        ),
        (
            vec!["backfill", "rollup", "--from", "-1h", "--to", "+1h"],
            "after store time",
        ),
        (
            vec!["backfill", "rollup", "--from", &year_ago, "--to", "now"],
            "more than 100000",
        ),
        (vec!["backfill", "rollup", "--from", "-1h"], "--to"),
        (vec!["backfill", "rollup", "--to", "now"], "--from"),
        (
            vec!["backfill", "rollup", "--from", "yesterday", "--to", "now"],
            "invalid time",
        ),
        (
            vec!["pause", "rollup", "--until", "tomorrow"],
            "invalid time",
        ),
        (
            vec!["pause", "rollup", "--until", "2026-13-01T00:00:00Z"],
            "invalid time",
        ),
        (
            vec!["pause", "rollup", "--until", "-2h"],
            "not in the future",
        ),
        (
            vec!["pause", "rollup", "--until", "now"],
            "not in the future",
        ),
        (vec!["resume", "rollup"], "not paused"),
    ];
    for (args, why) in &cases {
        let out = scheduler(&url, args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(why), "{args:?}: {err}");
        // The Operator's refusals are one line; clap's add a hint.
        if err.starts_with("error: refused") {
            assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        }
        assert_eq!(
            all_controls(&url),
            Vec::<Value>::new(),
            "{args:?} stored something"
        );
    }
    // Confirmed, the large backfill is stored: 366 days of 5-minute plans.
    let large = stdout_json(&scheduler(
        &url,
        &[
            "backfill",
            "rollup",
            "--from",
            &year_ago,
            "--to",
            "now",
            "--yes-large",
            "--json",
        ],
    ));
    assert!(large["instants"].as_u64().unwrap() > 100_000, "{large}");
    assert_eq!(all_controls(&url).len(), 1);
}

/// `status` shows a pause in force and a backfill's progress: its
/// instants done (the cursor) of all, and its rows by status; `history`
/// and `show` show each execution's origin and control.
#[test]
fn status_shows_pauses_and_backfill_progress_and_history_shows_origins() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let now = live_replica(&rt, &url);
    let five = Duration::from_secs(300);
    let from = scheduler_core::plan::floor(now, five) - five * 6;
    let to = from + five * 4;
    let backfill = stdout_json(&scheduler(
        &url,
        &[
            "backfill",
            "rollup",
            "--from",
            &rfc3339(from),
            "--to",
            &rfc3339(to),
            "--note",
            "refill",
            "--json",
        ],
    ));
    assert_eq!(backfill["instants"], 4);
    let id: uuid::Uuid = backfill["id"].as_str().unwrap().parse().unwrap();
    // A replica ran the first two instants of both scopes: three succeeded
    // and one is still running; the cursor moved past them.
    let ids = rt.block_on(async {
        let store = SqliteLeaseStore::connect(&url).await.unwrap();
        let keys: Vec<PlanKey> = [from, from + five]
            .iter()
            .flat_map(|t| {
                ["a", "b"].map(|s| PlanKey {
                    scope: Scope::new("tenant", s),
                    plan_time: *t,
                })
            })
            .collect();
        let outcomes = store
            .claim(&ClaimRequest {
                finishing: &[],
                steering: scheduler_core::model::Steering {
                    origin: scheduler_core::Origin::Backfill,
                    control_id: Some(id),
                    ..scheduler_core::model::Steering::NONE
                },
                job_name: "rollup",
                runner_id: "replica-under-test",
                max_attempts: 3,
                stale_timeout: Duration::from_secs(3600),
                allow_stale_reentry: false,
                keys: &keys,
            })
            .await
            .unwrap();
        for o in &outcomes[..3] {
            let ok = Finish::success(Duration::ZERO, 1, Default::default());
            store.finish(o.lease().unwrap(), &ok).await.unwrap();
        }
        store
            .update_control(
                id,
                &scheduler_core::model::ControlChange::Advance {
                    from,
                    to: from + five * 2,
                },
            )
            .await
            .unwrap();
        outcomes
            .iter()
            .map(|o| o.lease().unwrap().id)
            .collect::<Vec<_>>()
    });
    let pause = stdout_json(&scheduler(
        &url,
        &[
            "pause",
            "rollup",
            "--scope",
            "tenant/b",
            "--note",
            "flaky upstream",
            "--json",
        ],
    ));
    let status = stdout_json(&scheduler(&url, &["status", "--job", "rollup", "--json"]));
    let rollup = &status["jobs"][0];
    assert_eq!(rollup["paused"], false, "{status}");
    assert_eq!(rollup["paused_scopes"], serde_json::json!(["tenant/b"]));
    assert_eq!(rollup["pauses"][0]["id"], pause["id"]);
    assert_eq!(rollup["pauses"][0]["note"], "flaky upstream");
    let filling = &rollup["backfills"][0];
    assert_eq!(
        (&filling["instants_done"], &filling["instants_total"]),
        (&Value::from(2), &Value::from(4)),
        "{filling}"
    );
    assert_eq!(
        filling["progress"],
        serde_json::json!({"succeeded": 3, "failed": 0, "running": 1})
    );
    let scopes = status["scopes"].as_array().unwrap();
    let paused: Vec<&Value> = scopes.iter().map(|s| &s["paused"]).collect();
    assert_eq!(
        paused,
        [&Value::from(false), &Value::from(true)],
        "{status}"
    );
    assert!(scopes.iter().all(|s| s["skipped"] == 0), "{status}");
    let text = String::from_utf8_lossy(&scheduler(&url, &["status"]).stdout).into_owned();
    assert!(
        text.contains("1 scope(s)")
            && text.contains("flaky upstream")
            && text.contains("instants 2/4; rows 3 ok, 0 failed, 1 running")
            && text.contains("skipped"),
        "{text}"
    );

    let history = stdout_json(&scheduler(&url, &["history", "--job", "rollup", "--json"]));
    let rows = history.as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert!(
        rows.iter()
            .all(|r| r["origin"] == "backfill" && r["control_id"] == backfill["id"]),
        "{history}"
    );
    let table = String::from_utf8_lossy(&scheduler(&url, &["history", "--job", "rollup"]).stdout)
        .into_owned();
    assert!(table.lines().next().unwrap().contains("origin"), "{table}");
    assert_eq!(table.matches("backfill").count(), 4, "{table}");
    let shown = String::from_utf8_lossy(&scheduler(&url, &["show", &ids[0].to_string()]).stdout)
        .into_owned();
    assert!(
        shown.contains(&format!("backfill (control {id})")),
        "{shown}"
    );
}

/// The missed-plan report tells a plan a pause held back from one that was
/// missed: of five hourly plans, one has no row and was missed, one has no
/// row because the job was paused when it came due.
#[test]
fn a_plan_missing_while_paused_is_reported_as_paused_not_missed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let url = sqlite_url(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (missed, held) = rt.block_on(async {
        let store = SqliteLeaseStore::connect(&url).await.unwrap();
        let plans = hourly_plans_that_ran_but(&store, &[2, 3]).await;
        // The pause, stored and resumed around plans[3] at the store's
        // time then: a store on a clock set back.
        let clock = ManualClock::new(plans[3] - Duration::from_secs(60));
        let past = Arc::new(
            SqliteStoreOptions::new(&path)
                .clock(Arc::new(clock.clone()))
                .open()
                .await
                .unwrap(),
        );
        let operator = scheduler_core::Operator::new(past);
        let job = scheduler_core::Target::job("hourly");
        operator
            .pause(&job, "maintenance", None, false)
            .await
            .unwrap();
        clock.set(plans[3] + Duration::from_secs(60));
        operator.resume(&job, false).await.unwrap();
        (plans[2], plans[3])
    });
    let status = stdout_json(&scheduler(
        &url,
        &[
            "status", "--job", "hourly", "--every", "1h", "--window", "5h", "--json",
        ],
    ));
    let scope = &status["scopes"][0];
    assert_eq!(
        scope["missed_plans"],
        serde_json::json!([rfc3339(missed)]),
        "{status}"
    );
    assert_eq!(scope["missed_plan_count"], 1);
    assert_eq!(
        scope["paused_plans"],
        serde_json::json!([rfc3339(held)]),
        "{status}"
    );
    assert_eq!(scope["paused_plan_count"], 1);
    let table = scheduler(
        &url,
        &[
            "status", "--job", "hourly", "--every", "1h", "--window", "5h",
        ],
    );
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("1: ") && text.contains("; 1 paused"),
        "{text}"
    );
}

/// `scheduler schedule ARGS` on `url`, the arguments split at spaces.
fn schedule(url: &str, args: &str) -> Output {
    let mut all = vec!["schedule"];
    all.extend(args.split(' '));
    scheduler(url, &all)
}

/// The stored schedules, by `schedule list --json`.
fn stored_schedules(url: &str) -> Vec<Value> {
    stdout_json(&schedule(url, "list --json"))
        .as_array()
        .unwrap()
        .clone()
}

/// Stored schedules from flags and files: a create, an update that
/// changes only what its flags name, a lost race naming the current
/// version (exit 1, nothing changed), show and list, a delete at a version.
#[test]
fn stored_schedules_are_created_changed_shown_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    assert!(scheduler(&url, &["migrate"]).status.success());
    let created = schedule(
        &url,
        "create digest --kind report --every 1m --scope tenant/a --scope tenant/b \
         --arg to=\"ops@example.com\" --max-attempts 5 --json",
    );
    assert!(
        stderr(&created).starts_with("warning: no live replica has registered kind \"report\""),
        "created ahead of the deploy that brings the kind: {}",
        stderr(&created)
    );
    let v1 = stdout_json(&created);
    assert_eq!(v1["version"], 1, "{v1}");
    let definition = &v1["definition"];
    assert_eq!(
        definition["schedule"],
        serde_json::json!({"kind": "every", "every_us": 60_000_000, "offset_us": 0}),
        "{v1}"
    );
    assert_eq!(definition["scopes"]["fixed"][1]["id"], "b", "{v1}");
    assert_eq!(definition["arguments"]["to"], "ops@example.com", "{v1}");
    assert_eq!(definition["options"]["max_attempts"], 5, "{v1}");

    let v2 = stdout_json(&schedule(
        &url,
        "update digest --version 1 --every 10m --json",
    ));
    assert_eq!(v2["version"], 2, "{v2}");
    assert_eq!(v2["schedule_words"], "every 10 minutes", "{v2}");
    let mut unchanged = v1["definition"].clone();
    unchanged["schedule"]["every_us"] = 600_000_000.into();
    assert_eq!(v2["definition"], unchanged, "only the cadence changed");
    assert!(
        common::processes::instant(&v2["updated_at"])
            > common::processes::instant(&v1["updated_at"])
    );

    let late = schedule(&url, "update digest --version 1 --paused");
    assert_eq!(late.status.code(), Some(1), "{late:?}");
    assert!(
        stderr(&late).contains("at version 2, not 1"),
        "{}",
        stderr(&late)
    );
    let shown = stdout_json(&schedule(&url, "show digest --json"));
    assert_eq!(
        (&shown["version"], &shown["definition"]["paused"]),
        (&2.into(), &false.into())
    );
    let text = String::from_utf8_lossy(&schedule(&url, "show digest").stdout).into_owned();
    assert!(
        text.contains("every 10 minutes") && text.contains("2 scopes: tenant/a, tenant/b"),
        "{text}"
    );

    let toml = dir.path().join("nightly.toml");
    std::fs::write(
        &toml,
        "kind = \"report\"\narguments = { to = \"ops@example.com\" }\n\
         [schedule]\nkind = \"cron\"\nexpression = \"0 7 * * *\"\nzone = \"Asia/Tokyo\"\n\
         [options]\nrun_timeout = \"2m\"\n",
    )
    .unwrap();
    let nightly = stdout_json(&scheduler(
        &url,
        &[
            "schedule",
            "create",
            "nightly",
            "--file",
            toml.to_str().unwrap(),
            "--json",
        ],
    ));
    assert_eq!(
        nightly["definition"]["options"]["run_timeout"], "2m",
        "{nightly}"
    );
    let table = String::from_utf8_lossy(&schedule(&url, "list").stdout).into_owned();
    assert_eq!(table.lines().count(), 3, "{table}");
    assert!(
        table.contains("Asia/Tokyo") && table.contains("v2"),
        "{table}"
    );
    let names: Vec<Value> = stored_schedules(&url)
        .iter()
        .map(|s| s["name"].clone())
        .collect();
    assert_eq!(names, ["digest", "nightly"], "by name");

    let stale = schedule(&url, "delete digest --version 1");
    assert_eq!(stale.status.code(), Some(1), "{stale:?}");
    let deleted = stdout_json(&schedule(&url, "delete digest --version 2 --json"));
    assert_eq!(deleted["deleted"], true, "{deleted}");
    assert_eq!(stored_schedules(&url).len(), 1);
    let gone = schedule(&url, "show digest");
    assert_eq!(gone.status.code(), Some(1), "{gone:?}");
}

/// Every bad definition is refused before anything is written, with a
/// usage error (exit 2) naming the field.
#[test]
fn bad_stored_schedules_are_refused_by_field_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    assert!(scheduler(&url, &["migrate"]).status.success());
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let every = r#""schedule": {"kind": "every", "every_us": 60000000}"#;
    let nul_kind = file("nul.json", &format!(r#"{{"kind": "a\u0000b", {every}}}"#));
    let array = file(
        "array.json",
        &format!(r#"{{"kind": "k", {every}, "arguments": [1]}}"#),
    );
    let typo = file(
        "typo.toml",
        "kind = \"k\"\noptoins = 1\n[schedule]\nkind = \"every\"\nevery_us = 1000000\n",
    );
    let big = format!(r#"{{"blob": "{}"}}"#, "x".repeat(20_000));
    let long = "n".repeat(600);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["x", "--kind", "k", "--cron", "61 * * * *"], "cron"),
        (
            vec![
                "x",
                "--kind",
                "k",
                "--cron",
                "0 7 * * *",
                "--tz",
                "Mars/Base",
            ],
            "unknown time zone",
        ),
        (vec!["x", "--kind", "k", "--every", "0s"], "cadence"),
        (
            vec!["x", "--kind", "k", "--every", "1m", "--offset", "1m"],
            "cadence_offset",
        ),
        (
            vec![
                "x",
                "--kind",
                "k",
                "--every",
                "1m",
                "--catch-up",
                "every_plan",
                "--window",
                "400days",
            ],
            "catch_up_window",
        ),
        (
            vec!["x", "--kind", "k", "--every", "1m", "--args", "[1]"],
            "arguments",
        ),
        (
            vec!["x", "--kind", "k", "--every", "1m", "--args", &big],
            "arguments",
        ),
        (
            vec!["x", "--kind", "k", "--every", "1m", "--arg", "to=ops"],
            "arguments",
        ),
        (
            vec!["x", "--kind", "k", "--every", "1m", "--max-attempts", "0"],
            "max_attempts",
        ),
        (vec![&long, "--kind", "k", "--every", "1m"], "name"),
        (vec!["", "--kind", "k", "--every", "1m"], "name"),
        (vec!["x", "--every", "1m"], "kind"),
        (vec!["x", "--kind", "k"], "schedule"),
        (vec!["x", "--file", &nul_kind], "kind"),
        (vec!["x", "--file", &array], "arguments"),
        (vec!["x", "--file", &typo], "optoins"),
    ];
    for (args, field) in cases {
        let mut all = vec!["schedule", "create"];
        all.extend(&args);
        let out = scheduler(&url, &all);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(stderr(&out).contains(field), "{field}: {}", stderr(&out));
    }
    assert_eq!(
        stored_schedules(&url),
        Vec::<Value>::new(),
        "nothing written"
    );
}

/// `status` lists compiled-in jobs and stored schedules alike, each
/// marked by its source, a stored one no live replica runs included;
/// `history` marks each row.
#[test]
fn status_and_history_mark_stored_schedules_and_compiled_in_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let (rt, _ids) = seeded(&url);
    let rollup = JobSpec::new("rollup", Scopes::global(), |_| async {
        Ok(JobOutput::rows(1))
    })
    .cadence(Duration::from_secs(300));
    announce(&rt, &url, &rollup, vec!["report".into()]);
    // `report` has rows from before it was stored: an earlier version's.
    let created = schedule(&url, "create report --kind report --every 1m");
    assert!(created.status.success(), "{}", stderr(&created));
    assert!(stderr(&created).is_empty(), "a live replica has the kind");
    assert!(schedule(&url, "create ahead --kind later --every 1h")
        .status
        .success());

    let status = stdout_json(&scheduler(&url, &["status", "--json"]));
    let job = |name: &str| {
        status["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["job"] == name)
            .unwrap_or_else(|| panic!("{name}: {status}"))
            .clone()
    };
    assert_eq!(job("rollup")["source"], "code");
    assert_eq!(
        (&job("report")["source"], &job("report")["source_text"]),
        (&"stored".into(), &"stored v1".into())
    );
    let ahead = job("ahead");
    assert_eq!(
        (
            &ahead["source"],
            &ahead["registered"],
            &ahead["live_replicas_with_kind"]
        ),
        (&"stored".into(), &false.into(), &0.into()),
        "{ahead}"
    );
    assert_eq!(ahead["schedule"], "every hour", "{ahead}");
    let table = String::from_utf8_lossy(&scheduler(&url, &["status"]).stdout).into_owned();
    let line = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name}: {table}"))
            .to_owned()
    };
    assert!(line("rollup").contains(" code "), "{table}");
    assert!(line("ahead").contains("stored v1"), "{table}");
    assert!(
        line("ahead").contains("none live has kind later"),
        "{table}"
    );

    let history = stdout_json(&scheduler(&url, &["history", "--job", "report", "--json"]));
    let rows = history.as_array().unwrap();
    assert!(
        !rows.is_empty() && rows.iter().all(|r| r["source"] == "stored, before v1"),
        "{history}"
    );
    let text = String::from_utf8_lossy(&scheduler(&url, &["history", "--job", "report"]).stdout)
        .into_owned();
    assert!(text.lines().next().unwrap().contains("source"), "{text}");
}
