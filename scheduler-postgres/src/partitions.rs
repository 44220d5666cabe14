//! The upkeep of a partitioned executions table
//! ([`PgStoreOptions::partitioned`](crate::PgStoreOptions::partitioned);
//! `docs/contract.md` §10, "Partitioned executions"): range partitions
//! created ahead of the plans that will fill them, and retention that drops
//! a whole partition once nothing in it can change again. The statements are
//! under `sql/partitions/`, each saying why it is written as it is.

use std::time::Duration;

use scheduler_core::machine::NEVER;
use scheduler_core::store::sql::render;
use scheduler_core::{LeaseStore, StoreError};
use sqlx_core::acquire::Acquire;
use sqlx_core::executor::Executor;
use sqlx_core::query::query;
use sqlx_core::query_scalar::query_scalar;
use sqlx_core::sql_str::AssertSqlSafe;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, Time, UtcOffset};
use uuid::Uuid;

use crate::names::derived_name;
use crate::options::PartitionInterval;
use crate::rows::backend;
use crate::statements::sql_file;
use crate::store::PgLeaseStore;

/// How many partitions after the current one the store keeps created: a
/// week of daily partitions, or seven weeks of weekly ones, so that a fleet
/// whose prune runs daily (or a store that restarts weekly) never writes a
/// plan of the current interval to the DEFAULT partition. Plans beyond
/// them land there, which is correct, only slower to prune.
pub const PARTITIONS_AHEAD: u32 = 7;

/// How long the upkeep waits for the executions table's lock before giving
/// up until the next call: claims and finishes queue behind a waiting
/// exclusive lock, so the wait is what they may lose (the bar: the
/// fleet's claim p99 at most doubled during a prune).
const LOCK_TIMEOUT: &str = "100ms";

/// PostgreSQL's `lock_not_available`: the lock timeout passed.
const LOCK_NOT_AVAILABLE: &str = "55P03";

impl PartitionInterval {
    /// The start of the partition holding `t`.
    fn floor(self, t: OffsetDateTime) -> OffsetDateTime {
        let day = t.to_offset(UtcOffset::UTC).replace_time(Time::MIDNIGHT);
        match self {
            PartitionInterval::Day => day,
            PartitionInterval::Week => {
                day - Duration::from_secs(
                    86_400 * u64::from(day.weekday().number_days_from_monday()),
                )
            }
        }
    }

    /// A partition's length.
    fn step(self) -> Duration {
        match self {
            PartitionInterval::Day => Duration::from_secs(86_400),
            PartitionInterval::Week => Duration::from_secs(7 * 86_400),
        }
    }
}

/// A range partition: its name as the statements use it, and its bounds
/// (lower inclusive, upper exclusive).
struct Partition {
    name: String,
    lower: OffsetDateTime,
    upper: OffsetDateTime,
}

/// The table's range partitions, oldest first (`partitions/list.sql`).
async fn list(store: &PgLeaseStore) -> Result<Vec<Partition>, StoreError> {
    let rows: Vec<(String, OffsetDateTime, OffsetDateTime)> =
        sqlx_core::query_as::query_as(AssertSqlSafe(render(sql_file!("partitions/list.sql"), &[])))
            .bind(&store.sql.table.display)
            .fetch_all(store.pool())
            .await
            .map_err(backend("list partitions"))?;
    Ok(rows
        .into_iter()
        .map(|(name, lower, upper)| Partition { name, lower, upper })
        .collect())
}

/// Whether `e` is the lock timeout, which the upkeep takes as "not now".
fn lock_timed_out(e: &sqlx_core::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|code| code == LOCK_NOT_AVAILABLE)
}

/// Creates the partition of the current store time and the
/// [`PARTITIONS_AHEAD`] after it, those missing; returns how many it
/// created. A range the DEFAULT partition already holds rows of stays
/// there (the server would refuse the partition). Each partition is created
/// in a transaction of its own under [`LOCK_TIMEOUT`]; one that cannot get
/// the table's lock is left to the next call.
///
/// # Errors
/// [`StoreError::Backend`] when the server fails.
pub(crate) async fn create_ahead(
    store: &PgLeaseStore,
    interval: PartitionInterval,
) -> Result<usize, StoreError> {
    let err = backend("create partitions");
    let now = store.now().await?;
    let table = &store.sql.table;
    let existing = list(store).await?;
    let mut created = 0;
    let mut lower = interval.floor(now);
    for _ in 0..=PARTITIONS_AHEAD {
        let upper = lower + interval.step();
        let suffix = format!(
            "p{:04}{:02}{:02}",
            lower.year(),
            u8::from(lower.month()),
            lower.day()
        );
        let (from, to) = (lower, upper);
        lower = upper;
        if existing.iter().any(|p| p.lower < to && from < p.upper) {
            continue;
        }
        let name = table.qualified(&derived_name(&table.name, &suffix));
        let mut conn = store.pool().acquire().await.map_err(err)?;
        let mut tx = conn.begin().await.map_err(err)?;
        let taken: bool = query_scalar(AssertSqlSafe(render(
            sql_file!("partitions/default_rows.sql"),
            &[("default_partition", &table.default_partition)],
        )))
        .bind(from)
        .bind(to)
        .fetch_one(&mut *tx)
        .await
        .map_err(err)?;
        if taken {
            continue;
        }
        tx.execute(AssertSqlSafe(format!(
            "SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"
        )))
        .await
        .map_err(err)?;
        let rfc = |t: OffsetDateTime| t.format(&Rfc3339).expect("a UTC instant formats");
        let create = render(
            sql_file!("partitions/create.sql"),
            &[
                ("partition", &name),
                ("table", &table.display),
                ("lower", &rfc(from)),
                ("upper", &rfc(to)),
            ],
        );
        match tx.execute(AssertSqlSafe(create)).await {
            Ok(_) => {
                tx.commit().await.map_err(err)?;
                created += 1;
            }
            Err(e) if lock_timed_out(&e) => {}
            Err(e) => return Err(err(e)),
        }
    }
    Ok(created)
}

/// Retention of one whole partition: the oldest range partition ending at
/// or before `before` whose every row is prunable and can no longer change
/// (`partitions/droppable.sql`) is checked again, its ended FAILED rows
/// taken out of the tally (`partitions/untally.sql`), and detached, under
/// the table's lock and in one transaction, then its attempts log is deleted in statements of `limit`
/// executions' records (which count its rows), and it is dropped. Empty
/// partitions on the way go too. Returns how many rows the partition held, or `None` when no
/// partition with rows could go (none qualifies, or the lock was not had
/// within [`LOCK_TIMEOUT`]): then the caller prunes row by row.
///
/// # Errors
/// [`StoreError::Backend`] when the server fails.
pub(crate) async fn drop_one(
    store: &PgLeaseStore,
    before: OffsetDateTime,
    limit: i64,
) -> Result<Option<u64>, StoreError> {
    let err = backend("drop partition");
    let table = &store.sql.table;
    let droppable = |name: &str| {
        render(
            sql_file!("partitions/droppable.sql"),
            &[("partition", name)],
        )
    };
    for partition in list(store).await? {
        if partition.upper > before {
            break;
        }
        // A first check without the lock, so a partition that cannot go
        // costs the table nothing.
        let check = droppable(&partition.name);
        let ok: bool = query_scalar(AssertSqlSafe(check.clone()))
            .bind(before)
            .bind(NEVER)
            .fetch_one(store.pool())
            .await
            .map_err(err)?;
        if !ok {
            continue;
        }
        let mut conn = store.pool().acquire().await.map_err(err)?;
        let mut tx = conn.begin().await.map_err(err)?;
        tx.execute(AssertSqlSafe(format!(
            "SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"
        )))
        .await
        .map_err(err)?;
        let lock = render(
            sql_file!("partitions/lock.sql"),
            &[("table", &table.display)],
        );
        match tx.execute(AssertSqlSafe(lock)).await {
            Ok(_) => {}
            Err(e) if lock_timed_out(&e) => return Ok(None),
            Err(e) => return Err(err(e)),
        }
        let still: bool = query_scalar(AssertSqlSafe(check))
            .bind(before)
            .bind(NEVER)
            .fetch_one(&mut *tx)
            .await
            .map_err(err)?;
        if !still {
            continue;
        }
        // The tally loses the partition's rows at the commit that takes
        // them out of the table (no DELETE fires its trigger).
        let untally = render(&store.sql.untally, &[("partition", &partition.name)]);
        tx.execute(AssertSqlSafe(untally)).await.map_err(err)?;
        let detach = render(
            sql_file!("partitions/detach.sql"),
            &[("table", &table.display), ("partition", &partition.name)],
        );
        tx.execute(AssertSqlSafe(detach)).await.map_err(err)?;
        tx.commit().await.map_err(err)?;
        let dropped = drop_detached(store, &partition.name, limit).await?;
        // An empty partition goes without counting as the call's work:
        // callers stop at a call that pruned nothing.
        if dropped > 0 {
            return Ok(Some(dropped));
        }
    }
    Ok(None)
}

/// The rest of a partition's retention once detached: its attempts log in
/// bounded statements, which also count its rows, then the drop.
async fn drop_detached(store: &PgLeaseStore, name: &str, limit: i64) -> Result<u64, StoreError> {
    let err = backend("drop partition");
    let pool = store.pool();
    let attempts = render(
        sql_file!("partitions/attempts.sql"),
        &[("partition", name), ("attempts", &store.sql.table.attempts)],
    );
    let mut rows = 0_i64;
    let mut after: (Uuid, Option<OffsetDateTime>) = (Uuid::nil(), None);
    loop {
        let (page, id, plan_time): (i64, Option<Uuid>, Option<OffsetDateTime>) =
            sqlx_core::query_as::query_as(AssertSqlSafe(attempts.clone()))
                .bind(after.0)
                .bind(after.1)
                .bind(limit.max(1))
                .fetch_one(pool)
                .await
                .map_err(err)?;
        rows += page;
        match (id, plan_time) {
            (Some(id), Some(plan_time)) => after = (id, Some(plan_time)),
            _ => break,
        }
    }
    query(AssertSqlSafe(render(
        sql_file!("partitions/drop.sql"),
        &[("partition", name)],
    )))
    .execute(pool)
    .await
    .map_err(err)?;
    Ok(u64::try_from(rows).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    /// A day starts at UTC midnight, a week at Monday's, whatever the
    /// instant's offset; the steps are a day and a week.
    #[test]
    fn intervals_start_at_utc_midnight_and_monday() {
        // A Wednesday, 01:30 at +03:00: still Tuesday in UTC.
        let t = datetime!(2026-12-09 01:30 +03:00);
        assert_eq!(
            PartitionInterval::Day.floor(t),
            datetime!(2026-12-08 00:00 UTC)
        );
        assert_eq!(
            PartitionInterval::Week.floor(t),
            datetime!(2026-12-07 00:00 UTC)
        );
        let monday = datetime!(2026-12-07 00:00 UTC);
        assert_eq!(PartitionInterval::Week.floor(monday), monday);
        assert_eq!(PartitionInterval::Day.step(), Duration::from_secs(86_400));
        assert_eq!(PartitionInterval::Week.step(), Duration::from_secs(604_800));
    }
}
