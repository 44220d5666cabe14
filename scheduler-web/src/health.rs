//! `/healthz` and `/metrics`: what load balancers and Prometheus scrape.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use metrics::gauge;

use crate::app::{App, Cx};
use crate::pages::counts::Counts;
use crate::pages::overview::{self, paused_words};
use crate::render::Failure;

/// Gauge, labels `job` and `state` (`running`, `stale`, `retry_pending`,
/// `exhausted`, `stale_timeout`, `skipped`): the table's rows of the job in
/// that state, over its scopes, as the overview counts them.
pub const TABLE_EXECUTIONS: &str = "scheduler_table_executions";
/// Gauge, label `job`: plans of the last hour with no execution that no
/// pause held back (jobs whose schedule is known).
pub const TABLE_MISSED_PLANS: &str = "scheduler_table_missed_plans";
/// Gauge, label `job`: when the job's newest success finished, Unix
/// seconds (jobs with a success).
pub const TABLE_LAST_SUCCESS_SECONDS: &str = "scheduler_table_last_success_timestamp_seconds";
/// Gauge, label `job`: 1 while the job (or some of its scopes) is paused.
pub const TABLE_PAUSED: &str = "scheduler_table_paused";

/// `/healthz`: 200 `ok` when the store answers (its clock is read), 503
/// otherwise. Public, so the body says nothing about the store beyond
/// that.
pub(crate) async fn healthz(State(app): State<App>) -> Response {
    match app.store().now().await {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "store unreachable\n").into_response(),
    }
}

/// `/metrics`: the Prometheus text format of the configured recorder (the
/// scheduler's metrics and any of the service's own); 404 when the
/// dashboard was given none. With [`DashboardOptions::table_metrics`]
/// (`crate::DashboardOptions`), the table gauges are set from the
/// overview first, so a scrape reads what the overview page shows.
pub(crate) async fn metrics(cx: Cx) -> Response {
    let Some(handle) = cx.app.options().prometheus.clone() else {
        return (
            StatusCode::NOT_FOUND,
            "no metrics: the dashboard was started without a Prometheus recorder\n",
        )
            .into_response();
    };
    if cx.app.options().table_metrics {
        if let Err(failure) = set_table_gauges(&cx).await {
            return failure.into_response();
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}

/// Sets [`TABLE_EXECUTIONS`], [`TABLE_MISSED_PLANS`],
/// [`TABLE_LAST_SUCCESS_SECONDS`] and [`TABLE_PAUSED`] of every job from
/// one overview read (what the overview page costs: O(scopes)).
async fn set_table_gauges(cx: &Cx) -> Result<(), Failure> {
    let (overview, counts) = overview::read(cx).await?;
    let none = Counts::default();
    for job in &overview.jobs {
        let counts = counts.get(&job.name).unwrap_or(&none);
        let name = job.name.clone();
        for (state, n) in counts.by_state() {
            gauge!(TABLE_EXECUTIONS, "job" => name.clone(), "state" => state).set(n as f64);
        }
        if let Some(missed) = counts.missed() {
            gauge!(TABLE_MISSED_PLANS, "job" => name.clone()).set(missed as f64);
        }
        if let Some(t) = counts.last_success {
            gauge!(TABLE_LAST_SUCCESS_SECONDS, "job" => name.clone())
                .set(t.unix_timestamp_nanos() as f64 / 1e9);
        }
        let paused = paused_words(&overview, job).is_some();
        gauge!(TABLE_PAUSED, "job" => name).set(f64::from(u8::from(paused)));
    }
    Ok(())
}
