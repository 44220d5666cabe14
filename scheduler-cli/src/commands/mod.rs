//! The operator's subcommands, one module each.
//!
//! - [`status`]: every registered job, and per job and scope what the
//!   table says now.
//! - [`replicas`]: the replica registry: live, vanished and stopped
//!   replicas.
//! - [`history`]: executions of a job, newest first, with their attempts.
//! - [`show`]: one execution, every field, and its attempts.
//! - [`retry`]: an operator's retry of a FAILED execution.
//! - [`prune`]: retention, in bounded batches.
//! - [`pause`], [`resume`], [`trigger`], [`backfill`], [`cancel`] and
//!   [`controls`]: steering schedules at run time through
//!   [`scheduler_core::Operator`], with what they share in [`steering`].
//! - [`schedule`]: stored schedules (create, update, delete, show, list).
//! - [`serve`]: the dashboard (crate `scheduler-web`) over HTTP.

pub mod backfill;
pub mod cancel;
pub mod controls;
pub mod history;
pub mod pause;
pub mod prune;
pub mod replicas;
pub mod resume;
pub mod retry;
pub mod schedule;
pub mod serve;
pub mod show;
pub mod status;
pub mod steering;
pub mod trigger;

use std::sync::Arc;

use scheduler_core::{Attempt, Execution, ExecutionAudit, Scope, Status, StoreError};
use serde_json::{json, Value};

use crate::backend::{self, DatabaseUrl};
use crate::output::{json_ts, Zone};

/// The most characters of an error message a table shows; the rest is
/// cut with `...` (`--json` and `show` print it whole).
const TABLE_ERROR_CHARS: usize = 60;

/// What every operator command gets: the database, and how to answer.
pub struct Cx {
    /// The `--database` URL.
    pub url: DatabaseUrl,
    /// `--json`: one JSON document instead of a table.
    pub json: bool,
    /// Where instants are shown.
    pub zone: Zone,
}

impl Cx {
    /// Opens the store for an operator command: nothing is created or
    /// migrated that the operator did not ask for.
    async fn store(&self) -> Result<Arc<dyn ExecutionAudit>, String> {
        backend::open(&self.url, false).await
    }

    /// A store error, printable: no secret in it, advice where it helps.
    fn error(&self, e: StoreError) -> String {
        backend::error(&self.url, e)
    }
}

pub fn parse_scope(s: &str) -> Result<Scope, String> {
    match s.split_once('/') {
        Some((kind, id)) if !kind.is_empty() && !id.is_empty() => Ok(Scope::new(kind, id)),
        _ => Err(format!(
            "invalid scope {s:?}: expected KIND/ID, e.g. tenant/acme or global/global"
        )),
    }
}

pub fn parse_status(s: &str) -> Result<Status, String> {
    Status::parse(&s.to_uppercase())
        .ok_or_else(|| format!("invalid status {s:?}: expected RUNNING, SUCCESS or FAILED"))
}

/// Every field of an execution row, for `--json`.
fn execution_json(r: &Execution) -> Value {
    json!({
        "id": r.id.to_string(),
        "job": r.job_name,
        "scope": r.scope.to_string(),
        "plan_time": json_ts(Some(r.plan_time)),
        "status": r.status.as_str(),
        "attempt": r.attempt,
        "max_attempts": r.max_attempts,
        "runner_id": r.runner_id,
        "lease_token": r.lease_token.to_string(),
        "heartbeat_at": json_ts(r.heartbeat_at),
        "stale_after": json_ts(r.stale_after),
        "started_at": json_ts(r.started_at),
        "finished_at": json_ts(r.finished_at),
        "next_retry_at": json_ts(r.next_retry_at),
        "awaits_operator": awaits_operator(r),
        "duration_ms": r.duration_ms,
        "rows_affected": r.rows_affected,
        "result": Value::Object(r.result.clone()),
        "error_code": r.error_code,
        "error_msg": r.error_msg,
        "created_at": json_ts(Some(r.created_at)),
        "updated_at": json_ts(Some(r.updated_at)),
        "origin": r.origin.as_str(),
        "control_id": r.control_id.map(|id| id.to_string()),
    })
}

/// [`execution_json`] with the execution's attempts log under `"attempts"`.
fn execution_with_attempts_json(r: &Execution, attempts: &[Attempt]) -> Value {
    let mut value = execution_json(r);
    value["attempts"] = Value::Array(attempts.iter().map(attempt_json).collect());
    value
}

/// One record of the attempts log, for `--json`.
fn attempt_json(a: &Attempt) -> Value {
    json!({
        "attempt": a.attempt,
        "outcome": a.outcome.as_str(),
        "runner_id": a.runner_id,
        "started_at": json_ts(a.started_at),
        "ended_at": json_ts(Some(a.ended_at)),
        "duration_ms": a.duration_ms,
        "error_code": a.error_code,
        "error_msg": a.error_msg,
    })
}

/// Whether only an operator's `retry` will run the row again (the sweep's
/// "never" sentinel).
fn awaits_operator(r: &Execution) -> bool {
    r.next_retry_at == Some(scheduler_core::machine::NEVER)
}

/// `msg` for a table cell: on one line, at most [`TABLE_ERROR_CHARS`].
fn table_error(msg: Option<&str>) -> String {
    let mut error = msg.unwrap_or_default().replace('\n', " ");
    if error.chars().count() > TABLE_ERROR_CHARS {
        error = error
            .chars()
            .take(TABLE_ERROR_CHARS - 3)
            .collect::<String>()
            + "...";
    }
    error
}

/// A duration cell: `7 ms`, or `-`.
fn duration_cell(ms: Option<i32>) -> String {
    ms.map(|d| format!("{d} ms")).unwrap_or_else(|| "-".into())
}

/// The header of [`attempt_cells`]'s columns, times labelled with `zone`.
fn attempt_header(zone: &Zone) -> Vec<String> {
    [
        "try".to_owned(),
        "outcome".to_owned(),
        "runner".to_owned(),
        format!("started {}", zone.label()),
        format!("ended {}", zone.label()),
        "duration".to_owned(),
        "error code".to_owned(),
        "error".to_owned(),
    ]
    .into()
}

/// One table line per attempt of `row`: its attempts log, oldest first,
/// then the attempt the row is on when the log does not hold it, as the
/// row shows it (a RUNNING row's, which has not ended; or one another
/// writer, such as the seed, or a version before the log ended).
fn attempt_cells(zone: &Zone, row: &Execution, attempts: &[Attempt]) -> Vec<Vec<String>> {
    let logged = attempts.iter().map(|a| {
        vec![
            format!("#{}", a.attempt),
            a.outcome.to_string(),
            a.runner_id.as_deref().unwrap_or_default().to_owned(),
            zone.ts(a.started_at),
            zone.ts(Some(a.ended_at)),
            duration_cell(a.duration_ms),
            a.error_code.clone().unwrap_or_default(),
            table_error(a.error_msg.as_deref()),
        ]
    });
    let current = (!attempts.iter().any(|a| a.attempt == row.attempt)).then(|| {
        vec![
            format!("#{}", row.attempt),
            row.status.to_string(),
            row.runner_id.as_deref().unwrap_or_default().to_owned(),
            zone.ts(row.started_at),
            zone.ts(row.finished_at),
            duration_cell(row.duration_ms),
            row.error_code.clone().unwrap_or_default(),
            table_error(row.error_msg.as_deref()),
        ]
    });
    logged.chain(current).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attempt_a_row_is_on_shows_when_the_log_lacks_it() {
        use scheduler_core::AttemptOutcome;
        use time::macros::datetime;
        let t = datetime!(2026-03-05 12:00 UTC);
        let row = Execution {
            id: uuid::Uuid::nil(),
            job_name: "j".into(),
            scope: Scope::global(),
            plan_time: t,
            status: Status::Running,
            attempt: 2,
            max_attempts: 3,
            next_retry_at: None,
            runner_id: Some("r2".into()),
            lease_token: uuid::Uuid::nil(),
            heartbeat_at: Some(t),
            stale_after: Some(t),
            started_at: Some(t),
            finished_at: None,
            duration_ms: None,
            rows_affected: None,
            result: Default::default(),
            error_code: None,
            error_msg: None,
            created_at: t,
            updated_at: t,
            origin: scheduler_core::Origin::Scheduled,
            control_id: None,
        };
        let first = Attempt {
            execution_id: row.id,
            attempt: 1,
            runner_id: Some("r1".into()),
            started_at: Some(t),
            ended_at: t,
            outcome: AttemptOutcome::Failed,
            error_code: Some("handler_error".into()),
            error_msg: Some(format!("boom\n{}", "x".repeat(100))),
            duration_ms: Some(7),
        };
        let cells = attempt_cells(&Zone::Utc, &row, std::slice::from_ref(&first));
        assert_eq!(cells.len(), 2, "the running attempt is shown after the log");
        assert_eq!((&*cells[0][0], &*cells[0][1]), ("#1", "FAILED"));
        assert_eq!(cells[0][7].chars().count(), TABLE_ERROR_CHARS);
        assert!(cells[0][7].starts_with("boom x") && cells[0][7].ends_with("..."));
        assert_eq!(
            (&*cells[1][0], &*cells[1][1], &*cells[1][4]),
            ("#2", "RUNNING", "-")
        );
        let ended = Attempt {
            attempt: 2,
            outcome: AttemptOutcome::Success,
            ..first.clone()
        };
        assert_eq!(attempt_cells(&Zone::Utc, &row, &[first, ended]).len(), 2);
        assert_eq!(attempt_header(&Zone::Utc).len(), cells[0].len());
    }

    #[test]
    fn scopes_and_statuses_parse_or_explain() {
        assert_eq!(
            parse_scope("tenant/acme").unwrap(),
            Scope::new("tenant", "acme")
        );
        assert_eq!(
            parse_scope("tenant/a/b").unwrap(),
            Scope::new("tenant", "a/b")
        );
        assert!(parse_scope("acme").unwrap_err().contains("KIND/ID"));
        assert_eq!(parse_status("failed").unwrap(), Status::Failed);
        assert!(parse_status("DONE")
            .unwrap_err()
            .contains("RUNNING, SUCCESS or FAILED"));
    }
}
