//! `scheduler history`: executions of a job, newest first.

use std::time::Duration;

use clap::Args;
use scheduler_core::{ExecutionFilter, Scope, Status};
use serde_json::Value;

use super::{execution_json, parse_scope, parse_status, Cx};
use crate::output::{emit, emit_json, table, Failure};
use crate::parse_duration;

/// `scheduler history`
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The job.
    #[arg(long)]
    job: String,
    /// Only this scope, as KIND/ID (e.g. tenant/acme).
    #[arg(long, value_parser = parse_scope)]
    scope: Option<Scope>,
    /// Only this status: RUNNING, SUCCESS or FAILED.
    #[arg(long, value_parser = parse_status)]
    status: Option<Status>,
    /// Only plans from this long ago on (e.g. 2h).
    #[arg(long, value_parser = parse_duration)]
    since: Option<Duration>,
    /// At most this many rows.
    #[arg(long, default_value_t = 50)]
    limit: usize,
}

/// `scheduler history`
pub async fn history(cx: &Cx, args: HistoryArgs) -> Result<(), Failure> {
    let (json, zone) = (cx.json, &cx.zone);
    let store = cx.store().await?;
    let plan_time_from = match args.since {
        Some(since) => Some(store.now().await.map_err(|e| cx.error(e))? - since),
        None => None,
    };
    let filter = ExecutionFilter {
        job_name: Some(args.job.clone()),
        scope: args.scope,
        status: args.status,
        plan_time_from,
        limit: Some(args.limit),
    };
    let rows = store
        .list_executions(&filter)
        .await
        .map_err(|e| cx.error(e))?;
    if json {
        return emit_json(&Value::Array(rows.iter().map(execution_json).collect()));
    }
    if rows.is_empty() {
        return emit(&format!("no executions of job {:?} match\n", args.job));
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut error = r.error_msg.clone().unwrap_or_default();
            if error.chars().count() > 60 {
                error = error.chars().take(57).collect::<String>() + "...";
            }
            vec![
                r.id.to_string(),
                r.scope.to_string(),
                zone.ts(Some(r.plan_time)),
                r.status.to_string(),
                format!("{}/{}", r.attempt, r.max_attempts),
                r.runner_id.clone().unwrap_or_default(),
                r.duration_ms
                    .map(|d| format!("{d} ms"))
                    .unwrap_or_else(|| "-".into()),
                r.rows_affected
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "-".into()),
                r.error_code.clone().unwrap_or_default(),
                error.replace('\n', " "),
            ]
        })
        .collect();
    let plan_time = format!("plan time {}", zone.label());
    emit(&table(
        &[
            "id",
            "scope",
            &plan_time,
            "status",
            "attempt",
            "runner",
            "duration",
            "rows",
            "error code",
            "error",
        ],
        &cells,
    ))
}
