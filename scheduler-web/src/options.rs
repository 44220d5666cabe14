//! [`DashboardOptions`]: what the embedding service decides about the
//! dashboard: read-only or not, its token, how often pages refresh, and
//! where `/metrics` reads from.

use std::fmt;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;

/// How often pages re-fetch themselves when nothing else is said.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(5);

/// The dashboard's settings, builder-style:
/// `DashboardOptions::default().token(t).refresh(Duration::from_secs(10))`.
///
/// With no token every page is open and no action is offered; with a
/// token every route but `/healthz` needs it (a `Authorization: Bearer`
/// header, or the session cookie `/login` sets), and actions are offered
/// unless [`read_only`](Self::read_only).
#[derive(Clone)]
pub struct DashboardOptions {
    /// No action is shown or routed, whoever is signed in.
    pub read_only: bool,
    /// The one secret that signs an operator in; `None`: no sign-in, and
    /// so no actions.
    pub token: Option<String>,
    /// How often pages re-fetch their content.
    pub refresh: Duration,
    /// Where `/metrics` renders from; `None`: `/metrics` answers 404.
    pub prometheus: Option<PrometheusHandle>,
    /// Each scrape of `/metrics` first sets the table gauges
    /// ([`TABLE_EXECUTIONS`](crate::TABLE_EXECUTIONS) and its kin) from an
    /// overview read. Off by default: every replica of a fleet that mounts
    /// the dashboard would read the same table at every scrape; turn it on
    /// in one place (`scheduler serve` does).
    pub table_metrics: bool,
}

impl Default for DashboardOptions {
    fn default() -> Self {
        DashboardOptions {
            read_only: false,
            token: None,
            refresh: DEFAULT_REFRESH,
            prometheus: None,
            table_metrics: false,
        }
    }
}

impl DashboardOptions {
    /// Shows no action, whoever is signed in.
    #[must_use]
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Requires `token` on every route but `/healthz`, and enables the
    /// actions (unless read-only). An empty token is no token.
    #[must_use]
    pub fn token(mut self, token: impl Into<String>) -> Self {
        let token = token.into();
        self.token = (!token.is_empty()).then_some(token);
        self
    }

    /// Pages re-fetch their content this often (at least once a second).
    #[must_use]
    pub fn refresh(mut self, refresh: Duration) -> Self {
        self.refresh = refresh.max(Duration::from_secs(1));
        self
    }

    /// `/metrics` renders `handle`'s recorder in Prometheus text format.
    #[must_use]
    pub fn prometheus(mut self, handle: PrometheusHandle) -> Self {
        self.prometheus = Some(handle);
        self
    }

    /// Sets the table gauges from the overview at every scrape of
    /// `/metrics` (see [`table_metrics`](Self::table_metrics)).
    #[must_use]
    pub fn table_metrics(mut self, on: bool) -> Self {
        self.table_metrics = on;
        self
    }

    /// Whether actions are shown and routed: a token is set and the
    /// dashboard is not read-only.
    pub(crate) fn actions(&self) -> bool {
        self.token.is_some() && !self.read_only
    }
}

/// Never prints the token.
impl fmt::Debug for DashboardOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DashboardOptions")
            .field("read_only", &self.read_only)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("refresh", &self.refresh)
            .field("prometheus", &self.prometheus.is_some())
            .field("table_metrics", &self.table_metrics)
            .finish()
    }
}
