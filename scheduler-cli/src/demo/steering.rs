//! The operator's part of the demo: while the replicas run, it pauses
//! `tenant_rollup` for a few seconds and resumes it, triggers it, and
//! backfills a few of its instants from before the run, through
//! [`Operator`] on the demo's store, each a line of the event log. The
//! check then holds the table to it: nothing of the paused job started
//! while paused, the trigger ran once per scope, every backfilled instant
//! ran once.
//!
//! The steps happen at fixed offsets from the start ([`PAUSE_AT`] and
//! on); a run that ends first (`--duration 3s`, or a Ctrl-C) skips the
//! steps it did not reach, and a pause it started is always resumed before
//! the replicas stop, so that no pause outlives the demo in its database.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use scheduler_core::model::ControlRead;
use scheduler_core::plan::{floor, Schedule};
use scheduler_core::{
    Backfill, Control, ExecutionAudit, ExecutionFilter, Operator, Scope, Status, Target,
};
use serde_json::{json, Value};
use time::OffsetDateTime;
use tokio::sync::watch;

use super::{JOBS, ROLLUP_CADENCE, TENANTS};

/// The job the operator steers: the busiest, so the pause shows as its
/// silence, and one run per tenant shows a trigger's fan-out.
pub const STEERED_JOB: &str = "tenant_rollup";

/// When the pause starts, from the start of the demo.
const PAUSE_AT: Duration = Duration::from_secs(2);
/// When it is resumed: three seconds of pause, so at least one plan of the
/// 2-second job comes due meanwhile and is caught up after.
const RESUME_AT: Duration = Duration::from_secs(5);
/// When the trigger is stored (after the resume: a paused job refuses
/// triggers).
const TRIGGER_AT: Duration = Duration::from_secs(6);
/// When the backfill is stored.
const BACKFILL_AT: Duration = Duration::from_secs(7);
/// How far before the demo's start the backfill's range begins: outside
/// the job's catch-up window (30 s), so that only the backfill runs those
/// instants.
const BACKFILL_BACK: Duration = Duration::from_secs(60);
/// How many of the job's instants the backfill covers, per tenant.
const BACKFILL_INSTANTS: u32 = 3;
/// How long after the duration the demo waits for a trigger or a backfill
/// to have all its runs claimed: two ticks of the replicas and a margin.
const DONE_WITHIN: Duration = Duration::from_secs(4);
/// How often that wait reads the store.
const DONE_POLL: Duration = Duration::from_millis(100);

/// What the operator did, for the check.
#[derive(Debug, Default)]
pub struct OperatorLog {
    /// The pause, as its resume ended it.
    pause: Option<Control>,
    /// The trigger, as stored.
    trigger: Option<Control>,
    /// The backfill, as stored, and its instants.
    backfill: Option<(Control, Vec<OffsetDateTime>)>,
    /// Requests that failed: each fails the check.
    errors: Vec<String>,
}

impl OperatorLog {
    /// What the check sees of an operator that could not finish: `why`.
    pub fn failed(why: String) -> OperatorLog {
        OperatorLog {
            errors: vec![why],
            ..OperatorLog::default()
        }
    }
}

/// One line of the event log, from the operator.
pub(super) fn log(started: Instant, what: &str) {
    eprintln!(
        "{:>6.1}s  {:<10} {what}",
        started.elapsed().as_secs_f64(),
        "operator"
    );
}

/// How the notes of the demo's own controls begin: what tells them from
/// an operator's.
const NOTE_PREFIX: &str = "demo: ";

/// Before the replicas start: cancels the controls an earlier demo on the
/// same database left active (one killed while its pause was in force),
/// so that this run starts unpaused and its check is its own; and says
/// which of an operator's controls of the demo's jobs are in force, which
/// the replicas obey like any other (a pause of `tenant_rollup` makes the
/// demo's own steps fail, and says so).
pub async fn clear_leftovers(operator: &Operator, started: Instant) {
    let read = ControlRead {
        jobs: Some(JOBS.map(str::to_owned).to_vec()),
        ended_since: None,
    };
    let Ok(left) = operator.list(&read).await else {
        return; // The run reports a store it cannot use.
    };
    for control in left {
        let what = format!("{} of {}", control.action.kind(), control.target());
        if !control.note.starts_with(NOTE_PREFIX) {
            log(
                started,
                &format!("an operator's {what} is in force (control {})", control.id),
            );
            continue;
        }
        let reason = Some("left active by an earlier demo run".to_owned());
        if operator.cancel(control.id, reason).await.is_ok() {
            log(
                started,
                &format!("cancelled a {what} left by an earlier demo run"),
            );
        }
    }
}

/// Waits until `offset` after `started`; `false` when the run is stopped
/// first.
pub(super) async fn reach(
    started: Instant,
    offset: Duration,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        () = tokio::time::sleep_until((started + offset).into()) => true,
        _ = stop.wait_for(|stopped| *stopped) => false,
    }
}

/// Runs the operator's steps until they are done or `stop` says the run
/// is over.
pub async fn run(
    store: Arc<dyn ExecutionAudit>,
    started: Instant,
    mut stop: watch::Receiver<bool>,
) -> OperatorLog {
    let operator = Operator::new(store.clone());
    let mut steered = OperatorLog::default();
    let job = Target::job(STEERED_JOB);
    if !reach(started, PAUSE_AT, &mut stop).await {
        return steered;
    }
    let note = format!("{NOTE_PREFIX}paused for a moment");
    match operator.pause(&job, &note, None, false).await {
        Ok(paused) => log(
            started,
            &format!(
                "PAUSED {STEERED_JOB} (every scope): no new run of it starts until resumed (control {})",
                paused.control.id
            ),
        ),
        Err(e) => {
            log(started, &format!("pause of {STEERED_JOB} FAILED: {e}"));
            steered.errors.push(format!("pause: {e}"));
            return steered;
        }
    }
    // Resumed at its time or as soon as the run is over, whichever first.
    let go_on = reach(started, RESUME_AT, &mut stop).await;
    match operator.resume(&job, false).await {
        Ok(resumed) => {
            let paused_for = resumed
                .ended_at
                .map_or(0.0, |end| (end - resumed.created_at).as_seconds_f64());
            log(
                started,
                &format!(
                    "RESUMED {STEERED_JOB} after {paused_for:.1}s paused: its every_plan catch-up runs the plans it missed"
                ),
            );
            steered.pause = Some(resumed);
        }
        Err(e) => {
            log(started, &format!("resume of {STEERED_JOB} FAILED: {e}"));
            steered.errors.push(format!("resume: {e}"));
            return steered;
        }
    }
    if !go_on || !reach(started, TRIGGER_AT, &mut stop).await {
        return steered;
    }
    match operator
        .trigger(&job, &format!("{NOTE_PREFIX}run now"))
        .await
    {
        Ok(triggered) => {
            log(
                started,
                &format!(
                    "TRIGGERED {STEERED_JOB}: one run per tenant now, outside its schedule (control {})",
                    triggered.control.id
                ),
            );
            steered.trigger = Some(triggered.control);
        }
        Err(e) => {
            log(started, &format!("trigger of {STEERED_JOB} FAILED: {e}"));
            steered.errors.push(format!("trigger: {e}"));
        }
    }
    if !reach(started, BACKFILL_AT, &mut stop).await {
        return steered;
    }
    match backfill(store.as_ref(), &operator, &job, started).await {
        Ok(done) => steered.backfill = Some(done),
        Err(e) => {
            log(started, &format!("backfill of {STEERED_JOB} FAILED: {e}"));
            steered.errors.push(format!("backfill: {e}"));
        }
    }
    steered
}

/// Backfills [`BACKFILL_INSTANTS`] instants of the steered job from
/// [`BACKFILL_BACK`] before now.
async fn backfill(
    store: &dyn ExecutionAudit,
    operator: &Operator,
    job: &Target,
    started: Instant,
) -> Result<(Control, Vec<OffsetDateTime>), String> {
    let now = store.now().await.map_err(|e| e.to_string())?;
    let from = floor(now - BACKFILL_BACK - started.elapsed(), ROLLUP_CADENCE);
    let to = from + ROLLUP_CADENCE * BACKFILL_INSTANTS;
    let range = Backfill {
        from,
        to,
        confirm_large: false,
    };
    let steered = operator
        .backfill(job, &range, &format!("{NOTE_PREFIX}fill in before the run"))
        .await
        .map_err(|e| e.to_string())?;
    let instants = Schedule::every(ROLLUP_CADENCE).between(
        from,
        to - time::Duration::microseconds(1),
        BACKFILL_INSTANTS as usize,
    );
    log(
        started,
        &format!(
            "BACKFILL {STEERED_JOB} [{}, {}): {} instants x {} tenants, from before the run (control {})",
            clock(from),
            clock(to),
            instants.len(),
            TENANTS.len(),
            steered.control.id
        ),
    );
    Ok((steered.control, instants))
}

/// `13:58:06`: an instant as the event log shows plan times.
fn clock(t: OffsetDateTime) -> String {
    format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
}

/// An instant in a problem of the check: RFC 3339.
pub(super) fn instant(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// Returns once the trigger and the backfill have had all their runs
/// claimed (their controls ended), while the replicas keep ticking; waits
/// at most [`DONE_WITHIN`]. The check reports what did not get done.
pub async fn await_done(store: &dyn ExecutionAudit, steered: &OperatorLog, started: Instant) {
    let ids: Vec<uuid::Uuid> = steered
        .trigger
        .iter()
        .chain(steered.backfill.iter().map(|(c, _)| c))
        .map(|c| c.id)
        .collect();
    if ids.is_empty() {
        return;
    }
    let deadline = Instant::now() + DONE_WITHIN;
    let mut announced = false;
    let read = ControlRead {
        jobs: Some(vec![STEERED_JOB.to_owned()]),
        ended_since: None,
    };
    loop {
        let Ok(active) = store.controls(&read).await else {
            return;
        };
        if !active.iter().any(|c| ids.contains(&c.id)) || Instant::now() >= deadline {
            return;
        }
        if !announced {
            announced = true;
            log(
                started,
                &format!(
                    "duration over; waiting (up to {}s) for the trigger and the backfill to be claimed",
                    DONE_WITHIN.as_secs()
                ),
            );
        }
        tokio::time::sleep(DONE_POLL).await;
    }
}

/// One verdict of the check: its label, and what went wrong (empty when
/// it holds); `None` when the run ended before the step.
pub struct Verdict {
    /// What it checks.
    pub label: &'static str,
    /// `None`: not shown; else the problems, none when it holds.
    pub problems: Option<Vec<String>>,
    /// What was checked, in a few words.
    pub detail: String,
}

/// Checks the table against what the operator did: the rows of the
/// steered job this run wrote (`rows`) and the effects of every handler
/// run by key (`effects`).
pub async fn check(
    store: &dyn ExecutionAudit,
    steered: &OperatorLog,
    rows: &[scheduler_core::Execution],
    effects: &BTreeMap<(String, Scope, OffsetDateTime), u64>,
) -> Result<Vec<Verdict>, String> {
    let mine: Vec<&scheduler_core::Execution> =
        rows.iter().filter(|r| r.job_name == STEERED_JOB).collect();
    let ran = |r: &scheduler_core::Execution| {
        effects
            .get(&(r.job_name.to_string(), r.scope.clone(), r.plan_time))
            .copied()
            .unwrap_or(0)
    };
    let errors = Verdict {
        label: "every operator request was carried out",
        problems: Some(steered.errors.clone()),
        detail: String::new(),
    };

    let pause = match &steered.pause {
        None => None,
        Some(pause) => {
            let (from, to) = (pause.created_at, pause.ended_at.unwrap_or(pause.updated_at));
            // Every attempt's start: the rows hold their current one, the
            // attempts log the ones that ended.
            let ids: Vec<uuid::Uuid> = mine.iter().map(|r| r.id).collect();
            let logs = store.attempts_of(&ids).await.map_err(|e| e.to_string())?;
            let mut problems = Vec::new();
            for (r, log) in mine.iter().zip(&logs) {
                // A finished attempt's start is in both.
                let starts: std::collections::BTreeSet<OffsetDateTime> = r
                    .started_at
                    .into_iter()
                    .chain(log.iter().filter_map(|a| a.started_at))
                    .collect();
                for start in starts.into_iter().filter(|s| from < *s && *s < to) {
                    problems.push(format!(
                        "{} plan {} started at {} while paused",
                        r.scope,
                        instant(r.plan_time),
                        instant(start)
                    ));
                }
            }
            Some((
                problems,
                format!("paused {:.1}s", (to - from).as_seconds_f64()),
            ))
        }
    };

    let trigger = steered.trigger.as_ref().map(|trigger| {
        let mut problems = Vec::new();
        for tenant in TENANTS {
            let scope = Scope::new("tenant", tenant);
            let runs: Vec<_> = mine
                .iter()
                .filter(|r| r.control_id == Some(trigger.id) && r.scope == scope)
                .collect();
            match runs.as_slice() {
                [r] if r.status == Status::Success && ran(r) == 1 => {}
                [r] => problems.push(format!(
                    "{scope}: {} after {} handler run(s)",
                    r.status,
                    ran(r)
                )),
                more => problems.push(format!("{scope}: {} runs", more.len())),
            }
        }
        (problems, format!("{} tenants", TENANTS.len()))
    });

    let backfill = match &steered.backfill {
        None => None,
        Some((control, instants)) => {
            let first = instants.first().copied();
            let filter = ExecutionFilter {
                job_name: Some(STEERED_JOB.to_owned()),
                plan_time_from: first,
                ..Default::default()
            };
            let stored = store
                .list_executions(&filter)
                .await
                .map_err(|e| e.to_string())?;
            let mut problems = Vec::new();
            let mut before_the_run = 0;
            for at in instants {
                for tenant in TENANTS {
                    let scope = Scope::new("tenant", tenant);
                    let row = stored
                        .iter()
                        .find(|r| r.scope == scope && r.plan_time == *at);
                    match row {
                        None => problems.push(format!("{scope} {}: never ran", instant(*at))),
                        Some(r) if r.status != Status::Success => {
                            problems.push(format!("{scope} {}: {}", instant(*at), r.status))
                        }
                        // It ran once, by the backfill.
                        Some(r) if r.control_id == Some(control.id) && ran(r) == 1 => {}
                        // An earlier demo on this database ran it; the
                        // backfill left it alone.
                        Some(r) if r.control_id != Some(control.id) && ran(r) == 0 => {
                            before_the_run += 1
                        }
                        Some(r) => problems.push(format!(
                            "{scope} {}: {} handler run(s) in this run",
                            instant(*at),
                            ran(r)
                        )),
                    }
                }
            }
            let mut detail = format!("{} instants x {} tenants", instants.len(), TENANTS.len());
            if before_the_run > 0 {
                detail.push_str(&format!(", {before_the_run} had run before this demo"));
            }
            Some((problems, detail))
        }
    };

    let verdict = |label, found: Option<(Vec<String>, String)>| match found {
        Some((problems, detail)) => Verdict {
            label,
            problems: Some(problems),
            detail,
        },
        None => Verdict {
            label,
            problems: None,
            detail: String::new(),
        },
    };
    Ok(vec![
        verdict("nothing of tenant_rollup started while paused", pause),
        verdict("the trigger ran once per tenant", trigger),
        verdict("every backfilled instant ran once", backfill),
        errors,
    ])
}

/// The verdicts for `--json`: per verdict, whether it was shown, holds,
/// and its problems.
pub fn verdicts_json(steered: &OperatorLog, verdicts: &[Verdict]) -> Value {
    let checks: Vec<Value> = verdicts
        .iter()
        .map(|v| {
            json!({
                "check": v.label,
                "shown": v.problems.is_some(),
                "ok": v.problems.as_ref().is_none_or(Vec::is_empty),
                "detail": v.detail,
                "problems": v.problems.clone().unwrap_or_default(),
            })
        })
        .collect();
    json!({
        "pause": steered.pause.as_ref().map(|c| c.id.to_string()),
        "trigger": steered.trigger.as_ref().map(|c| c.id.to_string()),
        "backfill": steered.backfill.as_ref().map(|(c, _)| c.id.to_string()),
        "checks": checks,
    })
}
