//! The manager (`docs/contract.md` §7): ticks, claims within free
//! capacity, runs handlers concurrently with leases kept alive, and writes
//! terminal states.
//!
//! - [`options`]: [`ManagerOptions`] and [`TickReport`].
//! - `announce`: this replica's entry in the replica registry, refreshed
//!   every [`refresh_interval`].
//! - `tick`: one tick over every job (scopes, sweep, claim).
//! - `planning`: the store reads of a tick and the plan times per scope.
//! - `steering`: an operator's controls (pauses, triggers, backfills),
//!   read once per tick, and the claims of triggers and backfills.
//! - `stored`: stored schedules: the kinds and scope providers code
//!   registered, and the stored schedules each tick reads and runs.
//! - `keeper`: heartbeats, one task per claimed batch with runs in flight.
//! - `execute`: running what a tick won, and recording how it ended
//!   while the scope's next run goes on.
//! - `completer`: terminal writes in batches (group commit).
//! - [`shutdown_signal`]: SIGINT or SIGTERM, what `run` should stop on.
//!
//! One manager runs per replica. It needs nothing but a [`LeaseStore`]: all
//! coordination with other replicas goes through the store's claims.
//!
//! Decisions this module makes where the contract is silent:
//! - Planning and leases use store time only; the process clock is used for
//!   nothing but sleeping (tokio's clock, so tests can pause it).
//! - Under the buffering overlap policies (`buffer_all`, the default, and
//!   `buffer_one`), a `(job, scope)` that still has a handler running in
//!   this process is skipped by the next tick; its later plans are claimed
//!   once it is free, so one scope's plans run one at a time and in plan
//!   order, and no lease sits claimed while waiting behind a slow run.
//! - A run is over for this replica when its handler (and the guarded
//!   decision of how it ended) is done, not when its terminal write is
//!   stored (`docs/contract.md` §7, §11): the scope is free and the
//!   capacity back at once, the scope's next run (queued in the same task,
//!   or claimed by a later tick) starts while the write is stored, and the
//!   run's lease is *finishing* until it is stored, refused or given up:
//!   every claim of the job names the finishing leases, so the store does
//!   not weigh their rows, RUNNING until then, against the next plans. The
//!   lease is marked finishing before its scope is seen free, so no claim
//!   misses it, and heartbeaten until its write is done. Why: a commit
//!   that stalls would otherwise hold up the next plan of every scope it
//!   holds for as long as it stalls.
//!   Under `skip`, `cancel_other` and `allow_all` the store must see every
//!   claim (it records the skip, replaces the run, or lets them overlap),
//!   so nothing is held back, and a lease won for a scope already running
//!   here runs beside that run, not after it: it never waits behind the
//!   run it replaced, which stops at its next heartbeat, its lease gone.
//! - Leases claimed in one batch for one scope are run in plan order, the
//!   batch's scopes side by side, up to 32 scopes to a task (see
//!   `execute::SCOPES_PER_TASK`: a spawn per scope was a quarter of a
//!   fan-out's tick); each lease is heartbeaten from the moment it is
//!   claimed, by one task for the whole batch (heartbeats are rare, and a
//!   round sends the batch's heartbeats concurrently).
//! - A tick whose due keys overflow the free capacity stops planning at the
//!   scope that overflowed, and the next tick starts from it (round robin
//!   over the scope list): the rest would only be cut from the claim, and
//!   planning them costs as much per tick as there are scopes.
//! - What a replica knows of a cadence job's scopes (the newest plan with
//!   a row) has an entry per scope from the first tick that sees the
//!   list, not one made as each scope is learned: names copied a few
//!   thousand per tick, between a tick's short-lived allocations, kept
//!   glibc from reusing any tick's memory (a 100,000-scope replica's peak
//!   RSS tripled, to 215 MiB; 44 MiB this way).
//! - Every tick reads the controls of all its jobs in one store call: the
//!   active ones, and those that ended within the furthest any job plans
//!   back (its catch-up window, or its newest plan, at least a day), which
//!   is what a resume that skipped missed plans needs. When the read fails
//!   the tick counts an error and goes on with the last good read's pauses
//!   and skipped windows, but claims for no trigger or backfill (one
//!   cancelled since must not start runs).
//! - A job paused as a whole is swept (dead leases are still closed) but
//!   not planned; paused scopes are left out of planning. The store's claim
//!   refuses whatever a pause covers, which is what makes a pause exact;
//!   the manager's filter only saves the work. The loop wakes when a pause
//!   runs out (its `until`).
//! - After a resume, plans missed while paused follow the catch-up rules,
//!   except after a resume that skipped them: a scheduled plan inside the
//!   pause's window is then dropped, never claimed (an operator's retry
//!   still runs). `latest_only` runs nothing rather than an older plan;
//!   `every_plan`'s cursor jumps past the window.
//! - Each tick claims, per job: scheduled plans (and retries of scheduled
//!   plans), then due retries of failed trigger and backfill runs (these
//!   run whatever the catch-up rules say), then each active trigger in a
//!   batch of its own, then backfills; each batch within the free capacity
//!   left. A trigger runs once per target scope, at its creation instant
//!   (one microsecond later when that is an instant of the schedule, or
//!   the job has a custom planner, so it never takes a scheduled plan's
//!   key), and is marked done once every target has a row. A backfill
//!   claims at most `backfill_per_tick` keys per tick, instant by instant
//!   from its stored cursor, and moves the cursor past the instants whose
//!   every key has a row (a compare-and-set in the store, so replicas and
//!   restarts carry on from it). A control naming a scope the job does not
//!   have, or a backfill of a job with a custom planner, is rejected with a
//!   reason, and warned about once.
//! - Under `cancel_other`, a lease that waited behind an earlier run of
//!   its scope is confirmed before its run starts: another replica may
//!   have replaced it meanwhile, live as it was.
//! - A tick that left plans of a scope busy here ticks again when a
//!   scope's handlers here have all ended; one that left work for lack of
//!   capacity, for the per-tick cap, or for a trigger or backfill, when any
//!   handler ends. Neither waits for terminal writes.
//! - The loop's next wake-up for a plan falling due is counted from when
//!   the tick read store time: never before the plan is due, where it would
//!   spend a tick finding nothing while the plan waits behind it.
//! - Only scheduled keys that now have a row are remembered as known: a
//!   key the store held back (paused, waiting for its scope) is asked for
//!   again at the next tick.
//! - Every tick reads the stored schedules (`docs/contract.md` §12) in one
//!   store call, before it announces, and runs those of registered kinds
//!   beside the compiled-in jobs; see `stored`.
//! - A run cancelled by shutdown is recorded `canceled` with its retry due at
//!   once, so another replica picks it up on its next tick.
//! - The replica announces itself to the registry at the first tick of a
//!   run (and of `run_once`), refreshes at most every [`refresh_interval`]
//!   (`max(tick_interval, 15 s)`), and at the next tick after a job is
//!   registered; a clean `run` stop marks it stopped. The interval is
//!   measured on tokio's clock, like the loop's sleeps.

mod announce;
mod completer;
mod execute;
#[cfg(test)]
mod fake_store;
mod keeper;
pub mod options;
mod planning;
mod signal;
mod steering;
mod stored;
mod tick;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uuid::Uuid;

pub use announce::{refresh_interval, MIN_REFRESH_INTERVAL};
pub use options::{default_runner_id, ManagerOptions, TickReport};
pub use signal::shutdown_signal;

use self::announce::Registry;
use self::completer::Completer;
use crate::error::{OptionsError, SpecError};
use crate::hash::{FastMap, FastSet};
use crate::job::JobSpec;
use crate::metrics;
use crate::model::{name_problem, Control, Lease, LeaseRef, PlanKey, Scope};
use crate::plan;
use crate::store::LeaseStore;

/// A scope in a job's busy map: the scope of a lease its task runs,
/// shared with the lease rather than copied (two allocations per scope
/// run), and looked up by [`Scope`].
struct BusyScope(Arc<Lease>);

impl std::borrow::Borrow<Scope> for BusyScope {
    fn borrow(&self) -> &Scope {
        &self.0.scope
    }
}

impl PartialEq for BusyScope {
    fn eq(&self, other: &Self) -> bool {
        self.0.scope == other.0.scope
    }
}

impl Eq for BusyScope {}

impl std::hash::Hash for BusyScope {
    /// As the scope hashes, as `Borrow` requires.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.scope.hash(state);
    }
}

/// A registered job and what this replica remembers about it.
struct Registered {
    spec: Arc<JobSpec>,
    /// For a stored schedule: the version this job runs.
    stored: Option<stored::StoredVersion>,
    /// Per scope, the newest scheduled plan time known to have a row in the
    /// store (claimed by anyone, whatever its state since, with every
    /// older plan this replica asked for). Only used to avoid asking again.
    known: Mutex<planning::Known>,
    /// Scopes with handlers in flight in this process: how many tasks
    /// run each. A scope is free again once its handlers have ended, before
    /// their terminal writes are stored (those are in `finishing`).
    busy: Mutex<FastMap<BusyScope, usize>>,
    /// The leases of runs whose handlers ended here and whose terminal
    /// writes are not stored yet: every claim of the job names them
    /// ([`ClaimRequest::finishing`](crate::model::ClaimRequest::finishing)),
    /// so that the store does not weigh their rows, still RUNNING, against
    /// the next plans of their scopes.
    finishing: Mutex<FastSet<LeaseRef>>,
    /// Where in the job's workable scopes the last tick that ran out of
    /// free capacity stopped planning: the next one starts there (see
    /// `planning`).
    resume_at: AtomicUsize,
    /// Per active backfill, the keys at or after its cursor known to have a
    /// row: so that a backfill of more keys per instant than a tick may
    /// claim still moves on (see `steering`).
    backfilled: Mutex<HashMap<Uuid, HashSet<PlanKey>>>,
    /// For a fixed scope list, whether every scope can be stored: checked
    /// at the first tick, not at each (the list never changes, and a tick
    /// over a million scopes would check a million names).
    fixed_storable: OnceLock<bool>,
    metrics: metrics::JobMetrics,
}

#[derive(Default)]
struct Local {
    /// Executions claimed whose handlers have not ended yet (a terminal
    /// write in flight holds no capacity).
    in_flight: usize,
    /// The earliest local retry that will fall due, if any.
    retry_wake: Option<Instant>,
}

struct Inner {
    store: Arc<dyn LeaseStore>,
    completer: Completer,
    options: ManagerOptions,
    /// The runner id, shared by every run's context (not copied per run).
    runner_id: Arc<str>,
    jobs: RwLock<Vec<Arc<Registered>>>,
    local: Mutex<Local>,
    /// Fired once the shutdown grace period is over: running handlers are
    /// cancelled and recorded `canceled`.
    hard_stop: CancellationToken,
    /// Signalled when a handler ends and frees capacity.
    freed: tokio::sync::Notify,
    /// Signalled when a scope's handlers in this process have all ended:
    /// what a tick that left a scope busy here waits for.
    scope_freed: tokio::sync::Notify,
    /// This replica's offset into scope lists (a hash of its runner id).
    rotation: u64,
    /// What it remembers of its announcements to the replica registry.
    registry: Mutex<Registry>,
    /// The controls of the last tick whose read succeeded: what a tick
    /// whose read fails goes on with (see `steering`).
    last_controls: Mutex<Arc<Vec<Control>>>,
    /// The kinds and scope providers registered for stored schedules.
    catalog: RwLock<stored::Catalog>,
    /// The stored schedules of the last good read, as jobs.
    stored: Mutex<stored::StoredJobs>,
}

/// The per-replica scheduler. Cheap to clone; clones share everything.
///
/// Register jobs with [`register`](Self::register), then either drive it with
/// [`run`](Self::run) until shutdown, or tick by hand with
/// [`run_once`](Self::run_once).
#[derive(Clone)]
pub struct Manager {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("runner_id", &self.inner.options.runner_id)
            .finish_non_exhaustive()
    }
}

impl Manager {
    /// A manager over `store`. It starts nothing until [`run`](Self::run) or
    /// [`run_once`](Self::run_once).
    ///
    /// # Errors
    /// An [`OptionsError`] naming the field when the options can never work:
    /// a runner id that is empty, holds a NUL character or is longer than
    /// [`MAX_NAME_BYTES`](crate::model::MAX_NAME_BYTES) (every claim would
    /// be refused), or a zero `tick_interval`.
    pub fn new(store: Arc<dyn LeaseStore>, options: ManagerOptions) -> Result<Self, OptionsError> {
        let refuse = |field, reason: String| Err(OptionsError { field, reason });
        if options.runner_id.trim().is_empty() {
            return refuse("runner_id", "must not be empty or blank".to_owned());
        }
        if let Some(problem) = name_problem("runner id", &options.runner_id) {
            return refuse("runner_id", problem);
        }
        if options.tick_interval.is_zero() {
            return refuse("tick_interval", "must be greater than zero".to_owned());
        }
        let options = ManagerOptions {
            max_concurrency: options.max_concurrency.max(1),
            ..options
        };
        let rotation = plan::stable_hash(&[options.runner_id.as_bytes()]);
        Ok(Manager {
            inner: Arc::new(Inner {
                completer: Completer {
                    store: store.clone(),
                    queue: OnceLock::new(),
                },
                store,
                runner_id: Arc::from(options.runner_id.as_str()),
                options,
                jobs: RwLock::new(Vec::new()),
                local: Mutex::new(Local::default()),
                hard_stop: CancellationToken::new(),
                freed: tokio::sync::Notify::new(),
                scope_freed: tokio::sync::Notify::new(),
                rotation,
                registry: Mutex::new(Registry::default()),
                last_controls: Mutex::new(Arc::new(Vec::new())),
                catalog: RwLock::default(),
                stored: Mutex::default(),
            }),
        })
    }

    /// This replica's runner id.
    pub fn runner_id(&self) -> &str {
        &self.inner.options.runner_id
    }

    /// The names of the registered jobs, in registration order.
    pub fn job_names(&self) -> Vec<String> {
        let jobs = self.inner.jobs.read().expect("jobs lock");
        jobs.iter().map(|j| j.spec.name.clone()).collect()
    }

    /// Adds a job. It takes part from the next tick on, which also
    /// announces it to the replica registry.
    ///
    /// # Errors
    /// A [`SpecError`] naming the job and field when the spec breaks a rule
    /// of `docs/contract.md` §6, or when a job of that name is already
    /// registered.
    pub fn register(&self, job: JobSpec) -> Result<(), SpecError> {
        job.validate()?;
        let mut jobs = self.inner.jobs.write().expect("jobs lock");
        if jobs.iter().any(|j| j.spec.name == job.name) {
            return Err(SpecError::new(
                &job.name,
                "name",
                "a job with this name is already registered",
            ));
        }
        jobs.push(Arc::new(Registered {
            metrics: metrics::JobMetrics::new(&job.name),
            spec: Arc::new(job),
            stored: None,
            known: Mutex::default(),
            busy: Mutex::default(),
            finishing: Mutex::default(),
            resume_at: AtomicUsize::new(0),
            backfilled: Mutex::new(HashMap::new()),
            fixed_storable: OnceLock::new(),
        }));
        drop(jobs);
        self.inner
            .registry
            .lock()
            .expect("registry lock")
            .job_registered();
        Ok(())
    }

    /// One full tick, returning once everything it claimed has finished.
    pub async fn run_once(&self) -> TickReport {
        let mut tasks = JoinSet::new();
        let mut report = self.tick(&mut tasks).await.report;
        while let Some(done) = tasks.join_next().await {
            report += done.expect("execution tasks catch handler panics");
        }
        report
    }

    /// Ticks until `shutdown` resolves, then shuts down gracefully: no new
    /// claims; running handlers get `shutdown_grace` to finish; the rest are
    /// cancelled and recorded `canceled`; the replica is marked stopped in
    /// the replica registry. Returns the sum of all reports. Nothing is
    /// left RUNNING by this replica when it returns, unless the store was
    /// unreachable for the terminal writes.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) -> TickReport {
        let o = &self.inner.options;
        info!(runner_id = %o.runner_id, tick_interval = ?o.tick_interval, "scheduler starting");
        tokio::pin!(shutdown);
        let mut tasks = JoinSet::new();
        let mut total = TickReport::default();
        let mut failures: u32 = 0;
        // A control added or changed (a trigger, a resume) wakes the loop
        // at once instead of at the next tick, where the store can tell.
        let mut changes = self.inner.store.control_changes();
        loop {
            let started = Instant::now();
            let tick = self.tick(&mut tasks).await;
            total += tick.report;
            let mut sleep_for = o.tick_interval;
            match tick.now {
                None => {
                    // Store down at the start of a tick: back off, capped.
                    failures = failures.saturating_add(1);
                    let backoff = Duration::from_millis(100).saturating_mul(1 << failures.min(10));
                    sleep_for = sleep_for.min(backoff);
                }
                Some(_) => failures = 0,
            }
            let mut deadline = started + sleep_for;
            if let (Some(clock), Some(due)) = (tick.now, tick.next_due) {
                // Counted from when store time was read, not from the
                // tick's start: the tick's own duration must not be taken
                // off twice, or the loop wakes that much before the plan
                // is due and spends a whole tick finding nothing, which
                // the plan's start then waits behind. The millisecond
                // keeps the wake-up after `due`, not at it.
                let until_due = Duration::try_from(due - clock.now).unwrap_or(Duration::ZERO);
                deadline = deadline.min(clock.at + until_due + Duration::from_millis(1));
            }
            if let Some(retry) = self.take_retry_wake() {
                deadline = deadline.min(retry);
            }
            let sleep = tokio::time::sleep_until(deadline);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    _ = &mut shutdown => return self.shut_down(tasks, total).await,
                    _ = &mut sleep => break,
                    _ = self.inner.freed.notified(), if tick.backlog => break,
                    _ = self.inner.scope_freed.notified(), if tick.waiting => break,
                    changed = control_changed(&mut changes) => {
                        if changed {
                            break;
                        }
                        changes = None; // the store dropped its channel
                    }
                    Some(done) = tasks.join_next() => {
                        total += done.expect("execution tasks catch handler panics");
                    }
                }
            }
        }
    }

    async fn shut_down(&self, mut tasks: JoinSet<TickReport>, mut total: TickReport) -> TickReport {
        let grace = self.inner.options.shutdown_grace;
        info!(
            running = tasks.len(),
            ?grace,
            "scheduler stopping: no new claims"
        );
        let graceful = async {
            while let Some(done) = tasks.join_next().await {
                total += done.expect("execution tasks catch handler panics");
            }
        };
        if tokio::time::timeout(grace, graceful).await.is_err() {
            warn!(
                running = tasks.len(),
                "shutdown grace over; cancelling running handlers"
            );
            self.inner.hard_stop.cancel();
            while let Some(done) = tasks.join_next().await {
                total += done.expect("execution tasks catch handler panics");
            }
        }
        self.announce_stopped().await;
        info!("scheduler stopped");
        total
    }

    fn take_retry_wake(&self) -> Option<Instant> {
        self.inner
            .local
            .lock()
            .expect("local lock")
            .retry_wake
            .take()
    }

    fn jobs(&self) -> Vec<Arc<Registered>> {
        self.inner.jobs.read().expect("jobs lock").clone()
    }
}

impl Registered {
    /// The job as its replica announces it; a stored schedule's with its
    /// version.
    fn registration(&self) -> crate::model::RegisteredJob {
        crate::model::RegisteredJob {
            stored_version: self.stored.map(|s| s.version),
            ..self.spec.registration()
        }
    }
}

/// Waits for the next change of a store's control channel: `true` on a
/// change, `false` when the channel closed; never, without a channel.
async fn control_changed(changes: &mut Option<tokio::sync::watch::Receiver<()>>) -> bool {
    match changes {
        Some(rx) => rx.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}
