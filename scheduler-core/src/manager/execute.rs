//! Running what a tick won: one task per [`SCOPES_PER_TASK`] scopes runs
//! each scope's leases in plan order, its scopes side by side, each
//! handler bounded by its run timeout, its lease and shutdown, and stores
//! each terminal write through the completer while the next handler runs;
//! one task per claimed batch heartbeats its leases.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use time::OffsetDateTime;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, info_span, warn, Instrument};

use super::keeper::{AbortOnDrop, LeaseKeeper};
use super::tick::StoreClock;
use super::{BusyScope, Manager, Registered, TickReport};
use crate::error::StoreError;
use crate::job::{JobOutput, JobSpec, RunContext};
use crate::model::{ClaimKind, ErrorCode, Finish, Lease, Origin, OverlapPolicy, Scope};
use crate::plan;
use crate::time::Rfc3339;

/// The most scopes one execution task runs, side by side: a batch of 2,500
/// scopes is 79 tasks, not 2,500.
///
/// A spawn costs the tick that claimed the batch a task allocation, a
/// queue push and a join: with one task per scope, that was a fifth of
/// the instructions of the thread that ticks, which a fan-out waits on.
/// Not one task per batch: the runtime spreads tasks, not futures, over
/// its threads, so a batch needs many tasks to use every core (one per
/// batch measured no faster than one per scope), and a handler that
/// blocks its thread (it should not, but some do) holds up the other
/// scopes of its task, so a task must hold few. 32 measured fastest in
/// `benches fanout memory` (64 was slower again; figures in the README's
/// Performance section).
const SCOPES_PER_TASK: usize = 32;

/// What the log says when a run starts, by how its lease was won.
fn verb(kind: ClaimKind) -> &'static str {
    match kind {
        ClaimKind::Won => "claimed",
        ClaimKind::Retried => "retrying",
        ClaimKind::Stolen => "took over stale lease",
        ClaimKind::Conflicted
        | ClaimKind::Paused
        | ClaimKind::Busy
        | ClaimKind::Skipped
        | ClaimKind::Superseded => {
            unreachable!("only a won, retried or stolen claim yields a lease")
        }
    }
}

/// A won lease waiting for (or in) its run.
pub(super) struct ClaimedRun {
    keeper: Arc<LeaseKeeper>,
    how: ClaimKind,
    /// When the plan became eligible, for fresh claims of scheduled jobs:
    /// the start of the dispatch-lateness measurement.
    eligible_at: Option<OffsetDateTime>,
    clock: StoreClock,
}

/// How one execution ended, before its terminal write.
enum RunEnd {
    Success(JobOutput),
    Failure(ErrorCode, String),
    LeaseLost,
}

impl Manager {
    /// Starts what one claim won: each scope's leases run in plan order,
    /// the scopes side by side, [`SCOPES_PER_TASK`] to a task, and one
    /// task heartbeats every lease of the batch, each from now on, for as
    /// long as any of the batch's scopes still runs. `origin` is why they
    /// run.
    ///
    /// Heartbeats go in a task of their own, not in the scopes': a handler
    /// that blocks its thread (it should not, but some do) must not also
    /// stop its lease from being extended, or the lease would expire and
    /// the plan run twice. It is spawned before the scopes' tasks, so it
    /// never sits in the spawning thread's LIFO slot (where no other
    /// thread can steal it) behind a handler that holds that thread.
    pub(super) fn start_runs(
        &self,
        job: &Arc<Registered>,
        mut won: Vec<(Lease, ClaimKind)>,
        origin: Origin,
        clock: StoreClock,
        tasks: &mut JoinSet<TickReport>,
    ) {
        if won.is_empty() {
            return;
        }
        // Scope by scope, each scope's leases in plan order.
        won.sort_unstable_by(|(a, _), (b, _)| {
            (&a.scope, a.plan_time).cmp(&(&b.scope, b.plan_time))
        });
        let runs = self.prepare_runs(&job.spec, won, origin, clock);
        let keepers: Vec<Arc<LeaseKeeper>> = runs.iter().map(|r| r.keeper.clone()).collect();
        let interval = job.spec.heartbeat_interval;
        let late = job.metrics.heartbeats_late.clone();
        let heartbeats = Arc::new(AbortOnDrop(tokio::spawn(async move {
            LeaseKeeper::keep_alive(&keepers, interval, &late).await
        })));
        self.inner.local.lock().expect("local lock").in_flight += runs.len();
        let mut scopes: Vec<Vec<ClaimedRun>> = Vec::new();
        for run in runs {
            match scopes.last_mut() {
                Some(last) if last[0].keeper.lease.scope == run.keeper.lease.scope => {
                    last.push(run)
                }
                _ => scopes.push(vec![run]),
            }
        }
        {
            let mut busy = job.busy.lock().expect("busy lock");
            for runs in &scopes {
                *busy
                    .entry(BusyScope(runs[0].keeper.lease.clone()))
                    .or_default() += 1;
            }
        }
        let mut scopes = scopes.into_iter().peekable();
        while scopes.peek().is_some() {
            let these: Vec<Vec<ClaimedRun>> = scopes.by_ref().take(SCOPES_PER_TASK).collect();
            let this = self.clone();
            let job = job.clone();
            let heartbeats = heartbeats.clone();
            tasks.spawn(async move { this.run_scopes(job, these, heartbeats).await });
        }
    }

    /// Runs the won leases of `scopes` (one list per scope), the scopes
    /// side by side (see [`run_scope`](Self::run_scope)): the body of one
    /// execution task.
    async fn run_scopes(
        self,
        job: Arc<Registered>,
        scopes: Vec<Vec<ClaimedRun>>,
        heartbeats: Arc<AbortOnDrop<std::convert::Infallible>>,
    ) -> TickReport {
        let mut running: FuturesUnordered<_> = scopes
            .into_iter()
            .map(|runs| {
                self.clone()
                    .run_scope(job.clone(), runs, heartbeats.clone())
            })
            .collect();
        let mut report = TickReport::default();
        while let Some(ran) = running.next().await {
            report += ran;
        }
        report
    }

    /// The runs of won leases, each heartbeaten from now on (see
    /// [`LeaseKeeper::keep_alive`]); `origin` is why they run.
    fn prepare_runs(
        &self,
        job: &JobSpec,
        leases: Vec<(Lease, ClaimKind)>,
        origin: Origin,
        clock: StoreClock,
    ) -> Vec<ClaimedRun> {
        let claimed_at = Instant::now();
        leases
            .into_iter()
            .map(|(lease, how)| {
                // An operator's run was never due on the schedule: how late
                // it starts measures nothing.
                let scheduled = how == ClaimKind::Won && origin == Origin::Scheduled;
                let eligible_at = scheduled.then(|| {
                    let offset = plan::scope_offset(&job.name, &lease.scope, job.spread);
                    lease.plan_time + job.schedule_delay + offset
                });
                let span = execution_span(&self.inner.options.runner_id, &lease, origin);
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

    /// Runs one scope's won leases (at least one) in plan order, then
    /// waits for their terminal writes. A write is stored while the
    /// scope's later runs execute, and the scope is free again here (its
    /// busy mark gone, its capacity back) once its handlers have ended,
    /// before the writes are stored: a slow commit never holds up the next
    /// plan of the scope (`docs/contract.md` §7). `heartbeats` is the
    /// batch's heartbeat task: held until this scope's writes are stored,
    /// stopped once every scope of the batch has let go of it.
    async fn run_scope(
        self,
        job: Arc<Registered>,
        runs: Vec<ClaimedRun>,
        heartbeats: Arc<AbortOnDrop<std::convert::Infallible>>,
    ) -> TickReport {
        let report = if runs.len() == 1 {
            // The usual case: nothing to store alongside, so no set of
            // pending writes to make.
            let run = runs.into_iter().next().expect("one run");
            let (end, duration) = self.run_one(&job, &run, false).await;
            self.handler_ended(&job, &run.keeper, &end);
            self.scope_ended(&job, &run.keeper.lease.scope);
            self.store_end(&job, run.keeper, end, duration).await
        } else {
            // Boxed: a future is as large as its largest path, and a
            // scope's is copied whole when it is started and again when it
            // completes; in place, this rare one (a run with the writes
            // alongside it) made every scope's 1,672 bytes instead of 856.
            Box::pin(self.run_queued(&job, runs)).await
        };
        drop(heartbeats);
        report
    }

    /// [`run_scope`](Self::run_scope) for several leases of a scope: each
    /// run's terminal write is stored while the next run executes.
    async fn run_queued(&self, job: &Arc<Registered>, runs: Vec<ClaimedRun>) -> TickReport {
        let first = runs[0].keeper.lease.clone();
        let mut report = TickReport::default();
        let mut writes = FuturesUnordered::new();
        for (queued, run) in runs.into_iter().enumerate() {
            let ran = self.run_one(job, &run, queued > 0);
            let (end, duration) = alongside(ran, &mut writes, &mut report).await;
            self.handler_ended(job, &run.keeper, &end);
            writes.push(self.store_end(job, run.keeper, end, duration));
        }
        self.scope_ended(job, &first.scope);
        while let Some(written) = writes.next().await {
            report += written;
        }
        report
    }

    /// Runs one won lease's handler (`queued`: it waited behind an earlier
    /// run of its scope): how it ended and how long it took.
    async fn run_one(
        &self,
        job: &Registered,
        run: &ClaimedRun,
        queued: bool,
    ) -> (RunEnd, Duration) {
        let keeper = &run.keeper;
        if let Some(eligible_at) = run.eligible_at {
            let late = run.clock.estimate() - eligible_at;
            job.metrics
                .dispatch_lateness
                .record(Duration::try_from(late).unwrap_or_default());
        }
        let started = Instant::now();
        job.metrics.running.increment(1.0);
        let end = self
            .execute(&job.spec, keeper, run.how, queued)
            .instrument(keeper.span.clone())
            .await;
        job.metrics.running.decrement(1.0);
        let duration = started.elapsed();
        job.metrics.run_duration.record(duration);
        (end, duration)
    }

    /// Stores how a run ended, then lets go of its lease: it is no longer
    /// finishing, nor heartbeaten.
    async fn store_end(
        &self,
        job: &Registered,
        keeper: Arc<LeaseKeeper>,
        end: RunEnd,
        duration: Duration,
    ) -> TickReport {
        let mut report = TickReport::default();
        self.write_terminal(job, &keeper, end, duration, &mut report)
            .instrument(keeper.span.clone())
            .await;
        keeper.done.store(true, Ordering::Release);
        let lease = keeper.lease.lease_ref();
        job.finishing.lock().expect("finishing lock").remove(&lease);
        report
    }

    /// A run's handler has ended (`end`): its capacity is free, and a run
    /// that has a terminal write to store is finishing until it is stored
    /// (a lost lease writes nothing; a transactional job's SUCCESS is
    /// stored already). Marked before the scope can be seen free, so no
    /// claim of the job misses it.
    fn handler_ended(&self, job: &Registered, keeper: &LeaseKeeper, end: &RunEnd) {
        let writes = match end {
            RunEnd::LeaseLost => false,
            RunEnd::Success(output) => !output.committed,
            RunEnd::Failure(..) => true,
        };
        if writes {
            let lease = keeper.lease.lease_ref();
            job.finishing.lock().expect("finishing lock").insert(lease);
        }
        self.inner.local.lock().expect("local lock").in_flight -= 1;
        self.inner.freed.notify_one();
    }

    /// The handlers of one task of `scope` have all ended: the scope is
    /// free here once no other task runs it.
    fn scope_ended(&self, job: &Registered, scope: &Scope) {
        {
            let mut busy = job.busy.lock().expect("busy lock");
            if let Some(tasks) = busy.get_mut(scope) {
                *tasks -= 1;
                if *tasks == 0 {
                    busy.remove(scope);
                }
            }
        }
        self.inner.scope_freed.notify_one();
    }

    /// Runs the handler, bounded by the run timeout, the lease and shutdown.
    /// `queued`: the run waited behind an earlier one of its scope.
    async fn execute(
        &self,
        job: &Arc<JobSpec>,
        keeper: &Arc<LeaseKeeper>,
        how: ClaimKind,
        queued: bool,
    ) -> RunEnd {
        if keeper.lost.is_cancelled() {
            return RunEnd::LeaseLost;
        }
        // Under cancel_other another replica's newer plan may have ended a
        // lease while it waited, live as it was: confirm it rather than
        // start a replaced run until its next heartbeat.
        let replaceable = queued && job.overlap == OverlapPolicy::CancelOther;
        if replaceable || Instant::now() >= keeper.safe_until() {
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
        info!("{}", verb(how));
        let cancel = CancellationToken::new();
        let ctx = RunContext::new(
            keeper.lease.clone(),
            self.inner.runner_id.clone(),
            cancel.clone(),
            keeper.clone(),
            job.arguments.clone(),
        );
        // The handler runs inside this task: dropping its future (timeout,
        // lost lease, shutdown) stops it even if it ignores its signal, and
        // a panic is caught here instead of unwinding through the scheduler.
        let handler = AssertUnwindSafe(job.run_handler(ctx)).catch_unwind();
        let end = tokio::select! {
            // The handler first: a transactional job's output that is
            // ready is committed already, whatever else fired meanwhile (a
            // heartbeat queued behind its commit finds the row SUCCESS and
            // reports the lease lost).
            biased;
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
                record_outcome("LEASE_LOST", Some(ErrorCode::LeaseLost));
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
        // A transactional job's SUCCESS is already committed with its
        // effects: writing it again would find the lease gone.
        let committed = matches!(&end, RunEnd::Success(output) if output.committed);
        let mut backoff = Duration::from_millis(50);
        if !committed {
            loop {
                match self.inner.completer.finish(lease, &finish).await {
                    Ok(()) => break,
                    Err(StoreError::LeaseLost { .. }) => {
                        warn!(
                            "terminal write refused: the lease was taken over or swept meanwhile"
                        );
                        record_outcome("LEASE_LOST", Some(ErrorCode::LeaseLost));
                        report.lease_lost += 1;
                        metrics.lease_lost();
                        return;
                    }
                    Err(e)
                        if e.is_transient() && Instant::now() + backoff < keeper.safe_until() =>
                    {
                        warn!(error = %e, retry_in = ?backoff, "terminal write failed; retrying while the lease is ours");
                        // Boxed: in place, the rare retry's timer would
                        // make every scope's future larger (see `run_scope`).
                        Box::pin(tokio::time::sleep(backoff)).await;
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
        }
        match end {
            RunEnd::Success(output) => {
                info!(
                    rows_affected = output.rows_affected,
                    duration_ms = finish.duration_ms(),
                    "succeeded"
                );
                record_outcome("SUCCESS", None);
                report.succeeded += 1;
                metrics.succeeded();
            }
            RunEnd::Failure(code, msg) => {
                record_outcome("FAILED", Some(code));
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

/// The span every log line of one execution is in. `outcome` and
/// `error_code` are recorded when the run ends; `otel.kind` and
/// `otel.status_code` are the fields an OpenTelemetry layer
/// (`tracing-opentelemetry`, see the `telemetry` module) maps onto the
/// exported span's kind and status.
fn execution_span(runner: &str, lease: &Lease, origin: Origin) -> tracing::Span {
    info_span!(
        "execution",
        runner = %runner,
        job = %lease.job_name,
        scope = %lease.scope,
        plan_time = %Rfc3339(lease.plan_time),
        attempt = lease.attempt,
        origin = %origin,
        execution_id = %lease.id,
        outcome = tracing::field::Empty,
        error_code = tracing::field::Empty,
        otel.kind = "internal",
        otel.status_code = tracing::field::Empty,
    )
}

/// Records how the run ended on its span.
fn record_outcome(outcome: &str, error_code: Option<ErrorCode>) {
    let span = tracing::Span::current();
    span.record("outcome", outcome);
    if let Some(code) = error_code {
        span.record("error_code", code.as_str());
        span.record("otel.status_code", "ERROR");
    } else {
        span.record("otel.status_code", "OK");
    }
}

/// Runs `run` to its end while storing the terminal writes already
/// pending, adding their reports to `report`: an earlier run's slow write
/// never holds up the next run of the scope.
async fn alongside<T>(
    run: impl Future<Output = T>,
    writes: &mut FuturesUnordered<impl Future<Output = TickReport>>,
    report: &mut TickReport,
) -> T {
    tokio::pin!(run);
    loop {
        tokio::select! {
            biased;
            out = &mut run => return out,
            Some(written) = writes.next(), if !writes.is_empty() => *report += written,
        }
    }
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
