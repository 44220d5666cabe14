//! How values are stored: instants as INTEGER microseconds since the Unix
//! epoch, UUIDs as hyphenated lowercase TEXT, `result` as JSON TEXT.

use rusqlite::types::Type;
use rusqlite::Row;
use scheduler_core::machine::LiveRun;
use scheduler_core::model::{jobs_from_json, Control, ControlAction, ControlState, Origin};
use scheduler_core::{
    Attempt, AttemptOutcome, Execution, LatestExecution, Replica, ReplicaInfo, Scope, ScopeSummary,
    Status, StoreError, StoredSchedule,
};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::Failure;

/// Microseconds since the Unix epoch, floored, so an instant before 1970
/// rounds the same way as [`scheduler_core::time::to_micros`].
pub(crate) fn micros(t: OffsetDateTime) -> i64 {
    // Every OffsetDateTime (years -9999..=9999) is within ±3.2e17 µs, far
    // inside i64.
    t.unix_timestamp_nanos().div_euclid(1_000) as i64
}

/// The instant `micros` encodes, if it is one `time` can represent.
pub(crate) fn instant(micros: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000).ok()
}

/// A UUID in its stored form.
pub(crate) fn uuid_text(id: Uuid) -> String {
    id.hyphenated().to_string()
}

/// A stored UUID, read outside a row decoder.
pub(crate) fn parse_uuid(text: &str) -> Result<Uuid, Failure> {
    Uuid::parse_str(text).map_err(|e| {
        StoreError::backend_msg(format!("stored id {text:?} is not a uuid: {e}")).into()
    })
}

/// `result` in its stored form, JSON text.
///
/// # Errors
/// [`StoreError::InvalidInput`] for a result that cannot be encoded (the
/// write is refused before anything is written).
pub(crate) fn result_text(result: &Map<String, Value>) -> Result<String, StoreError> {
    serde_json::to_string(result)
        .map_err(|e| StoreError::InvalidInput(format!("result cannot be encoded: {e}")))
}

fn bad(idx: usize, ty: Type, what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, ty, what.into())
}

pub(crate) fn instant_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<OffsetDateTime> {
    let us: i64 = row.get(idx)?;
    instant(us).ok_or_else(|| bad(idx, Type::Integer, format!("instant {us} µs out of range")))
}

fn opt_instant_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<OffsetDateTime>> {
    match row.get::<_, Option<i64>>(idx)? {
        None => Ok(None),
        Some(_) => instant_at(row, idx).map(Some),
    }
}

fn uuid_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Uuid> {
    let text: String = row.get(idx)?;
    Uuid::parse_str(&text).map_err(|e| bad(idx, Type::Text, format!("uuid {text:?}: {e}")))
}

fn opt_uuid_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<Uuid>> {
    match row.get::<_, Option<String>>(idx)? {
        None => Ok(None),
        Some(_) => uuid_at(row, idx).map(Some),
    }
}

/// A stored `origin`, NULL for scheduled ([`Origin::from_column`]).
fn origin_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Origin> {
    Ok(Origin::from_column(
        row.get::<_, Option<String>>(idx)?.as_deref(),
    ))
}

fn status_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Status> {
    let text: String = row.get(idx)?;
    Status::parse(&text).ok_or_else(|| bad(idx, Type::Text, format!("status {text:?}")))
}

fn result_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Map<String, Value>> {
    let text: String = row.get(idx)?;
    match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(bad(
            idx,
            Type::Text,
            format!("result is not an object: {other}"),
        )),
        Err(e) => Err(bad(idx, Type::Text, format!("result is not json: {e}"))),
    }
}

/// A row selected with `sql/fragments/columns.sql`.
pub(crate) fn execution(row: &Row<'_>) -> rusqlite::Result<Execution> {
    Ok(Execution {
        id: uuid_at(row, 0)?,
        job_name: row.get::<_, String>(1)?.into(),
        scope: Scope::new(row.get::<_, String>(2)?, row.get::<_, String>(3)?),
        plan_time: instant_at(row, 4)?,
        status: status_at(row, 5)?,
        attempt: row.get(6)?,
        max_attempts: row.get(7)?,
        next_retry_at: opt_instant_at(row, 8)?,
        runner_id: row.get::<_, Option<String>>(9)?.map(Into::into),
        lease_token: uuid_at(row, 10)?,
        heartbeat_at: opt_instant_at(row, 11)?,
        stale_after: opt_instant_at(row, 12)?,
        started_at: opt_instant_at(row, 13)?,
        finished_at: opt_instant_at(row, 14)?,
        duration_ms: row.get(15)?,
        rows_affected: row.get(16)?,
        result: result_at(row, 17)?,
        error_code: row.get(18)?,
        error_msg: row.get(19)?,
        created_at: instant_at(row, 20)?,
        updated_at: instant_at(row, 21)?,
        origin: origin_at(row, 22)?,
        control_id: opt_uuid_at(row, 23)?,
    })
}

/// A row of `attempts.sql` (`fragments/attempt_columns.sql`, in order).
pub(crate) fn attempt(row: &Row<'_>) -> rusqlite::Result<Attempt> {
    let outcome: String = row.get(5)?;
    Ok(Attempt {
        execution_id: uuid_at(row, 0)?,
        attempt: row.get(1)?,
        runner_id: row.get::<_, Option<String>>(2)?.map(Into::into),
        started_at: opt_instant_at(row, 3)?,
        ended_at: instant_at(row, 4)?,
        outcome: AttemptOutcome::parse(&outcome)
            .ok_or_else(|| bad(5, Type::Text, format!("outcome {outcome:?}")))?,
        error_code: row.get(6)?,
        error_msg: row.get(7)?,
        duration_ms: row.get(8)?,
    })
}

/// The planning view from columns `offset..offset + 6`: plan_time, status,
/// attempt, max_attempts, next_retry_at, error_code.
pub(crate) fn latest_view(row: &Row<'_>, offset: usize) -> rusqlite::Result<LatestExecution> {
    Ok(LatestExecution {
        plan_time: instant_at(row, offset)?,
        status: status_at(row, offset + 1)?,
        attempt: row.get(offset + 2)?,
        max_attempts: row.get(offset + 3)?,
        next_retry_at: opt_instant_at(row, offset + 4)?,
        error_code: row.get(offset + 5)?,
    })
}

fn count_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let n: i64 = row.get(idx)?;
    u64::try_from(n).map_err(|_| bad(idx, Type::Integer, format!("count {n} is negative")))
}

/// A row of the scope summary statement: job, kind, id; the latest row's
/// planning view (columns 3..9, as [`latest_view`]); the last success's plan
/// time and finish; then running, stale, retry pending, the earliest retry,
/// exhausted and stale_timeout.
pub(crate) fn scope_summary(row: &Row<'_>) -> rusqlite::Result<ScopeSummary> {
    Ok(ScopeSummary {
        job_name: row.get(0)?,
        scope: Scope::new(row.get::<_, String>(1)?, row.get::<_, String>(2)?),
        latest: latest_view(row, 3)?,
        last_success_plan_time: opt_instant_at(row, 9)?,
        last_success_finished_at: opt_instant_at(row, 10)?,
        running: count_at(row, 11)?,
        stale: count_at(row, 12)?,
        retry_pending: count_at(row, 13)?,
        next_retry_at: opt_instant_at(row, 14)?,
        exhausted: count_at(row, 15)?,
        stale_timeout: count_at(row, 16)?,
        skipped: count_at(row, 17)?,
    })
}

/// A control's optional scope, stored as two columns both NULL or neither.
fn opt_scope_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<Scope>> {
    match (
        row.get::<_, Option<String>>(idx)?,
        row.get::<_, Option<String>>(idx + 1)?,
    ) {
        (Some(kind), Some(id)) => Ok(Some(Scope::new(kind, id))),
        (None, None) => Ok(None),
        _ => Err(bad(idx, Type::Text, "half a scope".to_owned())),
    }
}

/// A row selected with `sql/fragments/control_columns.sql`.
pub(crate) fn control(row: &Row<'_>) -> rusqlite::Result<Control> {
    let kind: String = row.get(1)?;
    let action = match kind.as_str() {
        "pause" => ControlAction::Pause {
            until: opt_instant_at(row, 10)?,
            skip_missed: row.get(11)?,
        },
        "trigger" => ControlAction::Trigger,
        "backfill" => ControlAction::Backfill {
            from: instant_at(row, 12)?,
            to: instant_at(row, 13)?,
        },
        other => return Err(bad(1, Type::Text, format!("control kind {other:?}"))),
    };
    let state: String = row.get(6)?;
    Ok(Control {
        id: uuid_at(row, 0)?,
        job_name: row.get(2)?,
        scope: opt_scope_at(row, 3)?,
        note: row.get(5)?,
        action,
        state: ControlState::parse(&state)
            .ok_or_else(|| bad(6, Type::Text, format!("control state {state:?}")))?,
        reason: row.get(7)?,
        created_at: instant_at(row, 8)?,
        ended_at: opt_instant_at(row, 9)?,
        cursor: opt_instant_at(row, 14)?,
        updated_at: instant_at(row, 15)?,
    })
}

/// What a row of `claim_admission.sql` is: a pause in force, or a live run
/// of one of the batch's scopes.
pub(crate) enum AdmissionInput {
    /// A pause in force.
    Pause(Control),
    /// A live run.
    Live(LiveRun),
}

/// A row of `claim_admission.sql`: the control columns of a pause, or a
/// live run (kind `live`: id, job and scope in a control's places, then
/// plan time, origin and lease token in the last three columns).
pub(crate) fn admission_input(row: &Row<'_>) -> rusqlite::Result<AdmissionInput> {
    if row.get::<_, String>(1)? != "live" {
        return control(row).map(AdmissionInput::Pause);
    }
    Ok(AdmissionInput::Live(LiveRun {
        id: uuid_at(row, 0)?,
        scope: Scope::new(row.get::<_, String>(3)?, row.get::<_, String>(4)?),
        plan_time: instant_at(row, 16)?,
        origin: origin_at(row, 17)?,
        lease_token: uuid_at(row, 18)?,
    }))
}

/// A row of `replicas.sql`: runner id, host, pid, version, refresh
/// interval (ms), jobs (JSON), started, last seen, stopped, kinds (JSON).
pub(crate) fn replica(row: &Row<'_>) -> rusqlite::Result<Replica> {
    let pid: i64 = row.get(2)?;
    let refresh_ms: i64 = row.get(4)?;
    let jobs: String = row.get(5)?;
    let kinds: String = row.get(9)?;
    Ok(Replica {
        info: ReplicaInfo {
            runner_id: row.get(0)?,
            host: row.get(1)?,
            pid: u32::try_from(pid).map_err(|_| bad(2, Type::Integer, format!("pid {pid}")))?,
            version: row.get(3)?,
            refresh_interval: std::time::Duration::from_millis(
                u64::try_from(refresh_ms)
                    .map_err(|_| bad(4, Type::Integer, format!("interval {refresh_ms} ms")))?,
            ),
            jobs: jobs_from_json(&jobs).map_err(|e| bad(5, Type::Text, e))?,
            kinds: serde_json::from_str(&kinds)
                .map_err(|e| bad(9, Type::Text, format!("kinds are not a list of names: {e}")))?,
        },
        started_at: instant_at(row, 6)?,
        last_seen_at: instant_at(row, 7)?,
        stopped_at: opt_instant_at(row, 8)?,
    })
}

/// A row of `schedules.sql` or `schedule_get.sql`: name, version,
/// definition (JSON), created, updated. A definition this version cannot
/// read fails the read, as an unknown control kind does.
pub(crate) fn schedule(row: &Row<'_>) -> rusqlite::Result<StoredSchedule> {
    let name: String = row.get(0)?;
    let definition: String = row.get(2)?;
    Ok(StoredSchedule {
        definition: StoredSchedule::definition_from_json(&definition)
            .map_err(|e| bad(2, Type::Text, format!("{name:?}: {e}")))?,
        name,
        version: row.get(1)?,
        created_at: instant_at(row, 3)?,
        updated_at: instant_at(row, 4)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use scheduler_core::time::to_micros;
    use time::macros::datetime;

    #[test]
    fn micros_round_trip_and_floor_before_the_epoch() {
        for t in [
            datetime!(2026-03-05 12:34:56.123456 UTC),
            datetime!(1969-12-31 23:59:59.999999 UTC),
            datetime!(0001-01-01 00:00 UTC),
            datetime!(9999-12-31 23:59:59.999999 UTC),
        ] {
            assert_eq!(instant(micros(t)), Some(t));
        }
        let sub = datetime!(1969-12-31 23:59:59.9999995 UTC);
        assert_eq!(instant(micros(sub)), Some(to_micros(sub)));
        assert_eq!(instant(i64::MAX), None);
    }
}
