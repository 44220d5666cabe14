//! The operator's repairs: a retry
//! ([`ExecutionAudit::retry_execution`](scheduler_core::ExecutionAudit::retry_execution))
//! and pruning
//! ([`ExecutionAudit::prune_finished`](scheduler_core::ExecutionAudit::prune_finished)).

use std::sync::Arc;

use scheduler_core::machine;
use scheduler_core::store::sql;
use scheduler_core::time::ceil_to_micros;
use scheduler_core::{Execution, Prune, StoreError};
use sqlx_core::query::query;
use sqlx_core::row::Row;
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_core::transaction::Transaction;
use sqlx_core::types::Json;
use sqlx_postgres::{PgRow, Postgres};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::partitions;
use crate::rows::{self, backend};
use crate::store::PgLeaseStore;

/// One transaction: `operator_retry_lock.sql` reads and locks the row,
/// [`machine::operator_retry`] is applied at that statement's store time
/// (so the rule lives in one place), and `operator_retry.sql` writes back
/// what it computed. The row stays locked from the read the rule decides
/// on to the write, so no claim, finish or prune interleaves.
pub(crate) async fn retry_execution(
    store: &PgLeaseStore,
    id: Uuid,
) -> Result<Execution, StoreError> {
    let err = backend("retry execution");
    let (mut tx, locked, now) = lock_by_id(store, &store.sql.operator_retry_lock, id, err).await?;
    let row = rows::execution(&locked)?;
    // The rule itself lives in the core: a RUNNING or SUCCESS row, or one
    // with no attempt number left, is refused with its reason, as every
    // store reports it, and nothing is written.
    let repaired = match machine::operator_retry(&row, now) {
        Ok(repaired) => repaired,
        Err(why) => {
            abandon(tx).await;
            return Err(StoreError::Conflict(why.to_owned()));
        }
    };
    debug_assert_eq!(operator_retry_write(&row, &repaired), repaired);
    // max_attempts >= attempt + 1 > attempt when the rule grants an
    // attempt, else unchanged: the attempt check constraint holds.
    let written = query(AssertSqlSafe(Arc::clone(&store.sql.operator_retry)))
        .bind(id)
        .bind(row.lease_token)
        .bind(repaired.status.as_str())
        .bind(repaired.attempt)
        .bind(repaired.max_attempts)
        .bind(repaired.next_retry_at)
        .bind(repaired.runner_id.as_deref())
        .bind(repaired.lease_token)
        .bind(repaired.heartbeat_at)
        .bind(repaired.stale_after)
        .bind(repaired.started_at)
        .bind(repaired.finished_at)
        .bind(repaired.duration_ms)
        .bind(repaired.rows_affected)
        .bind((repaired.result != row.result).then_some(Json(&repaired.result)))
        .bind(repaired.error_code.as_deref())
        .bind(repaired.error_msg.as_deref())
        .bind(repaired.updated_at)
        .fetch_optional(&mut *tx)
        .await
        .map_err(err)?;
    let Some(written) = written else {
        // Unreachable under the row lock; said plainly should it ever be.
        abandon(tx).await;
        return Err(StoreError::Conflict(
            "it stopped being FAILED while it was being repaired".to_owned(),
        ));
    };
    let stored = rows::execution(&written)?;
    tx.commit().await.map_err(err)?;
    Ok(stored)
}

/// The first step of a read-decide-write repair (an operator's retry, a
/// control's change): a transaction, and the row `statement` reads and
/// locks by `id`, with the statement's store time (`store_now`), so that
/// the rule in the core decides on the row as the write will find it.
///
/// # Errors
/// [`StoreError::NotFound`] (the transaction rolled back) when there is no
/// such row; what `err` makes of a driver error.
pub(crate) async fn lock_by_id(
    store: &PgLeaseStore,
    statement: &Arc<str>,
    id: Uuid,
    err: impl Fn(sqlx_core::Error) -> StoreError + Copy,
) -> Result<(Transaction<'static, Postgres>, PgRow, OffsetDateTime), StoreError> {
    let mut tx = store.pool().begin().await.map_err(err)?;
    let locked = store
        .statement(statement)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(err)?;
    let Some(locked) = locked else {
        abandon(tx).await;
        return Err(StoreError::NotFound { id });
    };
    let now = rows::instant(&locked, "store_now")?;
    Ok((tx, locked, now))
}

/// Ends a transaction that wrote nothing, releasing its row locks now
/// rather than whenever the connection is next used. A failed rollback is
/// not worth reporting over the answer the caller is about to get: the
/// server rolls back a transaction whose connection is lost.
pub(crate) async fn abandon(tx: Transaction<'_, Postgres>) {
    if let Err(e) = tx.rollback().await {
        tracing::debug!(error = %e, "postgres rollback of an abandoned transaction failed");
    }
}

/// The row `operator_retry.sql` leaves: the row's identity (id, key) and
/// creation time as they were, every other column as the rule computed it
/// (`result` too: written when the rule changed it, kept, and so equal,
/// when it did not). Equal to `repaired` as long as
/// [`machine::operator_retry`] changes none of the columns the statement
/// cannot write, which a unit test holds it to (and, in debug builds,
/// every call).
fn operator_retry_write(row: &Execution, repaired: &Execution) -> Execution {
    Execution {
        id: row.id,
        job_name: row.job_name.clone(),
        scope: row.scope.clone(),
        plan_time: row.plan_time,
        created_at: row.created_at,
        ..repaired.clone()
    }
}

/// `prune.sql` (or `prune_count.sql` for a dry run); on a partitioned
/// table, first a whole partition if one can go (`partitions::drop_one`).
pub(crate) async fn prune_finished(store: &PgLeaseStore, prune: &Prune) -> Result<u64, StoreError> {
    let Prune {
        finished_before,
        limit,
        dry_run,
    } = *prune;
    let err = backend("prune");
    // Rows are stored at microsecond precision, so `finished_at < t`
    // is `finished_at < ceil_to_micros(t)`, whatever the driver does with
    // the nanoseconds of `t`.
    let before = ceil_to_micros(finished_before);
    if dry_run {
        let row = query(AssertSqlSafe(Arc::clone(&store.sql.prune_count)))
            .bind(before)
            .fetch_one(store.pool())
            .await
            .map_err(err)?;
        let matching: i64 = row.try_get(0).map_err(err)?;
        return Ok(u64::try_from(matching).unwrap_or(0));
    }
    // Partitions ahead (a store built partitioned), then one whole
    // partition if one can go: looked up in the catalog, so a store that
    // adopted a partitioned table without the option (the CLI's) drops them
    // too; an unpartitioned table has none, for one cheap read. Only when
    // none can go, the rows one by one.
    store.create_partitions().await?;
    if let Some(dropped) = partitions::drop_one(store, before, sql::limit(limit)).await? {
        return Ok(dropped);
    }
    // One bounded statement (see prune.sql): callers loop until it
    // deletes nothing.
    let done = query(AssertSqlSafe(Arc::clone(&store.sql.prune)))
        .bind(before)
        .bind(sql::limit(limit))
        .fetch_one(store.pool())
        .await
        .map_err(err)?;
    let pruned: i64 = done.try_get("pruned").map_err(err)?;
    Ok(u64::try_from(pruned).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use scheduler_core::{Scope, Status};
    use time::macros::datetime;

    use super::*;

    /// The operator-retry statement writes every column but the row's
    /// identity and creation time; the rule must change none of those,
    /// whatever the FAILED row looks like.
    #[test]
    fn operator_retry_changes_only_the_fields_the_statement_writes() {
        let t0 = datetime!(2026-03-01 12:00 UTC);
        let later = datetime!(2026-03-01 13:00 UTC);
        let failed = Execution {
            id: Uuid::now_v7(),
            job_name: "job".into(),
            scope: Scope::new("tenant", "a"),
            plan_time: t0,
            status: Status::Failed,
            attempt: 2,
            max_attempts: 3,
            next_retry_at: Some(t0),
            runner_id: Some("r1".into()),
            lease_token: Uuid::new_v4(),
            heartbeat_at: Some(t0),
            stale_after: Some(t0),
            started_at: Some(t0),
            finished_at: Some(t0),
            duration_ms: Some(5),
            rows_affected: Some(9),
            result: serde_json::Map::from_iter([("k".to_owned(), 1.into())]),
            error_code: Some("handler_error".into()),
            error_msg: Some("boom".into()),
            created_at: t0,
            updated_at: t0,
            origin: scheduler_core::model::Origin::Trigger,
            control_id: Some(Uuid::now_v7()),
        };
        let shapes = [
            failed.clone(),
            Execution {
                attempt: 3,
                error_code: Some("stale_timeout".into()),
                next_retry_at: None,
                ..failed.clone()
            },
            Execution {
                attempt: 7,
                max_attempts: 7,
                error_code: None,
                error_msg: None,
                finished_at: None,
                ..failed.clone()
            },
        ];
        for row in &shapes {
            let repaired = machine::operator_retry(row, later).unwrap();
            assert_eq!(operator_retry_write(row, &repaired), repaired, "{row:?}");
            assert!(
                repaired.max_attempts > repaired.attempt,
                "an attempt is left"
            );
        }
    }
}
