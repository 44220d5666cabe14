//! The demo's stored schedule (`docs/contract.md` §12): every replica
//! registers the kind [`STORED_KIND`]; at the start an operator creates the
//! stored schedule [`STORED_JOB`] of that kind, due every
//! [`FIRST_CADENCE`], and half-way through changes it to every
//! [`SECOND_CADENCE`], both through [`Operator`], each a line of the event
//! log. Each run prints the label its version's arguments carry, so the
//! log shows the runs under each version. The check then holds the table
//! to it: every run of the schedule has a plan time on the grid of the
//! version that was current at that plan time.
//!
//! A stored schedule of that name left by an earlier demo on the same
//! database is deleted first (its history stays), so that this run's
//! versions are its own; this run's stays after it, for `scheduler
//! schedule show` and `scheduler history` to show.

use std::sync::Arc;
use std::time::{Duration, Instant};

use scheduler_core::model::ScheduleForm;
use scheduler_core::plan::Schedule;
use scheduler_core::{
    Execution, ExecutionAudit, Operator, ScheduleDefinition, ScheduleOptions, StoredSchedule,
    StoredScopes,
};
use serde_json::{json, Map, Value};
use time::OffsetDateTime;
use tokio::sync::watch;

use super::steering::{instant, log, reach, Verdict};
use super::{STALE_TIMEOUT, TICK_INTERVAL};

/// The stored schedule's name: the job name of its executions.
pub const STORED_JOB: &str = "digest";
/// The kind every replica registers, and the stored schedule names.
pub const STORED_KIND: &str = "report";
/// The cadence it is created with.
const FIRST_CADENCE: Duration = Duration::from_secs(2);
/// The cadence it is changed to half-way.
const SECOND_CADENCE: Duration = Duration::from_secs(4);
/// When it is created: once the replicas have announced their kinds (so
/// the creation has no warning that none has the kind).
const CREATE_AT: Duration = Duration::from_millis(500);

/// The argument that names a version in the event log.
pub const LABEL: &str = "label";

/// What the operator did to the stored schedule, for the check.
#[derive(Debug, Default)]
pub struct StoredLog {
    /// Each version as written, oldest first.
    pub versions: Vec<StoredSchedule>,
    /// Requests that failed: each fails the check.
    pub errors: Vec<String>,
}

impl StoredLog {
    /// What the check sees of an operator that could not finish: `why`.
    pub fn failed(why: String) -> StoredLog {
        StoredLog {
            versions: Vec::new(),
            errors: vec![why],
        }
    }
}

/// The definition of the version due every `cadence`: the demo's quick
/// timeouts, and a label naming it.
fn definition(version: i64, cadence: Duration) -> ScheduleDefinition {
    let words = Schedule::every(cadence).describe();
    let mut arguments = Map::new();
    arguments.insert(LABEL.to_owned(), json!(format!("v{version}: {words}")));
    ScheduleDefinition {
        kind: STORED_KIND.to_owned(),
        schedule: ScheduleForm::Every {
            cadence,
            offset: Duration::ZERO,
        },
        scopes: StoredScopes::default(),
        arguments,
        paused: false,
        options: ScheduleOptions {
            run_timeout: Duration::from_secs(2),
            stale_timeout: STALE_TIMEOUT,
            heartbeat_interval: Duration::from_millis(500),
            allow_stale_reentry: true,
            retry_backoff: vec![Duration::from_secs(1)],
            ..ScheduleOptions::default()
        },
    }
}

/// `every 2 seconds`, for a version's log line.
fn words(s: &StoredSchedule) -> String {
    Schedule::from_form(&s.definition.schedule).map_or_else(|| "?".to_owned(), |p| p.describe())
}

/// Creates the stored schedule at [`CREATE_AT`], and changes its cadence
/// at `half` (the middle of the run), until `stop` says the run is over.
pub async fn run(
    store: Arc<dyn ExecutionAudit>,
    started: Instant,
    half: Duration,
    mut stop: watch::Receiver<bool>,
) -> StoredLog {
    let operator = Operator::new(store);
    let mut done = StoredLog::default();
    match operator.schedule(STORED_JOB).await {
        Ok(Some(left)) => match operator.delete_schedule(STORED_JOB, Some(left.version)).await {
            Ok(()) => log(
                started,
                &format!(
                    "deleted the stored schedule {STORED_JOB} v{} an earlier demo run left (its history stays)",
                    left.version
                ),
            ),
            Err(e) => done.errors.push(format!("delete of the earlier {STORED_JOB}: {e}")),
        },
        Ok(None) => {}
        Err(e) => done.errors.push(format!("read of {STORED_JOB}: {e}")),
    }
    if !done.errors.is_empty() || !reach(started, CREATE_AT, &mut stop).await {
        return done;
    }
    let created = match operator
        .create_schedule(STORED_JOB, &definition(1, FIRST_CADENCE))
        .await
    {
        Ok(written) => written,
        Err(e) => {
            log(started, &format!("create of {STORED_JOB} FAILED: {e}"));
            done.errors.push(format!("create: {e}"));
            return done;
        }
    };
    for w in &created.warnings {
        log(started, &format!("warning: {w}"));
    }
    let v1 = created.schedule;
    log(
        started,
        &format!(
            "CREATED stored schedule {STORED_JOB} v1 (kind {STORED_KIND}): {}, from {}",
            words(&v1),
            clock_ms(v1.updated_at)
        ),
    );
    done.versions.push(v1.clone());
    if !reach(started, half.max(CREATE_AT + TICK_INTERVAL), &mut stop).await {
        return done;
    }
    match operator
        .update_schedule(STORED_JOB, v1.version, &definition(2, SECOND_CADENCE))
        .await
    {
        Ok(written) => {
            let v2 = written.schedule;
            log(
                started,
                &format!(
                    "UPDATED {STORED_JOB} to v2: {}, from its next plan at or after {} on every replica",
                    words(&v2),
                    clock_ms(v2.updated_at)
                ),
            );
            done.versions.push(v2);
        }
        Err(e) => {
            log(started, &format!("update of {STORED_JOB} FAILED: {e}"));
            done.errors.push(format!("update: {e}"));
        }
    }
    done
}

/// `13:58:06.250`: an instant in an operator's line.
fn clock_ms(t: OffsetDateTime) -> String {
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Checks this run's rows of the stored schedule (`rows`, those of every
/// job) against its versions: each plan time lies on the grid of the
/// version current at it (the newest whose `updated_at` is not after it).
pub fn check(done: &StoredLog, rows: &[Execution]) -> Verdict {
    let label = "every run of digest on its version's grid";
    if done.versions.is_empty() && done.errors.is_empty() {
        return Verdict {
            label,
            problems: None,
            detail: String::new(),
        };
    }
    let mut problems = done.errors.clone();
    let mut runs = vec![0usize; done.versions.len()];
    for r in rows.iter().filter(|r| r.job_name == STORED_JOB) {
        let Some(at) = done
            .versions
            .iter()
            .rposition(|v| v.updated_at <= r.plan_time)
        else {
            problems.push(format!(
                "plan {} is before the schedule was created",
                instant(r.plan_time)
            ));
            continue;
        };
        let version = &done.versions[at];
        let on_grid = Schedule::from_form(&version.definition.schedule)
            .and_then(|s| s.at_or_after(r.plan_time))
            == Some(r.plan_time);
        if on_grid {
            runs[at] += 1;
        } else {
            problems.push(format!(
                "plan {} is not on the grid of v{} ({})",
                instant(r.plan_time),
                version.version,
                words(version)
            ));
        }
    }
    let detail = done
        .versions
        .iter()
        .zip(&runs)
        .map(|(v, n)| format!("v{} {}: {n} runs", v.version, words(v)))
        .collect::<Vec<_>>()
        .join(", ");
    Verdict {
        label,
        problems: Some(problems),
        detail,
    }
}

/// The versions for `--json`: version, schedule in words, when it became
/// current.
pub fn versions_json(done: &StoredLog) -> Value {
    Value::Array(
        done.versions
            .iter()
            .map(|v| {
                json!({
                    "version": v.version,
                    "schedule": words(v),
                    "updated_at": instant(v.updated_at),
                })
            })
            .collect(),
    )
}
