//! `/executions/{id}`: every field of one execution (the lease's
//! heartbeat and staleness only while it runs), its error, its result JSON
//! pretty-printed (`none` when empty), and each attempt with its runner
//! and duration.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use scheduler_core::machine::NEVER;
use scheduler_core::{Attempt, Execution, Status};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::app::Cx;
use crate::render::{ago, encode, instant, page, Failure};

/// The execution page; 400 for an id that is not a UUID, 404 for an
/// unknown one.
pub(crate) async fn execution(cx: Cx, Path(id): Path<String>) -> Result<Response, Failure> {
    let id = Uuid::parse_str(&id).map_err(|e| {
        cx.fail(
            StatusCode::BAD_REQUEST,
            format!("{id:?} is not an execution id: {e}"),
        )
    })?;
    let store = cx.app.store();
    let row = store
        .get_execution(id)
        .await
        .map_err(|e| cx.store_failed(e))?
        .ok_or_else(|| cx.fail(StatusCode::NOT_FOUND, format!("no execution with id {id}")))?;
    let attempts = store.attempts(id).await.map_err(|e| cx.store_failed(e))?;
    let now = store.now().await.map_err(|e| cx.store_failed(e))?;
    let title = format!("execution {id}");
    Ok(page(
        &cx,
        StatusCode::OK,
        &title,
        true,
        body(&cx, &row, &attempts, now),
    ))
}

/// The page's `<main>` content.
fn body(cx: &Cx, row: &Execution, attempts: &[Attempt], now: OffsetDateTime) -> Markup {
    let job_link = cx.link(&format!("/jobs/{}", encode(&row.job_name)));
    let awaits_operator = row.next_retry_at == Some(NEVER);
    html! {
        h1 { "Execution " code { (row.id) } }
        p .status-line {
            span .status data-status=(row.status.as_str()) { (row.status.as_str()) }
            " attempt " (row.attempt) " of " (row.max_attempts)
            @if awaits_operator {
                " " span .flag data-flag="awaits-operator" { "awaits an operator's retry" }
            }
            @if cx.actions() && row.status == Status::Failed {
                " " a .action data-action="retry"
                    href=(cx.link(&format!("/actions/retry?execution={}", row.id))) { "Retry…" }
            }
        }
        table #execution .fields {
            tr { th { "job" } td { a data-job=(row.job_name) href=(job_link) { (row.job_name) } } }
            tr { th { "scope" } td data-scope=(row.scope) { (row.scope) } }
            tr { th { "plan time" } td { (instant(Some(row.plan_time))) } }
            tr { th { "status" } td data-field="status" { (row.status.as_str()) } }
            tr { th { "attempt" } td data-field="attempt" { (row.attempt) " of " (row.max_attempts) } }
            tr { th { "next retry" } td data-field="next_retry_at" {
                @if awaits_operator { "never by itself (an operator's retry)" }
                @else { (instant(row.next_retry_at)) }
            } }
            tr { th { "runner" } td data-field="runner_id" { (row.runner_id.as_deref().unwrap_or("-")) } }
            tr { th { "lease token" } td { code { (row.lease_token) } } }
            tr { th { "started" } td { (instant(row.started_at)) } }
            // The lease's liveness means something only while the row
            // runs; a finished row keeps its last heartbeat, nothing more.
            @if row.status == Status::Running {
                tr { th { "heartbeat" } td data-field="heartbeat_at" { (instant(row.heartbeat_at)) " (" (ago(now, row.heartbeat_at)) ")" } }
                tr { th { "stale after" } td data-field="stale_after" {
                    (instant(row.stale_after))
                    @if row.stale_after.is_some_and(|t| t < now) { " " span .flag data-flag="stale" { "stale" } }
                } }
            } @else {
                tr { th { "last heartbeat" } td data-field="heartbeat_at" { (instant(row.heartbeat_at)) } }
            }
            tr { th { "finished" } td { (instant(row.finished_at)) } }
            tr { th { "duration" } td data-field="duration_ms" { (duration(row.duration_ms)) } }
            tr { th { "rows affected" } td { (row.rows_affected.map_or("-".to_owned(), |n| n.to_string())) } }
            tr { th { "origin" } td data-field="origin" { (row.origin.as_str()) } }
            tr { th { "control" } td { (row.control_id.map_or("-".to_owned(), |id| id.to_string())) } }
            tr { th { "created" } td { (instant(Some(row.created_at))) } }
            tr { th { "updated" } td { (instant(Some(row.updated_at))) } }
            tr { th { "error code" } td data-field="error_code" { (row.error_code.as_deref().unwrap_or("-")) } }
        }
        @if let Some(message) = &row.error_msg {
            h2 { "Error" }
            pre #error-message .error { (message) }
        }
        h2 { "Result" }
        @if row.result.is_empty() {
            p #result .meta { "none" }
        } @else {
            pre #result { (serde_json::to_string_pretty(&row.result).unwrap_or_default()) }
        }
        h2 { "Attempts" }
        (attempts_table(row, attempts))
    }
}

/// The attempts log, oldest first, then the attempt the row is on when
/// the log does not hold it (a RUNNING row's, which has not ended).
fn attempts_table(row: &Execution, attempts: &[Attempt]) -> Markup {
    let logged = attempts.iter().map(|a| AttemptLine {
        attempt: a.attempt,
        outcome: a.outcome.as_str(),
        runner: a.runner_id.as_deref(),
        started: a.started_at,
        ended: Some(a.ended_at),
        duration_ms: a.duration_ms,
        error_code: a.error_code.as_deref(),
        error_msg: a.error_msg.as_deref(),
        current: false,
    });
    let current = (!attempts.iter().any(|a| a.attempt == row.attempt)).then(|| AttemptLine {
        attempt: row.attempt,
        outcome: row.status.as_str(),
        runner: row.runner_id.as_deref(),
        started: row.started_at,
        ended: row.finished_at,
        duration_ms: row.duration_ms,
        error_code: row.error_code.as_deref(),
        error_msg: row.error_msg.as_deref(),
        current: true,
    });
    html! {
        table #attempts {
            thead { tr {
                th { "try" } th { "outcome" } th { "runner" } th { "started" }
                th { "ended" } th { "duration" } th { "error code" } th { "error" }
            } }
            tbody {
                @for line in logged.chain(current) {
                    tr data-attempt=(line.attempt) .current[line.current] {
                        td { "#" (line.attempt) }
                        td .status data-status=(line.outcome) { (line.outcome) }
                        td { (line.runner.unwrap_or("-")) }
                        td { (instant(line.started)) }
                        td { (instant(line.ended)) }
                        td { (duration(line.duration_ms)) }
                        td { (line.error_code.unwrap_or("")) }
                        td .error { (line.error_msg.unwrap_or("")) }
                    }
                }
            }
        }
    }
}

/// One line of the attempts table: a logged attempt, or the row's own.
struct AttemptLine<'a> {
    attempt: i32,
    outcome: &'static str,
    runner: Option<&'a str>,
    started: Option<OffsetDateTime>,
    ended: Option<OffsetDateTime>,
    duration_ms: Option<i32>,
    error_code: Option<&'a str>,
    error_msg: Option<&'a str>,
    /// The row's attempt, not (yet) in the log.
    current: bool,
}

/// A duration in milliseconds: `7 ms`, or `-`.
fn duration(ms: Option<i32>) -> String {
    ms.map_or_else(|| "-".to_owned(), |d| format!("{d} ms"))
}
