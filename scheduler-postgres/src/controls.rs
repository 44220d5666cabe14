//! Steering's controls (`docs/contract.md` §11), in their table beside the
//! executions table: the replicas' per-tick read
//! ([`LeaseStore::controls`](scheduler_core::LeaseStore::controls)), a
//! change ([`LeaseStore::update_control`](scheduler_core::LeaseStore::update_control)),
//! an operator's addition
//! ([`ExecutionAudit::add_control`](scheduler_core::ExecutionAudit::add_control))
//! and a trigger's or backfill's progress
//! ([`ExecutionAudit::control_progress`](scheduler_core::ExecutionAudit::control_progress)).

use std::sync::Arc;

use scheduler_core::model::{
    Control, ControlAction, ControlChange, ControlRead, NewControl, Progress,
};
use scheduler_core::time::{ceil_to_micros, to_micros};
use scheduler_core::StoreError;
use sqlx_core::query::query;
use sqlx_core::row::Row;
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_postgres::PgConnection;
use uuid::Uuid;

use crate::claim::{lock_job, BEGIN};
use crate::operator::{abandon, lock_by_id};
use crate::rows::{self, backend};
use crate::store::PgLeaseStore;

/// The channel on which the store announces, with `NOTIFY`, that a job's
/// controls changed: every addition and every change sends the job's name
/// as the payload, delivered when its transaction commits. One channel for
/// every table of the database, so a listener may hear of another table's
/// jobs too.
pub const CONTROLS_CHANNEL: &str = "scheduler_controls";

/// How long the listener waits before connecting again after a failure.
const LISTEN_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// [`LeaseStore::control_changes`](scheduler_core::LeaseStore::control_changes):
/// a task that `LISTEN`s on [`CONTROLS_CHANNEL`] on a connection of the
/// store's pool (held for as long as the receiver lives) and marks the
/// receiver changed on every notification, and also after a lost
/// connection (notifications may have been missed meanwhile). It ends when
/// the receiver is dropped or the pool is closed.
pub(crate) fn changes(store: &PgLeaseStore) -> tokio::sync::watch::Receiver<()> {
    let (tx, rx) = tokio::sync::watch::channel(());
    let pool = store.pool().clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tx.closed() => return,
                Err(e) = listen(&pool, &tx) => {
                    if pool.is_closed() {
                        return;
                    }
                    tracing::warn!(error = %e, "listening for control changes failed; trying again");
                }
            }
            tokio::select! {
                () = tx.closed() => return,
                () = tokio::time::sleep(LISTEN_RETRY) => {}
            }
        }
    });
    rx
}

/// Listens on [`CONTROLS_CHANNEL`] until the connection fails for good.
async fn listen(
    pool: &sqlx_postgres::PgPool,
    tx: &tokio::sync::watch::Sender<()>,
) -> Result<std::convert::Infallible, sqlx_core::Error> {
    let mut listener = sqlx_postgres::PgListener::connect_with(pool).await?;
    listener.listen(CONTROLS_CHANNEL).await?;
    // Anything may have changed while no one listened.
    tx.send_replace(());
    loop {
        // `None` means the connection was lost and made again: changes
        // may have been missed, so wake the same.
        listener.try_recv().await?;
        tx.send_replace(());
    }
}

/// `controls.sql`: one statement, over the read's jobs or every job. A job
/// name with a NUL can never be stored, so it selects nothing, as the
/// memory store answers; a read left with no job makes no round trip.
pub(crate) async fn controls(
    store: &PgLeaseStore,
    read: &ControlRead,
) -> Result<Vec<Control>, StoreError> {
    let jobs: Option<Vec<&str>> = read.jobs.as_ref().map(|jobs| {
        jobs.iter()
            .map(String::as_str)
            .filter(|job| !job.contains('\0'))
            .collect()
    });
    // Stored instants are whole microseconds: `ended_at >= t` is
    // `ended_at >= ceil_to_micros(t)`.
    let since = read.ended_since.map(ceil_to_micros);
    let found = match jobs {
        Some(jobs) if jobs.is_empty() => return Ok(Vec::new()),
        Some(jobs) => {
            query(AssertSqlSafe(Arc::clone(&store.sql.controls_of_jobs)))
                .bind(since)
                .bind(jobs)
                .fetch_all(store.pool())
                .await
        }
        None => {
            query(AssertSqlSafe(Arc::clone(&store.sql.controls_all)))
                .bind(since)
                .fetch_all(store.pool())
                .await
        }
    }
    .map_err(backend("controls"))?;
    found.iter().map(rows::control).collect()
}

/// One transaction: the job's claim lock (`claim_lock.sql`, exclusive), so
/// that no claim commits a lease a new pause covers once the pause is
/// stored; for a pause, `control_held.sql` (a pause in force on the same
/// target refuses it); `control_add.sql`; the notification.
pub(crate) async fn add_control(
    store: &PgLeaseStore,
    control: &NewControl,
) -> Result<Control, StoreError> {
    control.refuse_unstorable()?;
    let err = backend("add control");
    let (scope_kind, scope_id) = match &control.scope {
        Some(scope) => (Some(scope.kind.as_str()), Some(scope.id.as_str())),
        None => (None, None),
    };
    let mut tx = store.pool().begin_with(BEGIN).await.map_err(err)?;
    // Read once: the lock's store time and the insert's are then one
    // instant on a client clock too.
    let at = store.store_time();
    lock_job(store, &mut tx, &control.job_name, false, at).await?;
    if let ControlAction::Pause { .. } = control.action {
        let held = store
            .statement_at(&store.sql.control_held, at)
            .bind(&control.job_name)
            .bind(scope_kind)
            .bind(scope_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(err)?;
        if let Some(held) = held {
            let held = rows::control(&held)?;
            abandon(tx).await;
            return Err(StoreError::Conflict(format!(
                "{} is already paused (control {})",
                held.target(),
                held.id
            )));
        }
    }
    let (until, skip_missed, from, to) = match control.action {
        ControlAction::Pause { until, skip_missed } => (until, skip_missed, None, None),
        ControlAction::Trigger => (None, false, None, None),
        ControlAction::Backfill { from, to } => (None, false, Some(from), Some(to)),
    };
    let added = store
        .statement_at(&store.sql.control_add, at)
        .bind(Uuid::now_v7())
        .bind(control.action.kind())
        .bind(&control.job_name)
        .bind(scope_kind)
        .bind(scope_id)
        .bind(control.stored_note())
        .bind(until.map(to_micros))
        .bind(skip_missed)
        .bind(from.map(to_micros))
        .bind(to.map(to_micros))
        .fetch_one(&mut *tx)
        .await
        .map_err(err)?;
    let stored = rows::control(&added)?;
    notify(store, &mut tx, &stored.job_name).await?;
    tx.commit().await.map_err(err)?;
    Ok(stored)
}

/// One transaction: `control_lock.sql` reads and locks the control,
/// [`ControlChange::apply`] decides at that statement's store time (so the
/// rule lives in one place), `control_update.sql` writes back what it
/// computed, and listeners are told.
pub(crate) async fn update_control(
    store: &PgLeaseStore,
    id: Uuid,
    change: &ControlChange,
) -> Result<Control, StoreError> {
    let err = backend("update control");
    let (mut tx, locked, now) = lock_by_id(store, &store.sql.control_lock, id, err).await?;
    let current = rows::control(&locked)?;
    let next = match change.apply(&current, now) {
        Ok(next) => next,
        Err(refused) => {
            abandon(tx).await;
            return Err(refused);
        }
    };
    let skip_missed = match next.action {
        ControlAction::Pause { skip_missed, .. } => skip_missed,
        ControlAction::Trigger | ControlAction::Backfill { .. } => false,
    };
    let written = query(AssertSqlSafe(Arc::clone(&store.sql.control_update)))
        .bind(id)
        .bind(next.state.as_str())
        .bind(next.reason.as_deref())
        .bind(next.ended_at)
        .bind(skip_missed)
        .bind(next.cursor.map(to_micros))
        .bind(next.updated_at)
        .fetch_one(&mut *tx)
        .await
        .map_err(err)?;
    let stored = rows::control(&written)?;
    notify(store, &mut tx, &stored.job_name).await?;
    tx.commit().await.map_err(err)?;
    Ok(stored)
}

/// `control_notify.sql`, in the caller's transaction: for a change of a
/// job's controls, or of the stored schedule of that name.
pub(crate) async fn notify(
    store: &PgLeaseStore,
    conn: &mut PgConnection,
    job_name: &str,
) -> Result<(), StoreError> {
    query(AssertSqlSafe(Arc::clone(&store.sql.control_notify)))
        .bind(job_name)
        .execute(conn)
        .await
        .map_err(backend("notify controls"))?;
    Ok(())
}

/// `control_progress.sql`: one statement through the index of the rows
/// of controls.
pub(crate) async fn control_progress(
    store: &PgLeaseStore,
    id: Uuid,
) -> Result<Progress, StoreError> {
    let err = backend("control progress");
    let row = query(AssertSqlSafe(Arc::clone(&store.sql.control_progress)))
        .bind(id)
        .fetch_one(store.pool())
        .await
        .map_err(err)?;
    let count = |column: &str| -> Result<u64, StoreError> {
        let n: i64 = row.try_get(column).map_err(err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    };
    Ok(Progress {
        succeeded: count("succeeded")?,
        failed: count("failed")?,
        running: count("running")?,
    })
}
