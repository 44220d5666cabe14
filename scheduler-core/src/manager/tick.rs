//! One tick: announce this replica when due (see `announce`), then, for
//! each job, resolve its scopes, sweep its stale leases, pick the scopes
//! this replica may work on, plan, claim, and hand what was won to the
//! executor.

use std::collections::BTreeMap;
use std::sync::Arc;

use time::OffsetDateTime;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{error, info_span, warn, Instrument};

use super::{Manager, Registered, TickReport};
use crate::model::{ClaimKind, ClaimRequest, Lease, PlanKey, Scope};

/// Store time as read at the start of a tick, and when: an estimate of
/// store time later in the tick without another round trip.
#[derive(Debug, Clone, Copy)]
pub(super) struct StoreClock {
    pub(super) now: OffsetDateTime,
    pub(super) at: Instant,
}

impl StoreClock {
    pub(super) fn estimate(&self) -> OffsetDateTime {
        self.now + self.at.elapsed()
    }
}

/// What one tick leaves for the run loop.
pub(super) struct TickOutcome {
    pub(super) report: TickReport,
    /// Store time the tick read.
    pub(super) now: Option<OffsetDateTime>,
    /// The earliest store-time instant at which a new plan becomes eligible.
    pub(super) next_due: Option<OffsetDateTime>,
    /// Work was left unclaimed for lack of capacity, a busy scope or the
    /// per-tick cap: tick again as soon as something finishes.
    pub(super) backlog: bool,
}

impl Manager {
    /// One tick over every registered job, spawning the runs it won into
    /// `tasks`.
    pub(super) async fn tick(&self, tasks: &mut JoinSet<TickReport>) -> TickOutcome {
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
        self.announce_if_due(&mut out).await;
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
        let Some(scopes) = self.resolve_scopes(job, clock.now, out).await else {
            return;
        };
        // Close abandoned leases first, for every job: the FAILED audit row
        // is what alerts on a dead runner, and (for reentrant jobs) what lets
        // a retry pick the plan up again.
        self.sweep(job, out).await;
        let scopes = self.workable_scopes(job, scopes, out);
        if scopes.is_empty() {
            return;
        }
        let planned = if job.spec.planner.is_some() {
            self.plan_custom(&job.spec, &scopes, clock.now, out).await
        } else {
            self.plan_cadence(job, &scopes, clock.now, out).await
        };
        let Some(mut keys) = planned else { return };
        let free = self.free_capacity();
        if keys.len() > free {
            out.backlog = true;
            keys.truncate(free);
        }
        if keys.is_empty() {
            return;
        }
        let Some(won) = self.claim(job, &keys, out).await else {
            return;
        };
        for (scope, mut leases) in won {
            leases.sort_by_key(|(l, _)| l.plan_time);
            job.busy.lock().expect("busy lock").insert(scope.clone());
            self.inner.local.lock().expect("local lock").in_flight += leases.len();
            let runs = self.prepare_runs(&job.spec, leases, clock);
            let this = self.clone();
            let job = job.clone();
            tasks.spawn(async move { this.run_scope(job, scope, runs).await });
        }
    }

    /// The job's scopes this tick, without those that can never be stored
    /// (skipped with an error log and a metric, so the others still run);
    /// `None` when the scope provider failed.
    async fn resolve_scopes(
        &self,
        job: &Registered,
        now: OffsetDateTime,
        out: &mut TickOutcome,
    ) -> Option<Vec<Scope>> {
        let scopes = match job.spec.scopes.resolve(now).await {
            Ok(scopes) => scopes,
            Err(e) => {
                warn!(error = %e, "scope provider failed; job skipped this tick");
                out.report.errors += 1;
                return None;
            }
        };
        Some(
            scopes
                .into_iter()
                .filter(|s| match s.storage_problem() {
                    Some(problem) => {
                        error!("{problem}; scope skipped, the job's other scopes run");
                        job.metrics.scopes_skipped.increment(1);
                        false
                    }
                    None => true,
                })
                .collect(),
        )
    }

    /// Closes the job's stale leases (the rescuer's part of a tick).
    async fn sweep(&self, job: &Registered, out: &mut TickOutcome) {
        let spec = &job.spec;
        match self
            .inner
            .store
            .sweep_stale(&spec.name, spec.allow_stale_reentry)
            .await
        {
            Ok(n) => {
                job.metrics.stale_running.set(n as f64);
                if n > 0 {
                    warn!(
                        rows = n,
                        reentrant = spec.allow_stale_reentry,
                        "closed abandoned RUNNING leases"
                    );
                    out.report.swept += n;
                }
            }
            Err(e) => {
                warn!(error = %e, "sweep failed");
                out.report.errors += 1;
            }
        }
    }

    /// The scopes this replica may claim for now: not busy here (a scope's
    /// plans run one at a time, in plan order, within a process), rotated
    /// to this replica's offset. Replicas with less free capacity than
    /// there is work thus start at different points of the scope list, so
    /// their batches mostly hold different keys instead of all racing for
    /// the same first ones.
    fn workable_scopes(
        &self,
        job: &Registered,
        scopes: Vec<Scope>,
        out: &mut TickOutcome,
    ) -> Vec<Scope> {
        let before = scopes.len();
        let mut idle: Vec<Scope> = {
            let busy = job.busy.lock().expect("busy lock");
            scopes.into_iter().filter(|s| !busy.contains(s)).collect()
        };
        out.backlog |= idle.len() < before;
        if !idle.is_empty() {
            let start = (self.inner.rotation % idle.len() as u64) as usize;
            idle.rotate_left(start);
        }
        idle
    }

    /// How many more executions this replica may hold now.
    fn free_capacity(&self) -> usize {
        let local = self.inner.local.lock().expect("local lock");
        self.inner
            .options
            .max_concurrency
            .saturating_sub(local.in_flight)
    }

    /// Claims `keys` for the job in one batch, counts the outcomes, and
    /// returns the leases won by scope; `None` when the claim failed.
    async fn claim(
        &self,
        job: &Registered,
        keys: &[PlanKey],
        out: &mut TickOutcome,
    ) -> Option<BTreeMap<Scope, Vec<(Lease, ClaimKind)>>> {
        let spec = &job.spec;
        let request = ClaimRequest {
            steering: crate::model::Steering::NONE,
            job_name: &spec.name,
            runner_id: &self.inner.options.runner_id,
            max_attempts: spec.max_attempts,
            stale_timeout: spec.stale_timeout,
            allow_stale_reentry: spec.allow_stale_reentry,
            keys,
        };
        let outcomes = match self.inner.store.claim(&request).await {
            Ok(outcomes) => outcomes,
            Err(e) => {
                warn!(error = %e, keys = keys.len(), "claim failed");
                out.report.errors += 1;
                return None;
            }
        };
        {
            // Whatever the outcome, each claimed key now exists in the store:
            // later ticks need not ask for it again (retries come back
            // through `retry_due`).
            let mut known = job.known.lock().expect("known lock");
            for key in keys {
                let newest = known.entry(key.scope.clone()).or_insert(key.plan_time);
                *newest = (*newest).max(key.plan_time);
            }
        }
        let mut counts = TickReport::default();
        let mut won: BTreeMap<Scope, Vec<(Lease, ClaimKind)>> = BTreeMap::new();
        for outcome in outcomes {
            let (kind, lease) = outcome.into_parts();
            counts.count_claim(kind);
            if let Some(lease) = lease {
                won.entry(lease.scope.clone())
                    .or_default()
                    .push((lease, kind));
            }
        }
        for kind in ClaimKind::ALL {
            job.metrics.claims(kind, counts.claims(kind));
        }
        out.report += counts;
        Some(won)
    }
}
