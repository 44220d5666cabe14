//! One tick: announce this replica when due (see `announce`), read the
//! controls of every job at once (see `steering`), then, for each job,
//! resolve its scopes, sweep its stale leases, leave out what a pause
//! holds, pick the scopes this replica may work on, plan, claim, and hand
//! what was won to the executor; then claim the job's triggers and
//! backfills.

use std::collections::HashSet;
use std::sync::Arc;

use time::OffsetDateTime;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{error, info_span, warn, Instrument};

use super::steering::JobControls;
use super::{FastMap, Manager, Registered, TickReport};
use crate::job::Scopes;
use crate::model::{
    ClaimKind, ClaimRequest, LeaseRef, Origin, OverlapPolicy, PlanKey, Scope, Steering,
};

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
    /// Store time the tick read, and when.
    pub(super) now: Option<StoreClock>,
    /// The earliest store-time instant at which a new plan becomes
    /// eligible, or a pause runs out.
    pub(super) next_due: Option<OffsetDateTime>,
    /// Work was left unclaimed for lack of capacity, the per-tick cap, or a
    /// trigger or backfill not yet through: tick again as soon as something
    /// finishes.
    pub(super) backlog: bool,
    /// A scope busy here held plans back: tick again as soon as a scope's
    /// runs here are over (not at every run's end: a long run would make
    /// every short one of other jobs cost a whole tick).
    pub(super) waiting: bool,
}

impl TickOutcome {
    /// Wakes the loop at store time `at` at the latest.
    pub(super) fn wake_at(&mut self, at: OffsetDateTime) {
        self.next_due = Some(self.next_due.map_or(at, |d| d.min(at)));
    }
}

/// Whether a run of a scope in flight in this process keeps this replica
/// from claiming more of the scope until it ends: under the buffering
/// policies, the one case where what the store would answer is known (it
/// waits), so asking would be wasted. Under the others the store must see
/// the claim: it skips the plan, or replaces the run, or lets them overlap.
fn waits_for_own_runs(policy: OverlapPolicy) -> bool {
    matches!(policy, OverlapPolicy::BufferAll | OverlapPolicy::BufferOne)
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
            waiting: false,
        };
        let now = match self.inner.store.now().await {
            Ok(now) => now,
            Err(e) => {
                warn!(error = %e, "tick skipped: store time unavailable");
                out.report.errors += 1;
                return out;
            }
        };
        let clock = StoreClock {
            now,
            at: Instant::now(),
        };
        out.now = Some(clock);
        let mut jobs = self.jobs();
        let stored = self.stored_jobs(&jobs, &mut out).await;
        jobs.extend(stored);
        self.announce_if_due(&mut out).await;
        let controls = self.read_controls(&jobs, now, &mut out).await;
        for job in jobs {
            let span =
                info_span!("tick", runner = %self.inner.options.runner_id, job = %job.spec.name);
            let steering = controls.of_job(&job.spec.name, now);
            self.tick_job(&job, &steering, clock, tasks, &mut out)
                .instrument(span)
                .await;
        }
        out
    }

    async fn tick_job(
        &self,
        job: &Arc<Registered>,
        controls: &JobControls<'_>,
        clock: StoreClock,
        tasks: &mut JoinSet<TickReport>,
        out: &mut TickOutcome,
    ) {
        let Some(scopes) = self.resolve_scopes(job, clock.now, out).await else {
            return;
        };
        // Close abandoned leases, for every job, paused or not: the FAILED
        // audit row is what alerts on a dead runner, and (for reentrant
        // jobs) what lets a retry pick the plan up again.
        let mut swept = TickReport::default();
        let sweep = self.sweep(job, &mut swept);
        let claim = self.plan_and_claim(job, &scopes, controls, clock, tasks, out);
        if job.spec.allow_stale_reentry {
            // A swept row is due for a retry at once: first, so that this
            // tick's retry read finds it.
            sweep.await;
            claim.await;
        } else {
            // Nothing the claim reads depends on the sweep (its rows wait
            // for an operator, and a stale lease is no live run to
            // admission): it runs beside the claim, off the path from a
            // plan's eligibility to its handler's start.
            tokio::join!(sweep, claim);
        }
        out.report += swept;
    }

    /// The part of [`tick_job`](Self::tick_job) after the sweep: unless
    /// the job is paused, plans and claims its scheduled keys over
    /// `scopes`, then its triggers and backfills.
    async fn plan_and_claim(
        &self,
        job: &Arc<Registered>,
        scopes: &Arc<[Scope]>,
        controls: &JobControls<'_>,
        clock: StoreClock,
        tasks: &mut JoinSet<TickReport>,
        out: &mut TickOutcome,
    ) {
        if let Some(until) = controls.pause_ends() {
            out.wake_at(until);
        }
        if controls.job_paused() || job.stored.is_some_and(|s| s.paused) {
            // The store refuses every claim of the job now (a stored
            // schedule paused by its definition: this replica claims
            // nothing of it); planning it would only cost reads. Its
            // triggers and backfills wait too.
            return;
        }
        if job.spec.planner.is_none() {
            job.known.lock().expect("known lock").list(scopes);
        }
        let active = controls.without_paused(scopes);
        let workable = self.workable_scopes(job, active, out);
        if !workable.is_empty() {
            self.claim_scheduled(job, &workable, controls, clock, tasks, out)
                .await;
        }
        // Triggers and backfills name their scopes among all of the job's,
        // paused or not (a paused scope is still the job's).
        if controls.has_ad_hoc() {
            self.claim_triggers(job, scopes, controls, clock, tasks, out)
                .await;
            self.claim_backfills(job, scopes, controls, clock, tasks, out)
                .await;
        }
    }

    /// Plans the job's scheduled keys over `scopes`, claims them, and then
    /// the due retries of its triggers' and backfills' failed runs.
    async fn claim_scheduled(
        &self,
        job: &Arc<Registered>,
        scopes: &[&Scope],
        controls: &JobControls<'_>,
        clock: StoreClock,
        tasks: &mut JoinSet<TickReport>,
        out: &mut TickOutcome,
    ) {
        let planned = if job.spec.planner.is_some() {
            self.plan_custom(&job.spec, scopes, controls, clock.now, out)
                .await
        } else {
            self.plan_cadence(job, scopes, controls, clock.now, out)
                .await
        };
        let Some(planned) = planned else { return };
        let overlap = job.spec.overlap;
        let scheduled = Steering::scheduled(overlap);
        let outcomes = self
            .claim_and_start(job, planned.keys, scheduled, clock, tasks, out)
            .await;
        // A scope the cap cut may have more plans due: tick again when
        // something here ends, unless another replica's run holds it (then
        // nothing here can help).
        let held: HashSet<&Scope> = outcomes
            .iter()
            .flatten()
            .filter(|(_, kind)| *kind == ClaimKind::Busy)
            .map(|(key, _)| &key.scope)
            .collect();
        out.backlog |= planned.capped.iter().any(|s| !held.contains(s));
        if let Some(outcomes) = &outcomes {
            learn(job, outcomes);
        }
        for origin in [Origin::Trigger, Origin::Backfill] {
            let keys: Vec<PlanKey> = planned
                .ad_hoc
                .iter()
                .filter(|(o, _)| *o == origin)
                .map(|(_, key)| key.clone())
                .collect();
            // A retry is no new run of the control: the row keeps the
            // control id it was written with.
            let steering = Steering {
                overlap,
                origin,
                ..Steering::NONE
            };
            let keys = self.not_busy_here(job, keys, out);
            self.claim_and_start(job, keys, steering, clock, tasks, out)
                .await;
        }
    }

    /// The job's scopes this tick, without those that can never be stored
    /// (skipped with an error log and a metric, so the others still run);
    /// `None` when the scope provider failed. Shared with the job's spec
    /// when every scope can be stored (the usual case), not copied.
    async fn resolve_scopes(
        &self,
        job: &Registered,
        now: OffsetDateTime,
        out: &mut TickOutcome,
    ) -> Option<Arc<[Scope]>> {
        let scopes = match job.spec.scopes.resolve(now).await {
            Ok(scopes) => scopes,
            Err(e) => {
                warn!(error = %e, "scope provider failed; job skipped this tick");
                out.report.errors += 1;
                return None;
            }
        };
        let storable = || scopes.iter().all(|s| s.storage_problem().is_none());
        let all_storable = match job.spec.scopes {
            Scopes::Fixed(_) => *job.fixed_storable.get_or_init(storable),
            Scopes::Dynamic(_) => storable(),
        };
        if all_storable {
            return Some(scopes);
        }
        Some(
            scopes
                .iter()
                .filter(|s| match s.storage_problem() {
                    Some(problem) => {
                        error!("{problem}; scope skipped, the job's other scopes run");
                        job.metrics.scopes_skipped.increment(1);
                        false
                    }
                    None => true,
                })
                .cloned()
                .collect(),
        )
    }

    /// Closes the job's stale leases (the rescuer's part of a tick).
    async fn sweep(&self, job: &Registered, report: &mut TickReport) {
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
                    report.swept += n;
                }
            }
            Err(e) => {
                warn!(error = %e, "sweep failed");
                report.errors += 1;
            }
        }
    }

    /// The scopes this replica may claim for now, rotated to this
    /// replica's offset. Under a buffering overlap policy, a scope busy
    /// here is left out until its run ends (see [`waits_for_own_runs`]):
    /// its plans then run one at a time, in plan order, and no lease sits
    /// claimed while waiting behind a slow run. The rotation makes
    /// replicas with less free capacity than there is work start at
    /// different points of the scope list, so their batches mostly hold
    /// different keys instead of all racing for the same first ones.
    fn workable_scopes<'s>(
        &self,
        job: &Registered,
        scopes: Vec<&'s Scope>,
        out: &mut TickOutcome,
    ) -> Vec<&'s Scope> {
        let busy = job.busy.lock().expect("busy lock");
        // Nothing busy, nothing to leave out: a tick over a million idle
        // scopes hashes none of them.
        let mut idle = if waits_for_own_runs(job.spec.overlap) && !busy.is_empty() {
            let before = scopes.len();
            let idle: Vec<&Scope> = scopes
                .into_iter()
                .filter(|s| !busy.contains_key(*s))
                .collect();
            out.waiting |= idle.len() < before;
            idle
        } else {
            scopes
        };
        drop(busy);
        self.rotate(&mut idle);
        idle
    }

    /// Rotates `scopes` to this replica's offset (see
    /// [`workable_scopes`](Self::workable_scopes)).
    pub(super) fn rotate<T>(&self, scopes: &mut [T]) {
        if !scopes.is_empty() {
            let start = (self.inner.rotation % scopes.len() as u64) as usize;
            scopes.rotate_left(start);
        }
    }

    /// `keys` without those of scopes this replica must not claim now (see
    /// [`waits_for_own_runs`]), in their order.
    pub(super) fn not_busy_here(
        &self,
        job: &Registered,
        mut keys: Vec<PlanKey>,
        out: &mut TickOutcome,
    ) -> Vec<PlanKey> {
        if waits_for_own_runs(job.spec.overlap) {
            let before = keys.len();
            let busy = job.busy.lock().expect("busy lock");
            keys.retain(|k| !busy.contains_key(&k.scope));
            out.waiting |= keys.len() < before;
        }
        keys
    }

    /// How many more executions this replica may hold now.
    pub(super) fn free_capacity(&self) -> usize {
        let local = self.inner.local.lock().expect("local lock");
        self.inner
            .options
            .max_concurrency
            .saturating_sub(local.in_flight)
    }

    /// Claims `keys` for the job in one batch with `steering`, cut to the
    /// free capacity; counts the outcomes and starts what was won (see
    /// [`start_runs`](Self::start_runs)). A scope already running here (a
    /// policy that lets the store decide) runs beside that run, so a lease
    /// won for it never waits behind the run it may have replaced. Returns
    /// every key sent with how its claim ended, in order; `None` when the
    /// claim failed.
    pub(super) async fn claim_and_start(
        &self,
        job: &Arc<Registered>,
        mut keys: Vec<PlanKey>,
        steering: Steering,
        clock: StoreClock,
        tasks: &mut JoinSet<TickReport>,
        out: &mut TickOutcome,
    ) -> Option<Vec<(PlanKey, ClaimKind)>> {
        let free = self.free_capacity();
        if keys.len() > free {
            out.backlog = true;
            keys.truncate(free);
        }
        if keys.is_empty() {
            return Some(Vec::new());
        }
        let spec = &job.spec;
        // A stored schedule's claims name the version they were planned
        // under: the store claims nothing once another is current.
        let steering = Steering {
            schedule_version: job.stored.map(|s| s.version),
            ..steering
        };
        // Runs of the job that ended here with their terminal writes in
        // flight: over, for this claim (see `Registered::finishing`).
        let finishing: Vec<LeaseRef> = job
            .finishing
            .lock()
            .expect("finishing lock")
            .iter()
            .copied()
            .collect();
        let request = ClaimRequest {
            finishing: &finishing,
            job_name: &spec.name,
            runner_id: &self.inner.options.runner_id,
            max_attempts: spec.max_attempts,
            stale_timeout: spec.stale_timeout,
            allow_stale_reentry: spec.allow_stale_reentry,
            keys: &keys,
            steering,
        };
        let outcomes = match self.inner.store.claim(&request).await {
            Ok(outcomes) => outcomes,
            Err(e) => {
                warn!(error = %e, keys = keys.len(), origin = %steering.origin, "claim failed");
                out.report.errors += 1;
                return None;
            }
        };
        let mut counts = TickReport::default();
        let mut won = Vec::new();
        let mut ended = Vec::with_capacity(keys.len());
        for (key, outcome) in keys.into_iter().zip(outcomes) {
            let (kind, lease) = outcome.into_parts();
            counts.count_claim(kind);
            if let Some(lease) = lease {
                won.push((lease, kind));
            }
            ended.push((key, kind));
        }
        for kind in ClaimKind::ALL {
            job.metrics.claims(kind, counts.claims(kind));
        }
        out.report += counts;
        self.start_runs(job, won, steering.origin, clock, tasks);
        Some(ended)
    }
}

/// Remembers, per scope, the newest scheduled plan that now has a row
/// (later ticks need not ask for it again; retries come back through
/// `retry_due`). A plan the claim left without a row (paused, or waiting
/// for its scope) must be asked for again, so a scope learns nothing past
/// the first such plan newer than what it knew.
fn learn(job: &Registered, outcomes: &[(PlanKey, ClaimKind)]) {
    let mut known = job.known.lock().expect("known lock");
    let mut first_missing: FastMap<&Scope, OffsetDateTime> = FastMap::default();
    for (key, kind) in outcomes {
        let newer = known.get(&key.scope).is_none_or(|k| key.plan_time > k);
        if !kind.row_exists() && newer {
            let t = first_missing.entry(&key.scope).or_insert(key.plan_time);
            *t = (*t).min(key.plan_time);
        }
    }
    for (key, kind) in outcomes {
        let before_missing = first_missing
            .get(&key.scope)
            .is_none_or(|m| key.plan_time < *m);
        if kind.row_exists() && before_missing {
            known.set(&key.scope, key.plan_time);
        }
    }
}
