//! `scheduler history`: executions of a job, newest first, with their
//! attempts (`--attempts` in the table; always in `--json`), each marked
//! by its source: `code` (a compiled-in job), `stored v3` (a plan of the
//! stored schedule's current version), `stored, before v3` (of an earlier
//! version: its history stays attached to its name through every change).

use std::time::Duration;

use clap::Args;
use scheduler_core::{Execution, ExecutionFilter, ReplicaState, Scope, Status};
use serde_json::Value;
use time::OffsetDateTime;

use super::{
    attempt_cells, attempt_header, duration_cell, execution_with_attempts_json, parse_scope,
    parse_status, table_error, Cx,
};
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
    /// One line per attempt of each execution: how each ended, its runner,
    /// times and error (--json always lists them).
    #[arg(long)]
    attempts: bool,
}

/// Where the job of the rows comes from, as the store tells now.
enum Source {
    /// A stored schedule, at this version, current since then.
    Stored {
        /// Its current version.
        version: i64,
        /// When it became current.
        since: OffsetDateTime,
    },
    /// A compiled-in job, as a live replica announced it.
    Code,
    /// Neither (a job no live replica runs, a deleted stored schedule).
    Unknown,
}

impl Source {
    /// What `row` ran as: `stored v3`, `stored, before v3`, `code` or `-`.
    fn of(&self, row: &Execution) -> String {
        match self {
            Source::Stored { version, since } if row.plan_time >= *since => {
                format!("stored v{version}")
            }
            Source::Stored { version, .. } => format!("stored, before v{version}"),
            Source::Code => "code".to_owned(),
            Source::Unknown => "-".to_owned(),
        }
    }
}

/// The source of `job`: its stored schedule, else a live replica's
/// compiled-in job. A store without the schedules' or registry's tables
/// (an older schema) answers unknown.
async fn source(store: &dyn scheduler_core::ExecutionAudit, job: &str) -> Source {
    if let Some(stored) = store
        .schedules()
        .await
        .unwrap_or_default()
        .into_iter()
        .find(|s| s.name == job)
    {
        return Source::Stored {
            version: stored.version,
            since: stored.updated_at,
        };
    }
    let Ok(now) = store.now().await else {
        return Source::Unknown;
    };
    let compiled = store.replicas().await.unwrap_or_default().iter().any(|r| {
        r.state(now) == ReplicaState::Live
            && r.info
                .jobs
                .iter()
                .any(|j| j.name == job && j.stored_version.is_none())
    });
    if compiled {
        Source::Code
    } else {
        Source::Unknown
    }
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
    // The page's attempts in one read, only when they are shown.
    let logs = if json || args.attempts {
        let ids: Vec<uuid::Uuid> = rows.iter().map(|r| r.id).collect();
        store.attempts_of(&ids).await.map_err(|e| cx.error(e))?
    } else {
        Vec::new()
    };
    let source = source(store.as_ref(), &args.job).await;
    if json {
        return emit_json(&Value::Array(
            rows.iter()
                .zip(&logs)
                .map(|(r, log)| {
                    let mut value = execution_with_attempts_json(r, log);
                    value["source"] = source.of(r).into();
                    value
                })
                .collect(),
        ));
    }
    if rows.is_empty() {
        return emit(&format!("no executions of job {:?} match\n", args.job));
    }
    let plan_time = format!("plan time {}", zone.label());
    if args.attempts {
        // The execution's columns on its first line only, then one line
        // per attempt.
        let mut cells: Vec<Vec<String>> = Vec::new();
        for (r, log) in rows.iter().zip(&logs) {
            for (i, attempt) in attempt_cells(zone, r, log).into_iter().enumerate() {
                let execution = match i {
                    0 => vec![
                        r.id.to_string(),
                        r.scope.to_string(),
                        zone.ts(Some(r.plan_time)),
                        r.origin.to_string(),
                    ],
                    _ => vec![String::new(); 4],
                };
                cells.push([execution, attempt].concat());
            }
        }
        let header = [
            vec![
                "id".to_owned(),
                "scope".to_owned(),
                plan_time,
                "origin".to_owned(),
            ],
            attempt_header(zone),
        ]
        .concat();
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        return emit(&table(&header, &cells));
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                r.scope.to_string(),
                zone.ts(Some(r.plan_time)),
                r.status.to_string(),
                r.origin.to_string(),
                source.of(r),
                format!("{}/{}", r.attempt, r.max_attempts),
                r.runner_id.as_deref().unwrap_or_default().to_owned(),
                duration_cell(r.duration_ms),
                r.rows_affected
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "-".into()),
                r.error_code.clone().unwrap_or_default(),
                table_error(r.error_msg.as_deref()),
            ]
        })
        .collect();
    emit(&table(
        &[
            "id",
            "scope",
            &plan_time,
            "status",
            "origin",
            "source",
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
