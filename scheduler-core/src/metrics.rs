//! Metrics through the [`metrics`] facade: the application installs the
//! exporter (Prometheus, StatsD, ...); without one, recording costs next to
//! nothing.
//!
//! | name | kind | labels | meaning |
//! |---|---|---|---|
//! | `scheduler_claims_total` | counter | `job`, `outcome` (`won`, `retried`, `stolen`, `conflicted`) | claim outcomes seen by this replica |
//! | `scheduler_executions_total` | counter | `job`, `status` (`SUCCESS`, `FAILED`, `LEASE_LOST`), `error_code` (empty on success) | executions this replica ended |
//! | `scheduler_running` | gauge | `job` | handlers running in this replica now |
//! | `scheduler_stale_running` | gauge | `job` | RUNNING rows whose lease was found stale by this replica's last sweep of the job |
//! | `scheduler_run_duration_seconds` | histogram | `job` | handler run time |
//! | `scheduler_dispatch_lateness_seconds` | histogram | `job` | from the moment a fresh plan became eligible (plan time + schedule delay + spread offset) to its handler starting |

use std::time::Duration;

use crate::store::ErrorCode;

/// Counter: claim outcomes.
pub const CLAIMS_TOTAL: &str = "scheduler_claims_total";
/// Counter: ended executions.
pub const EXECUTIONS_TOTAL: &str = "scheduler_executions_total";
/// Gauge: handlers running now.
pub const RUNNING: &str = "scheduler_running";
/// Gauge: stale RUNNING rows found by the last sweep.
pub const STALE_RUNNING: &str = "scheduler_stale_running";
/// Histogram: handler run time, seconds.
pub const RUN_DURATION_SECONDS: &str = "scheduler_run_duration_seconds";
/// Histogram: eligible-to-start delay of fresh plans, seconds.
pub const DISPATCH_LATENESS_SECONDS: &str = "scheduler_dispatch_lateness_seconds";

pub(crate) fn claims(job: &str, outcome: &'static str, n: u64) {
    if n > 0 {
        metrics::counter!(CLAIMS_TOTAL, "job" => job.to_owned(), "outcome" => outcome).increment(n);
    }
}

pub(crate) fn execution_ended(job: &str, status: &'static str, code: Option<ErrorCode>) {
    let code = code.map(ErrorCode::as_str).unwrap_or("");
    metrics::counter!(EXECUTIONS_TOTAL, "job" => job.to_owned(), "status" => status, "error_code" => code)
        .increment(1);
}

pub(crate) fn running(job: &str, delta: f64) {
    metrics::gauge!(RUNNING, "job" => job.to_owned()).increment(delta);
}

pub(crate) fn stale_running(job: &str, found: u64) {
    metrics::gauge!(STALE_RUNNING, "job" => job.to_owned()).set(found as f64);
}

pub(crate) fn run_duration(job: &str, d: Duration) {
    metrics::histogram!(RUN_DURATION_SECONDS, "job" => job.to_owned()).record(d.as_secs_f64());
}

pub(crate) fn dispatch_lateness(job: &str, late: Duration) {
    metrics::histogram!(DISPATCH_LATENESS_SECONDS, "job" => job.to_owned())
        .record(late.as_secs_f64());
}
