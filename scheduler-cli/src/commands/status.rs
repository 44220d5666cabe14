//! `scheduler status`: every registered job, from the live replicas'
//! announcements (its schedule in words and its next plan time, even
//! before its first run), and per job and scope what the table says now.
//! Compiled-in jobs and stored schedules show alike, each marked by its
//! source (`code`, `stored v3`); a stored schedule no live replica runs
//! (none has its kind yet) shows from its definition.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use scheduler_core::model::ControlRead;
use scheduler_core::plan::next_plan_time;
use scheduler_core::plan::{CronSchedule, Schedule};
use scheduler_core::{
    Control, ControlAction, ControlState, RegisteredJob, Replica, ReplicaState, Scope,
    ScopeSummary, StoredSchedule,
};
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::schedule::{stored_json, words};
use super::steering::{
    control_json, control_with_progress_json, in_force, known_schedules, progress_cell,
    progress_of, span_cell, ControlProgress, TABLE_NOTE_CHARS,
};
use super::Cx;
use crate::output::{ago, emit, emit_json, escape, json_ts, table, text_cell, Failure, Zone};
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

/// The registered jobs as a table: source, schedule in words, next plan
/// time, scopes, which live replicas run each, and whether it is paused.
fn jobs_table(jobs: &[JobView], steering: &Steering, now: OffsetDateTime, zone: &Zone) -> String {
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| {
            let mut row = match (&j.registration, &j.stored) {
                (None, Some(stored)) => vec![
                    escape(&j.name),
                    words(&stored.definition.schedule),
                    zone.ts(stored_next_plan(stored, now)),
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
                    zone.ts(stored_next_plan(stored, now)),
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
                    zone.ts(next_plan_time(r, now)),
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
                _ => steering.paused_cell(&j.name),
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

/// The next plan time of a stored schedule from its definition: the first
/// at or after its version became current that becomes eligible after
/// `now`.
fn stored_next_plan(stored: &StoredSchedule, now: OffsetDateTime) -> Option<OffsetDateTime> {
    let schedule = Schedule::from_form(&stored.definition.schedule)?;
    let delay = stored.definition.options.schedule_delay;
    let after = (now - delay + time::Duration::microseconds(1)).max(stored.updated_at);
    schedule.at_or_after(after)
}

/// A stored schedule's scopes as the jobs table counts them.
fn stored_scopes(stored: &StoredSchedule) -> String {
    match &stored.definition.scopes {
        scheduler_core::StoredScopes::Fixed(list) => list.len().to_string(),
        scheduler_core::StoredScopes::Provider(_) => "dynamic".to_owned(),
    }
}

/// The controls `status` reads: those in force, with the progress of
/// triggers and backfills, and, for the missed-plan report, the pauses that
/// ended inside its window.
struct Steering {
    /// In force at store time, by job, in the store's order (oldest
    /// first), with their progress.
    in_force: BTreeMap<String, Vec<(Control, Option<ControlProgress>)>>,
    /// Every pause read, ended or not: the windows that held plans back.
    pauses: Vec<Control>,
}

impl Steering {
    /// The pauses in force of `job`.
    fn pauses_of<'a>(&'a self, job: &str) -> impl Iterator<Item = &'a Control> + 'a {
        self.of(job)
            .filter(|(c, _)| matches!(c.action, ControlAction::Pause { .. }))
            .map(|(c, _)| c)
    }

    /// The controls in force of `job`.
    fn of<'a>(
        &'a self,
        job: &str,
    ) -> impl Iterator<Item = &'a (Control, Option<ControlProgress>)> + 'a {
        self.in_force.get(job).into_iter().flatten()
    }

    /// Whether a pause in force covers `scope` of `job`.
    fn paused(&self, job: &str, scope: &Scope) -> bool {
        self.pauses_of(job).any(|c| c.covers(scope))
    }

    /// `whole job`, `2 scope(s)`, or `-`, for the jobs table.
    fn paused_cell(&self, job: &str) -> String {
        let pauses: Vec<&Control> = self.pauses_of(job).collect();
        if pauses.iter().any(|c| c.scope.is_none()) {
            "whole job".to_owned()
        } else if pauses.is_empty() {
            "-".to_owned()
        } else {
            format!("{} scope(s)", pauses.len())
        }
    }

    /// Whether a pause of `job` covering `scope` held back the plan that
    /// became eligible at `eligible`: the pause was stored at or before
    /// that instant and had not ended (been resumed, cancelled, or run out
    /// at its `until`) by then. A rejected pause never paused anything.
    fn held_back(&self, job: &str, scope: &Scope, eligible: OffsetDateTime) -> bool {
        self.pauses.iter().any(|c| {
            let ControlAction::Pause { until, .. } = c.action else {
                return false;
            };
            let end = match (c.ended_at, until) {
                (Some(ended), Some(until)) => Some(ended.min(until)),
                (ended, until) => ended.or(until),
            };
            c.job_name == job
                && c.state != ControlState::Rejected
                && c.covers(scope)
                && c.created_at <= eligible
                && end.is_none_or(|end| eligible < end)
        })
    }

    /// The job's controls in force for `--json`: `paused` (the whole job),
    /// `paused_scopes`, `pauses`, `triggers` and `backfills` (these two
    /// with their progress).
    fn job_json(&self, job: &str, now: OffsetDateTime) -> Value {
        let of_kind = |kind: &str| -> Vec<Value> {
            self.of(job)
                .filter(|(c, _)| c.action.kind() == kind)
                .map(|(c, p)| control_with_progress_json(c, p.as_ref(), now))
                .collect()
        };
        json!({
            "paused": self.pauses_of(job).any(|c| c.scope.is_none()),
            "paused_scopes": self
                .pauses_of(job)
                .filter_map(|c| c.scope.as_ref().map(Scope::to_string))
                .collect::<Vec<_>>(),
            "pauses": self.pauses_of(job).map(|c| control_json(c, now)).collect::<Vec<_>>(),
            "triggers": of_kind("trigger"),
            "backfills": of_kind("backfill"),
        })
    }

    /// One line per control in force: what, which scope, since when, until
    /// when or how far, and its note; empty when there is none.
    fn table(&self, now: OffsetDateTime, zone: &Zone) -> String {
        let rows: Vec<Vec<String>> = self
            .in_force
            .iter()
            .flat_map(|(job, controls)| controls.iter().map(move |c| (job, c)))
            .map(|(job, (c, progress))| {
                let what = match c.action {
                    ControlAction::Pause { .. } => "paused",
                    ControlAction::Trigger => "trigger pending",
                    ControlAction::Backfill { .. } => "backfill",
                };
                let detail = match c.action {
                    ControlAction::Pause { .. } => span_cell(c, now, zone),
                    ControlAction::Trigger => progress_cell(progress.as_ref()),
                    ControlAction::Backfill { .. } => format!(
                        "{} {}",
                        span_cell(c, now, zone),
                        progress_cell(progress.as_ref())
                    ),
                };
                vec![
                    escape(job),
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
            "\ncontrols in force (ids, and those that ended: `scheduler controls --all`)\n"
                .to_owned();
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

/// The plan times of one scope inside the window that have no execution:
/// those a pause held back, and the others, missed.
struct Missed {
    job: String,
    scope: Scope,
    /// Missed: no execution, and no pause held them back. Oldest first;
    /// with `paused`, at most [`MAX_MISSED_PER_SCOPE`].
    plans: Vec<OffsetDateTime>,
    /// No execution because a pause of the scope held them back, oldest
    /// first.
    paused: Vec<OffsetDateTime>,
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

    /// The table cell: `none`, or the count and the first plan times,
    /// and how many a pause held back.
    fn cell(&self, zone: &Zone) -> String {
        let mut text = if self.plans.is_empty() {
            "none".to_owned()
        } else {
            format!(
                "{}: {}",
                self.count_text(),
                self.plans
                    .iter()
                    .take(3)
                    .map(|t| zone.ts(Some(*t)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        if !self.paused.is_empty() {
            text.push_str(&format!("; {} paused", self.paused.len()));
        }
        text
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
    /// The stored schedule of this name, if there is one.
    stored: Option<StoredSchedule>,
    /// How many live replicas registered the stored schedule's kind.
    with_kind: usize,
}

impl JobView {
    fn empty(name: &str) -> JobView {
        JobView {
            name: name.to_owned(),
            registration: None,
            replicas: Vec::new(),
            schedules_differ: false,
            scopes_with_rows: 0,
            stored: None,
            with_kind: 0,
        }
    }

    /// Where the job comes from: `stored v3` (a stored schedule, with the
    /// version the replicas announce when it is not the current one),
    /// `code` (compiled in), or `-` (rows or controls only).
    fn source(&self) -> String {
        let announced = self.registration.as_ref().map(|r| r.stored_version);
        match (&self.stored, announced) {
            (Some(s), Some(Some(v))) if v != s.version => {
                format!("stored v{} (replicas on v{v})", s.version)
            }
            (Some(s), _) => format!("stored v{}", s.version),
            (None, Some(Some(v))) => format!("stored v{v} (deleted)"),
            (None, Some(None)) => "code".to_owned(),
            (None, None) => "-".to_owned(),
        }
    }

    /// [`source`](Self::source) for `--json`: `"stored"`, `"code"` or null.
    fn source_kind(&self) -> Option<&'static str> {
        match (&self.stored, &self.registration) {
            (Some(_), _) => Some("stored"),
            (None, Some(r)) if r.stored_version.is_some() => Some("stored"),
            (None, Some(_)) => Some("code"),
            (None, None) => None,
        }
    }
}

/// Every job of `job` (all when `None`) that a live replica registered or
/// that has rows, by name.
fn job_views(
    replicas: &[Replica],
    summaries: &[ScopeSummary],
    stored: &[StoredSchedule],
    steering: &Steering,
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
                registration: Some(registered.clone()),
                ..JobView::empty(&registered.name)
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
            .or_insert_with(|| JobView::empty(&summary.job_name))
            .scopes_with_rows += 1;
    }
    // A stored schedule shows whether or not a replica runs it yet.
    for schedule in stored.iter().filter(|s| wanted(&s.name)) {
        let view = views
            .entry(&schedule.name)
            .or_insert_with(|| JobView::empty(&schedule.name));
        view.with_kind = replicas
            .iter()
            .filter(|r| r.state(now) == ReplicaState::Live)
            .filter(|r| r.info.kinds.contains(&schedule.definition.kind))
            .count();
        view.stored = Some(schedule.clone());
    }
    // A job paused ahead of the deploy that brings it has neither.
    for name in steering.in_force.keys() {
        views.entry(name).or_insert_with(|| JobView::empty(name));
    }
    views.into_values().collect()
}

/// Reads the controls of `job` (every job when `None`): those in force
/// with their progress, and the pauses that ended at or after
/// `report_from` (the missed-plan report's window), if any.
async fn read_steering(
    cx: &Cx,
    store: &dyn scheduler_core::ExecutionAudit,
    replicas: &[Replica],
    job: Option<&str>,
    report_from: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<Steering, Failure> {
    let read = ControlRead {
        jobs: job.map(|j| vec![j.to_owned()]),
        ended_since: report_from,
    };
    // A schema older than the controls still has its executions to show.
    let controls = store.controls(&read).await.unwrap_or_else(|e| {
        eprintln!(
            "note: pauses, triggers and backfills are not shown: {}",
            cx.error(e)
        );
        Vec::new()
    });
    let schedules = known_schedules(replicas);
    let mut steering = Steering {
        in_force: BTreeMap::new(),
        pauses: Vec::new(),
    };
    for control in controls {
        if matches!(control.action, ControlAction::Pause { .. }) {
            steering.pauses.push(control.clone());
        }
        if in_force(&control, now) {
            let progress = progress_of(store, &control, &schedules)
                .await
                .map_err(|e| cx.error(e))?;
            steering
                .in_force
                .entry(control.job_name.clone())
                .or_default()
                .push((control, progress));
        }
    }
    Ok(steering)
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
    // A schema older than the stored schedules still has the rest to show.
    let stored = store.schedules().await.unwrap_or_else(|e| {
        eprintln!("note: stored schedules are not shown: {}", cx.error(e));
        Vec::new()
    });
    let report_from = schedule.as_ref().map(|_| now - args.window);
    let steering = read_steering(
        cx,
        store.as_ref(),
        &replicas,
        args.job.as_deref(),
        report_from,
        now,
    )
    .await?;
    let jobs = job_views(
        &replicas,
        &summaries,
        &stored,
        &steering,
        args.job.as_deref(),
        now,
    );
    let mut missed: Vec<Missed> = Vec::new();
    if let (Some(schedule), Some(job)) = (&schedule, &args.job) {
        let from = now - args.window;
        let newest = schedule.at_or_before(now - args.delay);
        let mut expected = newest
            .map(|n| schedule.between(from, n, MAX_MISSED_PER_SCOPE + 1))
            .unwrap_or_default();
        let capped = expected.len() > MAX_MISSED_PER_SCOPE;
        expected.truncate(MAX_MISSED_PER_SCOPE);
        // Every scope's plan times in the window, in one read.
        let mut present: BTreeMap<Scope, BTreeSet<OffsetDateTime>> = BTreeMap::new();
        for p in store
            .plan_times_since(job, from)
            .await
            .map_err(|e| cx.error(e))?
        {
            present.entry(p.scope).or_default().insert(p.plan_time);
        }
        let none = BTreeSet::new();
        for s in summaries.iter().filter(|s| &s.job_name == job) {
            let present = present.get(&s.scope).unwrap_or(&none);
            let (paused, plans): (Vec<OffsetDateTime>, Vec<OffsetDateTime>) = expected
                .iter()
                .copied()
                .filter(|t| !present.contains(t))
                .partition(|t| steering.held_back(job, &s.scope, *t + args.delay));
            missed.push(Missed {
                job: job.clone(),
                scope: s.scope.clone(),
                plans,
                paused,
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
                    "skipped": s.skipped,
                    "paused": steering.paused(&s.job_name, &s.scope),
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
                // A stored schedule's current definition first, whatever
                // version the replicas announced.
                let schedule_words = match stored {
                    Some(s) => Schedule::from_form(&s.definition.schedule).map(|p| p.describe()),
                    None => registration.map(|r| r.schedule.clone()),
                };
                let next = match stored {
                    Some(s) => stored_next_plan(s, now),
                    None => registration.and_then(|r| next_plan_time(r, now)),
                };
                let mut value = json!({
                    "job": j.name,
                    "source": j.source_kind(),
                    "source_text": j.source(),
                    "stored_version": stored.map(|s| s.version),
                    "stored": stored.map(stored_json),
                    "live_replicas_with_kind": j.with_kind,
                    "registered": registration.is_some(),
                    "schedule": schedule_words,
                    "next_plan_time": json_ts(next),
                    "live_replicas": j.replicas,
                    "schedules_differ": j.schedules_differ,
                    "scopes_with_rows": j.scopes_with_rows,
                    "registration": registration,
                });
                if let (Value::Object(fields), Value::Object(steered)) =
                    (&mut value, steering.job_json(&j.name, now))
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
    let mut text = jobs_table(&jobs, &steering, now, zone);
    text.push_str(&steering.table(now, zone));
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
                missed_of(s).map_or_else(|| "-".to_owned(), |m| m.cell(zone)),
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
