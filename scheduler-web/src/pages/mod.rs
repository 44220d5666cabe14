//! The pages, one module each.
//!
//! - [`execution`]: one execution, every field, its attempts.
//! - [`login`]: signing a browser in and out.

mod execution;
mod login;

pub(crate) use execution::execution;
pub(crate) use login::{login, login_form, logout};

use axum::http::StatusCode;
use axum::response::IntoResponse;

use crate::app::Cx;

/// Any other path: a 404 page.
pub(crate) async fn not_found(cx: Cx) -> impl IntoResponse {
    cx.fail(StatusCode::NOT_FOUND, "there is no such page")
}
