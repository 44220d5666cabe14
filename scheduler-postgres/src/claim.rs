//! The batch claim ([`LeaseStore::claim`](scheduler_core::LeaseStore::claim)):
//! one transaction that takes the job's claim lock (`claim_lock.sql`),
//! reads what admission weighs (`claim_admission.sql`), and writes what
//! [`machine::admit`] and the lease rules decided (for a stored schedule's
//! keys, first `schedule_version.sql`: keys planned under a version no
//! longer current are all Superseded, and nothing is written): `claim_insert.sql` for
//! the keys to claim, `claim_reclaim.sql` for those of them that already
//! had a row, `claim_skip.sql` for the keys admission skipped, and
//! `claim_cancel.sql` for the live runs the new leases replace. Statements
//! with nothing to do are not sent: a claim of scheduled keys that nothing
//! pauses or holds up costs the lock, the read and the insert.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use scheduler_core::machine::{self, Admission, Ending, FreshIds};
use scheduler_core::model::OverlapPolicy;
#[cfg(doc)]
use scheduler_core::model::Steering;
use scheduler_core::time::to_micros;
use scheduler_core::{ClaimOutcome, ClaimRequest, Lease, Status, StoreError};
use sqlx_core::row::Row;
use sqlx_postgres::types::PgInterval;
use sqlx_postgres::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::operator::abandon;
use crate::rows::{self, backend, interval};
use crate::schedules;
use crate::store::PgLeaseStore;

/// Claims every key of `request` in one transaction, at one store time:
/// under the job's claim lock, admission first, then the fresh keys with
/// one `INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING`, then,
/// only for the keys that conflicted, one guarded `UPDATE ... FROM
/// unnest(...)` for retries and takeovers; the skipped keys' rows and the
/// replaced runs' ends last.
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
    // the one that may win, the others are told Conflicted (or Paused or
    // Busy, as admission tells every occurrence alike).
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
    let row_ids = |at: &[usize]| -> Vec<Uuid> { at.iter().map(|&p| fresh[p].id).collect() };
    let tokens = |at: &[usize]| -> Vec<Uuid> { at.iter().map(|&p| fresh[p].token).collect() };
    let lease = |p: usize, id, token, attempt, max_attempts, started_at, stale_after| Lease {
        id,
        token,
        job_name: request.job_name.into(),
        scope: keys[unique[p]].scope.clone(),
        plan_time: plan_times[unique[p]],
        attempt,
        max_attempts,
        started_at,
        stale_after,
    };
    let origin = request.steering.origin.column();
    let control_id = request.steering.control_id;

    let err = backend("claim");
    let mut decided: Vec<Option<ClaimOutcome>> = vec![None; unique.len()];
    // One transaction: the lock and admission's read must hold until the
    // writes they decided commit, a failure of a later statement must not
    // leave an earlier one's leases behind unknown to the caller, and every
    // statement decides at the same store time, as machine::claim does.
    let mut tx = store.pool().begin_with(BEGIN).await.map_err(err)?;
    // Read once: on a client clock every statement then decides at one
    // instant, as they do at the transaction's `now()` on the server's.
    let at = store.store_time();
    let Some(admissions) = admit(store, &mut tx, request, at).await? else {
        // Nothing was written: ending the transaction releases the lock.
        abandon(tx).await;
        return Ok(vec![ClaimOutcome::Superseded; keys.len()]);
    };
    let mut claiming = Vec::new();
    let mut skipping = Vec::new();
    for (p, &i) in unique.iter().enumerate() {
        match admissions[i] {
            Admission::Paused => decided[p] = Some(ClaimOutcome::Paused),
            Admission::Busy => decided[p] = Some(ClaimOutcome::Busy),
            Admission::Skip => skipping.push(p),
            Admission::Claim | Admission::Replace(_) => claiming.push(p),
        }
    }

    if !claiming.is_empty() {
        let inserted = store
            .statement_at(&store.sql.claim_insert, at)
            .bind(request.job_name)
            .bind(request.runner_id)
            .bind(request.max_attempts)
            .bind(stale)
            .bind(kinds(&claiming))
            .bind(ids(&claiming))
            .bind(times(&claiming))
            .bind(row_ids(&claiming))
            .bind(tokens(&claiming))
            .bind(origin)
            .bind(control_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(err)?;
        let position: HashMap<Uuid, usize> =
            fresh.iter().enumerate().map(|(p, f)| (f.id, p)).collect();
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
    }

    let conflicted: Vec<usize> = claiming
        .iter()
        .copied()
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

    if !skipping.is_empty() {
        let inserted = store
            .statement_at(&store.sql.claim_skip, at)
            .bind(request.job_name)
            .bind(request.runner_id)
            .bind(request.max_attempts)
            .bind(machine::NEVER)
            .bind(machine::OVERLAP_SKIPPED_MSG)
            .bind(origin)
            .bind(control_id)
            .bind(kinds(&skipping))
            .bind(ids(&skipping))
            .bind(times(&skipping))
            .bind(row_ids(&skipping))
            .bind(tokens(&skipping))
            .fetch_all(&mut *tx)
            .await
            .map_err(err)?;
        let written: HashSet<Uuid> = inserted
            .iter()
            .map(|row| row.try_get("id").map_err(err))
            .collect::<Result<_, _>>()?;
        for &p in &skipping {
            if written.contains(&fresh[p].id) {
                decided[p] = Some(ClaimOutcome::Skipped);
            }
        }
    }

    // The runs the granted leases replace; one a newer key replaced twice
    // is ended once.
    let mut replaced: Vec<Uuid> = claiming
        .iter()
        .filter(|&&p| decided[p].as_ref().is_some_and(|o| o.lease().is_some()))
        .filter_map(|&p| match &admissions[unique[p]] {
            Admission::Replace(ids) => Some(ids.iter().copied()),
            _ => None,
        })
        .flatten()
        .collect();
    replaced.sort_unstable();
    replaced.dedup();
    if !replaced.is_empty() {
        let ended = Ending::Overlap.columns();
        store
            .statement_at(&store.sql.claim_cancel, at)
            .bind(replaced)
            .bind(machine::NEVER)
            .bind(machine::OVERLAP_CANCELED_MSG)
            .bind(ended.outcome.as_str())
            .bind(ended.error_code)
            .bind(ended.error_msg)
            .bind(ended.duration_ms)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
    }
    tx.commit().await.map_err(err)?;

    let mut outcomes: Vec<ClaimOutcome> = admissions
        .iter()
        .map(|admission| match admission {
            Admission::Paused => ClaimOutcome::Paused,
            Admission::Busy => ClaimOutcome::Busy,
            _ => ClaimOutcome::Conflicted,
        })
        .collect();
    for (p, decision) in decided.into_iter().enumerate() {
        if let Some(outcome) = decision {
            outcomes[unique[p]] = outcome;
        }
    }
    Ok(outcomes)
}

/// How a claim's transaction, and an addition of a control's, begins:
/// READ COMMITTED whatever the server's or the role's default, in the same
/// round trip. Admission's read must take its snapshot after the claim lock
/// was granted, so that it sees a pause committed meanwhile; under
/// REPEATABLE READ the snapshot would be the lock statement's own, taken
/// before the wait.
pub(crate) const BEGIN: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";

/// Takes the claim lock of job `job_name` on `conn`, inside its
/// transaction (`claim_lock.sql`), in the shared form when `shared`;
/// returns the transaction's store time, `$1` bound to `at`.
pub(crate) async fn lock_job(
    store: &PgLeaseStore,
    conn: &mut PgConnection,
    job_name: &str,
    shared: bool,
    at: PgInterval,
) -> Result<OffsetDateTime, StoreError> {
    let sql: &Arc<str> = if shared {
        &store.sql.claim_lock_shared
    } else {
        &store.sql.claim_lock
    };
    let locked = store
        .statement_at(sql, at)
        .bind(job_name)
        .fetch_one(conn)
        .await
        .map_err(backend("claim lock"))?;
    rows::instant(&locked, "store_now")
}

/// Admission of every key of `request` ([`machine::admit`]): takes the
/// job's claim lock; for a stored schedule's claim, reads the schedule's
/// current version (`schedule_version.sql`) and answers `None` when the
/// keys were planned under another ([`Steering::superseded`]), so that
/// nothing is claimed; then reads the pauses in force and, unless the policy
/// is allow_all (which weighs none), the live runs of the batch's scopes
/// (on a partitioned table, of the job), in a statement of its own, so that
/// its snapshot postdates the lock.
///
/// The lock is exclusive when live runs count: two claims of the job must
/// then each see the other's runs. A claim under allow_all takes it
/// shared: it only has to exclude the addition of a pause (which takes it
/// exclusively), not other claims, which then run side by side as they
/// did before steering.
async fn admit(
    store: &PgLeaseStore,
    conn: &mut PgConnection,
    request: &ClaimRequest<'_>,
    at: PgInterval,
) -> Result<Option<Vec<Admission>>, StoreError> {
    let err = backend("claim admission");
    let weighs_live = request.steering.overlap != OverlapPolicy::AllowAll;
    let now = lock_job(store, &mut *conn, request.job_name, !weighs_live, at).await?;
    if request.steering.schedule_version.is_some() {
        let current = schedules::current_version(store, &mut *conn, request.job_name).await?;
        if request.steering.superseded(current) {
            return Ok(None);
        }
    }
    let mut read = store
        .statement_at(&store.sql.claim_admission, at)
        .bind(request.job_name)
        .bind(weighs_live);
    if store.sql.admission_by_scope {
        // Each scope once.
        let mut scopes: Vec<(&str, &str)> = request
            .keys
            .iter()
            .map(|k| (k.scope.kind.as_str(), k.scope.id.as_str()))
            .collect();
        scopes.sort_unstable();
        scopes.dedup();
        let (kinds, ids): (Vec<&str>, Vec<&str>) = scopes.into_iter().unzip();
        read = read.bind(kinds).bind(ids);
    }
    let read = read.fetch_all(conn).await.map_err(err)?;
    let mut pauses = Vec::new();
    let mut live = Vec::new();
    for row in &read {
        if row.try_get("live").map_err(err)? {
            live.push(rows::live_run(row)?);
        } else {
            pauses.push(rows::control(row)?);
        }
    }
    Ok(Some(machine::admit(request, &pauses, &live, now)))
}
