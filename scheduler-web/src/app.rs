//! [`router`]: the routes, the state they share ([`App`]), the security
//! headers on every response, and [`Cx`], what every page handler knows
//! about its request.

use std::sync::Arc;

use axum::extract::{FromRequestParts, NestedPath};
use axum::http::request::Parts;
use axum::http::{header, Extensions, HeaderValue};
use axum::middleware;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use scheduler_core::{ExecutionAudit, Operator};

use crate::auth::{self, Sessions, Viewer};
use crate::options::DashboardOptions;
use crate::{actions, assets, health, pages};

/// The request header the page script sends to get the `<main>`
/// element's content only; the answer carries it back.
pub(crate) const FRAGMENT_HEADER: &str = "x-dashboard-fragment";

/// What every handler shares; cheap to clone.
#[derive(Clone)]
pub(crate) struct App(Arc<Inner>);

struct Inner {
    store: Arc<dyn ExecutionAudit>,
    operator: Operator,
    options: DashboardOptions,
    sessions: Sessions,
}

impl App {
    /// The store pages read.
    pub(crate) fn store(&self) -> &dyn ExecutionAudit {
        self.0.store.as_ref()
    }

    /// What actions and the overview go through.
    pub(crate) fn operator(&self) -> &Operator {
        &self.0.operator
    }

    /// The embedding service's settings.
    pub(crate) fn options(&self) -> &DashboardOptions {
        &self.0.options
    }

    /// The signed-in browsers.
    pub(crate) fn sessions(&self) -> &Sessions {
        &self.0.sessions
    }
}

/// The dashboard over `store`, to mount in a service (at the root, or
/// under a prefix with [`Router::nest`]: links follow the prefix).
///
/// Routes: `/` (overview), `/jobs/{name}`, `/executions/{id}`,
/// `/healthz`, `/metrics`, `/assets/…`; with a token `/login` and
/// `/logout`; with a token and not read-only `/actions/{action}` (a GET
/// asks to confirm, a POST acts).
pub fn router(store: Arc<dyn ExecutionAudit>, options: DashboardOptions) -> Router {
    let app = App(Arc::new(Inner {
        operator: Operator::new(store.clone()),
        store,
        sessions: Sessions::default(),
        options,
    }));
    let mut routes = Router::new()
        .route("/", get(pages::overview))
        .route("/jobs/{name}", get(pages::job))
        .route("/executions/{id}", get(pages::execution))
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .route("/assets/{file}", get(assets::asset));
    if app.options().token.is_some() {
        routes = routes
            .route("/login", get(pages::login_form).post(pages::login))
            .route("/logout", axum::routing::post(pages::logout));
    }
    if app.options().actions() {
        routes = routes.route(
            "/actions/{action}",
            get(actions::confirm).post(actions::submit),
        );
    }
    routes
        .fallback(pages::not_found)
        .layer(middleware::from_fn_with_state(app.clone(), auth::guard))
        .layer(middleware::map_response(security_headers))
        .with_state(app)
}

/// Every response: no framing, no referrer to other sites, no sniffing,
/// scripts and styles from this origin only (none inline), never cached
/// (pages show live state). The referrer policy is `same-origin`, not
/// `no-referrer`: under `no-referrer` a browser sends `Origin: null` with
/// every form POST (Fetch standard, "serializing a request origin"), which
/// the same-origin check refuses, so no browser could act.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, "default-src 'self'"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The prefix the dashboard is mounted under (`""` at the root), which
/// every link starts with.
pub(crate) fn base_of(extensions: &Extensions) -> String {
    extensions
        .get::<NestedPath>()
        .map(|p| p.as_str().trim_end_matches('/').to_owned())
        .unwrap_or_default()
}

/// What a page handler knows about its request: where the dashboard is
/// mounted, who asks, and whether only `<main>`'s content is wanted.
#[derive(Clone)]
pub(crate) struct Cx {
    /// The shared state.
    pub(crate) app: App,
    /// The mount prefix ([`base_of`]).
    pub(crate) base: String,
    /// Who asks.
    pub(crate) viewer: Viewer,
    /// The page script asked for `<main>`'s content only.
    pub(crate) fragment: bool,
}

impl Cx {
    /// Whether this request may see and use actions.
    pub(crate) fn actions(&self) -> bool {
        self.app.options().actions() && self.viewer.signed_in()
    }

    /// `path` under the mount prefix; the root under a prefix is the
    /// prefix itself (`/ops`, which a nested router answers, not `/ops/`).
    pub(crate) fn link(&self, path: &str) -> String {
        match path {
            "/" if !self.base.is_empty() => self.base.clone(),
            _ => format!("{}{path}", self.base),
        }
    }
}

impl FromRequestParts<App> for Cx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        Ok(Cx {
            app: app.clone(),
            base: base_of(&parts.extensions),
            viewer: parts
                .extensions
                .get::<Viewer>()
                .cloned()
                .unwrap_or(Viewer::Anonymous),
            fragment: parts.headers.contains_key(FRAGMENT_HEADER),
        })
    }
}
