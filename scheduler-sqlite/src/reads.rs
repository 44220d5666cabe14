//! The reads: the manager's planning reads (latest executions, due
//! retries) and the operator's (one execution, a filtered list, scope
//! summaries, attempts logs). Each is one statement on the reader
//! connection.

use rusqlite::{named_params, OptionalExtension, ToSql};
use scheduler_core::model::Origin;
use scheduler_core::store::sql;
use scheduler_core::time::ceil_to_micros;
use scheduler_core::{
    Attempt, Execution, ExecutionFilter, LatestExecution, PlannedAt, RetryDue, RetryRead, Scope,
    ScopeSummary, StoreError,
};
use uuid::Uuid;

use crate::codec::{self, instant, micros, uuid_text};
use crate::statements::SQL;
use crate::store::SqliteLeaseStore;

/// `latest.sql`: one statement for any number of scopes.
pub(crate) async fn latest_executions(
    store: &SqliteLeaseStore,
    job_name: &str,
    scopes: &[Scope],
) -> Result<Vec<Option<LatestExecution>>, StoreError> {
    if scopes.is_empty() {
        return Ok(Vec::new());
    }
    let pairs: Vec<[&str; 2]> = scopes.iter().map(|s| [&*s.kind, &*s.id]).collect();
    let scopes_json = serde_json::to_string(&pairs)
        .map_err(|e| StoreError::InvalidInput(format!("scopes cannot be encoded: {e}")))?;
    let (job, count) = (job_name.to_owned(), scopes.len());
    store
        .read(move |conn, _| {
            let mut views = vec![None; count];
            let mut stmt = conn.prepare_cached(&SQL.latest)?;
            let mut rows = stmt.query(named_params! { ":scopes": scopes_json, ":job": job })?;
            while let Some(row) = rows.next()? {
                let index: usize = row.get(0)?;
                if let Some(slot) = views.get_mut(index) {
                    *slot = Some(codec::latest_view(row, 1)?);
                }
            }
            Ok(views)
        })
        .await
}

/// `retry_due.sql`.
pub(crate) async fn retry_due(
    store: &SqliteLeaseStore,
    read: &RetryRead<'_>,
) -> Result<Vec<RetryDue>, StoreError> {
    let job = read.job_name.to_owned();
    let (allow_stale_reentry, limit) = (read.allow_stale_reentry, read.per_scope_limit);
    // Rounded up, as a prune's cutoff is: `plan_time >= since` on whole
    // microseconds is then exactly the comparison at full precision.
    let since = micros(ceil_to_micros(read.since));
    store
        .read(move |conn, now| {
            let mut stmt = conn.prepare_cached(&SQL.retry_due)?;
            let rows = stmt.query_map(
                named_params! {
                    ":job": job,
                    ":since": since,
                    ":now": micros(now),
                    ":allow_stale_reentry": allow_stale_reentry,
                    ":limit": sql::limit(limit),
                },
                |row| {
                    let plan_us: i64 = row.get(2)?;
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        plan_us,
                        row.get::<_, bool>(3)?,
                        row.get::<_, Option<String>>(4)?,
                    ))
                },
            )?;
            let mut due = Vec::new();
            for row in rows {
                let (kind, id, plan_us, operator_retry, origin) = row?;
                let plan_time = instant(plan_us).ok_or_else(|| {
                    StoreError::backend_msg(format!(
                        "stored plan time {plan_us} µs is out of range"
                    ))
                })?;
                due.push(RetryDue {
                    scope: Scope::new(kind, id),
                    plan_time,
                    operator_retry,
                    origin: Origin::from_column(origin.as_deref()),
                });
            }
            Ok(due)
        })
        .await
}

/// `get.sql`.
pub(crate) async fn get_execution(
    store: &SqliteLeaseStore,
    id: Uuid,
) -> Result<Option<Execution>, StoreError> {
    store
        .read(move |conn, _| {
            Ok(conn
                .prepare_cached(&SQL.get)?
                .query_row(named_params! { ":id": uuid_text(id) }, codec::execution)
                .optional()?)
        })
        .await
}

/// `attempts.sql`: one statement for any number of executions, grouped
/// here into one log per id, in the order of `ids`.
pub(crate) async fn attempts_of(
    store: &SqliteLeaseStore,
    ids: &[Uuid],
) -> Result<Vec<Vec<Attempt>>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let texts: Vec<String> = ids.iter().map(|&id| uuid_text(id)).collect();
    let ids_json = serde_json::to_string(&texts)
        .map_err(|e| StoreError::InvalidInput(format!("ids cannot be encoded: {e}")))?;
    let found = store
        .read(move |conn, _| {
            let mut stmt = conn.prepare_cached(&SQL.attempts)?;
            let rows = stmt.query_map(named_params! { ":ids": ids_json }, codec::attempt)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(sql::logs_of(ids, found))
}

/// `list.sql`, with a condition per filter.
pub(crate) async fn list_executions(
    store: &SqliteLeaseStore,
    filter: &ExecutionFilter,
) -> Result<Vec<Execution>, StoreError> {
    // Fixed conditions only; every value is a bound parameter.
    let mut filters = String::new();
    let filter = filter.clone();
    if filter.job_name.is_some() {
        filters.push_str(" AND job_name = :job");
    }
    if filter.scope.is_some() {
        filters.push_str(" AND scope_kind = :kind AND scope_id = :scope_id");
    }
    if filter.status.is_some() {
        filters.push_str(" AND status = :status");
    }
    if filter.plan_time_from.is_some() {
        filters.push_str(" AND plan_time >= :from");
    }
    let tail = if filter.job_name.is_some() && filter.scope.is_some() {
        &SQL.list_tail_of_scope
    } else {
        &SQL.list.1
    };
    let statement = format!("{}{filters}{tail}", SQL.list.0);
    store
        .read(move |conn, _| {
            let status = filter.status.map(|s| s.as_str());
            // Rounded up for the same reason as `retry_due`'s bound.
            let from = filter.plan_time_from.map(|t| micros(ceil_to_micros(t)));
            // SQLite reads a negative LIMIT as "no limit".
            let row_limit = filter.limit.map_or(-1, sql::limit);
            let mut params: Vec<(&str, &dyn ToSql)> = vec![(":limit", &row_limit)];
            if let Some(job) = &filter.job_name {
                params.push((":job", job));
            }
            let scope = filter
                .scope
                .as_ref()
                .map(|s| (s.kind.as_str(), s.id.as_str()));
            if let Some((kind, id)) = &scope {
                params.push((":kind", kind));
                params.push((":scope_id", id));
            }
            if let Some(status) = &status {
                params.push((":status", status));
            }
            if let Some(from) = &from {
                params.push((":from", from));
            }
            let mut stmt = conn.prepare_cached(&statement)?;
            let rows = stmt.query_map(params.as_slice(), codec::execution)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
}

/// `summaries.sql`: one statement, so one consistent snapshot of every
/// scope, taken at one store time.
pub(crate) async fn scope_summaries(
    store: &SqliteLeaseStore,
    job_name: Option<&str>,
) -> Result<Vec<ScopeSummary>, StoreError> {
    let job = job_name.map(str::to_owned);
    store
        .read(move |conn, now| {
            let now_us = micros(now);
            let mut params: Vec<(&str, &dyn ToSql)> = vec![(":now", &now_us)];
            let statement = match &job {
                Some(job) => {
                    params.push((":job", job));
                    &SQL.summaries_of_job
                }
                None => &SQL.summaries_all,
            };
            let mut stmt = conn.prepare_cached(statement)?;
            let rows = stmt.query_map(params.as_slice(), codec::scope_summary)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
}

/// `plan_times.sql`: one statement for every scope of the job.
pub(crate) async fn plan_times_since(
    store: &SqliteLeaseStore,
    job_name: &str,
    from: time::OffsetDateTime,
) -> Result<Vec<PlannedAt>, StoreError> {
    let job = job_name.to_owned();
    // Rounded up, as `plan_time_from` is.
    let from = micros(ceil_to_micros(from));
    store
        .read(move |conn, _| {
            let mut stmt = conn.prepare_cached(&SQL.plan_times)?;
            let rows = stmt.query_map(named_params! { ":job": job, ":from": from }, |row| {
                Ok(PlannedAt {
                    scope: Scope::new(row.get::<_, String>(0)?, row.get::<_, String>(1)?),
                    plan_time: codec::instant_at(row, 2)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
}
