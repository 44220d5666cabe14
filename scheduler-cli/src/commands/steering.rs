//! What the steering commands (`pause`, `resume`, `trigger`, `backfill`,
//! `cancel`, `controls`) and `status` share: the `TIME` argument, the
//! target of a control, a control as JSON and as table cells, a trigger's
//! or a backfill's progress, and how an [`OperatorError`] ends the command.

use clap::Args;
use scheduler_core::{
    Control, ControlAction, ControlProgress, OperatorError, Scope, StoreError, Target,
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
        "in_force": c.in_force(now),
        "reason": c.reason,
        "created_at": json_ts(Some(c.created_at)),
        "ended_at": json_ts(c.ended_at),
        "cursor": json_ts(c.cursor),
        "updated_at": json_ts(Some(c.updated_at)),
    })
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
        Some((all, done)) => format!("instants {done}/{all}; {rows}"),
        None => rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
