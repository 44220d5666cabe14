//! The batch claim ([`LeaseStore::claim`](scheduler_core::LeaseStore::claim)):
//! one transaction of at most two statements, `claim_insert.sql` for every
//! key and `claim_reclaim.sql` for the keys that already had a row.

use std::collections::HashMap;

use scheduler_core::machine::{Ending, FreshIds};
use scheduler_core::time::to_micros;
use scheduler_core::{ClaimOutcome, ClaimRequest, Lease, Status, StoreError};
use sqlx_core::row::Row;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::rows::{self, backend, interval};
use crate::store::PgLeaseStore;

/// Claims every key of `request` in one transaction: the fresh keys with
/// one `INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING`, then,
/// only for the keys that conflicted, one guarded `UPDATE ... FROM
/// unnest(...)` for retries and takeovers, both at one store time.
pub(crate) async fn claim(
    store: &PgLeaseStore,
    request: &ClaimRequest<'_>,
) -> Result<Vec<ClaimOutcome>, StoreError> {
    request.refuse_unstorable()?;
    let stale = interval("stale_timeout", request.stale_timeout)?;
    let keys = request.keys;
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let plan_times: Vec<OffsetDateTime> = keys.iter().map(|k| to_micros(k.plan_time)).collect();
    let key = |i: usize| (&keys[i].scope.kind, &keys[i].scope.id, plan_times[i]);

    // One canonical order (so concurrent batches take row locks in the
    // same order), duplicates dropped: the first occurrence of a key is
    // the one that may win, the others are told Conflicted.
    let mut unique: Vec<usize> = (0..keys.len()).collect();
    unique.sort_by(|&a, &b| key(a).cmp(&key(b)).then(a.cmp(&b)));
    unique.dedup_by(|later, first| key(*later) == key(*first));
    let fresh: Vec<FreshIds> = unique.iter().map(|_| FreshIds::mint()).collect();
    let kinds = |at: &[usize]| -> Vec<&str> {
        at.iter()
            .map(|&p| keys[unique[p]].scope.kind.as_str())
            .collect()
    };
    let ids = |at: &[usize]| -> Vec<&str> {
        at.iter()
            .map(|&p| keys[unique[p]].scope.id.as_str())
            .collect()
    };
    let times = |at: &[usize]| -> Vec<OffsetDateTime> {
        at.iter().map(|&p| plan_times[unique[p]]).collect()
    };
    let tokens = |at: &[usize]| -> Vec<Uuid> { at.iter().map(|&p| fresh[p].token).collect() };
    let lease = |p: usize, id, token, attempt, max_attempts, started_at, stale_after| Lease {
        id,
        token,
        job_name: request.job_name.to_owned(),
        scope: keys[unique[p]].scope.clone(),
        plan_time: plan_times[unique[p]],
        attempt,
        max_attempts,
        started_at,
        stale_after,
    };

    let err = backend("claim");
    let all: Vec<usize> = (0..unique.len()).collect();
    let mut decided: Vec<Option<ClaimOutcome>> = vec![None; unique.len()];
    // One transaction: a failure of the second statement must not leave
    // the first one's leases behind unknown to the caller, and both
    // statements decide at the same store time, as machine::claim does.
    let mut tx = store.pool().begin().await.map_err(err)?;
    // Read once: on a client clock both statements then decide at one
    // instant, as they do at the transaction's `now()` on the server's.
    let at = store.store_time();
    let inserted = store
        .statement_at(&store.sql.claim_insert, at)
        .bind(request.job_name)
        .bind(request.runner_id)
        .bind(request.max_attempts)
        .bind(stale)
        .bind(kinds(&all))
        .bind(ids(&all))
        .bind(times(&all))
        .bind(fresh.iter().map(|f| f.id).collect::<Vec<Uuid>>())
        .bind(tokens(&all))
        .fetch_all(&mut *tx)
        .await
        .map_err(err)?;
    let position: HashMap<Uuid, usize> = fresh.iter().enumerate().map(|(p, f)| (f.id, p)).collect();
    for row in &inserted {
        let id: Uuid = row.try_get("id").map_err(err)?;
        let p = *position
            .get(&id)
            .ok_or_else(|| StoreError::backend_msg("postgres claim returned an unknown id"))?;
        let won = lease(
            p,
            id,
            fresh[p].token,
            1,
            request.max_attempts,
            rows::instant(row, "started_at")?,
            rows::instant(row, "stale_after")?,
        );
        decided[p] = Some(ClaimOutcome::Won(won));
    }

    let conflicted: Vec<usize> = (0..unique.len())
        .filter(|&p| decided[p].is_none())
        .collect();
    if !conflicted.is_empty() {
        let stolen = Ending::Steal.columns();
        let reclaimed = store
            .statement_at(&store.sql.claim_reclaim, at)
            .bind(request.job_name)
            .bind(request.runner_id)
            .bind(stale)
            .bind(request.allow_stale_reentry)
            .bind(kinds(&conflicted))
            .bind(ids(&conflicted))
            .bind(times(&conflicted))
            .bind(tokens(&conflicted))
            .bind(stolen.outcome.as_str())
            .bind(stolen.error_code)
            .bind(stolen.error_msg)
            .bind(stolen.duration_ms)
            .fetch_all(&mut *tx)
            .await
            .map_err(err)?;
        for row in &reclaimed {
            let p = conflicted[rows::ordinal(row, conflicted.len())?];
            let taken = lease(
                p,
                row.try_get("id").map_err(err)?,
                row.try_get("lease_token").map_err(err)?,
                row.try_get("attempt").map_err(err)?,
                row.try_get("max_attempts").map_err(err)?,
                rows::instant(row, "started_at")?,
                rows::instant(row, "stale_after")?,
            );
            decided[p] = Some(match rows::status(row, "old_status")? {
                Status::Failed => ClaimOutcome::Retried(taken),
                _ => ClaimOutcome::Stolen(taken),
            });
        }
    }
    tx.commit().await.map_err(err)?;

    let mut outcomes = vec![ClaimOutcome::Conflicted; keys.len()];
    for (p, decision) in decided.into_iter().enumerate() {
        if let Some(outcome) = decision {
            outcomes[unique[p]] = outcome;
        }
    }
    Ok(outcomes)
}
