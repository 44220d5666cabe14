//! `scheduler serve`: the operator's dashboard (crate `scheduler-web`) on
//! one address, until SIGINT or SIGTERM.
//!
//! The token comes from `--token-file PATH` or the environment variable
//! `SCHEDULER_WEB_TOKEN`, never from the command line (where `ps` shows
//! it), and is never printed. Without a token the dashboard is read-only
//! and may listen on loopback only.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use metrics_exporter_prometheus::PrometheusBuilder;
use scheduler_web::DashboardOptions;

use super::Cx;
use crate::output::{emit, Failure};
use crate::parse_duration;

/// The environment variable that may hold the token.
const TOKEN_ENV: &str = "SCHEDULER_WEB_TOKEN";

/// `scheduler serve`
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on. Anything but loopback needs a token.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Show no action (retry, pause, resume, trigger, backfill, cancel),
    /// whoever signs in.
    #[arg(long)]
    read_only: bool,
    /// A file holding the token that signs operators in (its first line;
    /// or set SCHEDULER_WEB_TOKEN). Without one the dashboard is
    /// read-only and loopback-only.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// How often pages refresh themselves.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    refresh: std::time::Duration,
}

impl ServeArgs {
    /// The token from `--token-file` or the environment, if either gives
    /// one.
    ///
    /// # Errors
    /// A usage failure for an unreadable or empty file, or both sources
    /// set.
    fn token(&self) -> Result<Option<String>, Failure> {
        let from_env = std::env::var(TOKEN_ENV)
            .ok()
            .filter(|t| !t.trim().is_empty());
        let Some(path) = &self.token_file else {
            return Ok(from_env.map(|t| t.trim().to_owned()));
        };
        if from_env.is_some() {
            return Err(Failure::Usage(format!(
                "both --token-file and {TOKEN_ENV} are set: use one"
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| {
            Failure::Usage(format!("cannot read --token-file {}: {e}", path.display()))
        })?;
        let token = text.lines().next().unwrap_or_default().trim().to_owned();
        if token.is_empty() {
            return Err(Failure::Usage(format!(
                "--token-file {} is empty: its first line is the token",
                path.display()
            )));
        }
        Ok(Some(token))
    }
}

/// `scheduler serve`
pub async fn serve(cx: &Cx, args: ServeArgs) -> Result<(), Failure> {
    let token = args.token()?;
    if token.is_none() && !args.listen.ip().is_loopback() {
        return Err(Failure::Usage(format!(
            "refusing to listen on {} without a token: anyone who reaches it would see every job; \
             pass --token-file PATH or set {TOKEN_ENV}, or listen on loopback (127.0.0.1)",
            args.listen
        )));
    }
    let store = cx.store().await?;
    let prometheus = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| Failure::Runtime(format!("cannot install the metrics recorder: {e}")))?;
    let mut options = DashboardOptions::default()
        .read_only(args.read_only)
        .refresh(args.refresh)
        .prometheus(prometheus)
        .table_metrics(true);
    if let Some(token) = token {
        options = options.token(token);
    }
    let mode = match (&options.token, options.read_only) {
        (None, _) => "read-only (no token)",
        (Some(_), true) => "read-only, sign-in with the token",
        (Some(_), false) => "actions enabled, sign-in with the token",
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| Failure::Runtime(format!("cannot listen on {}: {e}", args.listen)))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Failure::Runtime(format!("cannot read the listening address: {e}")))?;
    emit(&format!(
        "dashboard of {} on http://{bound}/ ({mode}); stop with Ctrl-C or SIGTERM\n",
        cx.url.redacted()
    ))?;
    axum::serve(listener, scheduler_web::router(store, options))
        .with_graceful_shutdown(scheduler_core::shutdown_signal())
        .await
        .map_err(|e| Failure::Runtime(format!("the dashboard stopped: {e}")))
}
