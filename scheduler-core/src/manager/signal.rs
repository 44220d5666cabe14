//! [`shutdown_signal`]: what a service waits on before it stops.

/// Resolves when the process is asked to stop: SIGINT (Ctrl-C) or SIGTERM
/// on Unix, Ctrl-C elsewhere. Pass it to [`Manager::run`](super::Manager::run):
///
/// ```no_run
/// # async fn example(manager: scheduler_core::Manager) {
/// manager.run(scheduler_core::shutdown_signal()).await;
/// # }
/// ```
///
/// Containers and Kubernetes stop a process with SIGTERM, and a process
/// killed by an unhandled SIGTERM leaves its executions RUNNING until their
/// leases go stale; waiting on this instead lets the manager stop claiming,
/// give running handlers their grace period, and record how each ended.
///
/// If a signal handler cannot be installed (a sandbox without signals), the
/// future logs the reason and waits for the other signal alone; if neither
/// can be installed it never resolves, so the service keeps running rather
/// than stopping at once.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received: shutting down"),
        () = terminate => tracing::info!("SIGTERM received: shutting down"),
    }
}
