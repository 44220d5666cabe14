//! The operator's dashboard: every job, scope and execution of a
//! scheduler store, live, with authenticated actions and Prometheus
//! metrics, as an [`axum::Router`] to mount in your own service (or to run
//! standalone with `scheduler serve`).
//!
//! ```
//! use std::sync::Arc;
//! use axum::body::Body;
//! use axum::http::{Request, StatusCode};
//! use scheduler_web::{router, DashboardOptions};
//! use tower::ServiceExt as _;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // Any store: memory, SQLite or PostgreSQL.
//! let store = Arc::new(scheduler_memory::MemoryLeaseStore::new());
//! let dashboard = router(store, DashboardOptions::default().token("s3cret"));
//! // In a service: Router::new().nest("/scheduler", dashboard), then axum::serve.
//! let response = dashboard
//!     .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(response.status(), StatusCode::OK);
//! # }
//! ```
//!
//! # Pages
//!
//! - `/`: the overview: every job (compiled-in, stored, with rows only,
//!   paused ahead of its deploy), its source, schedule in words, next plan
//!   time, time since its last success, counts by state over its scopes,
//!   missed plans in the last hour, paused state; problem jobs flagged.
//! - `/jobs/{name}`: the job's settings, its controls in force, and its
//!   scopes, filtered, sorted and paged, each with a strip of its recent
//!   executions.
//! - `/executions/{id}`: every field of one execution, its error, its
//!   result JSON, its attempts.
//! - `/healthz` (200 `ok` when the store answers, 503 otherwise; public)
//!   and `/metrics` (Prometheus text from
//!   [`DashboardOptions::prometheus`], 404 without one: the scheduler's
//!   metrics of the process, and with [`DashboardOptions::table_metrics`]
//!   the table gauges below, set from an overview read at each scrape).
//!
//! # Table gauges
//!
//! | name | labels | meaning |
//! |---|---|---|
//! | `scheduler_table_executions` | `job`, `state` (`running`, `stale`, `retry_pending`, `exhausted`, `stale_timeout`, `skipped`) | the job's rows in that state over its scopes, as the overview counts them |
//! | `scheduler_table_missed_plans` | `job` | plans of the last hour with no execution that no pause held back (jobs whose schedule is known) |
//! | `scheduler_table_last_success_timestamp_seconds` | `job` | when the job's newest success finished |
//! | `scheduler_table_paused` | `job` | 1 while the job or some of its scopes is paused |
//!
//! A job that leaves the table keeps its last values until the process
//! restarts (the recorder keeps every series it was given).
//!
//! Pages refresh on their own every [`DashboardOptions::refresh`]: the
//! page script re-fetches the URL for `<main>`'s content only, and skips
//! a round while the operator types in a form. Each refresh costs what
//! the page shows, never the history: the tally-backed scope summaries
//! and one bounded read of executions per scope on the page
//! (`docs/contract.md` §10, "Operator reads").
//!
//! # Security
//!
//! - **Token**: with [`DashboardOptions::token`], every route but
//!   `/healthz` needs it: scripts send `Authorization: Bearer TOKEN`;
//!   browsers sign in at `/login` and get a random session id in a cookie
//!   (HttpOnly, SameSite=Strict, Path=/; sessions live 12 hours, in
//!   memory). Tokens are compared in constant time. Without a token the
//!   pages are open and offer no action: run that on loopback only
//!   (`scheduler serve` refuses anything else).
//! - **Actions** (retry, pause, resume, trigger, backfill, cancel, all
//!   through [`scheduler_core::Operator`]) are shown and routed only with a
//!   token and without [`DashboardOptions::read_only`]; each asks to
//!   confirm (a GET saying what will happen) before its POST.
//! - **CSRF**: a browser's POST carries its session's random token in a
//!   hidden field (checked in constant time); any POST whose `Origin` is
//!   not the `Host` is refused (403).
//! - **Headers**: `Content-Security-Policy: default-src 'self'` (no inline
//!   script or style anywhere), `X-Frame-Options: DENY`,
//!   `Referrer-Policy: same-origin` (no referrer to other sites; with
//!   `no-referrer` browsers would post `Origin: null`),
//!   `X-Content-Type-Options: nosniff`.
//! - **Escaping**: job names, scopes, notes, error messages and results
//!   are operator- or job-controlled text; maud escapes every one of them.
//!   The session cookie has no `Secure` flag, so that plain HTTP on
//!   loopback works: put TLS in front of anything else.
//!
//! # For browser tests
//!
//! Element ids, classes and `data-` attributes are stable: the overview's
//! table is `#jobs`, one row per job `tr[data-job=NAME]` (class `problem`
//! when flagged, flags `span.flag[data-flag=…]`), its counts
//! `td[data-count=running|stale|retry_pending|exhausted|stale_timeout|skipped|missed]`;
//! the job page's scopes `#scopes` with rows `tr[data-scope=KIND/ID]` and
//! strips `a.cell[data-status]`; the execution page `#execution`,
//! `#error-message`, `#result`, `#attempts`; actions are
//! `a.action[data-action=NAME]`, the confirmation form `form#confirm`
//! with `button#confirm-button`, and the outcome `#flash`.
//!
//! # Parts
//!
//! - [`DashboardOptions`]: read-only, token, refresh, metrics.
//! - [`router`]: the routes to mount.

#![warn(missing_docs)]

mod actions;
mod app;
mod assets;
mod auth;
mod health;
mod options;
mod pages;
mod render;

pub use app::router;
pub use health::{TABLE_EXECUTIONS, TABLE_LAST_SUCCESS_SECONDS, TABLE_MISSED_PLANS, TABLE_PAUSED};
pub use options::{DashboardOptions, DEFAULT_REFRESH};
