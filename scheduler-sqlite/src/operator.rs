//! The operator's repairs: a retry
//! ([`ExecutionAudit::retry_execution`](scheduler_core::ExecutionAudit::retry_execution))
//! and pruning
//! ([`ExecutionAudit::prune_finished`](scheduler_core::ExecutionAudit::prune_finished)),
//! attempts logs included.

use rusqlite::{named_params, OptionalExtension};
use scheduler_core::machine;
use scheduler_core::store::sql;
use scheduler_core::time::ceil_to_micros;
use scheduler_core::{Execution, Prune, StoreError};
use uuid::Uuid;

use crate::attempts;
use crate::codec::{self, micros, result_text, uuid_text};
use crate::statements::SQL;
use crate::store::SqliteLeaseStore;

/// Reads the row, applies [`machine::operator_retry`] and writes back what
/// it computed (`operator_retry.sql`), in one IMMEDIATE transaction: the
/// write lock is held from the read on, so no claim, finish or sweep from
/// any process can slip between the decision and the write.
pub(crate) async fn retry_execution(
    store: &SqliteLeaseStore,
    id: Uuid,
) -> Result<Execution, StoreError> {
    store
        .write(move |tx, now| {
            let row = tx
                .prepare_cached(&SQL.get)?
                .query_row(named_params! { ":id": uuid_text(id) }, codec::execution)
                .optional()?
                .ok_or(StoreError::NotFound { id })?;
            // The rule is `machine::operator_retry`'s alone; a refusal
            // returns before anything is written, with the machine's reason
            // as it is (as every store reports it).
            let repaired = machine::operator_retry(&row, now)
                .map_err(|why| StoreError::Conflict(why.to_owned()))?;
            let result = (repaired.result != row.result)
                .then(|| result_text(&repaired.result))
                .transpose()?;
            let stored = tx
                .prepare_cached(&SQL.operator_retry)?
                .query_row(
                    named_params! {
                        ":id": uuid_text(id),
                        ":read_token": uuid_text(row.lease_token),
                        ":status": repaired.status.as_str(),
                        ":attempt": repaired.attempt,
                        ":max_attempts": repaired.max_attempts,
                        ":next_retry_at": repaired.next_retry_at.map(micros),
                        ":runner_id": repaired.runner_id.as_deref(),
                        ":lease_token": uuid_text(repaired.lease_token),
                        ":heartbeat_at": repaired.heartbeat_at.map(micros),
                        ":stale_after": repaired.stale_after.map(micros),
                        ":started_at": repaired.started_at.map(micros),
                        ":finished_at": repaired.finished_at.map(micros),
                        ":duration_ms": repaired.duration_ms,
                        ":rows_affected": repaired.rows_affected,
                        ":result": result,
                        ":error_code": repaired.error_code,
                        ":error_msg": repaired.error_msg,
                        ":updated_at": micros(repaired.updated_at),
                    },
                    codec::execution,
                )
                .optional()?;
            // Unreachable under the write lock, but if the guard ever fails
            // nothing was written, which is what a conflict reports.
            stored.ok_or_else(|| {
                StoreError::Conflict(format!("execution {id} changed while being retried")).into()
            })
        })
        .await
}

/// `prune.sql` (or `prune_count.sql` for a dry run).
pub(crate) async fn prune_finished(
    store: &SqliteLeaseStore,
    prune: &Prune,
) -> Result<u64, StoreError> {
    let Prune {
        finished_before,
        limit,
        dry_run,
    } = *prune;
    // Rounded up: `finished_at < cutoff` on whole microseconds is then
    // exactly `finished_at < finished_before` at full precision.
    let cutoff = micros(ceil_to_micros(finished_before));
    if dry_run {
        return store
            .read(move |conn, _| {
                let n: i64 = conn
                    .prepare_cached(&SQL.prune_count)?
                    .query_row(named_params! { ":cutoff": cutoff }, |r| r.get(0))?;
                Ok(n as u64)
            })
            .await;
    }
    // IMMEDIATE like every write: the rows are chosen and deleted under the
    // write lock, so a row a claim is retrying cannot be chosen as FAILED
    // and then deleted while RUNNING; their attempts logs go in the same
    // transaction.
    store
        .write(move |tx, _| {
            let deleted = tx
                .prepare_cached(&SQL.prune)?
                .query_map(
                    named_params! {
                        ":cutoff": cutoff,
                        ":limit": sql::limit(limit),
                    },
                    |row| row.get::<_, String>(0),
                )?
                .collect::<Result<Vec<_>, _>>()?;
            attempts::delete_logs(tx, &deleted)?;
            tx.prepare_cached(&SQL.prune_replicas)?
                .execute(named_params! { ":cutoff": cutoff })?;
            Ok(deleted.len() as u64)
        })
        .await
}
