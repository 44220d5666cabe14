//! The operator's subcommands, one module each.
//!
//! - [`status`]: every registered job, and per job and scope what the
//!   table says now.
//! - [`replicas`]: the replica registry: live, vanished and stopped
//!   replicas.
//! - [`history`]: executions of a job, newest first.
//! - [`retry`]: an operator's retry of a FAILED execution.
//! - [`prune`]: retention, in bounded batches.

pub mod history;
pub mod prune;
pub mod replicas;
pub mod retry;
pub mod status;

use std::sync::Arc;

use scheduler_core::{Execution, ExecutionAudit, Scope, Status, StoreError};
use serde_json::{json, Value};

use crate::backend::{self, DatabaseUrl};
use crate::output::{json_ts, Zone};

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
        "started_at": json_ts(r.started_at),
        "finished_at": json_ts(r.finished_at),
        "next_retry_at": json_ts(r.next_retry_at),
        "awaits_operator": r.next_retry_at == Some(scheduler_core::machine::NEVER),
        "duration_ms": r.duration_ms,
        "rows_affected": r.rows_affected,
        "result": Value::Object(r.result.clone()),
        "error_code": r.error_code,
        "error_msg": r.error_msg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
