//! Decoding rows into the core's types, and mapping driver errors.

use std::time::Duration;

use scheduler_core::machine::LiveRun;
use scheduler_core::model::{jobs_from_json, Control, ControlAction, ControlState, Origin};
use scheduler_core::time::to_micros;
use scheduler_core::{
    Attempt, AttemptOutcome, Execution, LatestExecution, Replica, ReplicaInfo, Scope, ScopeSummary,
    Status, StoreError, StoredSchedule,
};
use serde_json::{Map, Value};
use sqlx_core::row::Row;
use sqlx_postgres::types::PgInterval;
use sqlx_postgres::{PgDatabaseError, PgRow};
use time::OffsetDateTime;
use uuid::Uuid;

/// Maps a driver error of operation `op` to a [`StoreError`]: a value the
/// server refuses as such (SQLSTATE class 22, data exception, or 54,
/// program limit exceeded, such as an index row over btree's size limit) is
/// [`StoreError::InvalidInput`], which no retry can cure; anything else is
/// [`StoreError::Backend`]. The message is [`describe`]'s. The driver's
/// messages name the server's complaint or the I/O failure, never the
/// connection string, so no password can leak through them.
pub(crate) fn backend(op: &'static str) -> impl Fn(sqlx_core::Error) -> StoreError + Copy {
    move |e| {
        let message = format!("postgres {op}: {}", describe(&e));
        if refused_value(&e) {
            return StoreError::InvalidInput(message);
        }
        StoreError::Backend {
            message,
            source: Some(Box::new(e)),
        }
    }
}

/// A driver error as a reader wants it. An error the server sent is its
/// message, then its DETAIL and HINT when it gave them, then its SQLSTATE:
/// `database "x" does not exist (SQLSTATE 3D000)`. (The driver's own
/// rendering prefixes "error returned from database" and appends the line
/// of the server's C source that raised it, which helps nobody and hides
/// the code.) Any other error is the driver's text.
pub(crate) fn describe(e: &sqlx_core::Error) -> String {
    let Some(db) = e
        .as_database_error()
        .and_then(|db| db.try_downcast_ref::<PgDatabaseError>())
    else {
        return e.to_string();
    };
    let mut text = db.message().to_owned();
    if let Some(detail) = db.detail() {
        text.push_str("; detail: ");
        text.push_str(detail);
    }
    if let Some(hint) = db.hint() {
        text.push_str("; hint: ");
        text.push_str(hint);
    }
    text.push_str(&format!(" (SQLSTATE {})", db.code()));
    text
}

/// The SQLSTATE of an error the server sent, if it is one.
pub(crate) fn sqlstate(e: &sqlx_core::Error) -> Option<String> {
    e.as_database_error()
        .and_then(|db| db.code())
        .map(|code| code.into_owned())
}

/// Whether the server refused a value of the statement (SQLSTATE class 22
/// or 54) rather than failing as a whole.
pub(crate) fn refused_value(e: &sqlx_core::Error) -> bool {
    sqlstate(e).is_some_and(|code| code.starts_with("22") || code.starts_with("54"))
}

/// A duration as an `interval`, truncated to microseconds (PostgreSQL's
/// precision).
pub(crate) fn interval(what: &str, d: Duration) -> Result<PgInterval, StoreError> {
    let microseconds = i64::try_from(d.as_micros()).map_err(|_| {
        StoreError::InvalidInput(format!("{what} of {d:?} is too long for an interval"))
    })?;
    Ok(PgInterval {
        months: 0,
        days: 0,
        microseconds,
    })
}

fn get<'r, T>(row: &'r PgRow, column: &str) -> Result<T, StoreError>
where
    T: sqlx_core::decode::Decode<'r, sqlx_postgres::Postgres>
        + sqlx_core::types::Type<sqlx_postgres::Postgres>,
{
    row.try_get(column).map_err(backend("decode"))
}

/// A timestamptz column, in UTC at microsecond precision.
pub(crate) fn instant(row: &PgRow, column: &str) -> Result<OffsetDateTime, StoreError> {
    get::<OffsetDateTime>(row, column).map(to_micros)
}

fn opt_instant(row: &PgRow, column: &str) -> Result<Option<OffsetDateTime>, StoreError> {
    Ok(get::<Option<OffsetDateTime>>(row, column)?.map(to_micros))
}

pub(crate) fn status(row: &PgRow, column: &str) -> Result<Status, StoreError> {
    let text: String = get(row, column)?;
    Status::parse(&text)
        .ok_or_else(|| StoreError::backend_msg(format!("postgres row has unknown status {text:?}")))
}

/// `result` as the object the core expects. Rows written by other writers
/// (the seed shares the table) may hold JSON `null`, read as `{}`, or another
/// non-object value, kept whole under `"value"` so an audit read never fails
/// on one odd row.
fn result_object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        Value::Null => Map::new(),
        other => Map::from_iter([("value".to_owned(), other)]),
    }
}

/// A whole row, selected with `sql/fragments/columns.sql`.
pub(crate) fn execution(row: &PgRow) -> Result<Execution, StoreError> {
    Ok(Execution {
        id: get(row, "id")?,
        job_name: get::<String>(row, "job_name")?.into(),
        scope: Scope::new(
            get::<String>(row, "scope_kind")?,
            get::<String>(row, "scope_id")?,
        ),
        plan_time: instant(row, "plan_time")?,
        status: status(row, "status")?,
        attempt: get(row, "attempt")?,
        max_attempts: get(row, "max_attempts")?,
        next_retry_at: opt_instant(row, "next_retry_at")?,
        runner_id: get::<Option<String>>(row, "runner_id")?.map(Into::into),
        lease_token: get::<Uuid>(row, "lease_token")?,
        heartbeat_at: opt_instant(row, "heartbeat_at")?,
        stale_after: opt_instant(row, "stale_after")?,
        started_at: opt_instant(row, "started_at")?,
        finished_at: opt_instant(row, "finished_at")?,
        duration_ms: get(row, "duration_ms")?,
        rows_affected: get(row, "rows_affected")?,
        result: result_object(get(row, "result")?),
        error_code: get(row, "error_code")?,
        error_msg: get(row, "error_msg")?,
        created_at: instant(row, "created_at")?,
        updated_at: instant(row, "updated_at")?,
        origin: origin(row)?,
        control_id: get(row, "control_id")?,
    })
}

/// The `origin` column (any text but `backfill` reads as a trigger:
/// [`Origin::from_column`]).
fn origin(row: &PgRow) -> Result<Origin, StoreError> {
    Ok(Origin::from_column(
        get::<Option<String>>(row, "origin")?.as_deref(),
    ))
}

/// A live run of `claim_admission.sql` (a row whose `live` is true).
pub(crate) fn live_run(row: &PgRow) -> Result<LiveRun, StoreError> {
    Ok(LiveRun {
        id: get(row, "id")?,
        scope: Scope::new(
            get::<String>(row, "scope_kind")?,
            get::<String>(row, "scope_id")?,
        ),
        plan_time: instant(row, "plan_time")?,
        origin: origin(row)?,
        lease_token: get(row, "lease_token")?,
    })
}

/// A control, selected with `sql/fragments/control_columns.sql`.
pub(crate) fn control(row: &PgRow) -> Result<Control, StoreError> {
    let kind: String = get(row, "kind")?;
    let state: String = get(row, "state")?;
    let id: Uuid = get(row, "id")?;
    let bad = |what: String| StoreError::backend_msg(format!("postgres control {id} {what}"));
    let needed = |column: &str| {
        opt_instant(row, column)?.ok_or_else(|| bad(format!("is a backfill without {column}")))
    };
    let action = match kind.as_str() {
        "pause" => ControlAction::Pause {
            until: opt_instant(row, "until_time")?,
            skip_missed: get(row, "skip_missed")?,
        },
        "trigger" => ControlAction::Trigger,
        "backfill" => ControlAction::Backfill {
            from: needed("from_time")?,
            to: needed("to_time")?,
        },
        _ => return Err(bad(format!("has unknown kind {kind:?}"))),
    };
    let scope = match (
        get::<Option<String>>(row, "scope_kind")?,
        get::<Option<String>>(row, "scope_id")?,
    ) {
        (Some(kind), Some(id)) => Some(Scope::new(kind, id)),
        _ => None,
    };
    Ok(Control {
        id,
        job_name: get(row, "job_name")?,
        scope,
        note: get(row, "note")?,
        action,
        state: ControlState::parse(&state)
            .ok_or_else(|| bad(format!("has unknown state {state:?}")))?,
        reason: get(row, "reason")?,
        created_at: instant(row, "created_at")?,
        ended_at: opt_instant(row, "ended_at")?,
        cursor: opt_instant(row, "cursor_time")?,
        updated_at: instant(row, "updated_at")?,
    })
}

/// A record of the attempts log, selected with
/// `sql/fragments/attempt_columns.sql`.
pub(crate) fn attempt(row: &PgRow) -> Result<Attempt, StoreError> {
    let outcome: String = get(row, "outcome")?;
    Ok(Attempt {
        execution_id: get(row, "execution_id")?,
        attempt: get(row, "attempt")?,
        runner_id: get::<Option<String>>(row, "runner_id")?.map(Into::into),
        started_at: opt_instant(row, "started_at")?,
        ended_at: instant(row, "ended_at")?,
        outcome: AttemptOutcome::parse(&outcome).ok_or_else(|| {
            StoreError::backend_msg(format!("postgres attempt has unknown outcome {outcome:?}"))
        })?,
        error_code: get(row, "error_code")?,
        error_msg: get(row, "error_msg")?,
        duration_ms: get(row, "duration_ms")?,
    })
}

/// A row of the latest-execution query.
pub(crate) fn latest(row: &PgRow) -> Result<LatestExecution, StoreError> {
    Ok(LatestExecution {
        plan_time: instant(row, "plan_time")?,
        status: status(row, "status")?,
        attempt: get(row, "attempt")?,
        max_attempts: get(row, "max_attempts")?,
        next_retry_at: opt_instant(row, "next_retry_at")?,
        error_code: get(row, "error_code")?,
    })
}

/// A row of the scope-summary query (`sql/summaries.sql`): the group's
/// counts, its latest row under the columns [`latest`] reads, and its last
/// SUCCESS.
pub(crate) fn summary(row: &PgRow) -> Result<ScopeSummary, StoreError> {
    let count = |column: &str| -> Result<u64, StoreError> {
        let n: i64 = get(row, column)?;
        u64::try_from(n).map_err(|_| {
            StoreError::backend_msg(format!("postgres returned a negative count {column} = {n}"))
        })
    };
    Ok(ScopeSummary {
        job_name: get(row, "job_name")?,
        scope: Scope::new(
            get::<String>(row, "scope_kind")?,
            get::<String>(row, "scope_id")?,
        ),
        latest: latest(row)?,
        last_success_plan_time: opt_instant(row, "success_plan_time")?,
        last_success_finished_at: opt_instant(row, "success_finished_at")?,
        running: count("running")?,
        stale: count("stale")?,
        retry_pending: count("retry_pending")?,
        next_retry_at: opt_instant(row, "first_retry_at")?,
        exhausted: count("exhausted")?,
        stale_timeout: count("stale_timeout")?,
        skipped: count("skipped")?,
    })
}

/// A row of `sql/replicas.sql`.
pub(crate) fn replica(row: &PgRow) -> Result<Replica, StoreError> {
    let out_of_range = |column: &str, n: i64| {
        StoreError::backend_msg(format!("postgres replica row has {column} = {n}"))
    };
    let pid: i64 = get(row, "pid")?;
    let refresh_ms: i64 = get(row, "refresh_interval_ms")?;
    let jobs: String = get(row, "jobs")?;
    let kinds: String = get(row, "kinds")?;
    Ok(Replica {
        info: ReplicaInfo {
            runner_id: get(row, "runner_id")?,
            host: get(row, "host")?,
            pid: u32::try_from(pid).map_err(|_| out_of_range("pid", pid))?,
            version: get(row, "version")?,
            refresh_interval: Duration::from_millis(
                u64::try_from(refresh_ms)
                    .map_err(|_| out_of_range("refresh_interval_ms", refresh_ms))?,
            ),
            jobs: jobs_from_json(&jobs).map_err(StoreError::backend_msg)?,
            kinds: serde_json::from_str(&kinds).map_err(|e| {
                StoreError::backend_msg(format!(
                    "postgres replica row's kinds are not a list of names: {e}"
                ))
            })?,
        },
        started_at: instant(row, "started_at")?,
        last_seen_at: instant(row, "last_seen_at")?,
        stopped_at: opt_instant(row, "stopped_at")?,
    })
}

/// A stored schedule, selected by `sql/schedules.sql` or
/// `sql/schedule_get.sql`. A definition this version cannot read fails the
/// read, as an unknown control kind does.
pub(crate) fn schedule(row: &PgRow) -> Result<StoredSchedule, StoreError> {
    let name: String = get(row, "name")?;
    let definition: String = get(row, "definition")?;
    Ok(StoredSchedule {
        definition: StoredSchedule::definition_from_json(&definition).map_err(|e| {
            StoreError::backend_msg(format!("postgres stored schedule {name:?}: {e}"))
        })?,
        name,
        version: get(row, "version")?,
        created_at: instant(row, "created_at")?,
        updated_at: instant(row, "updated_at")?,
    })
}

/// An `ord` column of `WITH ORDINALITY` (1-based) as an index into `len`
/// inputs.
pub(crate) fn ordinal(row: &PgRow, len: usize) -> Result<usize, StoreError> {
    let ord: i64 = get(row, "ord")?;
    usize::try_from(ord - 1)
        .ok()
        .filter(|&i| i < len)
        .ok_or_else(|| StoreError::backend_msg(format!("postgres returned ordinal {ord} of {len}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_of_other_writers_are_read_as_objects() {
        assert_eq!(result_object(Value::Null), Map::new());
        assert_eq!(
            Value::Object(result_object(serde_json::json!([1, 2]))),
            serde_json::json!({"value": [1, 2]})
        );
        let object = serde_json::json!({"a": 1});
        assert_eq!(Value::Object(result_object(object.clone())), object);
    }

    #[test]
    fn intervals_truncate_to_micros_and_refuse_overflow() {
        let i = interval("stale_timeout", Duration::from_nanos(61_000_999)).unwrap();
        assert_eq!((i.months, i.days, i.microseconds), (0, 0, 61_000));
        assert!(matches!(
            interval("stale_timeout", Duration::MAX),
            Err(StoreError::InvalidInput(_))
        ));
    }
}
