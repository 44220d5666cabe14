//! The reads: the manager's planning reads (latest executions, due
//! retries) and the operator's (one execution, a filtered list, scope
//! summaries, attempts logs). Each is one statement.
//!
//! A name with a NUL character can never be stored, so a read for one finds
//! nothing, as the memory store answers, without a round trip.

use std::sync::Arc;

use scheduler_core::model::Origin;
use scheduler_core::store::sql;
use scheduler_core::time::ceil_to_micros;
use scheduler_core::{
    Attempt, Execution, ExecutionFilter, LatestExecution, PlannedAt, RetryDue, RetryRead, Scope,
    ScopeSummary, StoreError,
};
use sqlx_core::query::query;
use sqlx_core::query_builder::QueryBuilder;
use sqlx_core::row::Row;
use sqlx_core::sql_str::AssertSqlSafe;
use sqlx_postgres::{PgRow, Postgres};
use uuid::Uuid;

use crate::rows::{self, backend};
use crate::store::PgLeaseStore;

/// `latest.sql`: one statement for any number of scopes.
pub(crate) async fn latest_executions(
    store: &PgLeaseStore,
    job_name: &str,
    scopes: &[Scope],
) -> Result<Vec<Option<LatestExecution>>, StoreError> {
    let mut views = vec![None; scopes.len()];
    let asked: Vec<usize> = (0..scopes.len())
        .filter(|&i| scopes[i].storage_problem().is_none())
        .collect();
    if asked.is_empty() || job_name.contains('\0') {
        return Ok(views);
    }
    let kinds: Vec<&str> = asked.iter().map(|&i| scopes[i].kind.as_str()).collect();
    let ids: Vec<&str> = asked.iter().map(|&i| scopes[i].id.as_str()).collect();
    let found = query(AssertSqlSafe(Arc::clone(&store.sql.latest)))
        .bind(job_name)
        .bind(kinds)
        .bind(ids)
        .fetch_all(store.pool())
        .await
        .map_err(backend("latest executions"))?;
    for row in &found {
        views[asked[rows::ordinal(row, asked.len())?]] = Some(rows::latest(row)?);
    }
    Ok(views)
}

/// `retry_due.sql`.
pub(crate) async fn retry_due(
    store: &PgLeaseStore,
    read: &RetryRead<'_>,
) -> Result<Vec<RetryDue>, StoreError> {
    if read.job_name.contains('\0') {
        return Ok(Vec::new());
    }
    let err = backend("retry due");
    let found = store
        .statement(&store.sql.retry_due)
        .bind(read.job_name)
        .bind(ceil_to_micros(read.since))
        .bind(read.allow_stale_reentry)
        .bind(sql::limit(read.per_scope_limit))
        .fetch_all(store.pool())
        .await
        .map_err(err)?;
    found
        .iter()
        .map(|row| {
            let PlannedAt { scope, plan_time } = planned_at(row)?;
            Ok(RetryDue {
                scope,
                plan_time,
                operator_retry: row.try_get("operator_retry").map_err(err)?,
                origin: Origin::from_column(row.try_get::<Option<&str>, _>("origin").map_err(err)?),
            })
        })
        .collect()
}

/// `get.sql`.
pub(crate) async fn get_execution(
    store: &PgLeaseStore,
    id: Uuid,
) -> Result<Option<Execution>, StoreError> {
    let row = query(AssertSqlSafe(Arc::clone(&store.sql.get)))
        .bind(id)
        .fetch_optional(store.pool())
        .await
        .map_err(backend("get execution"))?;
    row.as_ref().map(rows::execution).transpose()
}

/// `attempts.sql`: one statement for any number of executions, grouped
/// into one log per id, in the order of `ids`.
pub(crate) async fn attempts_of(
    store: &PgLeaseStore,
    ids: &[Uuid],
) -> Result<Vec<Vec<Attempt>>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let found = query(AssertSqlSafe(Arc::clone(&store.sql.attempts)))
        .bind(ids)
        .fetch_all(store.pool())
        .await
        .map_err(backend("attempts"))?;
    let found = found
        .iter()
        .map(rows::attempt)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(sql::logs_of(ids, found))
}

/// `list.sql`, with a condition per filter.
pub(crate) async fn list_executions(
    store: &PgLeaseStore,
    filter: &ExecutionFilter,
) -> Result<Vec<Execution>, StoreError> {
    let nul = filter.job_name.as_ref().is_some_and(|j| j.contains('\0'))
        || filter
            .scope
            .as_ref()
            .is_some_and(|s| s.storage_problem().is_some());
    if nul {
        return Ok(Vec::new());
    }
    // Only fixed conditions are appended; every value is bound.
    let (head, tail) = &store.sql.list;
    let tail = match (&filter.job_name, &filter.scope) {
        (Some(_), Some(_)) => &store.sql.list_tail_of_scope,
        _ => tail,
    };
    let mut statement = QueryBuilder::<Postgres>::new(head.as_str());
    if let Some(job) = &filter.job_name {
        statement.push(" AND job_name = ").push_bind(job.clone());
    }
    if let Some(scope) = &filter.scope {
        statement
            .push(" AND scope_kind = ")
            .push_bind(scope.kind.to_string());
        statement
            .push(" AND scope_id = ")
            .push_bind(scope.id.to_string());
    }
    if let Some(status) = filter.status {
        statement.push(" AND status = ").push_bind(status.as_str());
    }
    if let Some(from) = filter.plan_time_from {
        statement
            .push(" AND plan_time >= ")
            .push_bind(ceil_to_micros(from));
    }
    statement.push(tail.as_str());
    if let Some(limit) = filter.limit {
        statement.push(" LIMIT ").push_bind(sql::limit(limit));
    }
    let found = statement
        .build()
        .fetch_all(store.pool())
        .await
        .map_err(backend("list executions"))?;
    found.iter().map(rows::execution).collect()
}

/// `summaries.sql`: one statement (one snapshot, one store time) whatever
/// the number of jobs and scopes.
pub(crate) async fn scope_summaries(
    store: &PgLeaseStore,
    job_name: Option<&str>,
) -> Result<Vec<ScopeSummary>, StoreError> {
    let found = match job_name {
        // No stored name has a NUL: nothing to summarise, as the memory
        // store would answer.
        Some(job) if job.contains('\0') => return Ok(Vec::new()),
        Some(job) => {
            store
                .statement(&store.sql.summaries_of_job)
                .bind(job)
                .fetch_all(store.pool())
                .await
        }
        None => {
            store
                .statement(&store.sql.summaries_all)
                .fetch_all(store.pool())
                .await
        }
    }
    .map_err(backend("scope summaries"))?;
    found.iter().map(rows::summary).collect()
}

/// `plan_times.sql`: one statement for every scope of the job.
pub(crate) async fn plan_times_since(
    store: &PgLeaseStore,
    job_name: &str,
    from: time::OffsetDateTime,
) -> Result<Vec<PlannedAt>, StoreError> {
    if job_name.contains('\0') {
        return Ok(Vec::new());
    }
    let err = backend("plan times");
    let found = query(AssertSqlSafe(Arc::clone(&store.sql.plan_times)))
        .bind(job_name)
        .bind(ceil_to_micros(from))
        .fetch_all(store.pool())
        .await
        .map_err(err)?;
    found.iter().map(planned_at).collect()
}

/// A row's `scope_kind`, `scope_id` and `plan_time`.
fn planned_at(row: &PgRow) -> Result<PlannedAt, StoreError> {
    let get = |c| row.try_get::<String, _>(c).map_err(backend("read a row"));
    Ok(PlannedAt {
        scope: Scope::new(get("scope_kind")?, get("scope_id")?),
        plan_time: rows::instant(row, "plan_time")?,
    })
}
