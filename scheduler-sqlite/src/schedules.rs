//! Stored schedules (`docs/contract.md` §12): the replicas' per-tick read
//! ([`LeaseStore::schedules`]), an operator's write
//! ([`ExecutionAudit::write_schedule`]) and the version a stored schedule's
//! claim checks first ([`current_version`]). The decision of every write is
//! [`apply_write`]'s; it runs in an IMMEDIATE transaction like every other
//! write, so SQLite's one writer orders it with the claims, which is the
//! per-job lock the contract asks for: a claim that committed before the
//! write planned under the version it replaced, and every claim after it
//! sees the new version.
//!
//! [`LeaseStore::schedules`]: scheduler_core::LeaseStore::schedules
//! [`ExecutionAudit::write_schedule`]: scheduler_core::ExecutionAudit::write_schedule

use rusqlite::{named_params, OptionalExtension, Transaction};
use scheduler_core::job::apply_write;
use scheduler_core::{ScheduleWrite, StoreError, StoredSchedule};

use crate::codec::{self, micros};
use crate::error::Failure;
use crate::statements::SQL;
use crate::store::SqliteLeaseStore;

/// `schedules.sql`.
pub(crate) async fn schedules(store: &SqliteLeaseStore) -> Result<Vec<StoredSchedule>, StoreError> {
    store
        .read(move |conn, _| {
            let mut stmt = conn.prepare_cached(&SQL.schedules)?;
            let rows = stmt.query_map([], codec::schedule)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
}

/// Reads the schedule (`schedule_get.sql`), decides with [`apply_write`] at
/// the store time read under the write lock, and writes the outcome
/// (`schedule_put.sql` or `schedule_delete.sql`), in one IMMEDIATE
/// transaction. A refusal writes nothing.
pub(crate) async fn write_schedule(
    store: &SqliteLeaseStore,
    name: &str,
    write: &ScheduleWrite,
) -> Result<Option<StoredSchedule>, StoreError> {
    let (name, write) = (name.to_owned(), write.clone());
    store
        .write(move |tx, now| {
            let current = tx
                .prepare_cached(&SQL.schedule_get)?
                .query_row(named_params! { ":name": name }, codec::schedule)
                .optional()?;
            let written = apply_write(&name, &write, current.as_ref(), now)?;
            match &written {
                Some(schedule) => {
                    tx.prepare_cached(&SQL.schedule_put)?
                        .execute(named_params! {
                            ":name": schedule.name,
                            ":kind": schedule.definition.kind,
                            ":version": schedule.version,
                            ":definition": schedule.definition_json(),
                            ":created_at": micros(schedule.created_at),
                            ":updated_at": micros(schedule.updated_at),
                        })?;
                }
                None => {
                    tx.prepare_cached(&SQL.schedule_delete)?
                        .execute(named_params! { ":name": name })?;
                }
            }
            Ok(written)
        })
        .await
}

/// `schedule_version.sql`: the current version of stored schedule `name`,
/// `None` when there is none, in the caller's transaction.
pub(crate) fn current_version(tx: &Transaction<'_>, name: &str) -> Result<Option<i64>, Failure> {
    Ok(tx
        .prepare_cached(&SQL.schedule_version)?
        .query_row(named_params! { ":name": name }, |r| r.get(0))
        .optional()?)
}
