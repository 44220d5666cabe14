//! The pages, one module each.
//!
//! - [`overview`]: every job, its counts and flags; controls in force.
//! - [`job`]: one job's settings, controls and scopes with their strips.
//! - [`execution`]: one execution, every field, its attempts.
//! - [`login`]: signing a browser in and out.
//! - [`counts`]: the counts by state and the problems they flag, shared
//!   by the overview and the job page.

mod counts;
mod execution;
mod job;
mod login;
mod overview;

pub(crate) use execution::execution;
pub(crate) use job::job;
pub(crate) use login::{login, login_form, logout};
pub(crate) use overview::overview;

use axum::http::StatusCode;
use axum::response::IntoResponse;

use crate::app::Cx;

/// Any other path: a 404 page.
pub(crate) async fn not_found(cx: Cx) -> impl IntoResponse {
    cx.fail(StatusCode::NOT_FOUND, "there is no such page")
}
