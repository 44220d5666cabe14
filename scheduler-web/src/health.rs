//! `/healthz` and `/metrics`: what load balancers and Prometheus scrape.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::app::App;

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
/// dashboard was given none.
pub(crate) async fn metrics(State(app): State<App>) -> Response {
    match &app.options().prometheus {
        Some(handle) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            handle.render(),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "no metrics: the dashboard was started without a Prometheus recorder\n",
        )
            .into_response(),
    }
}
