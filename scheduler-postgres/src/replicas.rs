//! The replica registry: a replica's announcement
//! ([`LeaseStore::announce`](scheduler_core::LeaseStore::announce)) and
//! the operator's read of every replica
//! ([`ExecutionAudit::replicas`](scheduler_core::ExecutionAudit::replicas)),
//! one statement each.

use std::sync::Arc;

use scheduler_core::model::jobs_to_json;
use scheduler_core::{Announcement, Replica, StoreError};
use sqlx_core::query::query;
use sqlx_core::sql_str::AssertSqlSafe;

use crate::rows::{self, backend};
use crate::store::PgLeaseStore;

/// `announce.sql`: one upsert at store time.
pub(crate) async fn announce(
    store: &PgLeaseStore,
    announcement: &Announcement,
) -> Result<(), StoreError> {
    announcement.refuse_unstorable()?;
    let r = &announcement.replica;
    store
        .statement(&store.sql.announce)
        .bind(&r.runner_id)
        .bind(&r.host)
        .bind(i64::from(r.pid))
        .bind(&r.version)
        .bind(i64::try_from(r.refresh_interval.as_millis()).unwrap_or(i64::MAX))
        .bind(jobs_to_json(&r.jobs))
        .bind(announcement.presence.as_str())
        .bind(serde_json::to_string(&r.kinds).expect("a list of strings always encodes"))
        .execute(store.pool())
        .await
        .map_err(backend("announce"))?;
    Ok(())
}

/// `replicas.sql`.
pub(crate) async fn replicas(store: &PgLeaseStore) -> Result<Vec<Replica>, StoreError> {
    let found = query(AssertSqlSafe(Arc::clone(&store.sql.replicas)))
        .fetch_all(store.pool())
        .await
        .map_err(backend("replicas"))?;
    found.iter().map(rows::replica).collect()
}
