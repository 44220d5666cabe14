//! The batched terminal write
//! ([`LeaseStore::finish_many`](scheduler_core::LeaseStore::finish_many)):
//! one IMMEDIATE transaction, one commit, running `finish.sql` (the guarded
//! `UPDATE` of one lease) per item at one store time, each item answered on
//! its own, and appending the record of each attempt it ended to the
//! attempts log in the same transaction.

use std::time::Duration;

use rusqlite::{named_params, Transaction};
use scheduler_core::time::later;
use scheduler_core::{BoxError, Finish, Lease, StoreError};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::attempts;
use crate::codec::{micros, result_text, uuid_text};
use crate::error::{lease_lost, Failure};
use crate::statements::SQL;
use crate::store::SqliteLeaseStore;

/// The whole batch is one IMMEDIATE transaction (one commit), retried
/// whole while the database is busy: store time is read once, under the
/// write lock, and each item runs the guarded statement in turn, so a later
/// item sees what an earlier one wrote, as successive single writes would.
/// A lost lease is that item's answer and the others go on; a driver error
/// (or a failed commit) rolls the whole batch back and every item gets
/// [`StoreError::Backend`]. An item whose result cannot be encoded is
/// refused and never reaches the transaction. An empty batch does not touch
/// the database.
pub(crate) async fn finish_many(
    store: &SqliteLeaseStore,
    items: &[(&Lease, &Finish)],
) -> Vec<Result<(), StoreError>> {
    let mut results: Vec<Result<(), StoreError>> = Vec::with_capacity(items.len());
    let mut writes = Vec::with_capacity(items.len());
    for (index, (lease, finish)) in items.iter().enumerate() {
        match BoundColumns::of(finish) {
            Ok(columns) => {
                writes.push((index, lease.id, uuid_text(lease.token), columns));
                results.push(Ok(()));
            }
            Err(refused) => results.push(Err(refused)),
        }
    }
    if writes.is_empty() {
        return results;
    }
    let batch = writes.len();
    let lost = store
        .write(move |tx, now| {
            let mut lost = Vec::new();
            for (index, id, token, columns) in &writes {
                match finish_one(tx, now, *id, token, columns) {
                    Ok(()) => {}
                    // The store's decision for this lease alone.
                    Err(Failure::Store(e)) => lost.push((*index, e)),
                    // Fails (and rolls back) the batch; a busy database
                    // is retried whole by `write`.
                    Err(driver @ Failure::Sqlite(_)) => return Err(driver),
                }
            }
            Ok(lost)
        })
        .await;
    match lost {
        Ok(lost) => {
            for (index, e) in lost {
                results[index] = Err(e);
            }
            results
        }
        Err(e) => {
            // Every item that reached the transaction (each still `Ok`
            // here) failed with it.
            let mut failed = batch_failed(e, batch).into_iter();
            for result in results.iter_mut().filter(|r| r.is_ok()) {
                *result = failed.next().expect("one error per item of the batch");
            }
            results
        }
    }
}

/// [`Finish::columns`] in the types `finish.sql` binds, owned (the batch
/// runs on the writer's thread) and checked before anything is written.
pub(crate) struct BoundColumns {
    status: &'static str,
    duration_ms: i32,
    rows_affected: Option<i64>,
    result: Option<String>,
    error_code: Option<&'static str>,
    error_msg: Option<String>,
    retry_after: Option<Duration>,
}

impl BoundColumns {
    /// # Errors
    /// [`StoreError::InvalidInput`] for a result that cannot be encoded.
    pub(crate) fn of(finish: &Finish) -> Result<Self, StoreError> {
        let columns = finish.columns();
        Ok(BoundColumns {
            status: columns.status.as_str(),
            duration_ms: columns.duration_ms,
            rows_affected: columns.rows_affected,
            result: columns.result.map(result_text).transpose()?,
            error_code: columns.error_code.map(|code| code.as_str()),
            error_msg: columns.error_msg.map(str::to_owned),
            retry_after: columns.retry_after,
        })
    }
}

/// One terminal write: the guarded `UPDATE` (id **and** token **and**
/// RUNNING) in the caller's IMMEDIATE transaction, at store time `now` as
/// read under the write lock, then the record of the attempt it ended.
///
/// A guard that does not match changes nothing, logs nothing, and is
/// [`StoreError::LeaseLost`] (as a [`Failure::Store`]), which leaves the
/// transaction usable; a driver error is a [`Failure::Sqlite`].
pub(crate) fn finish_one(
    tx: &Transaction<'_>,
    now: OffsetDateTime,
    id: Uuid,
    token: &str,
    columns: &BoundColumns,
) -> Result<(), Failure> {
    let id_text = uuid_text(id);
    let changed = tx.prepare_cached(&SQL.finish)?.execute(named_params! {
        ":id": id_text,
        ":token": token,
        ":now": micros(now),
        ":status": columns.status,
        ":duration_ms": columns.duration_ms,
        ":rows_affected": columns.rows_affected,
        ":result": columns.result,
        ":error_code": columns.error_code,
        ":error_msg": columns.error_msg,
        ":retry_at": columns.retry_after.map(|after| micros(later(now, after))),
    })?;
    if changed == 1 {
        Ok(attempts::log_finished(tx, &id_text)?)
    } else {
        Err(lease_lost(id))
    }
}

/// One result per item of a batch whose transaction failed as a whole
/// (rolled back: nothing of it was written): a [`StoreError::Backend`]
/// each, with the same message. The first item keeps the driver's error
/// as its source; [`StoreError`] cannot be cloned.
fn batch_failed(error: StoreError, items: usize) -> Vec<Result<(), StoreError>> {
    let (message, source) = match error {
        StoreError::Backend { message, source } => (message, source),
        // Unreachable (per-item decisions never fail the transaction), but
        // the trait promises a backend error for every item of a failed batch.
        other => (other.to_string(), Some(BoxError::from(other))),
    };
    let mut results = Vec::with_capacity(items);
    results.push(Err(StoreError::Backend {
        message: message.clone(),
        source,
    }));
    results.extend((1..items).map(|_| Err(StoreError::backend_msg(message.clone()))));
    results
}
