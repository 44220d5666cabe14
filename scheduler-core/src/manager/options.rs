//! How a manager runs ([`ManagerOptions`]) and what a tick reports
//! ([`TickReport`]).

use std::ops::AddAssign;
use std::time::Duration;

use uuid::Uuid;

use crate::model::ClaimKind;

/// How a manager runs.
#[derive(Debug, Clone)]
pub struct ManagerOptions {
    /// Identifies this replica in audit rows. Default:
    /// [`default_runner_id`], `HOST-PID-RANDOM`.
    pub runner_id: String,
    /// The longest sleep between ticks. The loop also wakes exactly when the
    /// next plan becomes eligible (and when a pause runs out), so this only
    /// bounds how late a change the manager cannot foresee (a new scope,
    /// another replica's failure, an operator's pause, resume, trigger or
    /// backfill) is noticed. It also sets how often the replica refreshes its entry in
    /// the replica registry: every `max(tick_interval, 15 s)`
    /// ([`refresh_interval`](super::refresh_interval)). Default: 30 s.
    pub tick_interval: Duration,
    /// The most executions this replica holds at once (claimed and not yet
    /// finished). A tick claims no more than the free capacity, so other
    /// replicas get the rest: a job's scheduled plans first, then retries
    /// of its triggers' and backfills' runs, then its triggers, then its
    /// backfills. Default: 64.
    pub max_concurrency: usize,
    /// On shutdown, how long running handlers may take to finish before they
    /// are cancelled. Default: 30 s.
    pub shutdown_grace: Duration,
}

impl Default for ManagerOptions {
    fn default() -> Self {
        ManagerOptions {
            runner_id: default_runner_id(),
            tick_interval: Duration::from_secs(30),
            max_concurrency: 64,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// `HOST-PID-RANDOM`: a runner id that names the machine and the process
/// an audit row came from (a bare UUID maps to nothing an operator can
/// look up), with 8 random hex digits so that a restarted process that
/// reuses its pid is still told apart. The host part is cut so the whole
/// stays far below [`MAX_NAME_BYTES`](crate::model::MAX_NAME_BYTES), and a
/// host name that is not UTF-8 is read lossily.
pub fn default_runner_id() -> String {
    let host: String = host_name().chars().take(200).collect();
    let random = &Uuid::new_v4().simple().to_string()[..8];
    format!("{host}-{}-{random}", std::process::id())
}

/// This machine's host name, read lossily when it is not UTF-8, without
/// NUL characters; `host` when there is none. What runner ids start with,
/// and what a replica announces.
pub(crate) fn host_name() -> String {
    let host: String = gethostname::gethostname()
        .to_string_lossy()
        .chars()
        .filter(|c| *c != '\0')
        .collect();
    if host.is_empty() {
        "host".to_owned()
    } else {
        host
    }
}

/// What a tick did, and (for [`Manager::run_once`](super::Manager::run_once))
/// how its executions ended. The claim counts use the one claim vocabulary
/// ([`ClaimKind`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Claims that inserted a fresh row ([`ClaimKind::Won`]).
    pub won: u64,
    /// FAILED plans claimed again.
    pub retried: u64,
    /// Stale leases taken over by a claim. A tick sweeps a job's stale
    /// leases before it claims, so a dead runner's plan usually shows up as
    /// `swept` and then `retried`; `stolen` counts the leases that went
    /// stale between the two.
    pub stolen: u64,
    /// Claims that changed nothing (another replica's lease, already done, ...).
    pub conflicted: u64,
    /// Keys a pause held back ([`ClaimKind::Paused`]).
    pub paused: u64,
    /// Keys that wait for their scope to be free ([`ClaimKind::Busy`]).
    pub busy: u64,
    /// Plans the overlap policy recorded as skipped ([`ClaimKind::Skipped`]).
    pub skipped: u64,
    /// Keys of a stored schedule that changed or was deleted since the
    /// tick read it ([`ClaimKind::Superseded`]).
    pub superseded: u64,
    /// Executions that ended SUCCESS.
    pub succeeded: u64,
    /// Executions that ended FAILED (handler error, panic, timeout, shutdown).
    pub failed: u64,
    /// Executions whose lease was lost while they ran (no terminal write).
    pub lease_lost: u64,
    /// Stale RUNNING rows closed by the sweep.
    pub swept: u64,
    /// Store or scope-provider calls that failed during the tick.
    pub errors: u64,
}

impl AddAssign for TickReport {
    fn add_assign(&mut self, o: TickReport) {
        self.won += o.won;
        self.retried += o.retried;
        self.stolen += o.stolen;
        self.conflicted += o.conflicted;
        self.paused += o.paused;
        self.busy += o.busy;
        self.skipped += o.skipped;
        self.superseded += o.superseded;
        self.succeeded += o.succeeded;
        self.failed += o.failed;
        self.lease_lost += o.lease_lost;
        self.swept += o.swept;
        self.errors += o.errors;
    }
}

impl TickReport {
    /// Counts one claim that ended as `kind`.
    pub fn count_claim(&mut self, kind: ClaimKind) {
        *self.claims_mut(kind) += 1;
    }

    /// How many claims ended as `kind`.
    pub fn claims(&self, kind: ClaimKind) -> u64 {
        let mut copy = *self;
        *copy.claims_mut(kind)
    }

    fn claims_mut(&mut self, kind: ClaimKind) -> &mut u64 {
        match kind {
            ClaimKind::Won => &mut self.won,
            ClaimKind::Retried => &mut self.retried,
            ClaimKind::Stolen => &mut self.stolen,
            ClaimKind::Conflicted => &mut self.conflicted,
            ClaimKind::Paused => &mut self.paused,
            ClaimKind::Busy => &mut self.busy,
            ClaimKind::Skipped => &mut self.skipped,
            ClaimKind::Superseded => &mut self.superseded,
        }
    }
}
