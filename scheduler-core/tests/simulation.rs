//! A deterministic simulated cluster: replicas that crash and restart, a
//! store that goes away, a store clock that jumps, handlers that succeed,
//! fail, panic, hang or run long, an operator who pauses, resumes,
//! triggers and backfills jobs, over 30 simulated days per seed, with the
//! scheduler's invariants checked after every step and at the end.
//!
//! `SIM_SEEDS=N` runs seeds 1..=N: by default 4, so a newcomer's
//! `cargo test --workspace` stays quick; 20 with `SCHEDULER_LONG_TESTS=1`
//! (CI sets it). `SIM_SEED=K` replays one.
//! A failing seed is printed so it can be replayed.

use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use scheduler_core::model::{
    Control, ControlAction, ControlChange, ControlRead, ControlState, NewControl, Origin,
    OverlapPolicy, ScheduleForm,
};
use scheduler_core::plan::Schedule;
use scheduler_core::time::TimeControl;
use scheduler_core::{
    BoxError, CatchUpMode, Clock, Execution, ExecutionAudit, JobOutput, JobSpec, LeaseStore,
    Manager, ManagerOptions, RunContext, ScheduleDefinition, ScheduleOptions, ScheduleWrite, Scope,
    Scopes, Status, StoreError, StoredScopes, TickReport, TokioClock,
};
use scheduler_memory::MemoryLeaseStore;
use time::macros::datetime;
use time::OffsetDateTime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

const DAYS: u64 = 30;
const REPLICAS: usize = 4;
const MIN: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const START: OffsetDateTime = datetime!(2026-01-05 00:00 UTC);

/// SplitMix64: a tiny, well-known seeded generator, so a seed replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// How a handler behaves for one (job, scope, plan, attempt): a pure
/// function of the seed, so it does not depend on which replica runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Succeed(u64),
    Fail,
    Panic,
    Hang,
    LongWithHeartbeats,
}

fn behaviour(seed: u64, job: &str, scope: &Scope, plan: OffsetDateTime, attempt: i32) -> Behaviour {
    let mut h = seed ^ 0xcbf2_9ce4_8422_2325;
    for b in job
        .bytes()
        .chain(scope.id.bytes())
        .chain(plan.unix_timestamp().to_le_bytes())
        .chain(attempt.to_le_bytes())
    {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut rng = Rng(h);
    match rng.below(100) {
        0..=64 => Behaviour::Succeed(1 + rng.below(20)),
        65..=74 => Behaviour::Fail,
        75..=79 => Behaviour::Panic,
        80..=84 => Behaviour::Hang,
        _ => Behaviour::LongWithHeartbeats,
    }
}

type Key = (String, Scope, OffsetDateTime);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Ok,
    Err,
    Panic,
    /// The future was dropped: run timeout or lease loss while its replica
    /// lived (`alive`), or the replica crashed (`!alive`).
    Dropped {
        alive: bool,
    },
}

#[derive(Debug, Clone)]
struct Run {
    key: Key,
    attempt: i32,
    execution_id: Uuid,
    token: Uuid,
    /// Store time of the claim that granted the lease.
    claimed: OffsetDateTime,
    started: OffsetDateTime,
    end: Option<(End, OffsetDateTime)>,
    /// For a stored schedule's run: the `rev` argument of the version it
    /// ran under (see [`Written`]).
    rev: Option<u64>,
}

#[derive(Default)]
struct Ledger {
    runs: Vec<Run>,
    /// Runs that have not ended yet.
    open: std::collections::BTreeSet<usize>,
    /// Every (key, attempt) started: each claim increments the attempt, so
    /// one attempt number may start only once.
    started: std::collections::HashSet<(Key, i32)>,
    /// Invariant breaks noticed inside handlers, where asserting would only
    /// turn them into handler panics.
    violations: Vec<String>,
    /// Runs before this index had their claim checked against the pauses.
    claims_checked: usize,
}

struct Sim {
    seed: u64,
    clock: TokioClock,
    ledger: Mutex<Ledger>,
    /// Windows when the store refused every call.
    outages: Mutex<Vec<(OffsetDateTime, OffsetDateTime)>>,
    /// When store time jumped forward, and by how much.
    jumps: Mutex<Vec<(OffsetDateTime, Duration)>>,
    /// Every version of a stored schedule the operator wrote.
    written: Mutex<Vec<Written>>,
}

/// The kind of the stored schedules the simulated operator manages, and
/// their names. Replica 0 is an older build without the kind: it skips
/// them, and the others run them.
const KIND: &str = "sim_report";
const STORED: [&str; 2] = ["stored_a", "stored_b"];

/// One version of a stored schedule: current from `from` (its
/// `updated_at`) until the next write of its name, if any.
#[derive(Debug, Clone)]
struct Written {
    name: &'static str,
    version: i64,
    /// Its `rev` argument, unique over the whole run: what a run reports.
    rev: u64,
    from: OffsetDateTime,
    until: Option<OffsetDateTime>,
    definition: ScheduleDefinition,
}

/// Records the run's end when its future completes or is dropped.
struct RunGuard {
    sim: Arc<Sim>,
    index: usize,
    alive: Arc<AtomicBool>,
    done: bool,
}

impl RunGuard {
    fn end(&mut self, end: End) {
        self.done = true;
        let now = self.sim.clock.now();
        let mut ledger = self.sim.ledger.lock().unwrap();
        ledger.runs[self.index].end = Some((end, now));
        ledger.open.remove(&self.index);
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        if !self.done {
            let alive = self.alive.load(Ordering::SeqCst);
            self.end(End::Dropped { alive });
        }
    }
}

struct JobDef {
    name: &'static str,
    scopes: usize,
    mode: CatchUpMode,
    cadence: Duration,
    window: Duration,
    max_plans: usize,
    reentrant: bool,
    spread: Duration,
    custom: bool,
    cron: Option<&'static str>,
    overlap: OverlapPolicy,
    /// Runs last 5 to 100 minutes, a hung one its whole run timeout, as
    /// long as the cadence: plans come due while the previous one still
    /// runs, which the overlap policy decides.
    slow: bool,
}

/// How long a slow job's run lasts at most, and its run timeout.
const SLOW_RUN: Duration = Duration::from_secs(2 * 3600);

impl JobDef {
    /// The heartbeat interval: how long a run `cancel_other` replaced may
    /// go on. Slow jobs beat less often, so that their long runs do not
    /// make the simulation slow.
    fn heartbeat(&self) -> Duration {
        if self.slow {
            10 * MIN
        } else {
            Duration::from_secs(30)
        }
    }
}

fn job_defs() -> Vec<JobDef> {
    use CatchUpMode::{EveryPlan as Every, LatestOnly as Latest};
    let z = Duration::ZERO;
    // name, scopes, mode, cadence, catch-up window, max plans per tick, reentrant
    let table = [
        ("latest_reentrant", 3, Latest, HOUR, z, 0, true),
        ("latest_once", 2, Latest, 2 * HOUR, z, 0, false),
        ("every_reentrant", 3, Every, 40 * MIN, 6 * HOUR, 4, true),
        ("every_once", 2, Every, 90 * MIN, 12 * HOUR, 3, false),
        ("custom_planner", 2, Latest, 2 * HOUR, z, 0, true),
        ("every_hourly", 1, Every, HOUR, 24 * HOUR, 6, true),
        ("latest_spread", 1, Latest, 30 * MIN, z, 0, true),
        ("every_spread", 4, Every, HOUR, 3 * HOUR, 2, true),
        ("cron_latest", 1, Latest, 2 * HOUR, z, 0, true),
        ("every_once_slow", 2, Every, 2 * HOUR, 24 * HOUR, 12, false),
        ("slow_skip", 1, Every, 2 * HOUR, 12 * HOUR, 3, true),
        ("slow_buffer_one", 1, Every, 2 * HOUR, 12 * HOUR, 3, true),
        ("slow_cancel", 1, Every, 2 * HOUR, 12 * HOUR, 3, true),
    ];
    table
        .into_iter()
        .map(
            |(name, scopes, mode, cadence, window, max_plans, reentrant)| JobDef {
                name,
                scopes,
                mode,
                cadence,
                window,
                max_plans,
                reentrant,
                spread: match name {
                    "latest_spread" => 5 * MIN,
                    "every_spread" => 10 * MIN,
                    _ => z,
                },
                custom: name == "custom_planner",
                cron: (name == "cron_latest").then_some("0 */2 * * *"),
                overlap: match name {
                    "slow_skip" => OverlapPolicy::Skip,
                    "slow_buffer_one" => OverlapPolicy::BufferOne,
                    "slow_cancel" => OverlapPolicy::CancelOther,
                    "latest_spread" => OverlapPolicy::AllowAll,
                    _ => OverlapPolicy::BufferAll,
                },
                slow: name.starts_with("slow_"),
            },
        )
        .collect()
}

fn scopes(def: &JobDef) -> Vec<Scope> {
    if def.scopes == 1 {
        vec![Scope::global()]
    } else {
        (0..def.scopes)
            .map(|i| Scope::new("tenant", format!("t{i}")))
            .collect()
    }
}

/// A handler that records each run in the ledger and behaves as
/// [`behaviour`] says, `stretch` times slower.
fn handler(
    sim: &Arc<Sim>,
    alive: &Arc<AtomicBool>,
    stretch: u64,
) -> impl Fn(RunContext) -> BoxFuture<'static, Result<JobOutput, BoxError>> + Send + Sync + 'static
{
    let (sim, alive) = (sim.clone(), alive.clone());
    move |ctx: RunContext| {
        let (sim, alive) = (sim.clone(), alive.clone());
        let name = ctx.job_name().to_owned();
        let key = (name.clone(), ctx.scope().clone(), ctx.plan_time());
        let index = {
            let mut ledger = sim.ledger.lock().unwrap();
            if !ledger.started.insert((key.clone(), ctx.attempt())) {
                let msg = format!("attempt {} of {key:?} started twice", ctx.attempt());
                ledger.violations.push(msg);
            }
            ledger.runs.push(Run {
                key,
                attempt: ctx.attempt(),
                execution_id: ctx.execution_id(),
                token: ctx.lease_token(),
                claimed: ctx.lease().started_at,
                started: sim.clock.now(),
                end: None,
                rev: ctx.arguments().get("rev").and_then(|r| r.as_u64()),
            });
            let index = ledger.runs.len() - 1;
            ledger.open.insert(index);
            index
        };
        let mut guard = RunGuard {
            sim: sim.clone(),
            index,
            alive,
            done: false,
        };
        let how = behaviour(sim.seed, &name, ctx.scope(), ctx.plan_time(), ctx.attempt());
        async move {
            match how {
                Behaviour::Succeed(secs) => {
                    tokio::time::sleep(Duration::from_secs(secs * stretch)).await;
                    guard.end(End::Ok);
                    Ok(JobOutput::rows(1))
                }
                Behaviour::Fail => {
                    guard.end(End::Err);
                    Err::<JobOutput, BoxError>("simulated failure".into())
                }
                Behaviour::Panic => {
                    guard.end(End::Panic);
                    panic!("simulated panic");
                }
                Behaviour::Hang => {
                    std::future::pending::<()>().await;
                    unreachable!("a pending future never completes")
                }
                Behaviour::LongWithHeartbeats => {
                    for _ in 0..4 {
                        tokio::time::sleep(Duration::from_secs(25)).await;
                        let _ = ctx.heartbeat().await;
                    }
                    guard.end(End::Ok);
                    Ok(JobOutput::rows(2))
                }
            }
        }
        .boxed()
    }
}

fn spec(def: &JobDef, sim: &Arc<Sim>, alive: &Arc<AtomicBool>) -> JobSpec {
    let stretch = if def.slow { 300 } else { 1 };
    let mut spec = JobSpec::new(
        def.name,
        Scopes::fixed(scopes(def)),
        handler(sim, alive, stretch),
    )
    .catch_up(def.mode)
    .catch_up_window(def.window)
    .max_plans_per_tick(def.max_plans)
    .allow_stale_reentry(def.reentrant)
    .spread(def.spread)
    .max_attempts(3)
    .retry_backoff(vec![MIN, 5 * MIN])
    .overlap(def.overlap)
    .heartbeat_interval(def.heartbeat());
    spec = if def.slow {
        spec.run_timeout(SLOW_RUN).stale_timeout(SLOW_RUN + 5 * MIN)
    } else {
        spec.run_timeout(2 * MIN).stale_timeout(5 * MIN)
    };
    spec = match (def.cron, def.custom) {
        (Some(expr), _) => spec.cron(expr, "UTC"),
        (None, true) => {
            let cadence = def.cadence;
            spec.cadence(Duration::ZERO)
                .planner(move |_, now, _| vec![scheduler_core::plan::floor(now, cadence)])
        }
        (None, false) => spec.cadence(def.cadence),
    };
    spec
}

struct Replica {
    alive: Arc<AtomicBool>,
    runner: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<TickReport>>,
}

fn start(sim: &Arc<Sim>, store: &Arc<MemoryLeaseStore>, index: usize, generation: u32) -> Replica {
    let alive = Arc::new(AtomicBool::new(true));
    let runner = format!("r{index}g{generation}");
    let manager = Manager::new(
        store.clone(),
        ManagerOptions {
            runner_id: runner.clone(),
            tick_interval: HOUR,
            max_concurrency: 16,
            shutdown_grace: MIN,
        },
    )
    .expect("valid manager options");
    for def in job_defs() {
        manager.register(spec(&def, sim, &alive)).unwrap();
    }
    if index != 0 {
        manager
            .register_kind(KIND, handler(sim, &alive, 1))
            .unwrap();
    }
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        manager
            .run(async {
                let _ = stopped.await;
            })
            .await
    });
    Replica {
        alive,
        runner,
        stop: Some(stop),
        task: Some(task),
    }
}

fn crash(replica: &mut Replica) {
    replica.alive.store(false, Ordering::SeqCst);
    if let Some(task) = replica.task.take() {
        task.abort();
    }
}

/// Every control stored, ended or not.
async fn all_controls(store: &MemoryLeaseStore) -> Vec<Control> {
    let every = ControlRead {
        jobs: None,
        ended_since: Some(time::PrimitiveDateTime::MIN.assume_utc()),
    };
    store.controls(&every).await.unwrap()
}

/// The pause of `(job, scope)` in force at `at`, if any: strictly after it
/// was stored (a claim of the same instant may have come first) and before
/// it ended or ran out.
fn pause_at<'a>(
    controls: &'a [Control],
    job: &str,
    scope: &Scope,
    at: OffsetDateTime,
) -> Option<&'a Control> {
    controls.iter().find(|c| {
        let ControlAction::Pause { until, .. } = c.action else {
            return false;
        };
        let end = match (c.ended_at, until) {
            (Some(ended), Some(until)) => Some(ended.min(until)),
            (ended, until) => ended.or(until),
        };
        c.job_name == job && c.covers(scope) && c.created_at < at && end.is_none_or(|e| at < e)
    })
}

/// Whether an outage or a clock jump between `from` and `to` may have let a
/// lease lapse while its handler went on (the store cannot tell).
fn lease_may_have_lapsed(sim: &Sim, from: OffsetDateTime, to: OffsetDateTime) -> bool {
    let outages = sim.outages.lock().unwrap();
    let jumps = sim.jumps.lock().unwrap();
    outages.iter().any(|(f, t)| *f <= to && *t >= from)
        || jumps.iter().any(|(at, _)| *at >= from && *at <= to)
}

/// Whether a scheduled run of a scope may still run at `until` beside
/// `later`, a run of the scope that started after it, under the job's
/// overlap policy: always under `allow_all`; under `cancel_other` for one
/// heartbeat interval, until it notices that its lease is gone; else only
/// when a lease may have lapsed unnoticed since either was claimed.
fn overlap_allowed(
    sim: &Sim,
    def: &JobDef,
    earlier: &Run,
    later: &Run,
    until: OffsetDateTime,
) -> bool {
    def.overlap == OverlapPolicy::AllowAll
        || (def.overlap == OverlapPolicy::CancelOther
            && until <= later.started + def.heartbeat() + Duration::from_secs(1))
        || lease_may_have_lapsed(sim, earlier.claimed.min(later.claimed), until)
}

/// Invariants that hold at every moment, cheap enough for every step.
async fn check_now(store: &MemoryLeaseStore, sim: &Sim) {
    let (open, claimed): (Vec<Run>, Vec<Run>) = {
        let mut ledger = sim.ledger.lock().unwrap();
        assert!(ledger.violations.is_empty(), "{:?}", ledger.violations);
        let open = ledger
            .open
            .iter()
            .map(|&i| ledger.runs[i].clone())
            .collect();
        let claimed = ledger.runs[ledger.claims_checked..].to_vec();
        ledger.claims_checked = ledger.runs.len();
        (open, claimed)
    };
    // No run started since the last step was claimed during a pause of
    // its target (the rows the overlap policy skipped are checked at the
    // end).
    let controls = all_controls(store).await;
    for run in &claimed {
        let (job, scope, _) = &run.key;
        let pause = pause_at(&controls, job, scope, run.claimed);
        assert!(pause.is_none(), "{run:?} claimed during {pause:?}");
    }
    // At most one live lease per key among the handlers running now.
    let mut live: HashMap<&Key, usize> = HashMap::new();
    // The scheduled runs of each (job, scope) running now.
    let mut scheduled: BTreeMap<(&str, &Scope), Vec<&Run>> = BTreeMap::new();
    for run in &open {
        let row = store
            .get_execution(run.execution_id)
            .await
            .unwrap()
            .unwrap();
        if row.status == Status::Running && row.lease_token == run.token {
            *live.entry(&run.key).or_default() += 1;
        }
        if row.origin == Origin::Scheduled {
            let (job, scope, _) = &run.key;
            scheduled.entry((job, scope)).or_default().push(run);
        }
    }
    assert!(
        live.values().all(|n| *n <= 1),
        "two live leases on one key: {live:?}"
    );
    // The overlap policy holds across replicas.
    let now = sim.clock.now();
    let defs = job_defs();
    for ((job, _), mut runs) in scheduled {
        // Stored schedules buffer (the default): checked at the end.
        let Some(def) = defs.iter().find(|d| d.name == job) else {
            continue;
        };
        runs.sort_by_key(|r| r.started);
        for pair in runs.windows(2) {
            assert!(
                overlap_allowed(sim, def, pair[0], pair[1], now),
                "{} runs of one scope at once under {}: {pair:#?}",
                job,
                def.overlap
            );
        }
    }
}

/// Invariants over every row: attempts within the budget, SUCCESS final.
fn check_rows(store: &MemoryLeaseStore, successes: &mut HashMap<Uuid, Execution>) {
    for row in store.executions() {
        assert!(
            row.attempt <= row.max_attempts,
            "attempts exceed the max: {row:?}"
        );
        if row.status == Status::Success {
            let first = successes.entry(row.id).or_insert_with(|| row.clone());
            assert_eq!(first, &row, "a SUCCESS row changed");
        }
    }
}

/// Invariants over the whole history, after a clean shutdown.
fn check_at_end(
    store: &MemoryLeaseStore,
    sim: &Sim,
    end: OffsetDateTime,
    stopped: &[String],
    controls: &[Control],
) {
    let rows = store.executions();
    let defs = job_defs();
    let by_key: HashMap<Key, &Execution> = rows
        .iter()
        .map(|r| ((r.job_name.to_string(), r.scope.clone(), r.plan_time), r))
        .collect();
    let ledger = sim.ledger.lock().unwrap();
    let outages = sim.outages.lock().unwrap();
    let mut runs_of: BTreeMap<&Key, Vec<&Run>> = BTreeMap::new();
    for run in &ledger.runs {
        runs_of.entry(&run.key).or_default().push(run);
    }
    // In attempt order: a queued attempt may start after a later one.
    for runs in runs_of.values_mut() {
        runs.sort_by_key(|r| r.attempt);
    }
    // A clean shutdown leaves nothing RUNNING.
    let left: Vec<_> = rows
        .iter()
        .filter(|r| {
            r.status == Status::Running
                && stopped
                    .iter()
                    .any(|s| r.runner_id.as_deref() == Some(s.as_str()))
        })
        .collect();
    assert!(
        left.is_empty(),
        "a clean shutdown left rows RUNNING: {left:?}"
    );
    for row in &rows {
        let key = (row.job_name.to_string(), row.scope.clone(), row.plan_time);
        let runs = runs_of.get(&key).cloned().unwrap_or_default();
        // A handler that did not return Ok never yields SUCCESS.
        if row.status == Status::Success {
            assert!(
                runs.iter()
                    .any(|r| r.token == row.lease_token && matches!(r.end, Some((End::Ok, _)))),
                "SUCCESS without an Ok run holding its token: {row:?}"
            );
        }
        // A run that returned Ok is only repeated when its terminal write
        // truly failed and its lease expired: the store was down, or store
        // time jumped past the lease, while it ran or before the next start.
        let jumps = sim.jumps.lock().unwrap();
        let oks: Vec<&&Run> = runs
            .iter()
            .filter(|r| matches!(r.end, Some((End::Ok, _))))
            .collect();
        for run in &oks {
            let (_, returned) = run.end.unwrap();
            if let Some(later) = runs.iter().find(|r| r.started > returned) {
                // The lease was claimed at or after the plan time; anything
                // that could expire it since then excuses the repeat.
                let (from, to) = (key.2, later.started);
                let excused = outages.iter().any(|(f, t)| *f <= to && *t >= from)
                    || jumps.iter().any(|(at, _)| *at >= from && *at <= to);
                assert!(
                    excused,
                    "{key:?}: ran again at {to} after returning Ok at {returned}, with no outage or clock jump to expire its lease; runs: {runs:#?}; row: {row:#?}",
                );
            }
        }
    }
    for row in &rows {
        let key = (row.job_name.to_string(), row.scope.clone(), row.plan_time);
        let runs = runs_of.get(&key).cloned().unwrap_or_default();
        // A non-reentrant job never restarts a plan whose runner vanished.
        let reentrant = match defs.iter().find(|d| d.name == row.job_name) {
            Some(def) => def.reentrant,
            None => stored_reentrant(sim, &runs),
        };
        if !reentrant {
            for pair in runs.windows(2) {
                let crashed =
                    matches!(pair[0].end, Some((End::Dropped { alive: false }, _)) | None);
                assert!(
                    !crashed,
                    "{key:?}: non-reentrant plan restarted after its runner vanished: {pair:?}"
                );
            }
        }
    }
    // Every every_plan plan inside the catch-up window exists and is
    // terminal, triggers notwithstanding, but for those a resume skipped.
    for def in defs.iter().filter(|d| d.mode == CatchUpMode::EveryPlan) {
        // A slow job's plan may wait for a run as long as its timeout.
        let margin = if def.slow {
            SLOW_RUN + def.cadence
        } else {
            Duration::ZERO
        };
        for scope in scopes(def) {
            let skipped = |t: OffsetDateTime| {
                controls.iter().any(|c| {
                    c.job_name == def.name
                        && c.covers(&scope)
                        && c.skip_window(end).is_some_and(|(f, to)| f <= t && t < to)
                })
            };
            let mut t = scheduler_core::plan::ceil(end - def.window, def.cadence);
            // Plans that became eligible at least a few minutes before the end.
            while t + def.spread + 5 * MIN + margin <= end {
                let key = (def.name.to_owned(), scope.clone(), t);
                let row = by_key.get(&key);
                assert!(row.is_some() || skipped(t), "lost plan {key:?}");
                if let Some(row) = row {
                    assert_ne!(row.status, Status::Running, "{key:?} not terminal");
                }
                t += def.cadence;
            }
        }
    }
    // The overlap policy held across replicas over the whole history: two
    // scheduled runs of one (job, scope) never ran at once.
    drop(outages); // `overlap_allowed` reads them
    let origin: HashMap<Uuid, Origin> = rows.iter().map(|r| (r.id, r.origin)).collect();
    let mut scheduled: BTreeMap<(&str, &Scope), Vec<&Run>> = BTreeMap::new();
    for run in ledger
        .runs
        .iter()
        .filter(|r| origin.get(&r.execution_id) == Some(&Origin::Scheduled))
    {
        let (job, scope, _) = &run.key;
        scheduled.entry((job, scope)).or_default().push(run);
    }
    let ended = |run: &Run| run.end.map_or(end, |(_, at)| at);
    for ((job, _), mut runs) in scheduled {
        let Some(def) = defs.iter().find(|d| d.name == job) else {
            continue;
        };
        runs.sort_by_key(|r| r.started);
        // The runs started so far that may still run, by start.
        let mut running: Vec<&Run> = Vec::new();
        for later in runs {
            running.retain(|earlier| ended(earlier) > later.started);
            for earlier in &running {
                // The overlap lasts until the first of the two ends.
                let until = ended(earlier).min(ended(later));
                assert!(
                    overlap_allowed(sim, def, earlier, later, until),
                    "{job}: two runs of one scope at once under {}: {earlier:#?} {later:#?}",
                    def.overlap
                );
            }
            running.push(later);
        }
    }
}

/// No attempt of any row, the overlap policy's skipped rows included, was
/// claimed while a pause of its target was in force.
async fn check_pauses_at_end(store: &MemoryLeaseStore, controls: &[Control]) {
    let rows = store.executions();
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let attempts = store.attempts_of(&ids).await.unwrap();
    for (row, ended) in rows.iter().zip(attempts) {
        let starts = ended
            .iter()
            .filter_map(|a| a.started_at)
            .chain(row.started_at);
        for at in starts {
            let pause = pause_at(controls, &row.job_name, &row.scope, at);
            assert!(pause.is_none(), "claimed at {at} during {pause:?}: {row:?}");
        }
    }
}

/// Every trigger ran once for every target scope, and every backfill ran
/// every instant of its range for every target scope, and both are done;
/// those that could not be honoured were rejected.
fn check_controls_at_end(store: &MemoryLeaseStore, controls: &[Control]) {
    let rows = store.executions();
    let defs = job_defs();
    let keys: std::collections::HashSet<(&str, &Scope, OffsetDateTime)> = rows
        .iter()
        .map(|r| (r.job_name.as_str(), &r.scope, r.plan_time))
        .collect();
    for control in controls {
        let def = defs.iter().find(|d| d.name == control.job_name).unwrap();
        let ours: Vec<&Execution> = rows
            .iter()
            .filter(|r| r.control_id == Some(control.id))
            .collect();
        let all = scopes(def);
        let targets: Vec<Scope> = match &control.scope {
            Some(scope) if !all.contains(scope) => {
                assert_eq!(control.state, ControlState::Rejected, "{control:?}");
                assert!(ours.is_empty(), "{control:?}: {ours:?}");
                continue;
            }
            Some(scope) => vec![scope.clone()],
            None => all,
        };
        match control.action {
            ControlAction::Pause { .. } => {}
            ControlAction::Trigger => {
                assert_eq!(control.state, ControlState::Done, "{control:?}");
                let mut ran: Vec<Scope> = ours.iter().map(|r| r.scope.clone()).collect();
                ran.sort();
                assert_eq!(ran, targets, "{control:?}: once per target scope");
                let at = control.created_at;
                for row in &ours {
                    assert_eq!(row.origin, Origin::Trigger);
                    assert!(
                        row.plan_time == at || row.plan_time == at + time::Duration::MICROSECOND,
                        "{row:?}"
                    );
                }
            }
            ControlAction::Backfill { from, to } if def.custom => {
                assert_eq!(control.state, ControlState::Rejected, "{control:?}");
                assert!(ours.is_empty() && from < to);
            }
            ControlAction::Backfill { from, to } => {
                assert_eq!(control.state, ControlState::Done, "{control:?}");
                let mut t = scheduler_core::plan::ceil(from, def.cadence);
                while t < to {
                    for scope in &targets {
                        assert!(
                            keys.contains(&(def.name, scope, t)),
                            "{control:?}: instant {t} of {scope} has no row"
                        );
                    }
                    t += def.cadence;
                }
                for row in &ours {
                    assert_eq!(row.origin, Origin::Backfill);
                    assert!(from <= row.plan_time && row.plan_time < to, "{row:?}");
                    assert!(targets.contains(&row.scope), "{row:?}");
                }
            }
        }
    }
}

/// The run went through what the invariants are about: plans the overlap
/// policies skipped and runs they cancelled, triggers and backfills done,
/// resumes that skipped what their pause missed. (A seed where one never
/// happens would check nothing of it.)
fn check_exercised(store: &MemoryLeaseStore, controls: &[Control], end: OffsetDateTime) {
    let rows = store.executions();
    let ended_as = |job: &str, code: &str| {
        rows.iter()
            .filter(|r| r.job_name == job && r.error_code.as_deref() == Some(code))
            .count()
    };
    assert!(ended_as("slow_skip", "overlap_skipped") > 0);
    assert!(ended_as("slow_cancel", "overlap_canceled") > 0);
    let done = |kind: &str| {
        controls
            .iter()
            .filter(|c| c.action.kind() == kind && c.state == ControlState::Done)
            .count()
    };
    assert!(done("trigger") > 0 && done("backfill") > 0);
    assert!(controls.iter().any(|c| c.skip_window(end).is_some()));
}

/// Each latest_only plan that came due during the calm, every replica up
/// and nothing paused, has a row for every scope: triggers and backfills
/// running meanwhile never took a plan's place.
fn check_calm(store: &MemoryLeaseStore, calm: OffsetDateTime, end: OffsetDateTime) {
    let keys: std::collections::HashSet<(String, Scope, OffsetDateTime)> = store
        .executions()
        .into_iter()
        .map(|r| (r.job_name.to_string(), r.scope, r.plan_time))
        .collect();
    for def in job_defs()
        .iter()
        .filter(|d| d.mode == CatchUpMode::LatestOnly)
    {
        let mut t = scheduler_core::plan::ceil(calm, def.cadence);
        while t + def.spread + 5 * MIN <= end {
            for scope in scopes(def) {
                let key = (def.name.to_owned(), scope, t);
                assert!(keys.contains(&key), "calm plan {key:?} did not run");
            }
            t += def.cadence;
        }
    }
}

/// The operator's part of a step: now and then a pause (of a job or a
/// scope, with or without an end, skipping what it misses or not), the end
/// of a pause, a trigger (now and then of a scope the job does not have)
/// or a backfill of the last two days (some of a job without a schedule).
/// Slow jobs, busy most of the time, get pauses only: their triggers and
/// backfills would wait for hours.
async fn operate(store: &MemoryLeaseStore, rng: &mut Rng, now: OffsetDateTime) {
    let defs = job_defs();
    let def = &defs[rng.below(defs.len() as u64) as usize];
    let all = scopes(def);
    let mut scope = match rng.below(2) {
        0 => None,
        _ => Some(all[rng.below(all.len() as u64) as usize].clone()),
    };
    let action = match rng.below(100) {
        0..=7 => ControlAction::Pause {
            until: (rng.below(3) == 0).then(|| now + HOUR * (1 + rng.below(6) as u32)),
            skip_missed: rng.below(2) == 0,
        },
        8..=15 => {
            let active: Vec<Control> = all_controls(store)
                .await
                .into_iter()
                .filter(|c| c.is_active() && matches!(c.action, ControlAction::Pause { .. }))
                .collect();
            if let Some(pause) = active.get(rng.below(active.len().max(1) as u64) as usize) {
                end_pause(store, pause, rng).await;
            }
            return;
        }
        16..=23 if !def.slow => {
            if rng.below(10) == 0 {
                scope = Some(Scope::new("tenant", "ghost"));
            }
            ControlAction::Trigger
        }
        24..=29 if !def.slow => {
            let from = now - HOUR * (1 + rng.below(48) as u32) - MIN * rng.below(60) as u32;
            let to = (from + HOUR * (1 + rng.below(8) as u32)).min(now);
            ControlAction::Backfill { from, to }
        }
        _ => return,
    };
    let control = NewControl {
        job_name: def.name.to_owned(),
        scope,
        note: "simulated operator".to_owned(),
        action,
    };
    match store.add_control(&control).await {
        // A pause of a target already paused is refused.
        Ok(_) | Err(StoreError::Conflict(_)) => {}
        Err(e) => panic!("{control:?}: {e}"),
    }
}

/// Ends `pause`: resumed or cancelled, skipping what it missed or not.
async fn end_pause(store: &MemoryLeaseStore, pause: &Control, rng: &mut Rng) {
    let change = ControlChange::End {
        state: match rng.below(4) {
            0 => ControlState::Cancelled,
            _ => ControlState::Done,
        },
        reason: None,
        skip_missed: match rng.below(3) {
            0 => None,
            n => Some(n == 1),
        },
    };
    store.update_control(pause.id, &change).await.unwrap();
}

/// Whether the stored schedule version the runs of one key ran under
/// allowed stale re-entry (all of them, since a takeover keeps it).
fn stored_reentrant(sim: &Sim, runs: &[&Run]) -> bool {
    let written = sim.written.lock().unwrap();
    runs.iter().all(|run| {
        written
            .iter()
            .find(|w| Some(w.rev) == run.rev)
            .is_some_and(|w| w.definition.options.allow_stale_reentry)
    })
}

/// A definition of kind [`KIND`] with argument `rev`: a cadence of 30 min
/// to 2 h, sometimes with an offset, latest_only or every_plan, one or two
/// scopes, now and then paused.
fn stored_definition(rng: &mut Rng, rev: u64) -> ScheduleDefinition {
    let cadence = [30 * MIN, HOUR, 2 * HOUR][rng.below(3) as usize];
    let offset = [Duration::ZERO, 10 * MIN][rng.below(2) as usize];
    let every_plan = rng.below(2) == 0;
    let scopes = match rng.below(2) {
        0 => vec![Scope::global()],
        _ => vec![Scope::new("tenant", "t0"), Scope::new("tenant", "t1")],
    };
    let mut arguments = serde_json::Map::new();
    arguments.insert("rev".into(), rev.into());
    ScheduleDefinition {
        kind: KIND.to_owned(),
        schedule: ScheduleForm::Every { cadence, offset },
        scopes: StoredScopes::Fixed(scopes),
        arguments,
        paused: rng.below(10) == 0,
        options: ScheduleOptions {
            catch_up: if every_plan {
                CatchUpMode::EveryPlan
            } else {
                CatchUpMode::LatestOnly
            },
            catch_up_window: if every_plan { 6 * HOUR } else { Duration::ZERO },
            max_plans_per_tick: if every_plan { 3 } else { 0 },
            run_timeout: 2 * MIN,
            stale_timeout: 5 * MIN,
            allow_stale_reentry: rng.below(2) == 0,
            retry_backoff: vec![MIN, 5 * MIN],
            ..ScheduleOptions::default()
        },
    }
}

/// The operator's stored-schedule part of a step: now and then creates,
/// changes or deletes one of [`STORED`], and tries an update with a
/// version that is no longer current (which must be refused).
async fn write_schedules(store: &MemoryLeaseStore, sim: &Sim, rng: &mut Rng) {
    let name = STORED[rng.below(STORED.len() as u64) as usize];
    let current = store
        .schedules()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.name == name);
    let rev = sim.written.lock().unwrap().len() as u64 + 1;
    let write = match (&current, rng.below(12)) {
        (None, 0..=3) => ScheduleWrite::Create(stored_definition(rng, rev)),
        (Some(s), 0..=3) => ScheduleWrite::Update {
            version: s.version,
            definition: stored_definition(rng, rev),
        },
        (Some(s), 4) => ScheduleWrite::Delete {
            version: Some(s.version),
        },
        (Some(s), 5) if s.version > 1 => {
            let stale = ScheduleWrite::Update {
                version: s.version - 1,
                definition: stored_definition(rng, rev),
            };
            let refused = store.write_schedule(name, &stale).await;
            assert!(
                matches!(refused, Err(StoreError::Conflict(_))),
                "{refused:?}"
            );
            return;
        }
        _ => return,
    };
    let at = sim.clock.now();
    let written = match store.write_schedule(name, &write).await {
        Ok(written) => written,
        // The store is down (an outage): nothing was written.
        Err(StoreError::Backend { .. }) => return,
        Err(e) => panic!("{write:?}: {e}"),
    };
    let mut history = sim.written.lock().unwrap();
    let until = written.as_ref().map_or(at, |w| w.updated_at);
    if let Some(previous) = history
        .iter_mut()
        .find(|w| w.name == name && w.until.is_none())
    {
        previous.until = Some(until);
    }
    if let Some(w) = written {
        history.push(Written {
            name,
            version: w.version,
            rev,
            from: w.updated_at,
            until: None,
            definition: w.definition,
        });
    }
}

/// Every run of a stored schedule ran a plan of the version it ran under,
/// at or after that version became current, claimed while it was current
/// (so nothing ran after a delete, nor under a version replaced before
/// its claim) and not paused; versions were changed while runs went on.
fn check_stored(sim: &Sim) -> usize {
    let ledger = sim.ledger.lock().unwrap();
    let written = sim.written.lock().unwrap();
    let mut versions_run = std::collections::HashSet::new();
    for run in ledger.runs.iter().filter(|r| r.rev.is_some()) {
        let w = written
            .iter()
            .find(|w| Some(w.rev) == run.rev)
            .unwrap_or_else(|| panic!("{run:?} ran under no version written"));
        let (name, _, plan) = &run.key;
        assert_eq!(name, w.name, "{run:?}");
        let schedule = Schedule::from_form(&w.definition.schedule).unwrap();
        assert_eq!(
            schedule.at_or_before(*plan),
            Some(*plan),
            "{run:?} is no plan of {w:?}"
        );
        assert!(w.from <= *plan, "{run:?} planned before {w:?} was current");
        assert!(
            w.from <= run.claimed && w.until.is_none_or(|u| run.claimed < u),
            "{run:?} claimed while {w:?} was not current"
        );
        assert!(!w.definition.paused, "{run:?} ran while {w:?} is paused");
        versions_run.insert((w.name, w.version));
    }
    assert!(
        versions_run.iter().any(|(_, v)| *v > 1),
        "no run under a changed version: {versions_run:?}"
    );
    versions_run.len()
}

async fn simulate(seed: u64) -> (usize, usize, usize) {
    let clock = TokioClock::new(START);
    let store = Arc::new(MemoryLeaseStore::with_clock(Arc::new(clock.clone())));
    let sim = Arc::new(Sim {
        seed,
        clock: clock.clone(),
        ledger: Mutex::new(Ledger::default()),
        outages: Mutex::new(Vec::new()),
        jumps: Mutex::new(Vec::new()),
        written: Mutex::new(Vec::new()),
    });
    let mut rng = Rng(seed);
    // The operator's own generator, so that the chaos of a seed stays
    // what it was before there were operators.
    let mut operator = Rng(seed ^ 0x0b5e_55ed_0f0b_5e55);
    let mut generation = 0;
    let mut replicas: Vec<Replica> = (0..REPLICAS).map(|i| start(&sim, &store, i, 0)).collect();
    let mut successes = HashMap::new();
    let mut stopped = Vec::new();
    let mut next_row_check = START;
    let chaos_until = START + Duration::from_secs(DAYS * 86_400);
    while clock.now() < chaos_until {
        // Act a few seconds into an hour, when many plans are running, so
        // crashes and outages hit handlers mid-run.
        let now = clock.now();
        let at = scheduler_core::plan::floor(now, HOUR) + HOUR + Duration::from_secs(rng.below(30));
        tokio::time::sleep((at - now).try_into().unwrap()).await;
        match rng.below(100) {
            0..=14 => {
                let alive: Vec<usize> = (0..REPLICAS)
                    .filter(|&i| replicas[i].task.is_some())
                    .collect();
                if alive.len() > 1 {
                    crash(&mut replicas[alive[rng.below(alive.len() as u64) as usize]]);
                }
            }
            15..=34 => {
                if let Some(i) = (0..REPLICAS).find(|&i| replicas[i].task.is_none()) {
                    generation += 1;
                    replicas[i] = start(&sim, &store, i, generation);
                }
            }
            35..=44 => {
                let from = clock.now();
                store.set_failing(true);
                tokio::time::sleep(MIN * (2 + rng.below(30) as u32)).await;
                store.set_failing(false);
                sim.outages.lock().unwrap().push((from, clock.now()));
            }
            45..=49 => {
                let by = MIN * (1 + rng.below(20) as u32);
                sim.jumps.lock().unwrap().push((clock.now(), by));
                clock.advance(by);
            }
            _ => {}
        }
        operate(&store, &mut operator, clock.now()).await;
        write_schedules(&store, &sim, &mut operator).await;
        check_now(&store, &sim).await;
        if clock.now() >= next_row_check {
            check_rows(&store, &mut successes);
            next_row_check = clock.now() + 24 * HOUR;
        }
    }
    // Calm: everyone back, the store healthy, nothing paused, time to
    // catch up and to finish every trigger and backfill; triggers go on.
    for (i, replica) in replicas.iter_mut().enumerate() {
        if replica.task.is_none() {
            generation += 1;
            *replica = start(&sim, &store, i, generation);
        }
    }
    for pause in all_controls(&store)
        .await
        .iter()
        .filter(|c| c.is_active() && matches!(c.action, ControlAction::Pause { .. }))
    {
        end_pause(&store, pause, &mut operator).await;
    }
    let calm = clock.now();
    for _ in 0..12 {
        let now = clock.now();
        let at = scheduler_core::plan::floor(now, HOUR) + HOUR + Duration::from_secs(rng.below(30));
        tokio::time::sleep((at - now).try_into().unwrap()).await;
        if operator.below(3) == 0 {
            let defs = job_defs();
            let def = &defs[operator.below(defs.len() as u64) as usize];
            if !def.slow {
                let trigger = NewControl {
                    job_name: def.name.to_owned(),
                    scope: None,
                    note: "simulated operator".to_owned(),
                    action: ControlAction::Trigger,
                };
                store.add_control(&trigger).await.unwrap();
            }
        }
        check_now(&store, &sim).await;
    }
    // Every replica ticks at least once more (the tick interval is an
    // hour): the last triggers run.
    tokio::time::sleep(HOUR + 10 * MIN).await;
    check_now(&store, &sim).await;
    check_rows(&store, &mut successes);
    let end = clock.now();
    for replica in &mut replicas {
        let _ = replica.stop.take().unwrap().send(());
        replica.task.take().unwrap().await.unwrap();
        stopped.push(replica.runner.clone());
    }
    let controls = all_controls(&store).await;
    check_at_end(&store, &sim, end, &stopped, &controls);
    check_pauses_at_end(&store, &controls).await;
    check_controls_at_end(&store, &controls);
    check_calm(&store, calm, end);
    check_exercised(&store, &controls, end);
    let versions = check_stored(&sim);
    let runs = sim.ledger.lock().unwrap().runs.len();
    (store.executions().len(), runs, versions)
}

#[test]
fn a_simulated_cluster_keeps_its_invariants() {
    // Thousands of simulated handler panics are expected; print only others.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&"simulated panic") {
            default_hook(info);
        }
    }));
    let seeds: Vec<u64> = match std::env::var("SIM_SEED") {
        Ok(one) => vec![one.parse().expect("SIM_SEED is a number")],
        Err(_) => {
            let long = std::env::var("SCHEDULER_LONG_TESTS").as_deref() == Ok("1");
            let n = std::env::var("SIM_SEEDS")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(if long { 20 } else { 4 });
            (1..=n).collect()
        }
    };
    for seed in seeds {
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()
                .unwrap()
                .block_on(simulate(seed))
        }));
        match outcome {
            Ok((rows, runs, versions)) => {
                println!("seed {seed}: {rows} executions, {runs} handler runs, {versions} stored schedule versions run, invariants held")
            }
            Err(panic) => {
                eprintln!("simulation seed {seed} failed; replay with SIM_SEED={seed} cargo test -p scheduler-core --test simulation");
                std::panic::resume_unwind(panic);
            }
        }
    }
}
