//! What the steering commands (`pause`, `resume`, `trigger`, `backfill`,
//! `cancel`, `controls`) and `status` share: the `TIME` argument, the
//! target of a control, a control as JSON and as table cells, a trigger's
//! or a backfill's progress, and how an [`OperatorError`] ends the command.

use std::collections::BTreeMap;

use clap::Args;
use scheduler_core::model::{Progress, ScheduleForm};
use scheduler_core::operator::MAX_BACKFILL_INSTANTS;
use scheduler_core::plan::Schedule;
use scheduler_core::{
    Control, ControlAction, ExecutionAudit, OperatorError, Replica, Scope, StoreError, Target,
};
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::{parse_scope, Cx};
use crate::output::{escape, json_ts, Failure, Zone};

/// How many characters of a note or a reason a table shows (`--json`
/// prints them whole).
pub const TABLE_NOTE_CHARS: usize = 40;

/// A `TIME` argument: an instant, or an offset from store time (read when
/// the command runs, so that it means the same on every host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeArg {
    /// An RFC 3339 instant, in UTC, cut to whole microseconds as every
    /// store keeps instants.
    At(OffsetDateTime),
    /// `now`, `+30m`, `-2h`: store time moved by this much.
    FromNow(time::Duration),
}

/// Parses a `TIME`: RFC 3339 (`2026-12-07T10:00:00Z`,
/// `2026-12-07T11:00:00+01:00`), `now`, or a signed offset from store time
/// (`-2h`, `+30m`, `-1h 30m`).
///
/// # Errors
/// A message with the accepted forms; clap makes it a usage error.
pub fn parse_time(s: &str) -> Result<TimeArg, String> {
    let bad = |why: String| {
        format!(
            "invalid time {s:?}: {why} (expected RFC 3339 such as 2026-12-07T10:00:00Z, `now`, \
             or an offset from store time such as -2h or +30m)"
        )
    };
    let text = s.trim();
    if text == "now" {
        return Ok(TimeArg::FromNow(time::Duration::ZERO));
    }
    if let Some((sign, rest)) = text
        .strip_prefix('-')
        .map(|r| (-1, r))
        .or_else(|| text.strip_prefix('+').map(|r| (1, r)))
    {
        let offset = humantime::parse_duration(rest.trim()).map_err(|e| bad(e.to_string()))?;
        let offset = time::Duration::try_from(offset).map_err(|e| bad(e.to_string()))?;
        return Ok(TimeArg::FromNow(offset * sign));
    }
    let at = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| bad(e.to_string()))?
        .to_offset(time::UtcOffset::UTC);
    let micros = at.nanosecond() - at.nanosecond() % 1_000;
    Ok(TimeArg::At(
        at.replace_nanosecond(micros)
            .map_err(|e| bad(e.to_string()))?,
    ))
}

impl TimeArg {
    /// The instant this argument names at store time `now`.
    ///
    /// # Errors
    /// A usage failure for an offset that leaves the representable range.
    pub fn at(self, now: OffsetDateTime, flag: &str) -> Result<OffsetDateTime, Failure> {
        match self {
            TimeArg::At(at) => Ok(at),
            TimeArg::FromNow(offset) => now.checked_add(offset).ok_or_else(|| {
                Failure::Usage(format!("{flag}: {offset} from store time is out of range"))
            }),
        }
    }
}

/// What a control targets, as the commands take it: `JOB [--scope
/// KIND/ID]`.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// The job.
    pub job: String,
    /// Only this scope, as KIND/ID (e.g. tenant/acme); every scope of the
    /// job without it.
    #[arg(long, value_parser = parse_scope)]
    pub scope: Option<Scope>,
}

impl TargetArgs {
    /// The operator's [`Target`].
    pub fn target(&self) -> Target {
        Target {
            job: self.job.clone(),
            scope: self.scope.clone(),
        }
    }
}

/// `job "NAME", every scope` or `job "NAME", scope KIND/ID`: how messages
/// name a target, escaped.
pub fn target_words(job: &str, scope: Option<&Scope>) -> String {
    match scope {
        Some(scope) => format!("job {job:?}, scope {scope}"),
        None => format!("job {job:?}, every scope"),
    }
}

/// `NAME (every scope)` or `NAME KIND/ID`: a control's target in a table
/// cell, escaped.
pub fn target_cell(job: &str, scope: Option<&Scope>) -> String {
    match scope {
        Some(scope) => format!("{} {scope}", escape(job)),
        None => format!("{} (every scope)", escape(job)),
    }
}

/// How a refused or failed request ends the command: a refusal, or a
/// stored schedule's definition the rules refuse (named by its field), is
/// a usage error (exit 2; the Operator stored nothing), the rest runtime
/// errors (exit 1), a conflict saying that nothing changed.
pub fn operator_failure(cx: &Cx, e: OperatorError) -> Failure {
    match e {
        OperatorError::Refused(why) => Failure::Usage(format!("refused (nothing changed): {why}")),
        OperatorError::Invalid(spec) => Failure::Usage(format!(
            "refused (nothing changed): {}: {}",
            spec.field, spec.reason
        )),
        OperatorError::UnknownControl(id) => Failure::Runtime(format!("no control with id {id}")),
        OperatorError::Store(StoreError::Conflict(why)) => {
            Failure::Runtime(format!("nothing changed: {why}"))
        }
        OperatorError::Store(StoreError::InvalidInput(why)) => {
            Failure::Usage(format!("refused (nothing changed): {why}"))
        }
        OperatorError::Store(e) => Failure::Runtime(cx.error(e)),
    }
}

/// What every command that stores a control does first: each warning on
/// stderr (`warning: ...`), then, with `--json`, the control with its
/// warnings (and a backfill's instants) as the one document. `None` when
/// the caller prints its own line.
pub fn report_json(cx: &Cx, steered: &scheduler_core::Steered) -> Option<Result<(), Failure>> {
    for w in &steered.warnings {
        eprintln!("warning: {w}");
    }
    cx.json.then(|| {
        let control = &steered.control;
        let mut doc = control_json(control, control.created_at);
        doc["warnings"] = steered.warnings.clone().into();
        if let Some(instants) = steered.instants {
            doc["instants"] = instants.into();
        }
        crate::output::emit_json(&doc)
    })
}

/// Whether `control` is in force at `now`: an active pause that has not
/// run out, an active trigger or backfill.
pub fn in_force(control: &Control, now: OffsetDateTime) -> bool {
    match control.action {
        ControlAction::Pause { .. } => control.pauses(now),
        _ => control.is_active(),
    }
}

/// Every field of a stored control, for `--json`; `in_force` says whether
/// it steers at `now` (a pause whose `until` passed is still stored as
/// active, but pauses nothing).
pub fn control_json(c: &Control, now: OffsetDateTime) -> Value {
    json!({
        "id": c.id.to_string(),
        "kind": c.action.kind(),
        "job": c.job_name,
        "scope": c.scope.as_ref().map(Scope::to_string),
        "action": c.action,
        "note": c.note,
        "state": c.state.as_str(),
        "in_force": in_force(c, now),
        "reason": c.reason,
        "created_at": json_ts(Some(c.created_at)),
        "ended_at": json_ts(c.ended_at),
        "cursor": json_ts(c.cursor),
        "updated_at": json_ts(Some(c.updated_at)),
    })
}

/// A count of planned instants, which stops at a bound for schedules that
/// must be walked one instant at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instants {
    /// How many (at most the bound when `capped`).
    pub count: u64,
    /// There are more than `count`.
    pub capped: bool,
}

impl Instants {
    /// `12`, or `100000+` when capped.
    pub fn text(self) -> String {
        if self.capped {
            format!("{}+", self.count)
        } else {
            self.count.to_string()
        }
    }
}

/// The planned instants of `schedule` in `[from, to)`, as the Operator
/// counts a backfill's. A cadence's are counted by arithmetic, whatever
/// their number (a confirmed backfill may hold millions); a cron
/// schedule's are walked, up to [`MAX_BACKFILL_INSTANTS`].
pub fn count_instants(schedule: &Schedule, from: OffsetDateTime, to: OffsetDateTime) -> Instants {
    if from >= to {
        return Instants {
            count: 0,
            capped: false,
        };
    }
    let last = to - time::Duration::microseconds(1);
    match schedule {
        Schedule::Every { cadence, .. } => {
            let Some(first) = schedule.at_or_after(from) else {
                return Instants {
                    count: 0,
                    capped: false,
                };
            };
            let step = i128::try_from(cadence.as_micros())
                .unwrap_or(i128::MAX)
                .max(1);
            let count = if first > last {
                0
            } else {
                let span = (last - first).whole_microseconds();
                u64::try_from(span / step + 1).unwrap_or(u64::MAX)
            };
            Instants {
                count,
                capped: false,
            }
        }
        Schedule::Cron(_) => {
            let found = schedule
                .between(from, last, MAX_BACKFILL_INSTANTS + 1)
                .len();
            Instants {
                count: found.min(MAX_BACKFILL_INSTANTS) as u64,
                capped: found > MAX_BACKFILL_INSTANTS,
            }
        }
    }
}

/// Each job's schedule as the registry knows it: from the replica seen
/// most recently that announced the job, live or not (a backfill's range
/// is counted the same either way). Jobs with a custom planner or a form
/// this version cannot read have none.
pub fn known_schedules(replicas: &[Replica]) -> BTreeMap<String, Schedule> {
    let mut newest: BTreeMap<&str, (OffsetDateTime, &ScheduleForm)> = BTreeMap::new();
    for r in replicas {
        for job in &r.info.jobs {
            let seen = newest
                .entry(&job.name)
                .or_insert((r.last_seen_at, &job.schedule_form));
            if r.last_seen_at > seen.0 {
                *seen = (r.last_seen_at, &job.schedule_form);
            }
        }
    }
    newest
        .into_iter()
        .filter_map(|(name, (_, form))| Schedule::from_form(form).map(|s| (name.to_owned(), s)))
        .collect()
}

/// How far a trigger or a backfill got: its rows by status, and for a
/// backfill its planned instants, in all and before its cursor (those
/// claimed for every target scope), when the job's schedule is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlProgress {
    /// The control's rows by status.
    pub rows: Progress,
    /// A backfill's planned instants per scope: all, and those done.
    pub instants: Option<(Instants, Instants)>,
}

/// The progress of `control` (`None` for a pause), reading its rows.
///
/// # Errors
/// The store's, when its rows cannot be read.
pub async fn progress_of(
    store: &dyn ExecutionAudit,
    control: &Control,
    schedules: &BTreeMap<String, Schedule>,
) -> Result<Option<ControlProgress>, StoreError> {
    if matches!(control.action, ControlAction::Pause { .. }) {
        return Ok(None);
    }
    let rows = store.control_progress(control.id).await?;
    let instants = match (control.action.clone(), schedules.get(&control.job_name)) {
        (ControlAction::Backfill { from, to }, Some(schedule)) => {
            let cursor = control.cursor.unwrap_or(from).min(to);
            Some((
                count_instants(schedule, from, to),
                count_instants(schedule, from, cursor),
            ))
        }
        _ => None,
    };
    Ok(Some(ControlProgress { rows, instants }))
}

/// [`control_json`] with the control's progress: `progress` (rows by
/// status; null for a pause), and for a backfill `instants_total` and
/// `instants_done` (null when the job's schedule is not known) and
/// `instants_capped`.
pub fn control_with_progress_json(
    c: &Control,
    progress: Option<&ControlProgress>,
    now: OffsetDateTime,
) -> Value {
    let mut value = control_json(c, now);
    value["progress"] = json!(progress.map(|p| p.rows));
    if matches!(c.action, ControlAction::Backfill { .. }) {
        let instants = progress.and_then(|p| p.instants);
        value["instants_total"] = json!(instants.map(|(all, _)| all.count));
        value["instants_done"] = json!(instants.map(|(_, done)| done.count));
        value["instants_capped"] = json!(instants.is_some_and(|(all, _)| all.capped));
    }
    value
}

/// What a control covers in time, for a table: a pause's `until` (or
/// `until resumed`; `passed` once it ran out) and whether missed plans are
/// skipped, a backfill's range, `now` for a trigger.
pub fn span_cell(c: &Control, now: OffsetDateTime, zone: &Zone) -> String {
    match c.action {
        ControlAction::Pause { until, skip_missed } => {
            let mut text = match until {
                Some(u) if u <= now => format!("until {} (passed)", zone.ts(Some(u))),
                Some(u) => format!("until {}", zone.ts(Some(u))),
                None => "until resumed".to_owned(),
            };
            if skip_missed {
                text.push_str(", skip missed");
            }
            text
        }
        ControlAction::Trigger => "now".to_owned(),
        ControlAction::Backfill { from, to } => {
            format!("[{}, {})", zone.ts(Some(from)), zone.ts(Some(to)))
        }
    }
}

/// A trigger's or a backfill's progress for a table: `instants 4/12;
/// rows 20 ok, 0 failed, 5 running`; `-` for a pause.
pub fn progress_cell(progress: Option<&ControlProgress>) -> String {
    let Some(p) = progress else {
        return "-".to_owned();
    };
    let rows = format!(
        "rows {} ok, {} failed, {} running",
        p.rows.succeeded, p.rows.failed, p.rows.running
    );
    match p.instants {
        Some((all, done)) => format!("instants {}/{}; {rows}", done.text(), all.text()),
        None => rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use time::macros::datetime;

    #[test]
    fn times_are_instants_or_offsets_from_store_time() {
        let now = datetime!(2026-12-07 10:00 UTC);
        let at = |s: &str| parse_time(s).unwrap().at(now, "--until").unwrap();
        assert_eq!(at("2026-12-07T12:00:00Z"), datetime!(2026-12-07 12:00 UTC));
        assert_eq!(
            at("2026-12-07T12:00:00+01:00"),
            datetime!(2026-12-07 11:00 UTC)
        );
        assert_eq!(
            at("2026-12-07T12:00:00.1234567Z"),
            datetime!(2026-12-07 12:00:00.123456 UTC),
            "cut to microseconds"
        );
        assert_eq!(at("now"), now);
        assert_eq!(at("-2h"), datetime!(2026-12-07 08:00 UTC));
        assert_eq!(at("+30m"), datetime!(2026-12-07 10:30 UTC));
        assert_eq!(at("-1h 30m"), datetime!(2026-12-07 08:30 UTC));
        for bad in ["tomorrow", "2026-12-07", "-", "+3 fortnights", ""] {
            let err = parse_time(bad).unwrap_err();
            assert!(err.contains("RFC 3339"), "{bad}: {err}");
        }
        assert!(parse_time("+100000000days")
            .unwrap()
            .at(now, "--until")
            .is_err());
    }

    #[test]
    fn instants_are_counted_as_the_operator_counts_them() {
        let from = datetime!(2026-03-01 11:00 UTC);
        let to = datetime!(2026-03-01 12:00 UTC);
        let five = Schedule::every(Duration::from_secs(300));
        // 11:00 .. 11:55: 12, the end excluded.
        assert_eq!(count_instants(&five, from, to).count, 12);
        assert_eq!(
            count_instants(&five, from + Duration::from_secs(1), to).count,
            11
        );
        assert_eq!(count_instants(&five, from, from).count, 0);
        let year = count_instants(&five, to - Duration::from_secs(365 * 86_400), to);
        assert_eq!((year.count, year.capped), (105_120, false));
        let cron = Schedule::Cron(std::sync::Arc::new(
            scheduler_core::plan::CronSchedule::parse("*/5 * * * *", "UTC").unwrap(),
        ));
        assert_eq!(count_instants(&cron, from, to).count, 12);
        let many = count_instants(&cron, to - Duration::from_secs(365 * 86_400), to);
        assert!(many.capped && many.text().ends_with('+'), "{many:?}");
    }
}
