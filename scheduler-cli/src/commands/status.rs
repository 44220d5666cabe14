//! `scheduler status`: every registered job, from the live replicas'
//! announcements (its schedule in words and its next plan time, even
//! before its first run), and per job and scope what the table says now.
//! Compiled-in jobs and stored schedules show alike, each marked by its
//! source (`code`, `stored v3`); a stored schedule no live replica runs
//! (none has its kind yet) shows from its definition. What it shows is
//! the Operator's [`Overview`](scheduler_core::Overview); this module only
//! renders it.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use scheduler_core::plan::{CronSchedule, Schedule};
use scheduler_core::{
    ControlAction, JobOverview, MissedPlans, Operator, OverviewControls, PauseExtent, Scope,
    ScopeSummary, StoredSchedule,
};
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::schedule::{stored_json, words};
use super::steering::{
    control_json, control_with_progress_json, operator_failure, progress_cell, span_cell,
    TABLE_NOTE_CHARS,
};
use super::Cx;
use crate::output::{ago, emit, emit_json, escape, json_ts, table, text_cell, Failure, Zone};
use crate::parse_duration;

/// How many missed plan times JSON lists per scope (the count says how
/// many there are).
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

/// The registered jobs as a table: source, schedule in words, next plan
/// time, scopes, which live replicas run each, and whether it is paused.
fn jobs_table(
    jobs: &[JobOverview],
    controls: &OverviewControls,
    now: OffsetDateTime,
    zone: &Zone,
) -> String {
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| {
            let mut row = match (&j.registration, &j.stored) {
                (None, Some(stored)) => vec![
                    escape(&j.name),
                    words(&stored.definition.schedule),
                    zone.ts(j.next_plan_time(now)),
                    stored_scopes(stored),
                    match j.with_kind {
                        0 => format!("none live has kind {}", escape(&stored.definition.kind)),
                        n => format!("{n} live with its kind, not yet running it"),
                    },
                ],
                // A stored schedule's current definition, whatever
                // version the replicas announced.
                (Some(r), Some(stored)) => vec![
                    escape(&j.name),
                    words(&stored.definition.schedule),
                    zone.ts(j.next_plan_time(now)),
                    r.scopes.to_string(),
                    format!("{} live", j.replicas.len()),
                ],
                (Some(r), None) => vec![
                    escape(&j.name),
                    if j.schedules_differ {
                        format!("{} (replicas differ)", r.schedule)
                    } else {
                        r.schedule.clone()
                    },
                    zone.ts(j.next_plan_time(now)),
                    r.scopes.to_string(),
                    format!("{} live", j.replicas.len()),
                ],
                (None, None) if j.scopes_with_rows == 0 => vec![
                    escape(&j.name),
                    "-".to_owned(),
                    "-".to_owned(),
                    "-".to_owned(),
                    "none live (controls only)".to_owned(),
                ],
                (None, None) => vec![
                    escape(&j.name),
                    "-".to_owned(),
                    "-".to_owned(),
                    format!("{} with rows", j.scopes_with_rows),
                    "none live (rows only)".to_owned(),
                ],
            };
            row.insert(1, j.source());
            row.push(match &j.stored {
                Some(s) if s.definition.paused => "yes (stored definition)".to_owned(),
                _ => match controls.pause_extent(&j.name) {
                    Some(PauseExtent::WholeJob) => "whole job".to_owned(),
                    Some(PauseExtent::Scopes(n)) => format!("{n} scope(s)"),
                    None => "-".to_owned(),
                },
            });
            row
        })
        .collect();
    let next = format!("next plan {}", zone.label());
    table(
        &[
            "job", "source", "schedule", &next, "scopes", "replicas", "paused",
        ],
        &rows,
    )
}

/// A stored schedule's scopes as the jobs table counts them.
fn stored_scopes(stored: &StoredSchedule) -> String {
    match &stored.definition.scopes {
        scheduler_core::StoredScopes::Fixed(list) => list.len().to_string(),
        scheduler_core::StoredScopes::Provider(_) => "dynamic".to_owned(),
    }
}

/// The job's controls in force for `--json`: `paused` (the whole job),
/// `paused_scopes`, `pauses`, `triggers` and `backfills` (these two with
/// their progress).
fn job_controls_json(controls: &OverviewControls, job: &str, now: OffsetDateTime) -> Value {
    let of_kind = |kind: &str| -> Vec<Value> {
        controls
            .of(job)
            .filter(|c| c.control.action.kind() == kind)
            .map(|c| control_with_progress_json(&c.control, c.progress.as_ref(), now))
            .collect()
    };
    json!({
        "paused": controls.pause_extent(job) == Some(PauseExtent::WholeJob),
        "paused_scopes": controls
            .pauses_of(job)
            .filter_map(|c| c.scope.as_ref().map(Scope::to_string))
            .collect::<Vec<_>>(),
        "pauses": controls.pauses_of(job).map(|c| control_json(c, now)).collect::<Vec<_>>(),
        "triggers": of_kind("trigger"),
        "backfills": of_kind("backfill"),
    })
}

/// One line per control in force: what, which scope, since when, until
/// when or how far, and its note; empty when there is none.
fn controls_table(controls: &OverviewControls, now: OffsetDateTime, zone: &Zone) -> String {
    let rows: Vec<Vec<String>> = controls
        .in_force()
        .map(|in_force| {
            let (c, progress) = (&in_force.control, in_force.progress.as_ref());
            let what = match c.action {
                ControlAction::Pause { .. } => "paused",
                ControlAction::Trigger => "trigger pending",
                ControlAction::Backfill { .. } => "backfill",
            };
            let detail = match c.action {
                ControlAction::Pause { .. } => span_cell(c, now, zone),
                ControlAction::Trigger => progress_cell(progress),
                ControlAction::Backfill { .. } => {
                    format!("{} {}", span_cell(c, now, zone), progress_cell(progress))
                }
            };
            vec![
                escape(&c.job_name),
                what.to_owned(),
                c.scope
                    .as_ref()
                    .map_or_else(|| "every scope".to_owned(), Scope::to_string),
                zone.ts(Some(c.created_at)),
                detail,
                text_cell(&c.note, TABLE_NOTE_CHARS),
            ]
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let since = format!("since {}", zone.label());
    let mut text =
        "\ncontrols in force (ids, and those that ended: `scheduler controls --all`)\n".to_owned();
    text.push_str(&table(
        &[
            "job",
            "control",
            "scope",
            &since,
            "until / progress",
            "note",
        ],
        &rows,
    ));
    text
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
            (Some(every), _) => Some(Schedule::every(*every)),
            (None, Some(expr)) => Some(Schedule::Cron(Arc::new(
                CronSchedule::parse(expr, &self.tz).map_err(Failure::Usage)?,
            ))),
            (None, None) => None,
        })
    }
}

/// `12`, or `10000+ (stopped counting; narrow --window)` when the report
/// stopped counting.
fn missed_count(m: &MissedPlans) -> String {
    if m.capped {
        format!("{}+ (stopped counting; narrow --window)", m.plans.len())
    } else {
        m.plans.len().to_string()
    }
}

/// The table cell: `none`, or the count and the first plan times, and how
/// many a pause held back.
fn missed_cell(m: &MissedPlans, zone: &Zone) -> String {
    let mut text = if m.plans.is_empty() {
        "none".to_owned()
    } else {
        format!(
            "{}: {}",
            missed_count(m),
            m.plans
                .iter()
                .take(3)
                .map(|t| zone.ts(Some(*t)))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    if !m.paused.is_empty() {
        text.push_str(&format!("; {} paused", m.paused.len()));
    }
    text
}

/// `scheduler status`
pub async fn status(cx: &Cx, args: StatusArgs) -> Result<(), Failure> {
    let (json, zone) = (cx.json, &cx.zone);
    let schedule = args.schedule()?;
    let operator = Operator::new(cx.store().await?);
    let missed_window = schedule.as_ref().map(|_| args.window);
    let mut overview = operator
        .overview(args.job.as_deref(), missed_window)
        .await
        .map_err(|e| operator_failure(cx, e))?;
    for note in std::mem::take(&mut overview.notes) {
        eprintln!(
            "note: {} are not shown: {}",
            note.unshown,
            cx.error(note.error)
        );
    }
    let missed = match (&schedule, &args.job) {
        (Some(schedule), Some(job)) => operator
            .missed_plans(&overview, job, schedule, args.delay)
            .await
            .map_err(|e| operator_failure(cx, e))?,
        _ => Vec::new(),
    };
    let (now, jobs, summaries, controls) = (
        overview.store_time,
        &overview.jobs,
        &overview.scopes,
        &overview.controls,
    );
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
                    "skipped": s.skipped,
                    "paused": controls.paused(&s.job_name, &s.scope),
                    "missed_plan_count": missed.map(|m| m.plans.len()),
                    "missed_plans_capped": missed.map(|m| m.capped),
                    "missed_plans": missed.map(|m| m.plans.iter().take(MAX_MISSED_LISTED).map(|t| json_ts(Some(*t))).collect::<Vec<_>>()),
                    "paused_plan_count": missed.map(|m| m.paused.len()),
                    "paused_plans": missed.map(|m| m.paused.iter().take(MAX_MISSED_LISTED).map(|t| json_ts(Some(*t))).collect::<Vec<_>>()),
                })
            })
            .collect();
        let jobs: Vec<Value> = jobs
            .iter()
            .map(|j| {
                let registration = j.registration.as_ref();
                let stored = j.stored.as_ref();
                let mut value = json!({
                    "job": j.name,
                    "source": j.source_kind(),
                    "source_text": j.source(),
                    "stored_version": stored.map(|s| s.version),
                    "stored": stored.map(stored_json),
                    "live_replicas_with_kind": j.with_kind,
                    "registered": registration.is_some(),
                    "schedule": j.schedule_words(),
                    "next_plan_time": json_ts(j.next_plan_time(now)),
                    "live_replicas": j.replicas,
                    "schedules_differ": j.schedules_differ,
                    "scopes_with_rows": j.scopes_with_rows,
                    "registration": registration,
                });
                if let (Value::Object(fields), Value::Object(steered)) =
                    (&mut value, job_controls_json(controls, &j.name, now))
                {
                    fields.extend(steered);
                }
                value
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
    let mut text = jobs_table(jobs, controls, now, zone);
    text.push_str(&controls_table(controls, now, zone));
    if summaries.is_empty() {
        text.push_str(&format!("\nno executions yet{for_job}\n"));
        return emit(&text);
    }
    text.push('\n');
    let rows: Vec<Vec<String>> = summaries
        .iter()
        .map(|s| {
            vec![
                escape(&s.job_name),
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
                s.skipped.to_string(),
                missed_of(s).map_or_else(|| "-".to_owned(), |m| missed_cell(m, zone)),
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
            "skipped",
            "missed plans",
        ],
        &rows,
    ));
    if summaries.iter().any(|s| s.stale_timeout > 0) {
        text.push_str("\nstale_timeout rows of non-reentrant jobs wait for an operator: `scheduler retry ID` (ids: `scheduler history --job NAME --status FAILED`)\n");
    }
    emit(&text)
}
