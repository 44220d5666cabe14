//! The dashboard's one stylesheet and one script, compiled into the crate
//! (no build step, nothing to install beside the binary).

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// The stylesheet: layout, status colours, problem flags.
const CSS: &str = include_str!("../assets/dashboard.css");

/// The script: re-fetches `<main>` every refresh interval, except while
/// the operator types in a form.
const JS: &str = include_str!("../assets/dashboard.js");

/// `/assets/{file}`: `dashboard.css` or `dashboard.js`; 404 otherwise.
pub(crate) async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "dashboard.css" => (CSS, "text/css; charset=utf-8"),
        "dashboard.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "no such asset").into_response(),
    };
    // They change only with the binary: a short cache spares a request per page.
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        body,
    )
        .into_response()
}
