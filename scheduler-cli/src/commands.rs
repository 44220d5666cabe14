//! The operator's subcommands: status, history, retry, prune.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use scheduler_core::plan::{CronSchedule, Schedule};
use scheduler_core::{Execution, ExecutionFilter, Scope, ScopeSummary, Status, StoreError};
use serde_json::{json, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::backend::{self, DatabaseUrl};
use crate::parse_duration;

/// `scheduler status`
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this job.
    #[arg(long)]
    job: Option<String>,
    /// The job's cadence (e.g. 5m), to report plan times inside the window
    /// that have no execution at all. Needs --job.
    #[arg(long, value_parser = parse_duration, requires = "job", conflicts_with = "cron")]
    every: Option<Duration>,
    /// The job's cron expression, for the same report. Needs --job.
    #[arg(long, requires = "job")]
    cron: Option<String>,
    /// The cron expression's IANA time zone.
    #[arg(long, default_value = "UTC", requires = "cron")]
    tz: String,
    /// How far back to look for missed plans.
    #[arg(long, value_parser = parse_duration, default_value = "1h")]
    window: Duration,
    /// The job's schedule delay, if any.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    delay: Duration,
}

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

/// `scheduler prune`
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Delete terminal executions that finished longer ago than this (e.g. 30days).
    #[arg(long, value_parser = parse_duration)]
    older_than: Duration,
    /// Count what would be deleted; delete nothing.
    #[arg(long)]
    dry_run: bool,
    /// Rows per delete statement, so a large table is never locked for long.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    batch: u32,
}

fn parse_scope(s: &str) -> Result<Scope, String> {
    match s.split_once('/') {
        Some((kind, id)) if !kind.is_empty() && !id.is_empty() => Ok(Scope::new(kind, id)),
        _ => Err(format!(
            "invalid scope {s:?}: expected KIND/ID, e.g. tenant/acme or global/global"
        )),
    }
}

fn parse_status(s: &str) -> Result<Status, String> {
    Status::parse(&s.to_uppercase())
        .ok_or_else(|| format!("invalid status {s:?}: expected RUNNING, SUCCESS or FAILED"))
}

/// `2026-03-05 12:30:00`, or with milliseconds when there are any.
fn ts(t: Option<OffsetDateTime>) -> String {
    let Some(t) = t else {
        return "-".to_owned();
    };
    let seconds = format!(
        "{} {:02}:{:02}:{:02}",
        t.date(),
        t.hour(),
        t.minute(),
        t.second()
    );
    match t.millisecond() {
        0 => seconds,
        ms => format!("{seconds}.{ms:03}"),
    }
}

fn ago(now: OffsetDateTime, t: Option<OffsetDateTime>) -> String {
    match t {
        Some(t) if t <= now => {
            let secs = (now - t).whole_seconds().max(0) as u64;
            format!(
                "{} ago",
                humantime::format_duration(Duration::from_secs(secs))
            )
        }
        Some(_) => "in the future".to_owned(),
        None => "never".to_owned(),
    }
}

fn json_ts(t: Option<OffsetDateTime>) -> Value {
    t.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .map(Value::String)
    .unwrap_or(Value::Null)
}

/// Prints rows as an aligned table.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push_str(&line(row.clone()));
    }
    out
}

async fn open(url: &DatabaseUrl) -> Result<Arc<dyn scheduler_core::ExecutionAudit>, String> {
    backend::open(url, false).await
}

/// `scheduler status`
pub async fn status(url: &DatabaseUrl, args: StatusArgs, json: bool) -> Result<ExitCode, String> {
    let schedule = match (&args.every, &args.cron) {
        (Some(every), _) if every.is_zero() => return Err("--every must be positive".to_owned()),
        (Some(every), _) => Some(Schedule::Every(*every)),
        (None, Some(expr)) => Some(Schedule::Cron(Arc::new(CronSchedule::parse(
            expr, &args.tz,
        )?))),
        (None, None) => None,
    };
    let store = open(url).await?;
    let now = store.now().await.map_err(|e| backend::error(url, e))?;
    let summaries = store
        .scope_summaries(args.job.as_deref())
        .await
        .map_err(|e| backend::error(url, e))?;
    let mut missed: Vec<(String, Scope, Vec<OffsetDateTime>)> = Vec::new();
    if let (Some(schedule), Some(job)) = (&schedule, &args.job) {
        let from = now - args.window;
        let newest = schedule.at_or_before(now - args.delay);
        let expected = newest
            .map(|n| schedule.between(from, n, 100_000))
            .unwrap_or_default();
        for s in summaries.iter().filter(|s| &s.job_name == job) {
            let filter = ExecutionFilter {
                job_name: Some(job.clone()),
                scope: Some(s.scope.clone()),
                plan_time_from: Some(from),
                ..Default::default()
            };
            let present: BTreeSet<OffsetDateTime> = store
                .list_executions(&filter)
                .await
                .map_err(|e| backend::error(url, e))?
                .into_iter()
                .map(|r| r.plan_time)
                .collect();
            let holes: Vec<OffsetDateTime> = expected
                .iter()
                .copied()
                .filter(|t| !present.contains(t))
                .collect();
            missed.push((job.clone(), s.scope.clone(), holes));
        }
    }
    let holes_of = |s: &ScopeSummary| {
        missed
            .iter()
            .find(|(j, sc, _)| *j == s.job_name && *sc == s.scope)
            .map(|(_, _, h)| h.clone())
    };
    if json {
        let rows: Vec<Value> = summaries
            .iter()
            .map(|s| {
                json!({
                    "job": s.job_name,
                    "scope": s.scope.to_string(),
                    "latest_plan_time": json_ts(Some(s.latest.plan_time)),
                    "latest_status": s.latest.status.as_str(),
                    "latest_attempt": s.latest.attempt,
                    "latest_error_code": s.latest.error_code,
                    "last_success_plan_time": json_ts(s.last_success_plan_time),
                    "last_success_finished_at": json_ts(s.last_success_finished_at),
                    "running": s.running,
                    "stale": s.stale,
                    "failed_retry_pending": s.retry_pending,
                    "next_retry_at": json_ts(s.next_retry_at),
                    "failed_exhausted": s.exhausted,
                    "stale_timeout_awaiting_operator": s.stale_timeout,
                    "missed_plans": holes_of(s).map(|h| h.into_iter().map(|t| json_ts(Some(t))).collect::<Vec<_>>()),
                })
            })
            .collect();
        println!(
            "{}",
            json!({ "store_time": json_ts(Some(now)), "scopes": rows })
        );
        return Ok(ExitCode::SUCCESS);
    }
    if summaries.is_empty() {
        println!(
            "no executions{}",
            args.job
                .map(|j| format!(" for job {j:?}"))
                .unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = summaries
        .iter()
        .map(|s| {
            vec![
                s.job_name.clone(),
                s.scope.to_string(),
                ts(Some(s.latest.plan_time)),
                format!("{} #{}", s.latest.status, s.latest.attempt),
                ago(now, s.last_success_finished_at),
                s.running.to_string(),
                s.stale.to_string(),
                match s.retry_pending {
                    0 => "-".to_owned(),
                    n => format!("{n} (next {})", ts(s.next_retry_at)),
                },
                s.exhausted.to_string(),
                s.stale_timeout.to_string(),
                match holes_of(s) {
                    None => "-".to_owned(),
                    Some(h) if h.is_empty() => "none".to_owned(),
                    Some(h) => format!(
                        "{}: {}",
                        h.len(),
                        h.iter()
                            .take(3)
                            .map(|t| ts(Some(*t)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                },
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &[
                "job",
                "scope",
                "latest plan",
                "status",
                "last success",
                "running",
                "stale",
                "retry pending",
                "exhausted",
                "stale_timeout",
                "missed plans"
            ],
            &rows
        )
    );
    if summaries.iter().any(|s| s.stale_timeout > 0) {
        println!("\nstale_timeout rows of non-reentrant jobs wait for an operator: `scheduler retry ID` (ids: `scheduler history --job NAME --status FAILED`)");
    }
    Ok(ExitCode::SUCCESS)
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
        "duration_ms": r.duration_ms,
        "rows_affected": r.rows_affected,
        "result": Value::Object(r.result.clone()),
        "error_code": r.error_code,
        "error_msg": r.error_msg,
    })
}

/// `scheduler history`
pub async fn history(url: &DatabaseUrl, args: HistoryArgs, json: bool) -> Result<ExitCode, String> {
    let store = open(url).await?;
    let plan_time_from = match args.since {
        Some(since) => Some(store.now().await.map_err(|e| backend::error(url, e))? - since),
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
        .map_err(|e| backend::error(url, e))?;
    if json {
        println!(
            "{}",
            Value::Array(rows.iter().map(execution_json).collect())
        );
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!("no executions of job {:?} match", args.job);
        return Ok(ExitCode::SUCCESS);
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
                ts(Some(r.plan_time)),
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
    print!(
        "{}",
        table(
            &[
                "id",
                "scope",
                "plan time",
                "status",
                "attempt",
                "runner",
                "duration",
                "rows",
                "error code",
                "error"
            ],
            &cells
        )
    );
    Ok(ExitCode::SUCCESS)
}

/// `scheduler retry ID`
pub async fn retry(url: &DatabaseUrl, id: Uuid, json: bool) -> Result<ExitCode, String> {
    let store = open(url).await?;
    match store.retry_execution(id).await {
        Ok(row) => {
            if json {
                println!("{}", execution_json(&row));
            } else {
                println!(
                    "execution {id} ({} {} {}) will run again on the next tick of a replica that runs its job, once, whatever the job's catch-up rules: attempt {} of {}",
                    row.job_name,
                    row.scope,
                    ts(Some(row.plan_time)),
                    row.attempt + 1,
                    row.max_attempts
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(StoreError::NotFound { .. }) => Err(format!("no execution with id {id}")),
        Err(StoreError::Conflict(why)) => Err(format!("execution {id} was not changed: {why}")),
        Err(e) => Err(backend::error(url, e)),
    }
}

/// `scheduler prune`
pub async fn prune(url: &DatabaseUrl, args: PruneArgs, json: bool) -> Result<ExitCode, String> {
    let store = open(url).await?;
    let now = store.now().await.map_err(|e| backend::error(url, e))?;
    let cutoff = now - args.older_than;
    let mut total = 0u64;
    if args.dry_run {
        total = store
            .prune_finished(cutoff, args.batch as usize, true)
            .await
            .map_err(|e| backend::error(url, e))?;
    } else {
        loop {
            let n = store
                .prune_finished(cutoff, args.batch as usize, false)
                .await
                .map_err(|e| backend::error(url, e))?;
            total += n;
            // A batch can come back short when a row changed under it (a
            // claim retried it meanwhile), so only an empty one ends it.
            if n == 0 {
                break;
            }
        }
    }
    if json {
        println!(
            "{}",
            json!({ "dry_run": args.dry_run, "cutoff": json_ts(Some(cutoff)), "executions": total })
        );
    } else if args.dry_run {
        println!(
            "would delete {total} terminal executions finished before {}",
            ts(Some(cutoff))
        );
    } else {
        println!(
            "deleted {total} terminal executions finished before {}",
            ts(Some(cutoff))
        );
    }
    Ok(ExitCode::SUCCESS)
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

    #[test]
    fn tables_align_columns() {
        let out = table(&["a", "bb"], &[vec!["xxx".into(), "y".into()]]);
        assert_eq!(out, "a    bb\nxxx  y\n");
    }
}
