//! Steering's controls (`docs/contract.md` §11): an operator's new control
//! ([`ExecutionAudit::add_control`]), a change to one
//! ([`LeaseStore::update_control`]), the per-tick read
//! ([`LeaseStore::controls`]) and a trigger's or a backfill's progress
//! ([`ExecutionAudit::control_progress`]). The rules are the model's
//! ([`ControlChange::apply`], [`ControlRead::selects`]); the writes run in
//! IMMEDIATE transactions like every other, so SQLite's one writer orders
//! them with the claims (a pause stored is in force for every claim that
//! commits after it).
//!
//! [`ExecutionAudit::add_control`]: scheduler_core::ExecutionAudit::add_control
//! [`ExecutionAudit::control_progress`]: scheduler_core::ExecutionAudit::control_progress
//! [`LeaseStore::controls`]: scheduler_core::LeaseStore::controls
//! [`LeaseStore::update_control`]: scheduler_core::LeaseStore::update_control

use rusqlite::{named_params, OptionalExtension, ToSql, Transaction};
use scheduler_core::model::{
    Control, ControlAction, ControlChange, ControlRead, ControlState, NewControl, Progress,
};
use scheduler_core::time::{ceil_to_micros, to_micros};
use scheduler_core::StoreError;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::codec::{self, micros, uuid_text};
use crate::error::Failure;
use crate::statements::SQL;
use crate::store::SqliteLeaseStore;

/// `controls.sql`, over the read's jobs or every job.
pub(crate) async fn controls(
    store: &SqliteLeaseStore,
    read: &ControlRead,
) -> Result<Vec<Control>, StoreError> {
    let jobs = read
        .jobs
        .as_ref()
        .map(|jobs| {
            serde_json::to_string(jobs)
                .map_err(|e| StoreError::InvalidInput(format!("jobs cannot be encoded: {e}")))
        })
        .transpose()?;
    // Rounded up, as `retry_due`'s bound is: `ended_at >= since` on whole
    // microseconds is then exactly the comparison at full precision.
    let since = read.ended_since.map(|t| micros(ceil_to_micros(t)));
    store
        .read(move |conn, _| {
            let mut params: Vec<(&str, &dyn ToSql)> = vec![(":since", &since)];
            let statement = match &jobs {
                Some(jobs) => {
                    params.push((":jobs", jobs));
                    &SQL.controls_of_jobs
                }
                None => &SQL.controls_all,
            };
            let mut stmt = conn.prepare_cached(statement)?;
            let rows = stmt.query_map(params.as_slice(), codec::control)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
}

/// Reads control `id`, applies `change` at store time and writes the
/// result back (`control_update.sql`), in one IMMEDIATE transaction, so no
/// other change slips between the rule's decision and the write.
pub(crate) async fn update_control(
    store: &SqliteLeaseStore,
    id: Uuid,
    change: &ControlChange,
) -> Result<Control, StoreError> {
    let change = change.clone();
    store
        .write(move |tx, now| {
            let current = get(tx, id)?.ok_or(StoreError::NotFound { id })?;
            let mut updated = change.apply(&current, now)?;
            // An advance's target as the column keeps it, so the control
            // returned is the one read back.
            updated.cursor = updated.cursor.map(to_micros);
            let skip_missed = match updated.action {
                ControlAction::Pause { skip_missed, .. } => skip_missed,
                _ => false,
            };
            let changed = tx
                .prepare_cached(&SQL.control_update)?
                .execute(named_params! {
                    ":id": uuid_text(id),
                    ":read_cursor": current.cursor.map(micros),
                    ":state": updated.state.as_str(),
                    ":reason": updated.reason,
                    ":ended_at": updated.ended_at.map(micros),
                    ":skip_missed": skip_missed,
                    ":cursor_time": updated.cursor.map(micros),
                    ":updated_at": micros(updated.updated_at),
                })?;
            // Unreachable under the write lock, but if the guard ever fails
            // nothing was written, which is what a conflict reports.
            if changed != 1 {
                return Err(StoreError::Conflict(format!(
                    "control {id} changed while being updated"
                ))
                .into());
            }
            Ok(updated)
        })
        .await
}

/// Stores `control` (`control_add.sql`) at store time, in one IMMEDIATE
/// transaction that first refuses a pause of a target a pause in force
/// already covers exactly (`control_held.sql`), as the memory store does.
pub(crate) async fn add_control(
    store: &SqliteLeaseStore,
    control: &NewControl,
) -> Result<Control, StoreError> {
    control.refuse_unstorable()?;
    let control = control.clone();
    store
        .write(move |tx, now| {
            if let ControlAction::Pause { .. } = control.action {
                if let Some(held) = held(tx, &control, now)? {
                    return Err(StoreError::Conflict(format!(
                        "{} is already paused (control {})",
                        held.target(),
                        held.id
                    ))
                    .into());
                }
            }
            let stored = new_control(&control, now)?;
            insert(tx, &stored)?;
            Ok(stored)
        })
        .await
}

/// `control_progress.sql`: zeros for an unknown id.
pub(crate) async fn control_progress(
    store: &SqliteLeaseStore,
    id: Uuid,
) -> Result<Progress, StoreError> {
    store
        .read(move |conn, _| {
            let counts: [i64; 3] = conn
                .prepare_cached(&SQL.control_progress)?
                .query_row(named_params! { ":id": uuid_text(id) }, |r| {
                    Ok([r.get(0)?, r.get(1)?, r.get(2)?])
                })?;
            // count(*) is never negative.
            let [succeeded, failed, running] = counts.map(|n| n.unsigned_abs());
            Ok(Progress {
                succeeded,
                failed,
                running,
            })
        })
        .await
}

/// The control as stored: a new v7 id, active, created at `now`, the note
/// bounded, a backfill's cursor at its start, every instant truncated to
/// the microseconds a column keeps (`docs/contract.md` §3), so the control
/// returned is the one read back.
///
/// # Errors
/// [`StoreError::InvalidInput`] for a backfill whose range is empty once
/// truncated (its ends within one microsecond).
fn new_control(control: &NewControl, now: OffsetDateTime) -> Result<Control, StoreError> {
    let action = match control.action {
        ControlAction::Pause { until, skip_missed } => ControlAction::Pause {
            until: until.map(to_micros),
            skip_missed,
        },
        ControlAction::Trigger => ControlAction::Trigger,
        ControlAction::Backfill { from, to } => {
            let (from, to) = (to_micros(from), to_micros(to));
            if from >= to {
                return Err(StoreError::InvalidInput(format!(
                    "backfill range is empty at microseconds: from {from}, to {to}"
                )));
            }
            ControlAction::Backfill { from, to }
        }
    };
    let cursor = match action {
        ControlAction::Backfill { from, .. } => Some(from),
        _ => None,
    };
    Ok(Control {
        id: Uuid::now_v7(),
        job_name: control.job_name.clone(),
        scope: control.scope.clone(),
        note: control.stored_note(),
        action,
        state: ControlState::Active,
        reason: None,
        created_at: now,
        ended_at: None,
        cursor,
        updated_at: now,
    })
}

/// `control_get.sql`.
fn get(tx: &Transaction<'_>, id: Uuid) -> Result<Option<Control>, Failure> {
    Ok(tx
        .prepare_cached(&SQL.control_get)?
        .query_row(named_params! { ":id": uuid_text(id) }, codec::control)
        .optional()?)
}

/// `control_held.sql`: the pause in force of exactly `control`'s target.
fn held(
    tx: &Transaction<'_>,
    control: &NewControl,
    now: OffsetDateTime,
) -> Result<Option<Control>, Failure> {
    let scope = control.scope.as_ref();
    Ok(tx
        .prepare_cached(&SQL.control_held)?
        .query_row(
            named_params! {
                ":job": control.job_name,
                ":scope_kind": scope.map(|s| s.kind.as_str()),
                ":scope_id": scope.map(|s| s.id.as_str()),
                ":now": micros(now),
            },
            codec::control,
        )
        .optional()?)
}

/// `control_add.sql`: every column from `control`.
fn insert(tx: &Transaction<'_>, control: &Control) -> Result<(), Failure> {
    let (mut until, mut skip_missed, mut from, mut to) = (None, false, None, None);
    match control.action {
        ControlAction::Pause {
            until: u,
            skip_missed: s,
        } => (until, skip_missed) = (u, s),
        ControlAction::Trigger => {}
        ControlAction::Backfill { from: f, to: t } => (from, to) = (Some(f), Some(t)),
    }
    let scope = control.scope.as_ref();
    tx.prepare_cached(&SQL.control_add)?
        .execute(named_params! {
            ":id": uuid_text(control.id),
            ":job": control.job_name,
            ":scope_kind": scope.map(|s| s.kind.as_str()),
            ":scope_id": scope.map(|s| s.id.as_str()),
            ":note": control.note,
            ":kind": control.action.kind(),
            ":state": control.state.as_str(),
            ":reason": control.reason,
            ":created_at": micros(control.created_at),
            ":ended_at": control.ended_at.map(micros),
            ":until_time": until.map(micros),
            ":skip_missed": skip_missed,
            ":from_time": from.map(micros),
            ":to_time": to.map(micros),
            ":cursor_time": control.cursor.map(micros),
            ":updated_at": micros(control.updated_at),
        })?;
    Ok(())
}
