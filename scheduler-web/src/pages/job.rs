//! `/jobs/{name}`: one job's settings (from its registration or stored
//! definition), its controls in force, and its scopes: filtered by a
//! substring, sorted (scope, latest plan, problems first), paged, each
//! with a strip of its recent executions. The strips are read only for
//! the scopes on the page, one bounded read each.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use futures::future::join_all;
use maud::{html, Markup};
use scheduler_core::operator::{JobOverview, MissedPlans, Overview};
use scheduler_core::{ErrorCode, Execution, ExecutionFilter, Scope, ScopeSummary, Target};
use serde::Deserialize;

use super::counts::{flags, head_cells, Counts};
use super::overview::{controls_table, missed_plans, paused_words, MISSED_WINDOW};
use crate::actions::target_query;
use crate::app::Cx;
use crate::render::{ago, compact, encode, instant, page, span, Failure};

/// Scopes per page.
pub(crate) const PAGE_SIZE: usize = 50;

/// Executions per scope in its strip.
pub(crate) const STRIP_LENGTH: usize = 20;

/// The scope list's query string.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ScopeQuery {
    /// Only scopes whose `kind/id` contains this text.
    #[serde(default)]
    q: String,
    /// `scope` (the default), `latest` or `problems`.
    #[serde(default)]
    sort: String,
    /// 1-based.
    page: Option<String>,
}

/// How the scopes are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sort {
    /// By kind, then id.
    Scope,
    /// Newest latest plan first.
    Latest,
    /// Scopes with problems first, then by scope.
    Problems,
}

impl Sort {
    const ALL: [(Sort, &'static str, &'static str); 3] = [
        (Sort::Scope, "scope", "scope"),
        (Sort::Latest, "latest", "latest plan first"),
        (Sort::Problems, "problems", "problems first"),
    ];

    fn parse(text: &str) -> Option<Sort> {
        match text {
            "" => Some(Sort::Scope),
            _ => Self::ALL
                .iter()
                .find(|(_, name, _)| *name == text)
                .map(|(s, _, _)| *s),
        }
    }

    fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(s, _, _)| *s == self)
            .map_or("scope", |(_, n, _)| n)
    }
}

/// One scope as the list shows it.
struct ScopeLine<'a> {
    summary: &'a ScopeSummary,
    counts: Counts,
    problems: Vec<&'static str>,
    paused: bool,
}

/// The job page; 404 for a job nothing knows, 400 for a bad sort or page.
pub(crate) async fn job(
    cx: Cx,
    Path(name): Path<String>,
    Query(query): Query<ScopeQuery>,
) -> Result<Response, Failure> {
    let bad = |message: String| cx.fail(StatusCode::BAD_REQUEST, message);
    let sort = Sort::parse(&query.sort).ok_or_else(|| {
        bad(format!(
            "sort {:?} is not one of scope, latest, problems",
            query.sort
        ))
    })?;
    let page_number = match query.page.as_deref() {
        None | Some("") => 1,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|&n| n >= 1)
            .ok_or_else(|| bad(format!("page {text:?} is not a page number (1, 2, ...)")))?,
    };
    let overview = cx
        .app
        .operator()
        .overview(Some(&name), Some(MISSED_WINDOW))
        .await
        .map_err(|e| cx.operator_failed(e))?;
    let Some(job) = overview.job(&name) else {
        return Err(cx.fail(
            StatusCode::NOT_FOUND,
            format!("no job {name:?}: no live replica registered it, and it has no stored schedule, execution or control"),
        ));
    };
    let missed = missed_plans(&cx, &overview, Some(&name)).await?;
    let lines = scope_lines(
        &overview,
        &name,
        &missed,
        &query.q,
        sort,
        job.schedule().is_some(),
    );
    let pages = lines.len().div_ceil(PAGE_SIZE).max(1);
    let first = (page_number.min(pages) - 1) * PAGE_SIZE;
    let shown = &lines[first..(first + PAGE_SIZE).min(lines.len())];
    let strips = strips(&cx, &name, shown.iter().map(|l| &l.summary.scope)).await?;
    let listing = Listing {
        query: &query,
        sort,
        page: page_number.min(pages),
        pages,
        first,
        total: lines.len(),
        all: overview.scopes.len(),
    };
    let body = html! {
        (header(&cx, &overview, job))
        (settings(job))
        (controls_table(&cx, &overview, Some(&name)))
        (scopes(&cx, &overview, &name, shown, &strips, &listing))
    };
    Ok(page(&cx, StatusCode::OK, &name, true, body))
}

/// The job's scopes with rows whose `kind/id` contains `filter`, with
/// their counts, in `sort`'s order.
fn scope_lines<'a>(
    overview: &'a Overview,
    job: &str,
    missed: &[MissedPlans],
    filter: &str,
    sort: Sort,
    schedule_known: bool,
) -> Vec<ScopeLine<'a>> {
    let missed: BTreeMap<&Scope, &MissedPlans> = missed.iter().map(|m| (&m.scope, m)).collect();
    let mut lines: Vec<ScopeLine<'a>> = overview
        .scopes
        .iter()
        .filter(|s| s.job_name == job && s.scope.to_string().contains(filter))
        .map(|summary| {
            let mut counts = Counts::default();
            counts.add(summary);
            if schedule_known {
                counts.looked_for_missed();
            }
            if let Some(m) = missed.get(&summary.scope) {
                counts.add_missed(m);
            }
            ScopeLine {
                problems: counts.problems(),
                paused: overview.controls.paused(job, &summary.scope),
                summary,
                counts,
            }
        })
        .collect();
    match sort {
        Sort::Scope => {}
        Sort::Latest => lines.sort_by_key(|l| std::cmp::Reverse(l.summary.latest.plan_time)),
        Sort::Problems => lines.sort_by_key(|l| std::cmp::Reverse(l.problems.len())),
    }
    lines
}

/// The recent executions of each of `scopes` (newest first, at most
/// [`STRIP_LENGTH`]), read concurrently.
async fn strips(
    cx: &Cx,
    job: &str,
    scopes: impl Iterator<Item = &Scope>,
) -> Result<BTreeMap<Scope, Vec<Execution>>, Failure> {
    let store = cx.app.store();
    let reads = scopes.map(|scope| async move {
        let filter = ExecutionFilter {
            job_name: Some(job.to_owned()),
            scope: Some(scope.clone()),
            limit: Some(STRIP_LENGTH),
            ..ExecutionFilter::default()
        };
        store
            .list_executions(&filter)
            .await
            .map(|rows| (scope.clone(), rows))
    });
    join_all(reads)
        .await
        .into_iter()
        .map(|read| read.map_err(|e| cx.store_failed(e)))
        .collect()
}

/// The title, the job's source, schedule and next plan, and its actions.
fn header(cx: &Cx, overview: &Overview, job: &JobOverview) -> Markup {
    let now = overview.store_time;
    let target = target_query(&Target::job(job.name.clone()));
    let paused = paused_words(overview, job);
    html! {
        h1 #job data-job=(job.name) { "Job " (job.name) }
        p .meta {
            (job.source()) " · "
            (job.schedule_words().unwrap_or_else(|| "schedule unknown".to_owned()))
            " · next plan " (instant(job.next_plan_time(now)))
            " · store time " (instant(Some(now)))
            @if let Some(paused) = &paused { " " span .flag data-flag="paused" { "paused: " (paused) } }
        }
        @if cx.actions() {
            p .actions #job-actions {
                @if paused.is_some() {
                    a .action data-action="resume" href=(cx.link(&format!("/actions/resume?{target}"))) { "Resume…" }
                } @else {
                    a .action data-action="pause" href=(cx.link(&format!("/actions/pause?{target}"))) { "Pause…" }
                }
                a .action data-action="trigger" href=(cx.link(&format!("/actions/trigger?{target}"))) { "Trigger now…" }
                a .action data-action="backfill" href=(cx.link(&format!("/actions/backfill?{target}"))) { "Backfill…" }
            }
        }
    }
}

/// The job's settings: from its stored definition when it has one, else
/// from the registration of the live replica that started last.
fn settings(job: &JobOverview) -> Markup {
    let duration = |d: Duration| match time::Duration::try_from(d) {
        Ok(d) if !d.is_zero() => span(d),
        _ => "0s".to_owned(),
    };
    let word = |value: serde_json::Value| {
        value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_owned)
    };
    let mut rows: Vec<(&str, String)> = Vec::new();
    if let Some(stored) = &job.stored {
        let d = &stored.definition;
        let o = &d.options;
        rows.extend([
            ("kind", d.kind.clone()),
            ("version", stored.version.to_string()),
            ("stored at", compact(stored.updated_at)),
            ("paused in its definition", d.paused.to_string()),
            (
                "scopes",
                word(serde_json::to_value(&d.scopes).unwrap_or_default()),
            ),
            (
                "arguments",
                serde_json::Value::Object(d.arguments.clone()).to_string(),
            ),
            ("schedule delay", duration(o.schedule_delay)),
            ("spread", duration(o.spread)),
            (
                "catch-up",
                word(serde_json::to_value(o.catch_up).unwrap_or_default()),
            ),
            ("catch-up window", duration(o.catch_up_window)),
            ("plans per tick", o.max_plans_per_tick.to_string()),
            ("backfill per tick", o.backfill_per_tick.to_string()),
            ("max attempts", o.max_attempts.to_string()),
            (
                "retry backoff",
                o.retry_backoff
                    .iter()
                    .map(|d| duration(*d))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            ("run timeout", duration(o.run_timeout)),
            ("stale timeout", duration(o.stale_timeout)),
            ("heartbeat", duration(o.heartbeat_interval)),
            ("stale re-entry", o.allow_stale_reentry.to_string()),
            ("overlap", o.overlap.to_string()),
        ]);
    } else if let Some(r) = &job.registration {
        rows.extend([
            ("scopes", r.scopes.to_string()),
            ("schedule delay", duration(r.schedule_delay)),
            ("spread", duration(r.spread)),
            (
                "catch-up",
                word(serde_json::to_value(r.catch_up).unwrap_or_default()),
            ),
            ("catch-up window", duration(r.catch_up_window)),
            ("max attempts", r.max_attempts.to_string()),
            ("run timeout", duration(r.run_timeout)),
            ("stale timeout", duration(r.stale_timeout)),
            ("stale re-entry", r.allow_stale_reentry.to_string()),
            ("overlap", r.overlap.to_string()),
        ]);
    }
    html! {
        h2 { "Settings" }
        @if rows.is_empty() {
            p #settings .meta { "No live replica runs this job and it has no stored schedule: its settings are not known." }
        } @else {
            // Pairs side by side, as many columns as fit: a long list
            // of settings would push the scopes below the first screen.
            dl #settings .settings {
                @for (name, value) in &rows {
                    div data-setting=(name) { dt { (name) } dd { (value) } }
                }
                div data-setting="live replicas" { dt { "live replicas" } dd {
                    @if job.replicas.is_empty() { "none" } @else { (job.replicas.join(", ")) }
                    @if job.schedules_differ { " " span .flag data-flag="schedules-differ" { "their schedules differ" } }
                } }
            }
        }
    }
}

/// Where the scope list is: its query, order and page.
struct Listing<'a> {
    query: &'a ScopeQuery,
    sort: Sort,
    page: usize,
    pages: usize,
    /// Index of the first scope shown.
    first: usize,
    /// Scopes matching the filter.
    total: usize,
    /// Scopes with rows in all.
    all: usize,
}

impl Listing<'_> {
    /// The link to page `page` with the same filter and order.
    fn page_link(&self, cx: &Cx, job: &str, page: usize) -> String {
        cx.link(&format!(
            "/jobs/{}?q={}&sort={}&page={page}",
            encode(job),
            encode(&self.query.q),
            self.sort.name()
        ))
    }
}

/// The filter form, the scopes on this page, and the pager.
fn scopes(
    cx: &Cx,
    overview: &Overview,
    job: &str,
    shown: &[ScopeLine<'_>],
    strips: &BTreeMap<Scope, Vec<Execution>>,
    listing: &Listing<'_>,
) -> Markup {
    let now = overview.store_time;
    html! {
        h2 { "Scopes" }
        form #scope-filter .filters method="get" action=(cx.link(&format!("/jobs/{}", encode(job)))) {
            label { "Filter " input #q type="search" name="q" value=(listing.query.q) placeholder="kind/id contains"; }
            label { "Sort "
                select #sort name="sort" {
                    @for (sort, name, words) in Sort::ALL {
                        option value=(name) selected[sort == listing.sort] { (words) }
                    }
                }
            }
            button type="submit" { "Show" }
        }
        p #scope-count .meta {
            @if listing.total == 0 { "No scope matches." }
            @else { "Scopes " (listing.first + 1) "–" (listing.first + shown.len()) " of " (listing.total) }
            @if listing.total != listing.all { " (" (listing.all) " with rows in all)" }
            ". Missed plans over the last hour; hover a column head for what it counts."
        }
        table #scopes {
            thead { tr {
                th { "scope" }
                th title="the execution with the newest plan time: its status, attempt, plan time and error code" { "latest" }
                th title="how long ago the newest success finished" { "last success" }
                (head_cells())
                th title=(format!("the last {STRIP_LENGTH} executions, oldest to newest; each links to its page")) { "recent" }
                @if cx.actions() { th {} }
            } }
            tbody {
                @for line in shown {
                    @let s = line.summary;
                    @let target = target_query(&Target::scope(job.to_owned(), s.scope.clone()));
                    tr data-scope=(s.scope) .problem[!line.problems.is_empty()] {
                        td { (s.scope) " " (flags(&line.problems, line.paused.then_some(""))) }
                        td .latest {
                            span .status data-status=(s.latest.status.as_str())
                                title=(format!("attempt {} of {}", s.latest.attempt, s.latest.max_attempts)) { (s.latest.status.as_str()) }
                            // A first attempt is the usual case: only a retry's number is worth the width.
                            @if s.latest.attempt > 1 { " #" (s.latest.attempt) }
                            " " (instant(Some(s.latest.plan_time)))
                            @if let Some(code) = &s.latest.error_code { " " code .error-code title=(code) { (code) } }
                        }
                        td { (ago(now, s.last_success_finished_at)) }
                        (line.counts.cells())
                        td { (strip(cx, strips.get(&s.scope).map(Vec::as_slice).unwrap_or_default())) }
                        @if cx.actions() {
                            td .actions {
                                @if line.paused {
                                    a .action data-action="resume" href=(cx.link(&format!("/actions/resume?{target}"))) { "Resume…" }
                                } @else {
                                    a .action data-action="pause" href=(cx.link(&format!("/actions/pause?{target}"))) { "Pause…" }
                                }
                                a .action data-action="trigger" href=(cx.link(&format!("/actions/trigger?{target}"))) { "Trigger…" }
                            }
                        }
                    }
                }
            }
        }
        @if listing.pages > 1 {
            p .pager #pager {
                @if listing.page > 1 {
                    a #previous rel="prev" href=(listing.page_link(cx, job, listing.page - 1)) { "← previous" }
                }
                span { "page " (listing.page) " of " (listing.pages) }
                @if listing.page < listing.pages {
                    a #next rel="next" href=(listing.page_link(cx, job, listing.page + 1)) { "next →" }
                }
            }
        }
    }
}

/// One scope's recent executions, oldest first, each a cell coloured by
/// its status and linking to it.
fn strip(cx: &Cx, newest_first: &[Execution]) -> Markup {
    html! {
        span .strip {
            @for row in newest_first.iter().rev() {
                @let skipped = ErrorCode::is_overlap(row.error_code.as_deref());
                a .cell .skipped[skipped] data-status=(row.status.as_str())
                    href=(cx.link(&format!("/executions/{}", row.id)))
                    title=(format!("{} {} #{}{}", compact(row.plan_time), row.status.as_str(), row.attempt,
                        row.error_code.as_deref().map(|c| format!(" {c}")).unwrap_or_default())) {}
            }
        }
    }
}
