//! The replica registry: a replica's announcement
//! ([`LeaseStore::announce`](scheduler_core::LeaseStore::announce)) and
//! the operator's read of every replica
//! ([`ExecutionAudit::replicas`](scheduler_core::ExecutionAudit::replicas)).

use rusqlite::named_params;
use scheduler_core::model::jobs_to_json;
use scheduler_core::{Announcement, Replica, StoreError};

use crate::codec::{self, micros};
use crate::statements::SQL;
use crate::store::SqliteLeaseStore;

/// `announce.sql`, in one IMMEDIATE transaction like every write.
pub(crate) async fn announce(
    store: &SqliteLeaseStore,
    announcement: &Announcement,
) -> Result<(), StoreError> {
    announcement.refuse_unstorable()?;
    let r = &announcement.replica;
    let (runner_id, host, version) = (r.runner_id.clone(), r.host.clone(), r.version.clone());
    let (pid, jobs) = (i64::from(r.pid), jobs_to_json(&r.jobs));
    let kinds = serde_json::to_string(&r.kinds).expect("a list of strings always encodes");
    let refresh_ms = i64::try_from(r.refresh_interval.as_millis()).unwrap_or(i64::MAX);
    let presence = announcement.presence.as_str();
    store
        .write(move |tx, now| {
            tx.prepare_cached(&SQL.announce)?.execute(named_params! {
                ":runner_id": runner_id,
                ":host": host,
                ":pid": pid,
                ":version": version,
                ":refresh_interval_ms": refresh_ms,
                ":jobs": jobs,
                ":kinds": kinds,
                ":now": micros(now),
                ":presence": presence,
            })?;
            Ok(())
        })
        .await
}

/// `replicas.sql`.
pub(crate) async fn replicas(store: &SqliteLeaseStore) -> Result<Vec<Replica>, StoreError> {
    store
        .read(move |conn, _| {
            let mut stmt = conn.prepare_cached(&SQL.replicas)?;
            let rows = stmt.query_map([], codec::replica)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
}
