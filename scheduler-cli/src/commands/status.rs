//! `scheduler status`: per job and scope, what the table says now.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use scheduler_core::plan::{CronSchedule, Schedule};
use scheduler_core::{ExecutionFilter, Scope, ScopeSummary};
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::Cx;
use crate::output::{ago, emit, emit_json, json_ts, table, Failure};
use crate::parse_duration;

/// The most plan times the missed-plan report lists per scope; beyond it
/// the report says it stopped counting, rather than listing millions.
const MAX_MISSED_PER_SCOPE: usize = 10_000;

/// How many of them JSON lists per scope (the count says how many there
/// are).
const MAX_MISSED_LISTED: usize = 100;

/// `scheduler status`
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this job.
    #[arg(long)]
    job: Option<String>,
    /// The job's cadence (e.g. 5m), to report plan times inside the window
    /// that have no execution at all. Needs --job.
    #[arg(long, value_parser = positive_duration, requires = "job", conflicts_with = "cron")]
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

fn positive_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err(format!("{s:?} is zero: a cadence must be positive"));
    }
    Ok(d)
}

impl StatusArgs {
    /// The schedule the missed-plan report follows, if one was given.
    ///
    /// # Errors
    /// A usage failure for a cron expression or zone that does not parse.
    fn schedule(&self) -> Result<Option<Schedule>, Failure> {
        Ok(match (&self.every, &self.cron) {
            (Some(every), _) => Some(Schedule::Every(*every)),
            (None, Some(expr)) => Some(Schedule::Cron(Arc::new(
                CronSchedule::parse(expr, &self.tz).map_err(Failure::Usage)?,
            ))),
            (None, None) => None,
        })
    }
}

/// The plan times of one scope inside the window that have no execution.
struct Missed {
    job: String,
    scope: Scope,
    /// Oldest first, at most [`MAX_MISSED_PER_SCOPE`].
    plans: Vec<OffsetDateTime>,
    /// More were expected than the report counts.
    capped: bool,
}

impl Missed {
    fn count_text(&self) -> String {
        if self.capped {
            format!("{}+ (stopped counting; narrow --window)", self.plans.len())
        } else {
            self.plans.len().to_string()
        }
    }
}

/// `scheduler status`
pub async fn status(cx: &Cx, args: StatusArgs) -> Result<(), Failure> {
    let (json, zone) = (cx.json, &cx.zone);
    let schedule = args.schedule()?;
    let store = cx.store().await?;
    let now = store.now().await.map_err(|e| cx.error(e))?;
    let summaries = store
        .scope_summaries(args.job.as_deref())
        .await
        .map_err(|e| cx.error(e))?;
    let mut missed: Vec<Missed> = Vec::new();
    if let (Some(schedule), Some(job)) = (&schedule, &args.job) {
        let from = now - args.window;
        let newest = schedule.at_or_before(now - args.delay);
        let mut expected = newest
            .map(|n| schedule.between(from, n, MAX_MISSED_PER_SCOPE + 1))
            .unwrap_or_default();
        let capped = expected.len() > MAX_MISSED_PER_SCOPE;
        expected.truncate(MAX_MISSED_PER_SCOPE);
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
                .map_err(|e| cx.error(e))?
                .into_iter()
                .map(|r| r.plan_time)
                .collect();
            missed.push(Missed {
                job: job.clone(),
                scope: s.scope.clone(),
                plans: expected
                    .iter()
                    .copied()
                    .filter(|t| !present.contains(t))
                    .collect(),
                capped,
            });
        }
    }
    let missed_of = |s: &ScopeSummary| {
        missed
            .iter()
            .find(|m| m.job == s.job_name && m.scope == s.scope)
    };
    if json {
        let rows: Vec<Value> = summaries
            .iter()
            .map(|s| {
                let missed = missed_of(s);
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
                    "missed_plan_count": missed.map(|m| m.plans.len()),
                    "missed_plans_capped": missed.map(|m| m.capped),
                    "missed_plans": missed.map(|m| m.plans.iter().take(MAX_MISSED_LISTED).map(|t| json_ts(Some(*t))).collect::<Vec<_>>()),
                })
            })
            .collect();
        return emit_json(&json!({
            "store_time": json_ts(Some(now)),
            "scopes": rows,
            "missed_plans_listed_per_scope": MAX_MISSED_LISTED,
        }));
    }
    if summaries.is_empty() {
        return emit(&format!(
            "no executions{}\n",
            args.job
                .map(|j| format!(" for job {j:?}"))
                .unwrap_or_default()
        ));
    }
    let rows: Vec<Vec<String>> = summaries
        .iter()
        .map(|s| {
            vec![
                s.job_name.clone(),
                s.scope.to_string(),
                zone.ts(Some(s.latest.plan_time)),
                format!("{} #{}", s.latest.status, s.latest.attempt),
                ago(now, s.last_success_finished_at),
                s.running.to_string(),
                s.stale.to_string(),
                match s.retry_pending {
                    0 => "-".to_owned(),
                    n => format!("{n} (next {})", zone.ts(s.next_retry_at)),
                },
                s.exhausted.to_string(),
                s.stale_timeout.to_string(),
                match missed_of(s) {
                    None => "-".to_owned(),
                    Some(m) if m.plans.is_empty() => "none".to_owned(),
                    Some(m) => format!(
                        "{}: {}",
                        m.count_text(),
                        m.plans
                            .iter()
                            .take(3)
                            .map(|t| zone.ts(Some(*t)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                },
            ]
        })
        .collect();
    let latest = format!("latest plan {}", zone.label());
    let mut text = table(
        &[
            "job",
            "scope",
            &latest,
            "status",
            "last success",
            "running",
            "stale",
            "retry pending",
            "exhausted",
            "stale_timeout",
            "missed plans",
        ],
        &rows,
    );
    if summaries.iter().any(|s| s.stale_timeout > 0) {
        text.push_str("\nstale_timeout rows of non-reentrant jobs wait for an operator: `scheduler retry ID` (ids: `scheduler history --job NAME --status FAILED`)\n");
    }
    emit(&text)
}
