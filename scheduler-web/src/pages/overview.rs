//! `/`: every job ([`Operator::overview`](scheduler_core::Operator::overview)),
//! its source, schedule, next plan, last success, counts over its scopes,
//! missed plans of the last hour and paused state, problem jobs flagged;
//! then the controls in force.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;
use futures::future::join_all;
use maud::{html, Markup};
use scheduler_core::operator::{JobOverview, MissedPlans, Overview, PauseExtent};
use scheduler_core::plan::Schedule;
use scheduler_core::{Control, ControlAction, Target};

use super::counts::{flags, head_cells, Counts};
use crate::actions::target_query;
use crate::app::Cx;
use crate::render::{ago, encode, instant, page, Failure};

/// How far back missed plans are looked for.
pub(crate) const MISSED_WINDOW: Duration = Duration::from_secs(3600);

/// The overview page.
pub(crate) async fn overview(cx: Cx) -> Result<Response, Failure> {
    let overview = cx
        .app
        .operator()
        .overview(None, Some(MISSED_WINDOW))
        .await
        .map_err(|e| cx.operator_failed(e))?;
    let mut counts: BTreeMap<&str, Counts> = BTreeMap::new();
    for s in &overview.scopes {
        counts.entry(&s.job_name).or_default().add(s);
    }
    let missed = missed_plans(&cx, &overview, None).await?;
    for m in &missed {
        counts.entry(&m.job).or_default().add_missed(m);
    }
    Ok(page(
        &cx,
        StatusCode::OK,
        "Overview",
        true,
        body(&cx, &overview, &counts),
    ))
}

/// The missed plans of every job of `overview` (of `only`, when given)
/// whose schedule is known and that has scopes with rows, read
/// concurrently, one read per job.
pub(crate) async fn missed_plans(
    cx: &Cx,
    overview: &Overview,
    only: Option<&str>,
) -> Result<Vec<MissedPlans>, Failure> {
    let operator = cx.app.operator();
    let reads = overview
        .jobs
        .iter()
        .filter(|j| j.scopes_with_rows > 0 && only.is_none_or(|o| o == j.name))
        .filter_map(|j| j.schedule().map(|s| (j, s)))
        .map(|(job, schedule): (&JobOverview, Schedule)| async move {
            operator
                .missed_plans(overview, &job.name, &schedule, schedule_delay(job))
                .await
        });
    let mut all = Vec::new();
    for read in join_all(reads).await {
        all.extend(read.map_err(|e| cx.operator_failed(e))?);
    }
    Ok(all)
}

/// The job's schedule delay, from the same source as its schedule: the
/// stored definition first, else the registration.
fn schedule_delay(job: &JobOverview) -> Duration {
    match (&job.stored, &job.registration) {
        (Some(s), _) => s.definition.options.schedule_delay,
        (None, Some(r)) => r.schedule_delay,
        (None, None) => Duration::ZERO,
    }
}

/// `whole job`, `2 scopes`, or `definition` for a stored schedule whose
/// definition says paused; `None` when not paused.
pub(crate) fn paused_words(overview: &Overview, job: &JobOverview) -> Option<String> {
    if job.stored.as_ref().is_some_and(|s| s.definition.paused) {
        return Some("stored definition".to_owned());
    }
    overview
        .controls
        .pause_extent(&job.name)
        .map(|extent| match extent {
            PauseExtent::WholeJob => "whole job".to_owned(),
            PauseExtent::Scopes(1) => "1 scope".to_owned(),
            PauseExtent::Scopes(n) => format!("{n} scopes"),
        })
}

/// The page's `<main>` content.
fn body(cx: &Cx, overview: &Overview, counts: &BTreeMap<&str, Counts>) -> Markup {
    let now = overview.store_time;
    let none = Counts::default();
    html! {
        h1 { "Jobs" }
        p .meta { "Store time " (instant(Some(now))) ". Counts are over each job's scopes; missed plans over the last hour." }
        @for note in &overview.notes {
            p .warning { "Note: " (note) }
        }
        @if overview.jobs.is_empty() {
            p #no-jobs { "No registered job, stored schedule or execution yet." }
        } @else {
            table #jobs {
                thead { tr {
                    th { "job" } th { "source" } th { "schedule" } th { "next plan" }
                    th { "last success" } (head_cells()) th { "paused" } th { "replicas" }
                } }
                tbody {
                    @for job in &overview.jobs {
                        @let counts = counts.get(job.name.as_str()).unwrap_or(&none);
                        @let problems = counts.problems();
                        @let paused = paused_words(overview, job);
                        tr data-job=(job.name) .problem[!problems.is_empty()] {
                            td {
                                a href=(cx.link(&format!("/jobs/{}", encode(&job.name)))) { (job.name) }
                                " " (flags(&problems, None))
                            }
                            td data-field="source" { (job.source()) }
                            td data-field="schedule" { (job.schedule_words().unwrap_or_else(|| "-".to_owned())) }
                            td data-field="next_plan" { (instant(job.next_plan_time(now))) }
                            td data-field="last_success" { (ago(now, counts.last_success)) }
                            (counts.cells())
                            td data-field="paused" {
                                @if let Some(paused) = &paused { span .flag data-flag="paused" { (paused) } } @else { "-" }
                            }
                            td data-field="replicas" { (replicas_words(job)) }
                        }
                    }
                }
            }
        }
        (controls_table(cx, overview, None))
    }
}

/// `2 live`, or why no live replica runs it.
fn replicas_words(job: &JobOverview) -> String {
    match (&job.registration, &job.stored) {
        (Some(_), _) if job.schedules_differ => {
            format!("{} live (schedules differ)", job.replicas.len())
        }
        (Some(_), _) => format!("{} live", job.replicas.len()),
        (None, Some(s)) if job.with_kind == 0 => {
            format!("none live has kind {}", s.definition.kind)
        }
        (None, Some(_)) => format!("{} live with its kind, not yet running it", job.with_kind),
        (None, None) if job.scopes_with_rows == 0 => "none live (controls only)".to_owned(),
        (None, None) => "none live (rows only)".to_owned(),
    }
}

/// The controls in force (of `job`, when given): what, which scope,
/// since when, until when or how far, the note, and a cancel link.
pub(crate) fn controls_table(cx: &Cx, overview: &Overview, job: Option<&str>) -> Markup {
    let now = overview.store_time;
    let controls: Vec<_> = match job {
        Some(job) => overview.controls.of(job).collect(),
        None => overview.controls.in_force().collect(),
    };
    if controls.is_empty() {
        return html! {};
    }
    html! {
        h2 { "Controls in force" }
        table #controls {
            thead { tr {
                th { "job" } th { "control" } th { "scope" } th { "since" }
                th { "until / progress" } th { "note" }
                @if cx.actions() { th {} }
            } }
            tbody {
                @for c in controls {
                    @let control = &c.control;
                    tr data-control=(control.id) data-kind=(control.action.kind()) {
                        td { a href=(cx.link(&format!("/jobs/{}", encode(&control.job_name)))) { (control.job_name) } }
                        td { (control.action.kind()) }
                        td { (control.scope.as_ref().map_or_else(|| "every scope".to_owned(), ToString::to_string)) }
                        td { (instant(Some(control.created_at))) " (" (ago(now, Some(control.created_at))) ")" }
                        td {
                            @match control.action {
                                ControlAction::Pause { until, .. } => {
                                    @if let Some(until) = until { "until " (instant(Some(until))) } @else { "until resumed" }
                                }
                                ControlAction::Backfill { from, to } => {
                                    (instant(Some(from))) " to " (instant(Some(to)))
                                }
                                ControlAction::Trigger => {}
                            }
                            @if let Some(p) = &c.progress {
                                " · " (p.rows.succeeded) " succeeded, " (p.rows.failed) " failed, " (p.rows.running) " running"
                                @if let Some((all, done)) = p.instants { " · " (done) " of " (all) " instants claimed" }
                            }
                        }
                        td .note { (control.note) }
                        @if cx.actions() {
                            td .actions {
                                @if matches!(control.action, ControlAction::Pause { .. }) {
                                    a .action data-action="resume"
                                        href=(cx.link(&format!("/actions/resume?{}", target_query(&control_target(control))))) { "Resume…" }
                                }
                                a .action data-action="cancel"
                                    href=(cx.link(&format!("/actions/cancel?control={}", control.id))) { "Cancel…" }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// What a control targets, as an action's target.
fn control_target(control: &Control) -> Target {
    match &control.scope {
        Some(scope) => Target::scope(control.job_name.clone(), scope.clone()),
        None => Target::job(control.job_name.clone()),
    }
}
