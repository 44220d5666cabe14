//! Metrics through the [`metrics`](https://docs.rs/metrics) facade: the application installs the
//! exporter (Prometheus, StatsD, ...); without one, recording costs next to
//! nothing.
//!
//! | name | kind | labels | meaning |
//! |---|---|---|---|
//! | `scheduler_claims_total` | counter | `job`, `outcome` (`won`, `retried`, `stolen`, `conflicted`, `paused`, `busy`, `skipped`, `superseded`: [`ClaimKind`]) | claim outcomes seen by this replica, scheduled, trigger and backfill keys alike: `paused` keys a pause held back, `busy` keys that wait for their scope to be free, `skipped` plans the overlap policy recorded without running them, `superseded` keys of a stored schedule changed or deleted since the tick read it |
//! | `scheduler_executions_total` | counter | `job`, `status` (`SUCCESS`, `FAILED`, `LEASE_LOST`), `error_code` (empty on success) | executions this replica ended |
//! | `scheduler_running` | gauge | `job` | handlers running in this replica now |
//! | `scheduler_stale_running` | gauge | `job` | RUNNING rows whose lease was found stale by this replica's last sweep of the job |
//! | `scheduler_run_duration_seconds` | histogram | `job` | handler run time |
//! | `scheduler_dispatch_lateness_seconds` | histogram | `job` | from the moment a fresh plan became eligible (plan time + schedule delay + spread offset) to its handler starting |
//! | `scheduler_scopes_skipped_total` | counter | `job` | scopes a scope provider returned that can never be stored (a NUL character, a kind or id over [`MAX_NAME_BYTES`](crate::model::MAX_NAME_BYTES)): skipped with an error log while the job's other scopes run |
//! | `scheduler_stored_schedules_skipped_total` | counter | `job`, `reason` (`unknown_kind`, `unknown_provider`, `name_taken`, `invalid`) | stored schedules this replica read and does not run, once per version: a kind or scope provider its code did not register (an older build in a rolling deploy: other replicas run it), a name a compiled-in job has, or a definition this version refuses |
//! | `scheduler_heartbeats_late_total` | counter | `job` | rounds of heartbeats that started a whole `heartbeat_interval` or more after they were due: the runtime did not run them (a handler blocking its thread, an overloaded runtime) or the store's calls were slow. Any increase means leases were at risk of lapsing under running handlers |

use std::collections::HashMap;
use std::time::Duration;

use metrics::{counter, gauge, histogram, Counter, Gauge, Histogram};

use crate::model::{ClaimKind, ErrorCode};

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
/// Counter: scopes skipped because they can never be stored.
pub const SCOPES_SKIPPED_TOTAL: &str = "scheduler_scopes_skipped_total";
/// Counter: stored schedules this replica does not run.
pub const STORED_SCHEDULES_SKIPPED_TOTAL: &str = "scheduler_stored_schedules_skipped_total";
/// Counter: heartbeat rounds that started a whole interval late.
pub const HEARTBEATS_LATE_TOTAL: &str = "scheduler_heartbeats_late_total";

/// One job's metric handles, created when it is registered: recording
/// through a handle allocates nothing, where building a labelled key on
/// every execution would.
pub(crate) struct JobMetrics {
    claims: HashMap<ClaimKind, Counter>,
    succeeded: Counter,
    failed: HashMap<ErrorCode, Counter>,
    lease_lost: Counter,
    pub(crate) running: Gauge,
    pub(crate) stale_running: Gauge,
    pub(crate) run_duration: Seconds,
    pub(crate) dispatch_lateness: Seconds,
    pub(crate) heartbeats_late: Counter,
    pub(crate) scopes_skipped: Counter,
}

/// A histogram of durations, in seconds.
pub(crate) struct Seconds(Histogram);

impl Seconds {
    pub(crate) fn record(&self, d: Duration) {
        self.0.record(d.as_secs_f64());
    }
}

impl JobMetrics {
    pub(crate) fn new(job: &str) -> Self {
        let job = job.to_owned();
        JobMetrics {
            claims: ClaimKind::ALL
                .into_iter()
                .map(|kind| {
                    let counter =
                        counter!(CLAIMS_TOTAL, "job" => job.clone(), "outcome" => kind.as_str());
                    (kind, counter)
                })
                .collect(),
            succeeded: counter!(EXECUTIONS_TOTAL, "job" => job.clone(), "status" => "SUCCESS", "error_code" => ""),
            failed: ErrorCode::ALL
                .into_iter()
                .map(|code| {
                    let counter = counter!(EXECUTIONS_TOTAL, "job" => job.clone(), "status" => "FAILED", "error_code" => code.as_str());
                    (code, counter)
                })
                .collect(),
            lease_lost: counter!(EXECUTIONS_TOTAL, "job" => job.clone(), "status" => "LEASE_LOST", "error_code" => ErrorCode::LeaseLost.as_str()),
            running: gauge!(RUNNING, "job" => job.clone()),
            stale_running: gauge!(STALE_RUNNING, "job" => job.clone()),
            run_duration: Seconds(histogram!(RUN_DURATION_SECONDS, "job" => job.clone())),
            dispatch_lateness: Seconds(histogram!(DISPATCH_LATENESS_SECONDS, "job" => job.clone())),
            heartbeats_late: counter!(HEARTBEATS_LATE_TOTAL, "job" => job.clone()),
            scopes_skipped: counter!(SCOPES_SKIPPED_TOTAL, "job" => job),
        }
    }

    /// Counts `n` claims that ended as `kind`.
    pub(crate) fn claims(&self, kind: ClaimKind, n: u64) {
        if n > 0 {
            self.claims[&kind].increment(n);
        }
    }

    pub(crate) fn succeeded(&self) {
        self.succeeded.increment(1);
    }

    pub(crate) fn failed(&self, code: ErrorCode) {
        self.failed[&code].increment(1);
    }

    pub(crate) fn lease_lost(&self) {
        self.lease_lost.increment(1);
    }
}
