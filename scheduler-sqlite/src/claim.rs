//! The batch claim ([`LeaseStore::claim`]):
//! one IMMEDIATE transaction however many keys it has.
//!
//! Per key, `claim_insert.sql` (`INSERT ... ON CONFLICT DO NOTHING`) and,
//! when the key exists, `claim_steal_log.sql`, which logs the attempt a
//! takeover is about to end, and `claim_reclaim.sql`, the one guarded
//! `UPDATE` whose `WHERE` is exactly [`machine::claim`]'s guards (the retry
//! rule or the takeover rule). Keys are claimed in the caller's order, so
//! duplicate keys within a batch see the first one's row, and only one of
//! them wins.
//!
//! [`LeaseStore::claim`]: scheduler_core::LeaseStore::claim
//! [`machine::claim`]: scheduler_core::machine::claim

use rusqlite::{named_params, OptionalExtension, Transaction};
use scheduler_core::machine::{Ending, FreshIds};
use scheduler_core::time::{later, to_micros};
use scheduler_core::{ClaimOutcome, ClaimRequest, Lease, PlanKey, StoreError};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::attempts::Ended;
use crate::codec::{micros, parse_uuid, uuid_text};
use crate::error::Failure;
use crate::statements::SQL;
use crate::store::SqliteLeaseStore;

/// Claims every key of `request` in one IMMEDIATE transaction.
pub(crate) async fn claim(
    store: &SqliteLeaseStore,
    request: &ClaimRequest<'_>,
) -> Result<Vec<ClaimOutcome>, StoreError> {
    request.refuse_unstorable()?;
    if request.keys.is_empty() {
        return Ok(Vec::new());
    }
    let batch = Batch {
        job: request.job_name.to_owned(),
        runner: request.runner_id.to_owned(),
        max_attempts: request.max_attempts,
        stale_timeout: request.stale_timeout,
        allow_stale_reentry: request.allow_stale_reentry,
        keys: request.keys.to_vec(),
    };
    store.write(move |tx, now| batch.run(tx, now)).await
}

/// A claim request, owned: it runs on the writer's thread.
struct Batch {
    job: String,
    runner: String,
    max_attempts: i32,
    stale_timeout: std::time::Duration,
    allow_stale_reentry: bool,
    keys: Vec<PlanKey>,
}

impl Batch {
    /// Claims each key in turn inside the caller's IMMEDIATE transaction,
    /// at store time `now` as read under the write lock.
    fn run(&self, tx: &Transaction<'_>, now: OffsetDateTime) -> Result<Vec<ClaimOutcome>, Failure> {
        let stale_after = later(now, self.stale_timeout);
        let (now_us, stale_us) = (micros(now), micros(stale_after));
        let mut insert = tx.prepare_cached(&SQL.claim_insert)?;
        let mut steal_log = tx.prepare_cached(&SQL.claim_steal_log)?;
        let mut reclaim = tx.prepare_cached(&SQL.claim_reclaim)?;
        let stolen = Ended::of(Ending::Steal);
        let mut outcomes = Vec::with_capacity(self.keys.len());
        for key in &self.keys {
            let plan_time = to_micros(key.plan_time);
            let plan_us = micros(plan_time);
            let ids = FreshIds::mint();
            let lease = |id, token, attempt, max_attempts| Lease {
                id,
                token,
                job_name: self.job.clone(),
                scope: key.scope.clone(),
                plan_time,
                attempt,
                max_attempts,
                started_at: now,
                stale_after,
            };
            let inserted = insert.execute(named_params! {
                ":id": uuid_text(ids.id),
                ":job": self.job,
                ":kind": key.scope.kind,
                ":scope_id": key.scope.id,
                ":plan_time": plan_us,
                ":max_attempts": self.max_attempts,
                ":runner": self.runner,
                ":token": uuid_text(ids.token),
                ":now": now_us,
                ":stale_after": stale_us,
            })?;
            if inserted == 1 {
                outcomes.push(ClaimOutcome::Won(lease(
                    ids.id,
                    ids.token,
                    1,
                    self.max_attempts,
                )));
                continue;
            }
            // The key exists. Should the takeover rule hold, the attempt it
            // ends is logged first, from the row as it still is.
            steal_log.execute(named_params! {
                ":job": self.job,
                ":kind": key.scope.kind,
                ":scope_id": key.scope.id,
                ":plan_time": plan_us,
                ":now": now_us,
                ":allow_stale_reentry": self.allow_stale_reentry,
                ":outcome": stolen.outcome,
                ":error_code": stolen.error_code,
                ":error_msg": stolen.error_msg,
                ":duration_ms": stolen.duration_ms,
            })?;
            // A retry takes the minted token, a takeover another fresh one
            // (see claim_reclaim.sql), so the token the row took says which
            // guard held.
            let steal_token = distinct_token(ids.token);
            let reclaimed = reclaim
                .query_row(
                    named_params! {
                        ":job": self.job,
                        ":kind": key.scope.kind,
                        ":scope_id": key.scope.id,
                        ":plan_time": plan_us,
                        ":runner": self.runner,
                        ":retry_token": uuid_text(ids.token),
                        ":steal_token": uuid_text(steal_token),
                        ":now": now_us,
                        ":stale_after": stale_us,
                        ":allow_stale_reentry": self.allow_stale_reentry,
                    },
                    |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, i32>(1)?,
                            row.get::<_, i32>(2)?,
                            row.get::<_, String>(3)?,
                        ))
                    },
                )
                .optional()?;
            outcomes.push(match reclaimed {
                None => ClaimOutcome::Conflicted,
                Some((id, attempt, max, token)) => {
                    let (id, token) = (parse_uuid(&id)?, parse_uuid(&token)?);
                    let taken = lease(id, token, attempt, max);
                    if token == ids.token {
                        ClaimOutcome::Retried(taken)
                    } else {
                        ClaimOutcome::Stolen(taken)
                    }
                }
            });
        }
        Ok(outcomes)
    }
}

/// A fresh lease token other than `token`, so the two can never be
/// mistaken for each other (v4 tokens collide with a chance of 2^-122;
/// this makes it none).
fn distinct_token(token: Uuid) -> Uuid {
    loop {
        // As `FreshIds::mint` mints tokens: v4, from a cryptographic source.
        let other = Uuid::new_v4();
        if other != token {
            return other;
        }
    }
}
