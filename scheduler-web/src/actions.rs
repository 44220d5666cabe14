//! `/actions/{action}`: an operator's retry, pause, resume, trigger,
//! backfill and cancel, each through [`scheduler_core::Operator`] (or
//! [`ExecutionAudit::retry_execution`](scheduler_core::ExecutionAudit::retry_execution)).
//!
//! A GET shows what exactly will happen and a form; its POST (same query,
//! the session's CSRF token in the form) acts and shows the outcome. A
//! refused request shows the form again with the reason, and a status
//! that says whose fault it was (400, 404, 409; 503 when the store
//! failed). Routed only when a token is set and the dashboard is not
//! read-only.

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use maud::{html, Markup};
use scheduler_core::model::ControlRead;
use scheduler_core::time::Rfc3339;
use scheduler_core::{Backfill, ControlAction, OperatorError, Scope, Target};
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::app::Cx;
use crate::render::{encode, instant, operator_status, page, store_status, Failure};

/// What an action applies to, from the query string.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ActionQuery {
    /// The job (pause, resume, trigger, backfill).
    job: Option<String>,
    /// With `scope_id`: one scope of the job instead of every scope.
    scope_kind: Option<String>,
    /// With `scope_kind`.
    scope_id: Option<String>,
    /// The execution (retry).
    execution: Option<String>,
    /// The control (cancel).
    control: Option<String>,
}

/// The form's fields; each action reads the ones it shows.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    /// A checkbox: present when checked.
    skip_missed: Option<String>,
    /// A checkbox: present when checked.
    confirm_large: Option<String>,
    #[serde(default)]
    reason: String,
}

/// One requested action and what it applies to.
enum Action {
    Retry(Uuid),
    Pause(Target),
    Resume(Target),
    Trigger(Target),
    Backfill(Target),
    Cancel(Uuid),
}

/// Why an action was not carried out: a status and the operator's message.
type Refusal = (StatusCode, String);

impl Action {
    /// The action `name` asks for, on what the query names: 404 for an
    /// unknown action, 400 for a missing or malformed argument.
    fn parse(cx: &Cx, name: &str, query: &ActionQuery) -> Result<Action, Failure> {
        let bad = |message: String| cx.fail(StatusCode::BAD_REQUEST, message);
        let id = |field: &str, value: &Option<String>| -> Result<Uuid, Failure> {
            let value = value
                .as_deref()
                .ok_or_else(|| bad(format!("the {field} to act on is missing (?{field}=ID)")))?;
            Uuid::parse_str(value).map_err(|e| bad(format!("{value:?} is not a {field} id: {e}")))
        };
        let target = || -> Result<Target, Failure> {
            let job = query
                .job
                .clone()
                .filter(|j| !j.is_empty())
                .ok_or_else(|| bad("the job to act on is missing (?job=NAME)".to_owned()))?;
            match (&query.scope_kind, &query.scope_id) {
                (Some(kind), Some(id)) => Ok(Target::scope(job, Scope::new(kind, id))),
                (None, None) => Ok(Target::job(job)),
                _ => Err(bad("a scope needs both scope_kind and scope_id".to_owned())),
            }
        };
        Ok(match name {
            "retry" => Action::Retry(id("execution", &query.execution)?),
            "pause" => Action::Pause(target()?),
            "resume" => Action::Resume(target()?),
            "trigger" => Action::Trigger(target()?),
            "backfill" => Action::Backfill(target()?),
            "cancel" => Action::Cancel(id("control", &query.control)?),
            _ => {
                return Err(cx.fail(
                    StatusCode::NOT_FOUND,
                    format!("there is no action {name:?}"),
                ))
            }
        })
    }

    /// The action's name in its URL and `data-action`.
    fn name(&self) -> &'static str {
        match self {
            Action::Retry(_) => "retry",
            Action::Pause(_) => "pause",
            Action::Resume(_) => "resume",
            Action::Trigger(_) => "trigger",
            Action::Backfill(_) => "backfill",
            Action::Cancel(_) => "cancel",
        }
    }

    /// The query string that names what the action applies to.
    fn query(&self) -> String {
        match self {
            Action::Retry(id) => format!("execution={id}"),
            Action::Cancel(id) => format!("control={id}"),
            Action::Pause(t) | Action::Resume(t) | Action::Trigger(t) | Action::Backfill(t) => {
                target_query(t)
            }
        }
    }

    /// The page to go back to.
    fn back(&self, cx: &Cx) -> String {
        match self {
            Action::Retry(id) => cx.link(&format!("/executions/{id}")),
            Action::Cancel(_) => cx.link("/"),
            Action::Pause(t) | Action::Resume(t) | Action::Trigger(t) | Action::Backfill(t) => {
                cx.link(&format!("/jobs/{}", encode(&t.job)))
            }
        }
    }

    /// The page's title: the action and what it applies to.
    fn title(&self) -> String {
        match self {
            Action::Retry(id) => format!("Retry execution {id}"),
            Action::Cancel(id) => format!("Cancel control {id}"),
            Action::Pause(t) => format!("Pause {}", target_words(t)),
            Action::Resume(t) => format!("Resume {}", target_words(t)),
            Action::Trigger(t) => format!("Trigger {}", target_words(t)),
            Action::Backfill(t) => format!("Backfill {}", target_words(t)),
        }
    }

    /// What exactly happens when the form is sent.
    fn explain(&self) -> &'static str {
        match self {
            Action::Retry(_) => "The FAILED execution becomes due at once: the next tick of a replica \
                that runs its job runs it once more, whatever the job's catch-up rules, granting one \
                more attempt when none is left (also for one the sweep closed as stale_timeout). \
                A RUNNING or SUCCESS execution is not changed.",
            Action::Pause(_) => "No replica starts a new run of the target (no fresh claim, no retry, \
                no takeover) until it is resumed, or until the time given. Runs already started \
                finish. Plans that come due meanwhile follow the job's catch-up rules afterwards, \
                or are dropped with \"skip missed\". A job no live replica runs is paused with a \
                warning, and the pause applies once one does.",
            Action::Resume(_) => "The pause of exactly this target ends: replicas start its runs again \
                on their next tick. Plans that came due while paused follow the job's catch-up \
                rules, or are dropped with \"skip missed\".",
            Action::Trigger(_) => "The target runs once now, outside its schedule, on the next tick of \
                a live replica that runs the job (every scope, or the one).",
            Action::Backfill(_) => "Every planned instant of the target in [from, to) runs, oldest \
                first, paced by the job's per-tick cap. Instants that already succeeded do not run \
                again; asking twice never runs an instant twice. Both ends must be in the past.",
            Action::Cancel(_) => "The control ends: a pause ends (as a resume without skipping); a \
                trigger or backfill stops claiming new runs (runs already started finish).",
        }
    }

    /// The inputs the form shows, filled with `form`'s values.
    fn fields(&self, form: &ActionForm, now: OffsetDateTime) -> Markup {
        let note = html! {
            label for="note" { "Note (why, who)" }
            input #note type="text" name="note" value=(form.note) maxlength="1024";
        };
        let skip_missed = html! {
            label .check {
                input #skip_missed type="checkbox" name="skip_missed" value="on" checked[form.skip_missed.is_some()];
                " skip missed: drop the plans that come due while paused"
            }
        };
        let stamp = |t: OffsetDateTime| Rfc3339(t).to_string();
        match self {
            Action::Retry(_) => html! {},
            Action::Pause(_) => html! {
                (note)
                label for="until" { "Until (RFC 3339, optional; store time is " (stamp(now)) ")" }
                input #until type="text" name="until" value=(form.until) placeholder=(stamp(now + time::Duration::hours(1)));
                (skip_missed)
            },
            Action::Resume(_) => skip_missed,
            Action::Trigger(_) => note,
            Action::Backfill(_) => {
                let from = if form.from.is_empty() {
                    stamp(now - time::Duration::hours(1))
                } else {
                    form.from.clone()
                };
                let to = if form.to.is_empty() {
                    stamp(now)
                } else {
                    form.to.clone()
                };
                html! {
                    label for="from" { "From (RFC 3339, inclusive)" }
                    input #from type="text" name="from" value=(from) required;
                    label for="to" { "To (RFC 3339, exclusive, not after store time " (stamp(now)) ")" }
                    input #to type="text" name="to" value=(to) required;
                    (note)
                    label .check {
                        input #confirm_large type="checkbox" name="confirm_large" value="on" checked[form.confirm_large.is_some()];
                        " allow more than 100,000 instants per scope"
                    }
                }
            }
            Action::Cancel(_) => html! {
                label for="reason" { "Reason (optional)" }
                input #reason type="text" name="reason" value=(form.reason) maxlength="1024";
            },
        }
    }

    /// Carries the action out; returns the outcome to show.
    async fn run(&self, cx: &Cx, form: &ActionForm) -> Result<Markup, Refusal> {
        let operator = cx.app.operator();
        let steered = |what: &str, control: &scheduler_core::Control, warnings: &[String]| {
            html! {
                p #outcome { (what) " (control " code { (control.id) } ")." }
                @for warning in warnings { p .warning { "Warning: " (warning) } }
            }
        };
        Ok(match self {
            Action::Retry(id) => {
                let row = cx
                    .app
                    .store()
                    .retry_execution(*id)
                    .await
                    .map_err(|e| (store_status(&e), e.to_string()))?;
                html! {
                    p #outcome {
                        "Execution " code { (row.id) } " of job " (row.job_name) ", scope " (row.scope)
                        " is due again: status " (row.status.as_str()) ", attempt " (row.attempt)
                        " of " (row.max_attempts) ", next retry at " (instant(row.next_retry_at)) "."
                    }
                }
            }
            Action::Pause(target) => {
                let until = optional_time("until", &form.until)?;
                let done = operator
                    .pause(target, &form.note, until, form.skip_missed.is_some())
                    .await
                    .map_err(refusal)?;
                steered(
                    &format!("Paused {}", target_words(target)),
                    &done.control,
                    &done.warnings,
                )
            }
            Action::Resume(target) => {
                let control = operator
                    .resume(target, form.skip_missed.is_some())
                    .await
                    .map_err(refusal)?;
                steered(&format!("Resumed {}", target_words(target)), &control, &[])
            }
            Action::Trigger(target) => {
                let done = operator
                    .trigger(target, &form.note)
                    .await
                    .map_err(refusal)?;
                let what = format!(
                    "Triggered {}: a live replica runs it on its next tick",
                    target_words(target)
                );
                steered(&what, &done.control, &done.warnings)
            }
            Action::Backfill(target) => {
                let range = Backfill {
                    from: required_time("from", &form.from)?,
                    to: required_time("to", &form.to)?,
                    confirm_large: form.confirm_large.is_some(),
                };
                let done = operator
                    .backfill(target, &range, &form.note)
                    .await
                    .map_err(refusal)?;
                let what = format!(
                    "Backfill of {} stored: {} planned instant(s) per scope",
                    target_words(target),
                    done.instants.unwrap_or_default()
                );
                steered(&what, &done.control, &done.warnings)
            }
            Action::Cancel(id) => {
                let reason = Some(form.reason.clone()).filter(|r| !r.is_empty());
                let control = operator.cancel(*id, reason).await.map_err(refusal)?;
                let what = format!(
                    "Cancelled the {} of {}",
                    control.action.kind(),
                    control.target()
                );
                steered(&what, &control, &[])
            }
        })
    }

    /// What the confirmation page says about the thing acted on beyond
    /// its name: the execution's state for a retry, the control's kind
    /// and target for a cancel.
    async fn subject(&self, cx: &Cx) -> Result<Markup, Failure> {
        Ok(match self {
            Action::Retry(id) => {
                let row = cx
                    .app
                    .store()
                    .get_execution(*id)
                    .await
                    .map_err(|e| cx.store_failed(e))?
                    .ok_or_else(|| {
                        cx.fail(StatusCode::NOT_FOUND, format!("no execution with id {id}"))
                    })?;
                html! {
                    p #subject {
                        "Job " (row.job_name) ", scope " (row.scope) ", plan time "
                        (instant(Some(row.plan_time))) ": " (row.status.as_str())
                        " after attempt " (row.attempt) " of " (row.max_attempts)
                        @if let Some(code) = &row.error_code { " (" (code) ")" }
                    }
                }
            }
            Action::Cancel(id) => {
                let active = cx
                    .app
                    .operator()
                    .list(&ControlRead::default())
                    .await
                    .map_err(|e| cx.operator_failed(e))?;
                match active.iter().find(|c| c.id == *id) {
                    Some(c) => html! {
                        p #subject {
                            "A " (c.action.kind()) " of " (c.target()) ", since " (instant(Some(c.created_at)))
                            @if let ControlAction::Backfill { from, to } = c.action {
                                ", covering " (instant(Some(from))) " to " (instant(Some(to)))
                            }
                            @if !c.note.is_empty() { ", note: " (c.note) }
                        }
                    },
                    None => {
                        html! { p #subject { "No active control has this id (it may have ended already)." } }
                    }
                }
            }
            _ => html! {},
        })
    }
}

/// `GET /actions/{action}`: what will happen, and the form that does it.
pub(crate) async fn confirm(
    cx: Cx,
    Path(name): Path<String>,
    Query(query): Query<ActionQuery>,
) -> Result<Response, Failure> {
    let action = Action::parse(&cx, &name, &query)?;
    form_page(&cx, &action, &ActionForm::default(), None).await
}

/// `POST /actions/{action}`: checks the CSRF token, acts, and shows the
/// outcome, or the form again with the reason it was refused.
pub(crate) async fn submit(
    cx: Cx,
    Path(name): Path<String>,
    Query(query): Query<ActionQuery>,
    Form(form): Form<ActionForm>,
) -> Result<Response, Failure> {
    let action = Action::parse(&cx, &name, &query)?;
    if !cx.viewer.csrf_ok(&form.csrf) {
        return Err(cx.fail(
            StatusCode::FORBIDDEN,
            "refused: the form's CSRF token is wrong (an old page, or another site); reload the page and try again",
        ));
    }
    match action.run(&cx, &form).await {
        Ok(outcome) => Ok(page(
            &cx,
            StatusCode::OK,
            &action.title(),
            false,
            html! {
                h1 { (action.title()) }
                div #flash .flash .ok data-action=(action.name()) { (outcome) }
                p { a #back href=(action.back(&cx)) { "Back" } }
            },
        )),
        Err(refused) => form_page(&cx, &action, &form, Some(refused)).await,
    }
}

/// The confirmation page: the action, its subject, what will happen, the
/// form (filled with `form`), and the reason it was refused, if it was.
async fn form_page(
    cx: &Cx,
    action: &Action,
    form: &ActionForm,
    refused: Option<Refusal>,
) -> Result<Response, Failure> {
    let subject = action.subject(cx).await?;
    let now = cx.app.store().now().await.map_err(|e| cx.store_failed(e))?;
    let (status, error) = match refused {
        Some((status, message)) => (status, Some(message)),
        None => (StatusCode::OK, None),
    };
    let post = cx.link(&format!("/actions/{}?{}", action.name(), action.query()));
    Ok(page(
        cx,
        status,
        &action.title(),
        false,
        html! {
            h1 { (action.title()) }
            @if let Some(error) = error {
                p #flash .flash .error { (error) }
            }
            (subject)
            p #explain { (action.explain()) }
            form #confirm .action-form method="post" action=(post) data-action=(action.name()) {
                input type="hidden" name="csrf" value=(cx.viewer.csrf());
                (action.fields(form, now))
                button #confirm-button type="submit" data-action=(action.name()) { (action.title()) }
                " "
                a #cancel href=(action.back(cx)) { "Back" }
            }
        },
    ))
}

/// The query string naming `target` (`job=…`, and its scope when it has
/// one), for action links.
pub(crate) fn target_query(target: &Target) -> String {
    let mut query = format!("job={}", encode(&target.job));
    if let Some(scope) = &target.scope {
        query.push_str(&format!(
            "&scope_kind={}&scope_id={}",
            encode(&scope.kind),
            encode(&scope.id)
        ));
    }
    query
}

/// `job "x", every scope` or `job "x", scope k/i`.
fn target_words(target: &Target) -> String {
    match &target.scope {
        Some(scope) => format!("job {:?}, scope {scope}", target.job),
        None => format!("job {:?}, every scope", target.job),
    }
}

/// An operator's refusal as a status and message.
fn refusal(error: OperatorError) -> Refusal {
    (operator_status(&error), error.to_string())
}

/// Form field `field` as an instant; empty is none.
fn optional_time(field: &str, text: &str) -> Result<Option<OffsetDateTime>, Refusal> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(Some)
        .map_err(|e| {
            (
                StatusCode::BAD_REQUEST,
                format!(
                    "{field} {text:?} is not an RFC 3339 instant such as 2026-12-07T10:00:00Z: {e}"
                ),
            )
        })
}

/// Form field `field` as an instant, which must be given.
fn required_time(field: &str, text: &str) -> Result<OffsetDateTime, Refusal> {
    optional_time(field, text)?
        .ok_or_else(|| (StatusCode::BAD_REQUEST, format!("{field} is required")))
}
