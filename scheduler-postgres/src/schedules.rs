//! Stored schedules (`docs/contract.md` §12), in their table beside the
//! executions table: the replicas' per-tick read
//! ([`LeaseStore::schedules`](scheduler_core::LeaseStore::schedules)), an
//! operator's write
//! ([`ExecutionAudit::write_schedule`](scheduler_core::ExecutionAudit::write_schedule))
//! and the version a stored schedule's claim checks under the job's claim
//! lock ([`current_version`]).

use std::sync::Arc;

use scheduler_core::job::apply_write;
use scheduler_core::model::name_problem;
use scheduler_core::{ScheduleWrite, StoreError, StoredSchedule};
use sqlx_core::query::query;
use sqlx_core::row::Row;
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_postgres::PgConnection;

use crate::claim::{lock_job, BEGIN};
use crate::controls::notify;
use crate::operator::abandon;
use crate::rows::{self, backend};
use crate::store::PgLeaseStore;

/// `schedules.sql`: one statement through the primary key.
pub(crate) async fn schedules(store: &PgLeaseStore) -> Result<Vec<StoredSchedule>, StoreError> {
    let found = query(AssertSqlSafe(Arc::clone(&store.sql.schedules)))
        .fetch_all(store.pool())
        .await
        .map_err(backend("schedules"))?;
    found.iter().map(rows::schedule).collect()
}

/// One transaction: the job's claim lock (`claim_lock.sql`, exclusive, as
/// an addition of a control takes it), so that every claim planned under
/// the version being replaced commits before this write and every claim
/// after it sees the new version; `schedule_get.sql`, which reads the row
/// and the store time once the lock is held; [`apply_write`]'s decision;
/// `schedule_put.sql` or `schedule_delete.sql`; the notification on
/// [`CONTROLS_CHANNEL`](crate::CONTROLS_CHANNEL). A refusal writes nothing.
pub(crate) async fn write_schedule(
    store: &PgLeaseStore,
    name: &str,
    write: &ScheduleWrite,
) -> Result<Option<StoredSchedule>, StoreError> {
    // A name the server cannot take as text (a NUL) is refused as
    // apply_write refuses it, before a round trip the server would fail.
    if let Some(problem) = name_problem("schedule name", name) {
        return Err(StoreError::InvalidInput(problem));
    }
    let err = backend("write schedule");
    let mut tx = store.pool().begin_with(BEGIN).await.map_err(err)?;
    lock_job(store, &mut tx, name, false, store.store_time()).await?;
    // $1 bound only now: on a client clock, its reading after the wait.
    let read = store
        .statement(&store.sql.schedule_get)
        .bind(name)
        .fetch_one(&mut *tx)
        .await
        .map_err(err)?;
    let now = rows::instant(&read, "store_now")?;
    let current = match read.try_get::<Option<String>, _>("name").map_err(err)? {
        Some(_) => Some(rows::schedule(&read)?),
        None => None,
    };
    let written = match apply_write(name, write, current.as_ref(), now) {
        Ok(written) => written,
        Err(refused) => {
            abandon(tx).await;
            return Err(refused);
        }
    };
    match &written {
        Some(schedule) => query(AssertSqlSafe(Arc::clone(&store.sql.schedule_put)))
            .bind(&schedule.name)
            .bind(&schedule.definition.kind)
            .bind(schedule.version)
            .bind(schedule.definition_json())
            .bind(schedule.created_at)
            .bind(schedule.updated_at),
        None => query(AssertSqlSafe(Arc::clone(&store.sql.schedule_delete))).bind(name),
    }
    .execute(&mut *tx)
    .await
    .map_err(err)?;
    notify(store, &mut tx, name).await?;
    tx.commit().await.map_err(err)?;
    Ok(written)
}

/// `schedule_version.sql`: the current version of stored schedule `name`,
/// `None` when there is none, on the caller's connection (inside its
/// transaction, under the job's claim lock).
pub(crate) async fn current_version(
    store: &PgLeaseStore,
    conn: &mut PgConnection,
    name: &str,
) -> Result<Option<i64>, StoreError> {
    let err = backend("schedule version");
    let found = query(AssertSqlSafe(Arc::clone(&store.sql.schedule_version)))
        .bind(name)
        .fetch_optional(conn)
        .await
        .map_err(err)?;
    found
        .map(|row| row.try_get("version").map_err(err))
        .transpose()
}
