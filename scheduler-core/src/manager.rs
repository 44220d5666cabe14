//! The manager (the contract, `docs/contract.md` §7): ticks, claims within
//! free capacity, runs handlers concurrently with leases kept alive, and
//! writes terminal states.
//!
//! One manager runs per replica. It needs nothing but a [`LeaseStore`]: all
//! coordination with other replicas goes through the store's claims.
//!
//! Decisions this module makes where the contract is silent:
//! - Planning and leases use store time only; the process clock is used for
//!   nothing but sleeping (tokio's clock, so tests can pause it).
//! - A `(job, scope)` that still has an execution in flight in this process is
//!   skipped by the next tick; its later plans are claimed once it is free, so
//!   one scope's plans run one at a time and in plan order, and no lease sits
//!   claimed while waiting behind a slow run.
//! - Leases claimed in one batch for one scope are run in plan order by one
//!   task; each is heartbeaten from the moment it is claimed.
//! - A run cancelled by shutdown is recorded `canceled` with its retry due at
//!   once, so another replica picks it up on its next tick.

use std::any::Any;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::AddAssign;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use futures::FutureExt;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};
use tracing::{debug, error, info, info_span, warn, Instrument};
use uuid::Uuid;

use crate::error::{OptionsError, SpecError, StoreError};
use crate::metrics;
use crate::plan::{self, CatchUpMode};
use crate::spec::{name_problem, JobSpec, Scope};
use crate::store::{ClaimOutcome, ClaimRequest, ErrorCode, Finish, Lease, LeaseStore, PlanKey};

/// How a manager runs.
#[derive(Debug, Clone)]
pub struct ManagerOptions {
    /// Identifies this replica in audit rows. Default: a fresh UUID v4.
    pub runner_id: String,
    /// The longest sleep between ticks. The loop also wakes exactly when the
    /// next plan becomes eligible, so this only bounds how late a change the
    /// manager cannot foresee (a new scope, another replica's failure) is
    /// noticed. Default: 30 s.
    pub tick_interval: Duration,
    /// The most executions this replica holds at once (claimed and not yet
    /// finished). A tick claims no more than the free capacity, so other
    /// replicas get the rest. Default: 64.
    pub max_concurrency: usize,
    /// On shutdown, how long running handlers may take to finish before they
    /// are cancelled. Default: 30 s.
    pub shutdown_grace: Duration,
}

impl Default for ManagerOptions {
    fn default() -> Self {
        ManagerOptions {
            runner_id: Uuid::new_v4().to_string(),
            tick_interval: Duration::from_secs(30),
            max_concurrency: 64,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// What a tick did, and (for [`Manager::run_once`]) how its executions ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Fresh claims won.
    pub claimed: u64,
    /// FAILED plans claimed again.
    pub retried: u64,
    /// Stale leases taken over by a claim. A tick sweeps a job's stale
    /// leases before it claims, so a dead runner's plan usually shows up as
    /// `swept` and then `retried`; `stolen` counts the leases that went
    /// stale between the two.
    pub stolen: u64,
    /// Claims that changed nothing (another replica's lease, already done, ...).
    pub conflicted: u64,
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
        self.claimed += o.claimed;
        self.retried += o.retried;
        self.stolen += o.stolen;
        self.conflicted += o.conflicted;
        self.succeeded += o.succeeded;
        self.failed += o.failed;
        self.lease_lost += o.lease_lost;
        self.swept += o.swept;
        self.errors += o.errors;
    }
}

/// What a handler gets: which run this is, its fencing token, a cancellation
/// signal and a way to extend its lease.
#[derive(Clone)]
pub struct RunContext {
    lease: Arc<Lease>,
    runner_id: Arc<str>,
    cancel: CancellationToken,
    keeper: Arc<LeaseKeeper>,
}

impl std::fmt::Debug for RunContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunContext")
            .field("lease", &self.lease)
            .field("runner_id", &self.runner_id)
            .finish_non_exhaustive()
    }
}

impl RunContext {
    /// The job's name.
    pub fn job_name(&self) -> &str {
        &self.lease.job_name
    }

    /// The scope this run is for.
    pub fn scope(&self) -> &Scope {
        &self.lease.scope
    }

    /// The plan time this run belongs to.
    pub fn plan_time(&self) -> OffsetDateTime {
        self.lease.plan_time
    }

    /// 1 for the first attempt, +1 for every retry or takeover.
    pub fn attempt(&self) -> i32 {
        self.lease.attempt
    }

    /// The replica running it.
    pub fn runner_id(&self) -> &str {
        &self.runner_id
    }

    /// The execution row's id.
    pub fn execution_id(&self) -> Uuid {
        self.lease.id
    }

    /// The lease token: a fencing token. Pass it to the systems the handler
    /// writes to, and have them refuse writes carrying an older token for
    /// the same execution, to make effects of a run whose lease was taken
    /// over impossible to apply twice.
    pub fn lease_token(&self) -> Uuid {
        self.lease.token
    }

    /// The whole lease.
    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// Resolves when the run should stop: lease lost, run timeout, or
    /// shutdown. The manager drops the handler's future soon after anyway;
    /// this lets a handler stop cleanly at a point of its choosing.
    pub fn cancelled(&self) -> WaitForCancellationFuture<'_> {
        self.cancel.cancelled()
    }

    /// Whether [`cancelled`](Self::cancelled) has fired.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Extends the lease now (the manager also does so every
    /// `heartbeat_interval`).
    ///
    /// # Errors
    /// [`StoreError::LeaseLost`] when the lease is gone (the run is then
    /// cancelled), [`StoreError::Backend`] when the store fails.
    pub async fn heartbeat(&self) -> Result<(), StoreError> {
        self.keeper.beat().await
    }
}

/// Keeps one lease alive and remembers how long it is surely ours.
struct LeaseKeeper {
    store: Arc<dyn LeaseStore>,
    lease: Arc<Lease>,
    stale_timeout: Duration,
    /// Until when (process time) no other replica can have taken the lease:
    /// the last successful claim or heartbeat plus `stale_timeout`.
    safe_until: Mutex<Instant>,
    /// Fired when a heartbeat finds the lease gone.
    lost: CancellationToken,
    /// Set once the run's terminal write is done: no more heartbeats.
    done: AtomicBool,
    /// The execution's span, for the heartbeat loop's log lines.
    span: tracing::Span,
}

impl LeaseKeeper {
    async fn beat(&self) -> Result<(), StoreError> {
        let sent = Instant::now();
        match self.store.heartbeat(&self.lease, self.stale_timeout).await {
            Ok(_) => {
                *self.safe_until.lock().expect("keeper lock") = sent + self.stale_timeout;
                Ok(())
            }
            Err(e) => {
                if matches!(e, StoreError::LeaseLost { .. }) {
                    self.lost.cancel();
                }
                Err(e)
            }
        }
    }

    fn safe_until(&self) -> Instant {
        *self.safe_until.lock().expect("keeper lock")
    }

    /// Heartbeats `keepers` every `interval`, skipping leases that are done
    /// or lost, for as long as the scope's runs last (the caller aborts it
    /// when they are over). One loop per scope rather than a task per
    /// lease: queued leases stay alive at the cost of one task per scope.
    ///
    /// A round that starts a whole interval late is counted in `late` and
    /// logged: the runtime did not run this task in time (a handler
    /// blocking its thread, most often on a current-thread runtime, where
    /// nothing else can run) or the previous round's calls were slow. A
    /// lease whose safe window passed meanwhile may have been taken over
    /// unnoticed; the round's heartbeat settles it (a taken-over lease
    /// answers `LeaseLost`, which cancels the run, and the run's terminal
    /// write is refused by the fence in any case).
    async fn keep_alive(
        keepers: &[Arc<LeaseKeeper>],
        interval: Duration,
        late: &::metrics::Counter,
    ) -> std::convert::Infallible {
        let mut ticker = tokio::time::interval_at(Instant::now() + interval, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let due = ticker.tick().await;
            let delay = due.elapsed();
            if delay >= interval {
                late.increment(1);
                warn!(
                    delay = ?delay,
                    "heartbeats ran late: the runtime was starved (a handler blocking its thread?) or the store was slow"
                );
            }
            for keeper in keepers {
                if keeper.done.load(Ordering::Acquire) || keeper.lost.is_cancelled() {
                    continue;
                }
                let span = keeper.span.clone();
                if Instant::now() >= keeper.safe_until() {
                    span.in_scope(|| {
                        warn!("the lease may have lapsed while heartbeats were late; confirming it")
                    });
                }
                match keeper.beat().instrument(span.clone()).await {
                    Ok(()) => span.in_scope(|| debug!("heartbeat")),
                    Err(StoreError::LeaseLost { .. }) => span.in_scope(|| {
                        warn!("lease lost: another runner took it over or swept it; cancelling the run")
                    }),
                    Err(e) => span.in_scope(|| warn!(error = %e, "heartbeat failed; will retry")),
                }
            }
        }
    }
}

/// One terminal write waiting for the completer, and where its result goes.
type Completion = (Arc<Lease>, Finish, oneshot::Sender<Result<(), StoreError>>);

/// The most terminal writes sent in one [`LeaseStore::finish_many`] call.
const MAX_FINISH_BATCH: usize = 1_000;

/// Writes terminal states in batches: group commit. Executions that end
/// while the previous batch is being written queue up and go out together
/// in the next one, so a burst of completions costs a few statements, not
/// one each, and a lone completion is written at once (no batching
/// window, no added latency). Each execution still gets its own result
/// (its lease is guarded on its own token).
struct Completer {
    store: Arc<dyn LeaseStore>,
    queue: OnceLock<mpsc::UnboundedSender<Completion>>,
}

impl Completer {
    async fn finish(&self, lease: &Arc<Lease>, finish: &Finish) -> Result<(), StoreError> {
        // Started on first use, so `Manager::new` needs no runtime; it ends
        // when the manager (the sender's owner) is dropped.
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(Self::run(self.store.clone(), rx));
            tx
        });
        let (reply, result) = oneshot::channel();
        queue
            .send((lease.clone(), finish.clone(), reply))
            .map_err(|_| StoreError::backend_msg("terminal-write queue closed"))?;
        result
            .await
            .unwrap_or_else(|_| Err(StoreError::backend_msg("terminal-write batch was dropped")))
    }

    async fn run(store: Arc<dyn LeaseStore>, mut queue: mpsc::UnboundedReceiver<Completion>) {
        while let Some(first) = queue.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_FINISH_BATCH {
                match queue.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            let items: Vec<(&Lease, &Finish)> = batch
                .iter()
                .map(|(lease, finish, _)| (lease.as_ref(), finish))
                .collect();
            let results = store.finish_many(&items).await;
            debug_assert_eq!(results.len(), batch.len(), "one result per terminal write");
            for ((_, _, reply), result) in batch.into_iter().zip(results) {
                let _ = reply.send(result);
            }
        }
    }
}

/// How a lease was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claimed {
    Fresh,
    Retry,
    Takeover,
}

impl Claimed {
    fn verb(self) -> &'static str {
        match self {
            Claimed::Fresh => "claimed",
            Claimed::Retry => "retrying",
            Claimed::Takeover => "took over stale lease",
        }
    }
}

/// Store time as read at the start of a tick, and when: an estimate of
/// store time later in the tick without another round trip.
#[derive(Debug, Clone, Copy)]
struct StoreClock {
    now: OffsetDateTime,
    at: Instant,
}

impl StoreClock {
    fn estimate(&self) -> OffsetDateTime {
        self.now + self.at.elapsed()
    }
}

/// A spawned task that is aborted when this handle is dropped, so it never
/// outlives the future that owns it (a dropped `run` must not leave
/// heartbeats keeping its leases alive).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A won lease waiting for (or in) its run.
struct ClaimedRun {
    keeper: Arc<LeaseKeeper>,
    how: Claimed,
    /// When the plan became eligible, for fresh claims of scheduled jobs:
    /// the start of the dispatch-lateness measurement.
    eligible_at: Option<OffsetDateTime>,
    clock: StoreClock,
}

/// How one execution ended, before its terminal write.
enum RunEnd {
    Success(crate::spec::JobOutput),
    Failure(ErrorCode, String),
    LeaseLost,
}

/// A registered job and what this replica remembers about it.
struct Registered {
    spec: Arc<JobSpec>,
    /// Per scope, the newest plan time known to exist in the store (claimed
    /// by anyone, whatever its state since). Only used to avoid asking again.
    known: Mutex<HashMap<Scope, OffsetDateTime>>,
    /// Scopes with an execution in flight in this process.
    busy: Mutex<HashSet<Scope>>,
    metrics: metrics::JobMetrics,
}

#[derive(Default)]
struct Local {
    /// Executions claimed and not yet finished.
    in_flight: usize,
    /// The earliest local retry that will fall due, if any.
    retry_wake: Option<Instant>,
}

struct Inner {
    store: Arc<dyn LeaseStore>,
    completer: Completer,
    options: ManagerOptions,
    jobs: RwLock<Vec<Arc<Registered>>>,
    local: Mutex<Local>,
    /// Fired once the shutdown grace period is over: running handlers are
    /// cancelled and recorded `canceled`.
    hard_stop: CancellationToken,
    /// Signalled when an execution finishes and frees capacity.
    freed: tokio::sync::Notify,
    /// This replica's offset into scope lists (a hash of its runner id).
    rotation: u64,
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

/// One scope's due retries, as [`LeaseStore::retry_due`] reported them.
#[derive(Default)]
struct ScopeRetries {
    /// Due by the job's own retry rules.
    due: Vec<OffsetDateTime>,
    /// Asked for by an operator: run whatever the catch-up rules say.
    operator: Vec<OffsetDateTime>,
}

/// The bounds of a job's [`LeaseStore::retry_due`] read, chosen so that the
/// read can never starve a retry the job's catch-up rules would run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RetryRead {
    /// The oldest plan time any scope would retry: each scope's newest plan
    /// (`latest_only`) or the start of its catch-up window (`every_plan`).
    since: OffsetDateTime,
    /// Rows per scope: as many as a tick runs (1 for `latest_only`, the
    /// per-tick cap for `every_plan`), plus the plan times between the
    /// earliest and the latest scope's own lower bound. Spread offsets give
    /// scopes different bounds, and the rows of a scope below its own bound
    /// come first in the answer (oldest first) without being runnable;
    /// this many rows always reach past them.
    per_scope: usize,
}

impl RetryRead {
    /// The most plan times the spread of lower bounds adds per scope.
    const MAX_SPREAD_PLANS: usize = 10_000;

    /// `None` when the schedule has no occurrence yet.
    fn for_scopes(
        planning: &plan::Planning,
        now: OffsetDateTime,
        offsets: &[Duration],
    ) -> Option<RetryRead> {
        let lower = |offset| match planning.catch_up {
            CatchUpMode::LatestOnly => plan::latest_plan(planning, now, offset),
            CatchUpMode::EveryPlan => plan::oldest_allowed(planning, now, offset),
        };
        let bounds: Vec<OffsetDateTime> = offsets.iter().filter_map(|&o| lower(o)).collect();
        let since = *bounds.iter().min()?;
        let until = *bounds.iter().max()?;
        let runs = match planning.catch_up {
            CatchUpMode::LatestOnly => 1,
            CatchUpMode::EveryPlan => planning.max_plans_per_tick.max(1),
        };
        let spread_plans = planning
            .schedule
            .between(since, until, Self::MAX_SPREAD_PLANS)
            .len();
        Some(RetryRead {
            since,
            per_scope: runs.saturating_add(spread_plans),
        })
    }
}

/// What one tick leaves for the run loop.
struct TickOutcome {
    report: TickReport,
    /// Store time the tick read.
    now: Option<OffsetDateTime>,
    /// The earliest store-time instant at which a new plan becomes eligible.
    next_due: Option<OffsetDateTime>,
    /// Work was left unclaimed for lack of capacity, a busy scope or the
    /// per-tick cap: tick again as soon as something finishes.
    backlog: bool,
}

impl Manager {
    /// A manager over `store`. It starts nothing until [`run`](Self::run) or
    /// [`run_once`](Self::run_once).
    ///
    /// # Errors
    /// An [`OptionsError`] naming the field when the options can never work:
    /// a runner id that is empty, holds a NUL character or is longer than
    /// [`MAX_NAME_BYTES`](crate::spec::MAX_NAME_BYTES) (every claim would
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
                options,
                jobs: RwLock::new(Vec::new()),
                local: Mutex::new(Local::default()),
                hard_stop: CancellationToken::new(),
                freed: tokio::sync::Notify::new(),
                rotation,
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

    /// Adds a job. It takes part from the next tick on.
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
            known: Mutex::new(HashMap::new()),
            busy: Mutex::new(HashSet::new()),
        }));
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
    /// cancelled and recorded `canceled`. Returns the sum of all reports.
    /// Nothing is left RUNNING by this replica when it returns, unless the
    /// store was unreachable for the terminal writes.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) -> TickReport {
        let o = &self.inner.options;
        info!(runner_id = %o.runner_id, tick_interval = ?o.tick_interval, "scheduler starting");
        tokio::pin!(shutdown);
        let mut tasks = JoinSet::new();
        let mut total = TickReport::default();
        let mut failures: u32 = 0;
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
                Some(now) => {
                    failures = 0;
                    if let Some(due) = tick.next_due {
                        let until_due = Duration::try_from(due - now).unwrap_or(Duration::ZERO);
                        sleep_for = sleep_for.min(
                            until_due.saturating_sub(started.elapsed()) + Duration::from_millis(1),
                        );
                    }
                }
            }
            let mut deadline = started + sleep_for;
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

    async fn tick(&self, tasks: &mut JoinSet<TickReport>) -> TickOutcome {
        let mut out = TickOutcome {
            report: TickReport::default(),
            now: None,
            next_due: None,
            backlog: false,
        };
        let now = match self.inner.store.now().await {
            Ok(now) => now,
            Err(e) => {
                warn!(error = %e, "tick skipped: store time unavailable");
                out.report.errors += 1;
                return out;
            }
        };
        out.now = Some(now);
        let clock = StoreClock {
            now,
            at: Instant::now(),
        };
        for job in self.jobs() {
            let span =
                info_span!("tick", runner = %self.inner.options.runner_id, job = %job.spec.name);
            self.tick_job(&job, clock, tasks, &mut out)
                .instrument(span)
                .await;
        }
        out
    }

    async fn tick_job(
        &self,
        job: &Arc<Registered>,
        clock: StoreClock,
        tasks: &mut JoinSet<TickReport>,
        out: &mut TickOutcome,
    ) {
        let now = clock.now;
        let spec = &job.spec;
        let store = &self.inner.store;
        let scopes = match spec.scopes.resolve(now).await {
            Ok(scopes) => scopes,
            Err(e) => {
                warn!(error = %e, "scope provider failed; job skipped this tick");
                out.report.errors += 1;
                return;
            }
        };
        let scopes: Vec<Scope> = scopes
            .into_iter()
            .filter(|s| match s.storage_problem() {
                Some(problem) => {
                    error!("{problem}; scope skipped, the job's other scopes run");
                    job.metrics.scopes_skipped.increment(1);
                    false
                }
                None => true,
            })
            .collect();
        // Close abandoned leases first, for every job: the FAILED audit row
        // is what alerts on a dead runner, and (for reentrant jobs) what lets
        // a retry pick the plan up again.
        let swept = store
            .sweep_stale(&spec.name, spec.allow_stale_reentry)
            .await;
        if let Ok(n) = swept {
            job.metrics.stale_running.set(n as f64);
        }
        match swept {
            Ok(0) => {}
            Ok(n) => {
                warn!(
                    rows = n,
                    reentrant = spec.allow_stale_reentry,
                    "closed abandoned RUNNING leases"
                );
                out.report.swept += n;
            }
            Err(e) => {
                warn!(error = %e, "sweep failed");
                out.report.errors += 1;
            }
        }
        let free = {
            let local = self.inner.local.lock().expect("local lock");
            self.inner
                .options
                .max_concurrency
                .saturating_sub(local.in_flight)
        };
        let scopes: Vec<Scope> = {
            let busy = job.busy.lock().expect("busy lock");
            let before = scopes.len();
            let idle: Vec<Scope> = scopes.into_iter().filter(|s| !busy.contains(s)).collect();
            out.backlog |= idle.len() < before;
            idle
        };
        if scopes.is_empty() {
            return;
        }
        // Replicas with less free capacity than there is work start at
        // different points of the scope list (a stable offset from the
        // runner id), so their batches mostly hold different keys instead
        // of all racing for the same first ones.
        let mut scopes = scopes;
        let start = (self.inner.rotation % scopes.len() as u64) as usize;
        scopes.rotate_left(start);
        let planned = if spec.planner.is_some() {
            self.plan_custom(spec, &scopes, now, out).await
        } else {
            self.plan_cadence(job, &scopes, now, out).await
        };
        let Some(mut keys) = planned else { return };
        if keys.len() > free {
            out.backlog = true;
            keys.truncate(free);
        }
        if keys.is_empty() {
            return;
        }
        let request = ClaimRequest {
            job_name: &spec.name,
            runner_id: &self.inner.options.runner_id,
            max_attempts: spec.max_attempts,
            stale_timeout: spec.stale_timeout,
            allow_stale_reentry: spec.allow_stale_reentry,
            keys: &keys,
        };
        let outcomes = match store.claim(&request).await {
            Ok(outcomes) => outcomes,
            Err(e) => {
                warn!(error = %e, keys = keys.len(), "claim failed");
                out.report.errors += 1;
                return;
            }
        };
        {
            // Whatever the outcome, each claimed key now exists in the store:
            // later ticks need not ask for it again (retries come back
            // through `retry_due`).
            let mut known = job.known.lock().expect("known lock");
            for key in &keys {
                let newest = known.entry(key.scope.clone()).or_insert(key.plan_time);
                *newest = (*newest).max(key.plan_time);
            }
        }
        let before = out.report;
        let mut won: BTreeMap<Scope, Vec<(Lease, Claimed)>> = BTreeMap::new();
        for outcome in outcomes {
            let (lease, how) = match outcome {
                ClaimOutcome::Won(l) => {
                    out.report.claimed += 1;
                    (l, Claimed::Fresh)
                }
                ClaimOutcome::Retried(l) => {
                    out.report.retried += 1;
                    (l, Claimed::Retry)
                }
                ClaimOutcome::Stolen(l) => {
                    out.report.stolen += 1;
                    (l, Claimed::Takeover)
                }
                ClaimOutcome::Conflicted => {
                    out.report.conflicted += 1;
                    continue;
                }
            };
            won.entry(lease.scope.clone())
                .or_default()
                .push((lease, how));
        }
        let counts = [
            out.report.claimed - before.claimed,
            out.report.retried - before.retried,
            out.report.stolen - before.stolen,
            out.report.conflicted - before.conflicted,
        ];
        for (outcome, n) in counts.into_iter().enumerate() {
            job.metrics.claims(outcome, n);
        }
        for (scope, mut leases) in won {
            leases.sort_by_key(|(l, _)| l.plan_time);
            job.busy.lock().expect("busy lock").insert(scope.clone());
            self.inner.local.lock().expect("local lock").in_flight += leases.len();
            let runs = self.prepare_runs(spec, leases, clock);
            let this = self.clone();
            let job = job.clone();
            tasks.spawn(async move { this.run_scope(job, scope, runs).await });
        }
    }

    /// Keys for a cadence job, scope by scope in plan order; `None` when a
    /// store read failed.
    ///
    /// An idle tick costs one statement here (`retry_due`) whatever the
    /// number of scopes: the newest plan time known to exist per scope is
    /// kept from earlier ticks, so only scopes never seen are read
    /// (`latest_executions`, once), and only due plans are claimed. The
    /// knowledge only ever skips asking for plans that exist; whether a plan
    /// may run is still decided by the store's claim.
    async fn plan_cadence(
        &self,
        job: &Registered,
        scopes: &[Scope],
        now: OffsetDateTime,
        out: &mut TickOutcome,
    ) -> Option<Vec<PlanKey>> {
        let spec = &job.spec;
        let store = &self.inner.store;
        let planning = spec.planning();
        let offsets: Vec<Duration> = scopes
            .iter()
            .map(|s| plan::scope_offset(&spec.name, s, planning.spread))
            .collect();
        if let Some(due) = offsets
            .iter()
            .filter_map(|&o| plan::next_eligible(&planning, now, o))
            .min()
        {
            out.next_due = Some(out.next_due.map_or(due, |d| d.min(due)));
        }
        let Some(read) = RetryRead::for_scopes(&planning, now, &offsets) else {
            return Some(Vec::new()); // the schedule has no occurrence yet
        };
        let mut retries: HashMap<Scope, ScopeRetries> = HashMap::new();
        match store
            .retry_due(
                &spec.name,
                read.since,
                planning.allow_stale_reentry,
                read.per_scope,
            )
            .await
        {
            Ok(due) => {
                for d in due {
                    let entry = retries.entry(d.scope).or_default();
                    if d.operator_retry {
                        entry.operator.push(d.plan_time);
                    } else {
                        entry.due.push(d.plan_time);
                    }
                }
            }
            Err(e) => {
                warn!(error = %e, "retry-due read failed");
                out.report.errors += 1;
                return None;
            }
        }
        let unknown: Vec<Scope> = {
            let known = job.known.lock().expect("known lock");
            scopes
                .iter()
                .filter(|s| !known.contains_key(*s))
                .cloned()
                .collect()
        };
        // Scopes never seen are read once: every_plan's cursor starts after
        // their newest row, and a cron job must tell a scope with no history
        // (which does not run an old occurrence, see FIRST_RUN_GRACE) from
        // one whose newest row this replica has not seen yet. A cadence
        // latest_only job needs neither: its claim of the newest bucket
        // decides.
        let needs_history = planning.catch_up == CatchUpMode::EveryPlan
            || matches!(planning.schedule, plan::Schedule::Cron(_));
        if needs_history && !unknown.is_empty() {
            let views = match store.latest_executions(&spec.name, &unknown).await {
                Ok(views) => views,
                Err(e) => {
                    warn!(error = %e, "latest-execution read failed");
                    out.report.errors += 1;
                    return None;
                }
            };
            let mut known = job.known.lock().expect("known lock");
            for (scope, view) in unknown.into_iter().zip(views) {
                let (after, retry) =
                    plan::cursor_from(view.as_ref(), now, planning.allow_stale_reentry);
                if let Some(after) = after {
                    known.insert(scope.clone(), after);
                }
                retries.entry(scope).or_default().due.extend(retry);
            }
        }
        let mut known = job.known.lock().expect("known lock");
        if known.len() > scopes.len().saturating_mul(2) {
            // Scopes the provider no longer returns (deleted tenants) must
            // not pin memory forever.
            let current: HashSet<&Scope> = scopes.iter().collect();
            known.retain(|s, _| current.contains(s));
        }
        let mut keys = Vec::new();
        let none = ScopeRetries::default();
        for (scope, offset) in scopes.iter().zip(offsets) {
            let scope_retries = retries.get(scope).unwrap_or(&none);
            let after = known.get(scope).copied();
            let plans = plan::plan_scope(
                &planning,
                now,
                offset,
                after,
                &scope_retries.due,
                &scope_retries.operator,
            );
            if planning.max_plans_per_tick > 0 && plans.len() >= planning.max_plans_per_tick {
                out.backlog = true;
            }
            keys.extend(plans.into_iter().map(|plan_time| PlanKey {
                scope: scope.clone(),
                plan_time,
            }));
        }
        Some(keys)
    }

    /// Keys for a job with a custom planner, which is shown each scope's
    /// latest execution every tick; `None` when the read failed.
    async fn plan_custom(
        &self,
        spec: &JobSpec,
        scopes: &[Scope],
        now: OffsetDateTime,
        out: &mut TickOutcome,
    ) -> Option<Vec<PlanKey>> {
        let views = match self.inner.store.latest_executions(&spec.name, scopes).await {
            Ok(views) => views,
            Err(e) => {
                warn!(error = %e, "latest-execution read failed");
                out.report.errors += 1;
                return None;
            }
        };
        let mut keys = Vec::new();
        for (scope, view) in scopes.iter().zip(&views) {
            let plans = spec.custom_plans(scope, now, view.as_ref());
            if spec.max_plans_per_tick > 0 && plans.len() >= spec.max_plans_per_tick {
                out.backlog = true;
            }
            keys.extend(plans.into_iter().map(|plan_time| PlanKey {
                scope: scope.clone(),
                plan_time,
            }));
        }
        Some(keys)
    }

    /// The runs of one scope's won leases, each heartbeaten from now on
    /// (see [`LeaseKeeper::keep_alive`]).
    fn prepare_runs(
        &self,
        job: &JobSpec,
        leases: Vec<(Lease, Claimed)>,
        clock: StoreClock,
    ) -> Vec<ClaimedRun> {
        let claimed_at = Instant::now();
        leases
            .into_iter()
            .map(|(lease, how)| {
                let eligible_at = (how == Claimed::Fresh).then(|| {
                    let offset = plan::scope_offset(&job.name, &lease.scope, job.spread);
                    lease.plan_time + job.schedule_delay + offset
                });
                let span = execution_span(&self.inner.options.runner_id, &lease);
                let keeper = Arc::new(LeaseKeeper {
                    store: self.inner.store.clone(),
                    lease: Arc::new(lease),
                    stale_timeout: job.stale_timeout,
                    safe_until: Mutex::new(claimed_at + job.stale_timeout),
                    lost: CancellationToken::new(),
                    done: AtomicBool::new(false),
                    span,
                });
                ClaimedRun {
                    keeper,
                    how,
                    eligible_at,
                    clock,
                }
            })
            .collect()
    }

    async fn run_scope(
        self,
        job: Arc<Registered>,
        scope: Scope,
        runs: Vec<ClaimedRun>,
    ) -> TickReport {
        let keepers: Vec<Arc<LeaseKeeper>> = runs.iter().map(|r| r.keeper.clone()).collect();
        let work = async {
            let mut report = TickReport::default();
            for run in runs {
                let keeper = &run.keeper;
                let span = keeper.span.clone();
                if let Some(eligible_at) = run.eligible_at {
                    let late = run.clock.estimate() - eligible_at;
                    job.metrics
                        .dispatch_lateness
                        .record(Duration::try_from(late).unwrap_or_default());
                }
                let started = Instant::now();
                job.metrics.running.increment(1.0);
                let end = self
                    .execute(&job.spec, keeper, run.how)
                    .instrument(span.clone())
                    .await;
                job.metrics.running.decrement(1.0);
                job.metrics.run_duration.record(started.elapsed());
                self.write_terminal(&job, keeper, end, started.elapsed(), &mut report)
                    .instrument(span)
                    .await;
                keeper.done.store(true, Ordering::Release);
                self.inner.local.lock().expect("local lock").in_flight -= 1;
                self.inner.freed.notify_one();
            }
            report
        };
        // Heartbeats run in a task of their own, not in this one: a handler
        // that blocks its thread (it should not, but some do) must not also
        // stop its lease from being extended, or the lease would expire and
        // the plan run twice. The task ends with this scope's runs.
        let interval = job.spec.heartbeat_interval;
        let late = job.metrics.heartbeats_late.clone();
        let heartbeats = AbortOnDrop(tokio::spawn(async move {
            LeaseKeeper::keep_alive(&keepers, interval, &late).await
        }));
        // Let the heartbeat task start (and arm its timer) before a handler
        // can hold this thread: a task just spawned sits in this worker's
        // LIFO slot, where no other worker can steal it.
        tokio::task::yield_now().await;
        let report = work.await;
        drop(heartbeats);
        job.busy.lock().expect("busy lock").remove(&scope);
        self.inner.freed.notify_one();
        report
    }

    /// Runs the handler, bounded by the run timeout, the lease and shutdown.
    async fn execute(&self, job: &Arc<JobSpec>, keeper: &Arc<LeaseKeeper>, how: Claimed) -> RunEnd {
        if keeper.lost.is_cancelled() {
            return RunEnd::LeaseLost;
        }
        if Instant::now() >= keeper.safe_until() {
            // The lease may have expired while this run waited (behind an
            // earlier plan of its scope, through a store outage that failed
            // its heartbeats): another replica may hold it now. Confirm
            // before starting; if that is impossible, do not start. The row
            // is then swept and retried like a dead runner's.
            if let Err(e) = keeper.beat().await {
                warn!(error = %e, "lease not confirmed before start; not running it");
                return RunEnd::LeaseLost;
            }
        }
        info!("{}", how.verb());
        let cancel = CancellationToken::new();
        let ctx = RunContext {
            lease: keeper.lease.clone(),
            runner_id: Arc::from(self.inner.options.runner_id.as_str()),
            cancel: cancel.clone(),
            keeper: keeper.clone(),
        };
        // The handler runs inside this task: dropping its future (timeout,
        // lost lease, shutdown) stops it even if it ignores its signal, and
        // a panic is caught here instead of unwinding through the scheduler.
        let handler = AssertUnwindSafe(job.run_handler(ctx)).catch_unwind();
        let end = tokio::select! {
            ran = handler => match ran {
                Ok(Ok(output)) => RunEnd::Success(output),
                Ok(Err(e)) => RunEnd::Failure(ErrorCode::HandlerError, e.to_string()),
                Err(payload) => {
                    let msg = panic_message(payload);
                    error!(panic = %msg, "handler panicked");
                    RunEnd::Failure(ErrorCode::HandlerPanic, format!("handler panicked: {msg}"))
                }
            },
            _ = tokio::time::sleep(job.run_timeout) => RunEnd::Failure(
                ErrorCode::RunTimeout,
                format!("handler exceeded run_timeout of {:?}", job.run_timeout),
            ),
            _ = keeper.lost.cancelled() => RunEnd::LeaseLost,
            _ = self.inner.hard_stop.cancelled() => RunEnd::Failure(
                ErrorCode::Canceled,
                "scheduler shut down before the handler finished".to_owned(),
            ),
        };
        // Tell a handler that kept a clone of its context why it stopped.
        cancel.cancel();
        end
    }

    /// Records how the run ended. A transient store failure is retried while
    /// the lease can still be ours, so a finished run is not mistaken for an
    /// abandoned one and executed again.
    async fn write_terminal(
        &self,
        registered: &Registered,
        keeper: &LeaseKeeper,
        end: RunEnd,
        duration: Duration,
        report: &mut TickReport,
    ) {
        let job = &registered.spec;
        let metrics = &registered.metrics;
        let lease = &keeper.lease;
        let finish = match &end {
            RunEnd::LeaseLost => {
                warn!("lease lost; no terminal write (the new holder owns the row)");
                report.lease_lost += 1;
                metrics.lease_lost();
                return;
            }
            RunEnd::Success(output) => {
                Finish::success(duration, output.rows_affected, output.result.clone())
            }
            RunEnd::Failure(code, msg) => {
                let retry_after = match code {
                    ErrorCode::Canceled => Duration::ZERO,
                    _ => job.retry_delay(lease.attempt),
                };
                Finish::failure(duration, *code, msg, retry_after)
            }
        };
        let mut backoff = Duration::from_millis(50);
        loop {
            match self.inner.completer.finish(lease, &finish).await {
                Ok(()) => break,
                Err(StoreError::LeaseLost { .. }) => {
                    warn!("terminal write refused: the lease was taken over or swept meanwhile");
                    report.lease_lost += 1;
                    metrics.lease_lost();
                    return;
                }
                Err(e) if e.is_transient() && Instant::now() + backoff < keeper.safe_until() => {
                    warn!(error = %e, retry_in = ?backoff, "terminal write failed; retrying while the lease is ours");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    // Invalid input never succeeds on a retry; a transient
                    // failure stops being retried once the lease may be
                    // another runner's.
                    error!(error = %e, "terminal write failed; giving up (the sweep will close the row)");
                    report.errors += 1;
                    return;
                }
            }
        }
        match end {
            RunEnd::Success(output) => {
                info!(
                    rows_affected = output.rows_affected,
                    duration_ms = finish.duration_ms(),
                    "succeeded"
                );
                report.succeeded += 1;
                metrics.succeeded();
            }
            RunEnd::Failure(code, msg) => {
                metrics.failed(code);
                let will_retry = lease.attempt < lease.max_attempts;
                warn!(error_code = %code, error = %msg, will_retry, duration_ms = finish.duration_ms(), "failed");
                report.failed += 1;
                if will_retry {
                    let at = Instant::now() + job.retry_delay(lease.attempt);
                    let mut local = self.inner.local.lock().expect("local lock");
                    local.retry_wake = Some(local.retry_wake.map_or(at, |w| w.min(at)));
                }
            }
            RunEnd::LeaseLost => unreachable!("returned above"),
        }
    }
}

fn execution_span(runner: &str, lease: &Lease) -> tracing::Span {
    info_span!(
        "execution",
        runner = %runner,
        job = %lease.job_name,
        scope = %lease.scope,
        plan_time = %lease.plan_time,
        attempt = lease.attempt,
        execution_id = %lease.id,
    )
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(s) => (*s).to_owned(),
            Err(_) => "non-string panic payload".to_owned(),
        },
    }
}
