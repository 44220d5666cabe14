//! The batched terminal write
//! ([`LeaseStore::finish_many`](scheduler_core::LeaseStore::finish_many)):
//! `finish_many.sql`, one `UPDATE ... FROM unnest(...)` of parallel plain
//! arrays bound from [`Finish::columns`], per chunk of leases, with
//! `finish.sql` item by item as the fallback for a batch the server
//! refused.

use std::sync::Arc;

use scheduler_core::model::FinishColumns;
use scheduler_core::{Finish, Lease, StoreError};
use sqlx_core::query::Query;
use sqlx_core::row::Row;
use sqlx_core::types::Json;
use sqlx_postgres::types::PgInterval;
use sqlx_postgres::{PgArguments, Postgres};

use crate::rows::{self, backend, interval};
use crate::store::PgLeaseStore;

/// The most leases one `finish_many` statement writes: larger batches are
/// cut into statements of this many, which bounds a statement's size (at
/// most about 100 MB even were every result and message as long as
/// allowed; a few hundred kB for typical ones).
const FINISH_MANY_CHUNK: usize = 5_000;

/// Writes each item's terminal state (see the crate docs, "Many terminal
/// writes", for how items are grouped, chunked and answered).
pub(crate) async fn finish_many(
    store: &PgLeaseStore,
    items: &[(&Lease, &Finish)],
) -> Vec<Result<(), StoreError>> {
    let mut results: Vec<Option<Result<(), StoreError>>> =
        std::iter::repeat_with(|| None).take(items.len()).collect();
    // Values that can never be bound are refused item by item, as
    // `finish` refuses them, before anything is sent.
    let mut encoded: Vec<(usize, BoundColumns<'_>)> = Vec::with_capacity(items.len());
    for (i, (_, finish)) in items.iter().enumerate() {
        match BoundColumns::of(finish) {
            Ok(columns) => encoded.push((i, columns)),
            Err(refused) => results[i] = Some(Err(refused)),
        }
    }
    // One canonical order (by lease, so that concurrent batches lock
    // rows in the same order), and each (id, token) sent once, with the
    // values of its first item: that item is written, the later ones
    // are told LeaseLost, which is what `finish` called item by item
    // answers (the first write ends the lease, the next finds it
    // terminal). Items with the same id but different tokens are all
    // sent; at most one of them can match the row.
    let lease_of = |i: usize| (items[i].0.id, items[i].0.token);
    encoded.sort_by_key(|(i, _)| (lease_of(*i), *i));
    let mut leases: Vec<SameLease<'_>> = Vec::with_capacity(encoded.len());
    for (i, columns) in encoded {
        match leases.last_mut() {
            Some(same) if lease_of(same.items[0]) == lease_of(i) => same.items.push(i),
            _ => leases.push(SameLease {
                items: vec![i],
                columns,
            }),
        }
    }

    for chunk in leases.chunks(FINISH_MANY_CHUNK) {
        match finish_chunk(store, items, chunk).await {
            // Leases not written stay undecided: LeaseLost below.
            Ok(written) => {
                for p in written {
                    results[chunk[p].items[0]] = Some(Ok(()));
                }
            }
            // A value the server refuses (a retry time past the largest
            // timestamp, say) fails the whole statement, which then
            // wrote nothing: finishing the chunk's items one by one, in
            // call order, confines the failure to the items `finish`
            // fails.
            Err(e) if rows::refused_value(&e) => {
                tracing::debug!(
                    error = %rows::describe(&e),
                    "postgres refused a value of a batch; finishing it one by one"
                );
                let mut one_by_one: Vec<usize> =
                    chunk.iter().flat_map(|same| same.items.clone()).collect();
                one_by_one.sort_unstable();
                for i in one_by_one {
                    let (lease, finish) = items[i];
                    results[i] = Some(finish_one(store, lease, finish).await);
                }
            }
            Err(e) => {
                let message = format!("postgres finish many: {}", rows::describe(&e));
                let source = Arc::new(e);
                for i in chunk.iter().flat_map(|same| &same.items) {
                    results[*i] = Some(Err(StoreError::Backend {
                        message: message.clone(),
                        source: Some(Box::new(Arc::clone(&source))),
                    }));
                }
            }
        }
    }
    results
        .into_iter()
        .zip(items)
        .map(|(result, (lease, _))| {
            result.unwrap_or_else(|| Err(StoreError::LeaseLost { id: lease.id }))
        })
        .collect()
}

/// [`Finish::columns`] in the types the statements bind (the retry delay as
/// an `interval`), checked before anything is sent, for `finish.sql` and
/// `finish_many.sql` alike.
struct BoundColumns<'a> {
    columns: FinishColumns<'a>,
    retry_after: Option<PgInterval>,
}

impl<'a> BoundColumns<'a> {
    /// # Errors
    /// [`StoreError::InvalidInput`] for a retry delay no interval can hold.
    fn of(finish: &'a Finish) -> Result<Self, StoreError> {
        let columns = finish.columns();
        Ok(BoundColumns {
            retry_after: columns
                .retry_after
                .map(|after| interval("retry_after", after))
                .transpose()?,
            columns,
        })
    }
}

/// The items of one `finish_many` call that present one lease (id and
/// token), in call order, and the columns of the first, the one written.
struct SameLease<'a> {
    items: Vec<usize>,
    columns: BoundColumns<'a>,
}

/// One terminal write on its own statement: what a batch falls back to,
/// item by item, when the server refuses one of its values.
async fn finish_one(
    store: &PgLeaseStore,
    lease: &Lease,
    finish: &Finish,
) -> Result<(), StoreError> {
    let done = finish_statement(store, &store.sql.finish, lease, finish)?
        .fetch_optional(store.pool())
        .await
        .map_err(backend("finish"))?;
    match done {
        Some(_) => Ok(()),
        None => Err(StoreError::LeaseLost { id: lease.id }),
    }
}

/// `sql` (`finish.sql`, as rendered for a plain or an in-transaction
/// write) bound for `lease` (its id, token and plan time) and `finish`: it
/// returns a row
/// when it wrote (and logged) the terminal state, none when the guard
/// found the lease lost. Shared by [`finish_one`] and a transactional
/// job's SUCCESS, so both write exactly the same.
///
/// # Errors
/// [`StoreError::InvalidInput`] for a retry delay no interval can hold.
pub(crate) fn finish_statement(
    store: &PgLeaseStore,
    sql: &Arc<str>,
    lease: &Lease,
    finish: &Finish,
) -> Result<Query<'static, Postgres, PgArguments>, StoreError> {
    let BoundColumns {
        columns: c,
        retry_after,
    } = BoundColumns::of(finish)?;
    Ok(store
        .statement(sql)
        .bind(lease.id)
        .bind(lease.token)
        .bind(c.status.as_str())
        .bind(c.duration_ms)
        .bind(c.rows_affected)
        .bind(c.result.map(Json))
        .bind(c.error_code.map(|code| code.as_str()))
        .bind(c.error_msg)
        .bind(retry_after)
        .bind(lease.plan_time))
}

/// One `finish_many` statement writing the first item of each of
/// `chunk`'s leases. Returns the positions in `chunk` of the leases it
/// finished.
async fn finish_chunk(
    store: &PgLeaseStore,
    items: &[(&Lease, &Finish)],
    chunk: &[SameLease<'_>],
) -> Result<Vec<usize>, sqlx_core::Error> {
    let n = chunk.len();
    let mut ids = Vec::with_capacity(n);
    let mut tokens = Vec::with_capacity(n);
    let mut statuses = Vec::with_capacity(n);
    let mut durations = Vec::with_capacity(n);
    let mut rows_affected = Vec::with_capacity(n);
    let mut results = Vec::with_capacity(n);
    let mut error_codes = Vec::with_capacity(n);
    let mut error_msgs = Vec::with_capacity(n);
    let mut retry_afters = Vec::with_capacity(n);
    let mut plan_times = Vec::with_capacity(n);
    for SameLease { items: at, columns } in chunk {
        let lease = items[at[0]].0;
        let c = &columns.columns;
        ids.push(lease.id);
        tokens.push(lease.token);
        statuses.push(c.status.as_str());
        durations.push(c.duration_ms);
        rows_affected.push(c.rows_affected);
        results.push(c.result.map(Json));
        error_codes.push(c.error_code.map(|code| code.as_str()));
        error_msgs.push(c.error_msg);
        retry_afters.push(columns.retry_after);
        plan_times.push(lease.plan_time);
    }
    let written = store
        .statement(&store.sql.finish_many)
        .bind(ids)
        .bind(tokens)
        .bind(statuses)
        .bind(durations)
        .bind(rows_affected)
        .bind(results)
        .bind(error_codes)
        .bind(error_msgs)
        .bind(retry_afters)
        .bind(plan_times)
        .fetch_all(store.pool())
        .await?;
    written
        .iter()
        .map(|row| {
            let ord: i64 = row.try_get("ord")?;
            usize::try_from(ord - 1)
                .ok()
                .filter(|&p| p < n)
                .ok_or_else(|| {
                    sqlx_core::Error::Protocol(format!("finish many returned ordinal {ord} of {n}"))
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use scheduler_core::{
        ClaimRequest, ErrorCode, Execution, ExecutionAudit, LeaseStore, PlanKey, Scope,
    };
    use time::macros::datetime;

    use super::*;
    use crate::common::test_db;
    use crate::PgStoreOptions;

    /// What a terminal write leaves, but for the instants, which differ
    /// from statement to statement: the retry time as its delay after the
    /// finish.
    fn shape(row: &Execution) -> impl PartialEq + std::fmt::Debug {
        (
            row.status,
            row.duration_ms,
            row.rows_affected,
            row.result.clone(),
            row.error_code.clone(),
            row.error_msg.clone(),
            row.next_retry_at.zip(row.finished_at).map(|(at, f)| at - f),
        )
    }

    /// `finish.sql`, the fallback of a refused batch, writes what
    /// `finish_many.sql` writes, for each kind of terminal write, with and
    /// without an attempt left.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn finishing_one_writes_what_a_batch_writes() {
        let Some(db) = test_db().await else { return };
        let store = PgLeaseStore::from_pool_with(
            db.admin.clone(),
            &PgStoreOptions::new().schema(&db.schema),
        )
        .unwrap();
        store.migrate().await.unwrap();
        let ok = Finish::success(
            Duration::from_millis(7),
            3,
            serde_json::Map::from_iter([("k".to_owned(), 1.into())]),
        );
        let failed = Finish::failure(
            Duration::from_millis(9),
            ErrorCode::HandlerError,
            "boom",
            Duration::from_secs(30),
        );
        for max_attempts in [1, 2] {
            let keys: Vec<PlanKey> = (0..4)
                .map(|i| PlanKey {
                    scope: Scope::new("t", format!("{max_attempts}-{i}")),
                    plan_time: datetime!(2026-01-01 00:00 UTC),
                })
                .collect();
            let leases: Vec<Lease> = store
                .claim(&ClaimRequest {
                    finishing: &[],
                    steering: scheduler_core::model::Steering::NONE,
                    job_name: "job",
                    runner_id: "r",
                    max_attempts,
                    stale_timeout: Duration::from_secs(60),
                    allow_stale_reentry: true,
                    keys: &keys,
                })
                .await
                .unwrap()
                .iter()
                .map(|outcome| outcome.lease().unwrap().clone())
                .collect();
            for (pair, finish) in leases.chunks(2).zip([&ok, &failed]) {
                finish_one(&store, &pair[0], finish).await.unwrap();
                let batch = finish_many(&store, &[(&pair[1], finish)]).await;
                assert!(batch[0].is_ok(), "{batch:?}");
                let one = store.get_execution(pair[0].id).await.unwrap().unwrap();
                let many = store.get_execution(pair[1].id).await.unwrap().unwrap();
                assert_eq!(shape(&one), shape(&many));
            }
            let lost = finish_one(&store, &leases[0], &ok).await;
            assert!(
                matches!(lost, Err(StoreError::LeaseLost { .. })),
                "{lost:?}"
            );
        }
        drop(store);
        db.drop_schema().await;
    }
}
