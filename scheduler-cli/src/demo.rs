//! `scheduler demo`: several replicas in one process, on one store, running
//! example jobs that show what the library promises, with a check at the end.
//!
//! One replica "crashes" about 1.5 s in, holding the lease of a
//! `doomed_export` run; the others can only take that lease over once it is
//! stale ([`STALE_TIMEOUT`] after its last heartbeat) and a tick has swept
//! it, about 5 s in. A `--duration` that ends before then would leave the
//! lease RUNNING, and the check would fail a correct run. So when the
//! duration is over while a crashed replica still holds a RUNNING lease, the
//! surviving replicas keep ticking until one of them has taken it over,
//! bounded by the time that must take (see [`await_takeover`]); the event
//! log says so. The crash is still staged however short the run: showing the
//! takeover is the point of the demo, and the wait costs a few seconds at
//! most. The check is not relaxed: a lease still RUNNING after the bound, or
//! a plan that ran twice, fails it.
//!
//! Meanwhile an operator steers `tenant_rollup` (see [`steering`]): a
//! pause of a few seconds, a trigger, a small backfill; and runs a stored
//! schedule (see [`stored`]): it creates `digest`, of the kind `report`
//! every replica registers, at the start, and changes its cadence
//! half-way. The check holds the table to them too.

mod steering;
mod stored;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scheduler_core::{
    BoxError, CatchUpMode, ExecutionAudit, ExecutionFilter, JobOutput, JobSpec, Manager,
    ManagerOptions, Operator, RunContext, Scope, Scopes, Status, StoreError, TickReport,
};
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// The example jobs' names, the stored schedule's last, also used to
/// select the rows the check reads.
const JOBS: [&str; 5] = [
    "tenant_rollup",
    "flaky_report",
    "panicky_import",
    "doomed_export",
    stored::STORED_JOB,
];

/// The tenants `tenant_rollup` fans out to.
const TENANTS: [&str; 5] = ["acme", "globex", "initech", "umbrella", "hooli"];

/// `tenant_rollup`'s cadence.
const ROLLUP_CADENCE: Duration = Duration::from_secs(2);

/// A completed handler effect: what a real job would have written.
#[derive(Debug, Clone)]
struct Effect {
    job: String,
    scope: Scope,
    plan_time: OffsetDateTime,
}

/// What the demo observed through the manager's tracing, for the summary.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    started: u64,
    retries: u64,
    takeovers: u64,
    succeeded: u64,
    failures_by_code: BTreeMap<String, u64>,
    swept: u64,
}

/// State the example handlers share across replicas.
struct Shared {
    effects: Mutex<Vec<Effect>>,
    panicked_once: AtomicBool,
    doomed_once: AtomicBool,
    /// The doomed handler asks for its own replica to be stopped.
    kill: mpsc::UnboundedSender<String>,
    /// When the demo started: the event log's times.
    started: Instant,
}

/// The demo's result: printed, and checked.
pub struct DemoReport {
    /// A human-readable summary.
    pub text: String,
    /// The same as a JSON document.
    pub json: serde_json::Value,
    /// Whether the table passed the check.
    pub ok: bool,
}

/// How long a lease outlives its last heartbeat: short, so a dead replica's
/// work is taken over within seconds.
const STALE_TIMEOUT: Duration = Duration::from_secs(3);

/// How often every replica ticks, and so how often stale leases are swept.
const TICK_INTERVAL: Duration = Duration::from_secs(1);

/// Slack on top of the time a takeover must take, for a slow tick or store.
const TAKEOVER_MARGIN: Duration = Duration::from_secs(1);

/// How often the wait for a takeover reads the store.
const TAKEOVER_POLL: Duration = Duration::from_millis(100);

fn quick(spec: JobSpec) -> JobSpec {
    spec.run_timeout(Duration::from_secs(2))
        .stale_timeout(STALE_TIMEOUT)
        .heartbeat_interval(Duration::from_millis(500))
        .allow_stale_reentry(true)
        .retry_backoff(vec![Duration::from_secs(1)])
}

fn jobs(shared: &Arc<Shared>) -> Vec<JobSpec> {
    let record = |shared: &Arc<Shared>, ctx: &RunContext| {
        shared.effects.lock().unwrap().push(Effect {
            job: ctx.job_name().to_owned(),
            scope: ctx.scope().clone(),
            plan_time: ctx.plan_time(),
        });
    };
    let tenants = Scopes::fixed(TENANTS.map(|t| Scope::new("tenant", t)));
    let s = shared.clone();
    let rollup = JobSpec::new("tenant_rollup", tenants, move |ctx: RunContext| {
        let s = s.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            record(&s, &ctx);
            Ok(JobOutput::rows(100))
        }
    })
    .cadence(ROLLUP_CADENCE)
    .catch_up(CatchUpMode::EveryPlan)
    .catch_up_window(Duration::from_secs(30))
    .max_plans_per_tick(5);

    let s = shared.clone();
    let flaky = JobSpec::new("flaky_report", Scopes::global(), move |ctx: RunContext| {
        let s = s.clone();
        async move {
            if ctx.attempt() == 1 {
                return Err::<JobOutput, BoxError>("upstream timed out (simulated)".into());
            }
            record(&s, &ctx);
            Ok(JobOutput::rows(1))
        }
    })
    .cadence(Duration::from_secs(5));

    let s = shared.clone();
    let panicky = JobSpec::new(
        "panicky_import",
        Scopes::global(),
        move |ctx: RunContext| {
            let s = s.clone();
            async move {
                if !s.panicked_once.swap(true, Ordering::SeqCst) {
                    panic!("malformed input file (simulated panic)");
                }
                record(&s, &ctx);
                Ok(JobOutput::rows(1))
            }
        },
    )
    .cadence(Duration::from_secs(5));

    let s = shared.clone();
    let doomed = JobSpec::new("doomed_export", Scopes::global(), move |ctx: RunContext| {
        let s = s.clone();
        async move {
            if !s.doomed_once.swap(true, Ordering::SeqCst) {
                // This replica "dies" mid-run (after the other jobs of the
                // first tick are done): it is stopped without cleanup, so
                // its lease goes stale and another replica takes over.
                tokio::time::sleep(Duration::from_millis(1500)).await;
                let _ = s.kill.send(ctx.runner_id().to_owned());
                std::future::pending::<()>().await;
            }
            record(&s, &ctx);
            Ok(JobOutput::rows(1))
        }
    })
    .cadence(Duration::from_secs(10))
    // every_plan keeps the abandoned plan retryable after its bucket passes.
    .catch_up(CatchUpMode::EveryPlan)
    .catch_up_window(Duration::from_secs(60))
    .max_plans_per_tick(3);

    vec![quick(rollup), quick(flaky), quick(panicky), quick(doomed)]
}

/// Registers the handler of the stored schedules of kind
/// [`stored::STORED_KIND`]: it records its effect and prints the label its
/// version's arguments carry, so the event log shows which version each
/// run ran under.
fn register_kind(manager: &Manager, shared: &Arc<Shared>) {
    let s = shared.clone();
    manager
        .register_kind(stored::STORED_KIND, move |ctx: RunContext| {
            let s = s.clone();
            async move {
                s.effects.lock().unwrap().push(Effect {
                    job: ctx.job_name().to_owned(),
                    scope: ctx.scope().clone(),
                    plan_time: ctx.plan_time(),
                });
                let label = ctx
                    .arguments()
                    .get(stored::LABEL)
                    .and_then(|l| l.as_str())
                    .unwrap_or("?");
                let plan = ctx.plan_time();
                eprintln!(
                    "{:>6.1}s  {:<10} {:<15} {:<16} {:<8} {:<3} report of {}",
                    s.started.elapsed().as_secs_f64(),
                    ctx.runner_id(),
                    ctx.job_name(),
                    ctx.scope().to_string(),
                    format!(
                        "{:02}:{:02}:{:02}",
                        plan.hour(),
                        plan.minute(),
                        plan.second()
                    ),
                    format!("#{}", ctx.attempt()),
                    crate::output::escape(label),
                );
                Ok(JobOutput::rows(1))
            }
        })
        .expect("the demo's kind is valid");
}

/// Keeps the demo's own simulated panic from printing a backtrace: the
/// manager records it (`FAILED handler_panic`) and the progress line shows
/// it. Any other panic is reported as usual.
fn quiet_simulated_panics() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str));
        if !message.is_some_and(|m| m.contains("(simulated panic)")) {
            default_hook(info);
        }
    }));
}

/// Runs the demo for `duration` with `replicas` managers on `store`;
/// `counts` are kept by the [`ProgressLayer`] the caller installed, whose
/// clock (`started`) times every line of the event log.
pub async fn run(
    store: Arc<dyn ExecutionAudit>,
    replicas: usize,
    duration: Duration,
    counts: Arc<Mutex<Counts>>,
    started: Instant,
) -> DemoReport {
    quiet_simulated_panics();
    // The summary and the check cover the rows this run wrote: a file the
    // demo ran on before keeps that run's rows, which are not this run's
    // to count. A store that cannot tell the time fails the check below.
    let run_start = store.now().await.ok();
    let (kill_tx, mut kill_rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        effects: Mutex::new(Vec::new()),
        panicked_once: AtomicBool::new(false),
        doomed_once: AtomicBool::new(false),
        kill: kill_tx,
        started,
    });
    steering::clear_leftovers(&Operator::new(store.clone()), started).await;
    let mut running: HashMap<String, (tokio::sync::oneshot::Sender<()>, JoinHandle<TickReport>)> =
        HashMap::new();
    let mut crashed = Vec::new();
    let mut last_crash = None;
    for i in 1..=replicas.max(1) {
        let runner = format!("replica-{i}");
        let manager = Manager::new(
            store.clone(),
            ManagerOptions {
                runner_id: runner.clone(),
                tick_interval: TICK_INTERVAL,
                max_concurrency: 16,
                shutdown_grace: Duration::from_secs(3),
            },
        )
        .expect("valid manager options");
        for job in jobs(&shared) {
            manager.register(job).expect("the demo's jobs are valid");
        }
        register_kind(&manager, &shared);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            manager
                .run(async {
                    let _ = stop_rx.await;
                })
                .await
        });
        running.insert(runner, (stop_tx, task));
    }
    let (stop_steering, stop_rx) = watch::channel(false);
    let operator = tokio::spawn(steering::run(store.clone(), started, stop_rx.clone()));
    let scheduling = tokio::spawn(stored::run(store.clone(), started, duration / 2, stop_rx));
    let end = tokio::time::sleep(duration);
    tokio::pin!(end);
    loop {
        tokio::select! {
            _ = &mut end => break,
            // A SIGTERM or Ctrl-C ends the demo early, gracefully: the
            // replicas stop as a service would, and the check still runs.
            () = scheduler_core::shutdown_signal() => break,
            Some(victim) = kill_rx.recv() => {
                // Stop the replica without cleanup (its run future is
                // dropped, as a killed process would vanish); keep at least
                // one replica alive to take its work over.
                if running.len() > 1 {
                    if let Some((_, task)) = running.remove(&victim) {
                        task.abort();
                        eprintln!("{:>6.1}s  {victim:<10} CRASHED while running doomed_export (stopped without cleanup)",
                            started.elapsed().as_secs_f64());
                        crashed.push(victim);
                        last_crash = Some(Instant::now());
                    }
                }
            }
        }
    }
    // The operator resumes a pause it started, and stops.
    let _ = stop_steering.send(true);
    let steered = operator.await.unwrap_or_else(|e| {
        steering::OperatorLog::failed(format!("the operator's task failed: {e}"))
    });
    let scheduled = scheduling.await.unwrap_or_else(|e| {
        stored::StoredLog::failed(format!("the stored schedule's task failed: {e}"))
    });
    if let Some(crash) = last_crash {
        await_takeover(store.as_ref(), &crashed, crash, started).await;
    }
    steering::await_done(store.as_ref(), &steered, started).await;
    let mut totals = TickReport::default();
    for (_, (stop, task)) in running.drain() {
        let _ = stop.send(());
        if let Ok(report) = task.await {
            totals += report;
        }
    }
    let counts = counts.lock().unwrap().clone();
    check(
        store.as_ref(),
        run_start,
        &shared,
        &crashed,
        &Operated { steered, scheduled },
        totals,
        &counts,
    )
    .await
}

/// Returns once no crashed replica holds a RUNNING lease of the demo's jobs,
/// while the surviving replicas keep ticking; waits at most until the last
/// crash plus [`STALE_TIMEOUT`], [`TICK_INTERVAL`] and [`TAKEOVER_MARGIN`]:
/// a crashed replica's last heartbeat was before its crash, so by then its
/// leases are stale and a tick has swept them. The tick that sweeps a lease
/// also claims the plan again, so stopping the replicas right after lets
/// that run finish in their graceful shutdown. Returns early when the store
/// cannot be read: the check then reports it.
async fn await_takeover(
    store: &dyn ExecutionAudit,
    crashed: &[String],
    last_crash: Instant,
    started: Instant,
) {
    let deadline = last_crash + STALE_TIMEOUT + TICK_INTERVAL + TAKEOVER_MARGIN;
    let mut poll = tokio::time::interval(TAKEOVER_POLL);
    let mut announced = false;
    loop {
        poll.tick().await;
        let held = match held_by(store, crashed).await {
            Ok(held) => held,
            Err(_) => return,
        };
        if held == 0 {
            return;
        }
        let now = Instant::now();
        if now >= deadline {
            eprintln!(
                "{:>6.1}s  {:<10} still holds {held} RUNNING lease(s) after the wait; checking anyway",
                started.elapsed().as_secs_f64(),
                crashed.join(",")
            );
            return;
        }
        if !announced {
            announced = true;
            eprintln!(
                "{:>6.1}s  {:<10} duration over; waiting (up to {:.1}s) for another replica to take over its lease(s) once stale",
                started.elapsed().as_secs_f64(),
                crashed.join(","),
                (deadline - now).as_secs_f64()
            );
        }
    }
}

/// How many RUNNING rows of the demo's jobs the `runners` hold.
async fn held_by(store: &dyn ExecutionAudit, runners: &[String]) -> Result<usize, StoreError> {
    let mut held = 0;
    for job in JOBS {
        let filter = ExecutionFilter {
            job_name: Some(job.to_owned()),
            status: Some(Status::Running),
            ..Default::default()
        };
        held += store
            .list_executions(&filter)
            .await?
            .iter()
            .filter(|r| {
                r.runner_id
                    .as_ref()
                    .is_some_and(|id| runners.iter().any(|x| x.as_str() == id.as_str()))
            })
            .count();
    }
    Ok(held)
}

/// What the operators did while the replicas ran.
struct Operated {
    /// Steering `tenant_rollup`.
    steered: steering::OperatorLog,
    /// The stored schedule's versions.
    scheduled: stored::StoredLog,
}

async fn check(
    store: &dyn ExecutionAudit,
    run_start: Option<OffsetDateTime>,
    shared: &Shared,
    crashed: &[String],
    operated: &Operated,
    totals: TickReport,
    counts: &Counts,
) -> DemoReport {
    let Operated { steered, scheduled } = operated;
    let Some(run_start) = run_start else {
        return DemoReport {
            text: "check failed: the store could not tell its time at the start\n".to_owned(),
            json: json!({ "ok": false, "error": "store time unavailable at the start" }),
            ok: false,
        };
    };
    let mut rows = Vec::new();
    for job in JOBS {
        let filter = ExecutionFilter {
            job_name: Some(job.to_owned()),
            ..Default::default()
        };
        match store.list_executions(&filter).await {
            Ok(r) => rows.extend(r.into_iter().filter(|r| r.updated_at >= run_start)),
            Err(e) => {
                return DemoReport {
                    text: format!("check failed: cannot read executions: {e}\n"),
                    json: json!({ "ok": false, "error": e.to_string() }),
                    ok: false,
                }
            }
        }
    }
    let effects = shared.effects.lock().unwrap().clone();
    let mut per_key: BTreeMap<(String, Scope, OffsetDateTime), u64> = BTreeMap::new();
    for e in &effects {
        *per_key
            .entry((e.job.clone(), e.scope.clone(), e.plan_time))
            .or_default() += 1;
    }
    let duplicates: Vec<String> = per_key
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|((job, scope, plan), n)| format!("{job} {scope} {plan}: ran {n} times"))
        .collect();
    let still_running: Vec<String> = rows
        .iter()
        .filter(|r| r.status == Status::Running)
        .map(|r| {
            format!(
                "{} {} {} (runner {})",
                r.job_name,
                r.scope,
                r.plan_time,
                r.runner_id.as_deref().unwrap_or("?")
            )
        })
        .collect();
    let mut by_status: BTreeMap<&str, u64> = BTreeMap::new();
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    for r in &rows {
        *by_status.entry(r.status.as_str()).or_default() += 1;
        if r.status == Status::Failed {
            *failures
                .entry(r.error_code.clone().unwrap_or_default())
                .or_default() += 1;
        }
    }
    let verdicts = match steering::check(store, steered, &rows, &per_key).await {
        Ok(mut verdicts) => {
            verdicts.insert(3, stored::check(scheduled, &rows));
            verdicts
        }
        Err(e) => {
            return DemoReport {
                text: format!("check failed: cannot read what the operator steered: {e}\n"),
                json: json!({ "ok": false, "error": e }),
                ok: false,
            }
        }
    };
    let retried_rows = rows.iter().filter(|r| r.attempt > 1).count();
    let ok = duplicates.is_empty()
        && still_running.is_empty()
        && verdicts
            .iter()
            .all(|v| v.problems.as_ref().is_none_or(Vec::is_empty));
    let mut text = String::new();
    let _ = writeln!(text, "\nsummary");
    let _ = writeln!(
        text,
        "  executions (rows)      {}  {:?}",
        rows.len(),
        by_status
    );
    let _ = writeln!(text, "  handler runs started   {}", counts.started);
    let _ = writeln!(
        text,
        "  retries                {}  (rows that needed more than one attempt: {retried_rows})",
        counts.retries
    );
    let _ = writeln!(
        text,
        "  takeovers              {}  (stale leases of a dead runner closed and run again)",
        counts.takeovers
    );
    let _ = writeln!(
        text,
        "  failures by code       {:?}",
        counts.failures_by_code
    );
    let _ = writeln!(text, "  replicas crashed       {:?}", crashed);
    let _ = writeln!(text, "\ncheck");
    let mut lines = vec![
        ("no (job, scope, plan) ran twice", verdict(&duplicates)),
        ("nothing left RUNNING", verdict(&still_running)),
    ];
    for v in &verdicts {
        let shown = match &v.problems {
            None => "not shown (the run ended before it)".to_owned(),
            Some(problems) if v.detail.is_empty() => verdict(problems),
            Some(problems) => format!("{} ({})", verdict(problems), v.detail),
        };
        lines.push((v.label, shown));
    }
    let width = lines
        .iter()
        .map(|(label, _)| label.len() + 1)
        .max()
        .unwrap_or(0);
    for (label, shown) in lines {
        let _ = writeln!(text, "  {:<width$} {shown}", format!("{label}:"));
    }
    let _ = writeln!(text, "  {}", if ok { "OK" } else { "FAILED" });
    let json = json!({
        "ok": ok,
        "executions": rows.len(),
        "by_status": by_status,
        "handler_runs_started": counts.started,
        "retries": counts.retries,
        "takeovers": counts.takeovers,
        "failures_by_code": counts.failures_by_code,
        "failed_rows_by_code": failures,
        "replicas_crashed": crashed,
        "duplicates": duplicates,
        "still_running": still_running,
        "steering": steering::verdicts_json(steered, &verdicts),
        "stored_schedule": { "name": stored::STORED_JOB, "versions": stored::versions_json(scheduled) },
        "claims": { "claimed": totals.won, "retried": totals.retried, "stolen": totals.stolen, "conflicted": totals.conflicted },
    });
    DemoReport { text, json, ok }
}

fn verdict(problems: &[String]) -> String {
    if problems.is_empty() {
        "yes".to_owned()
    } else {
        format!("NO: {}", problems.join("; "))
    }
}

/// Span fields the progress lines need, kept in each span's extensions.
#[derive(Debug, Default)]
struct Fields(BTreeMap<&'static str, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name(), value.to_owned());
    }
}

/// Prints one line per execution event (replica, job, scope, plan time,
/// attempt, outcome) from the manager's own tracing, and counts them.
pub struct ProgressLayer {
    started: Instant,
    counts: Arc<Mutex<Counts>>,
}

impl ProgressLayer {
    /// A layer timing lines from now, and the counts it keeps.
    pub fn new() -> (Self, Arc<Mutex<Counts>>) {
        let counts = Arc::new(Mutex::new(Counts::default()));
        let layer = ProgressLayer {
            started: Instant::now(),
            counts: counts.clone(),
        };
        (layer, counts)
    }

    /// When its clock started: the demo's event log times every line
    /// from it.
    pub fn started(&self) -> Instant {
        self.started
    }
}

impl<S> Layer<S> for ProgressLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut ev = Fields::default();
        event.record(&mut ev);
        let mut span_fields = BTreeMap::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(f) = span.extensions().get::<Fields>() {
                    span_fields.extend(f.0.iter().map(|(k, v)| (*k, v.clone())));
                }
            }
        }
        let message = ev.0.get("message").cloned().unwrap_or_default();
        let mut counts = self.counts.lock().unwrap();
        let outcome = match message.as_str() {
            "claimed" => {
                counts.started += 1;
                "started".to_owned()
            }
            "retrying" => {
                counts.started += 1;
                counts.retries += 1;
                "retry started".to_owned()
            }
            "took over stale lease" => {
                counts.started += 1;
                counts.takeovers += 1;
                "TAKEOVER started".to_owned()
            }
            "succeeded" => {
                counts.succeeded += 1;
                "succeeded".to_owned()
            }
            "failed" => {
                let code = ev.0.get("error_code").cloned().unwrap_or_default();
                *counts.failures_by_code.entry(code.clone()).or_default() += 1;
                let error = ev.0.get("error").cloned().unwrap_or_default();
                format!("FAILED {code}: {error}")
            }
            "closed abandoned RUNNING leases" => {
                let n: u64 = ev.0.get("rows").and_then(|r| r.parse().ok()).unwrap_or(0);
                counts.swept += n;
                counts.takeovers += n;
                *counts
                    .failures_by_code
                    .entry("stale_timeout".into())
                    .or_default() += n;
                format!("closed {n} stale lease(s) of a dead runner (stale_timeout)")
            }
            m if m.starts_with("lease lost") || m.starts_with("terminal write refused") => {
                "lease lost: no terminal write".to_owned()
            }
            _ => return,
        };
        drop(counts);
        let get = |k: &str| span_fields.get(k).map(String::as_str).unwrap_or("");
        let plan = get("plan_time");
        // "2026-11-27 13:20:04.0 +00:00:00" or "2026-11-27T13:20:04.5Z"
        // -> "13:20:04"
        let plan_short = plan
            .split([' ', 'T'])
            .nth(1)
            .and_then(|t| t.split(['.', 'Z', '+']).next())
            .unwrap_or(plan);
        let attempt = span_fields
            .get("attempt")
            .map(|a| format!("#{a}"))
            .unwrap_or_default();
        // A trigger's plan time is its request's instant, off the grid and
        // cut to the second here: the origin tells its runs from the
        // scheduled plan of that second.
        let origin = match get("origin") {
            "" | "scheduled" => String::new(),
            other => format!(" [{other}]"),
        };
        eprintln!(
            "{:>6.1}s  {:<10} {:<15} {:<16} {:<8} {:<3} {outcome}{origin}",
            self.started.elapsed().as_secs_f64(),
            get("runner"),
            get("job"),
            get("scope"),
            plan_short,
            attempt,
        );
    }
}
