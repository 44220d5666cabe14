//! `scheduler status`: every registered job, from the live replicas'
//! announcements (its schedule in words and its next plan time, even
//! before its first run), and per job and scope what the table says now.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use scheduler_core::plan::next_plan_time;
use scheduler_core::plan::{CronSchedule, Schedule};
use scheduler_core::{ExecutionFilter, RegisteredJob, Replica, ReplicaState, Scope, ScopeSummary};
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

/// The registered jobs as a table: schedule in words, next plan time,
/// scopes, and which live replicas run each.
fn jobs_table(jobs: &[JobView], now: OffsetDateTime, zone: &crate::output::Zone) -> String {
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| match &j.registration {
            Some(r) => vec![
                j.name.escape_debug().to_string(),
                if j.schedules_differ {
                    format!("{} (replicas differ)", r.schedule)
                } else {
                    r.schedule.clone()
                },
                zone.ts(next_plan_time(r, now)),
                r.scopes.to_string(),
                format!("{} live", j.replicas.len()),
            ],
            None => vec![
                j.name.escape_debug().to_string(),
                "-".to_owned(),
                "-".to_owned(),
                format!("{} with rows", j.scopes_with_rows),
                "none live (rows only)".to_owned(),
            ],
        })
        .collect();
    let next = format!("next plan {}", zone.label());
    table(&["job", "schedule", &next, "scopes", "replicas"], &rows)
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

/// One job as the registry and the table know it.
struct JobView {
    name: String,
    /// How the most recently started live replica that runs the job
    /// registered it; `None` when no live replica does (the job has rows
    /// only).
    registration: Option<RegisteredJob>,
    /// The live replicas that registered it.
    replicas: Vec<String>,
    /// Live replicas registered it with different schedules (a rolling
    /// deploy that changes it, say).
    schedules_differ: bool,
    /// How many of its scopes have rows.
    scopes_with_rows: usize,
}

/// Every job of `job` (all when `None`) that a live replica registered or
/// that has rows, by name.
fn job_views(
    replicas: &[Replica],
    summaries: &[ScopeSummary],
    job: Option<&str>,
    now: OffsetDateTime,
) -> Vec<JobView> {
    let mut live: Vec<&Replica> = replicas
        .iter()
        .filter(|r| r.state(now) == ReplicaState::Live)
        .collect();
    // Newest start first: its registration is the one shown.
    live.sort_by_key(|r| std::cmp::Reverse(r.started_at));
    let mut views: BTreeMap<&str, JobView> = BTreeMap::new();
    let wanted = |name: &str| job.is_none_or(|j| j == name);
    for replica in live {
        for registered in replica.info.jobs.iter().filter(|j| wanted(&j.name)) {
            let view = views.entry(&registered.name).or_insert_with(|| JobView {
                name: registered.name.clone(),
                registration: Some(registered.clone()),
                replicas: Vec::new(),
                schedules_differ: false,
                scopes_with_rows: 0,
            });
            view.schedules_differ |= view
                .registration
                .as_ref()
                .is_some_and(|shown| shown.schedule_form != registered.schedule_form);
            view.replicas.push(replica.info.runner_id.clone());
        }
    }
    for summary in summaries {
        views
            .entry(&summary.job_name)
            .or_insert_with(|| JobView {
                name: summary.job_name.clone(),
                registration: None,
                replicas: Vec::new(),
                schedules_differ: false,
                scopes_with_rows: 0,
            })
            .scopes_with_rows += 1;
    }
    views.into_values().collect()
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
    // A schema older than the registry still has its executions to show.
    let replicas = store.replicas().await.unwrap_or_else(|e| {
        eprintln!("note: registered jobs are not shown: {}", cx.error(e));
        Vec::new()
    });
    let jobs = job_views(&replicas, &summaries, args.job.as_deref(), now);
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
        let jobs: Vec<Value> = jobs
            .iter()
            .map(|j| {
                let registration = j.registration.as_ref();
                json!({
                    "job": j.name,
                    "registered": registration.is_some(),
                    "schedule": registration.map(|r| &r.schedule),
                    "next_plan_time": json_ts(registration.and_then(|r| next_plan_time(r, now))),
                    "live_replicas": j.replicas,
                    "schedules_differ": j.schedules_differ,
                    "scopes_with_rows": j.scopes_with_rows,
                    "registration": registration,
                })
            })
            .collect();
        return emit_json(&json!({
            "store_time": json_ts(Some(now)),
            "jobs": jobs,
            "scopes": rows,
            "missed_plans_listed_per_scope": MAX_MISSED_LISTED,
        }));
    }
    let for_job = args
        .job
        .map(|j| format!(" for job {j:?}"))
        .unwrap_or_default();
    if summaries.is_empty() && jobs.is_empty() {
        return emit(&format!("no registered jobs and no executions{for_job}\n"));
    }
    let mut text = jobs_table(&jobs, now, zone);
    if summaries.is_empty() {
        text.push_str(&format!("\nno executions yet{for_job}\n"));
        return emit(&text);
    }
    text.push('\n');
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
    text.push_str(&table(
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
    ));
    if summaries.iter().any(|s| s.stale_timeout > 0) {
        text.push_str("\nstale_timeout rows of non-reentrant jobs wait for an operator: `scheduler retry ID` (ids: `scheduler history --job NAME --status FAILED`)\n");
    }
    emit(&text)
}
