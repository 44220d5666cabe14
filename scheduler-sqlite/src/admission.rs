//! A claim's admission (`docs/contract.md` §11), inside its IMMEDIATE
//! transaction: the read of what [`machine::admit`] weighs the keys against
//! (`claim_admission.sql`), the row of a plan the overlap policy skipped
//! (`claim_skip.sql`), and the end of a live run it replaced
//! (`claim_cancel.sql`, logged with `sweep_log.sql`). The rules are the
//! machine's; these functions read their inputs and write their answers.

use std::collections::BTreeSet;

use rusqlite::{named_params, OptionalExtension, Transaction};
use scheduler_core::machine::{self, Admission, Ending, FreshIds};
use scheduler_core::model::OverlapPolicy;
use scheduler_core::{ClaimOutcome, ClaimRequest, PlanKey, StoreError};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::attempts;
use crate::codec::{self, micros, result_text, uuid_text, AdmissionInput};
use crate::error::Failure;
use crate::statements::SQL;

/// The distinct scopes of `keys` as one JSON array of `[kind, id]` pairs,
/// as `claim_admission.sql` takes them.
///
/// # Errors
/// [`StoreError::InvalidInput`] should a scope not encode (strings always
/// do).
pub(crate) fn scopes_json(keys: &[PlanKey]) -> Result<String, StoreError> {
    let scopes: BTreeSet<[&str; 2]> = keys
        .iter()
        .map(|k| [k.scope.kind.as_str(), k.scope.id.as_str()])
        .collect();
    serde_json::to_string(&scopes)
        .map_err(|e| StoreError::InvalidInput(format!("scopes cannot be encoded: {e}")))
}

/// [`machine::admit`] of every key of `request`, from the job's pauses in
/// force and the live runs of `scopes` (the batch's, from [`scopes_json`])
/// as the transaction reads them at store time `now`.
pub(crate) fn admit(
    tx: &Transaction<'_>,
    request: &ClaimRequest<'_>,
    scopes: &str,
    now: OffsetDateTime,
) -> Result<Vec<Admission>, Failure> {
    let mut stmt = tx.prepare_cached(&SQL.claim_admission)?;
    let rows = stmt.query_map(
        named_params! {
            ":job": request.job_name,
            ":now": micros(now),
            ":weigh_live": request.steering.overlap != OverlapPolicy::AllowAll,
            ":scopes": scopes,
        },
        codec::admission_input,
    )?;
    let (mut pauses, mut live) = (Vec::new(), Vec::new());
    for row in rows {
        match row? {
            AdmissionInput::Pause(control) => pauses.push(control),
            AdmissionInput::Live(run) => live.push(run),
        }
    }
    Ok(machine::admit(request, &pauses, &live, now))
}

/// Records `key` as skipped ([`machine::skipped`]) when it has no row:
/// [`ClaimOutcome::Skipped`]; [`ClaimOutcome::Conflicted`] when it has
/// one, which stays as it is.
pub(crate) fn skip(
    tx: &Transaction<'_>,
    request: &ClaimRequest<'_>,
    key: &PlanKey,
    now: OffsetDateTime,
) -> Result<ClaimOutcome, Failure> {
    let row = machine::skipped(request, key, now, FreshIds::mint());
    let inserted = tx.prepare_cached(&SQL.claim_skip)?.execute(named_params! {
        ":id": uuid_text(row.id),
        ":job": row.job_name.as_str(),
        ":kind": row.scope.kind.as_str(),
        ":scope_id": row.scope.id.as_str(),
        ":plan_time": micros(row.plan_time),
        ":status": row.status.as_str(),
        ":attempt": row.attempt,
        ":max_attempts": row.max_attempts,
        ":next_retry_at": row.next_retry_at.map(micros),
        ":runner_id": row.runner_id.as_deref(),
        ":lease_token": uuid_text(row.lease_token),
        ":heartbeat_at": row.heartbeat_at.map(micros),
        ":stale_after": row.stale_after.map(micros),
        ":started_at": row.started_at.map(micros),
        ":finished_at": row.finished_at.map(micros),
        ":duration_ms": row.duration_ms,
        ":rows_affected": row.rows_affected,
        ":result": result_text(&row.result)?,
        ":error_code": row.error_code,
        ":error_msg": row.error_msg,
        ":created_at": micros(row.created_at),
        ":updated_at": micros(row.updated_at),
        ":origin": row.origin.column(),
        ":control_id": row.control_id.map(uuid_text),
    })?;
    Ok(if inserted == 1 {
        ClaimOutcome::Skipped
    } else {
        ClaimOutcome::Conflicted
    })
}

/// Ends live run `id` for a newer run of its scope
/// ([`machine::cancel_for_overlap`]) and logs the attempt it ends
/// ([`Ending::Overlap`]); nothing when it no longer runs (an earlier key
/// of the batch replaced it already).
pub(crate) fn cancel(tx: &Transaction<'_>, id: Uuid, now: OffsetDateTime) -> Result<(), Failure> {
    let Some(row) = tx
        .prepare_cached(&SQL.get)?
        .query_row(named_params! { ":id": uuid_text(id) }, codec::execution)
        .optional()?
    else {
        return Ok(());
    };
    let Some(canceled) = machine::cancel_for_overlap(&row, now) else {
        return Ok(());
    };
    let changed = tx
        .prepare_cached(&SQL.claim_cancel)?
        .execute(named_params! {
            ":id": uuid_text(id),
            ":read_token": uuid_text(row.lease_token),
            ":status": canceled.status.as_str(),
            ":next_retry_at": canceled.next_retry_at.map(micros),
            ":finished_at": canceled.finished_at.map(micros),
            ":duration_ms": canceled.duration_ms,
            ":error_code": canceled.error_code,
            ":error_msg": canceled.error_msg,
            ":updated_at": micros(canceled.updated_at),
        })?;
    if changed == 1 {
        attempts::log_ended(tx, &machine::ended_attempt(&row, Ending::Overlap, now))?;
    }
    Ok(())
}
