//! The batch claim ([`LeaseStore::claim`]):
//! one IMMEDIATE transaction however many keys it has.
//!
//! First, for a stored schedule's keys only, the schedule's current version
//! (`schedule_version.sql`): keys planned under a version that is no longer
//! current are all [`ClaimOutcome::Superseded`], and nothing is written.
//!
//! Then admission (`admission.rs`): one read of the job's pauses in force
//! and the live runs of the batch's scopes, and [`machine::admit`]'s answer
//! per key. A key that is paused or must wait changes nothing; a skipped
//! one gets the row of a skipped plan; the others are claimed as follows.
//!
//! Per key, `claim_insert.sql` (`INSERT ... ON CONFLICT DO NOTHING`) and,
//! when the key exists, `claim_steal_log.sql`, which logs the attempt a
//! takeover is about to end, and `claim_reclaim.sql`, the one guarded
//! `UPDATE` whose `WHERE` is exactly [`machine::claim`]'s guards (the retry
//! rule or the takeover rule). Keys are claimed in the caller's order, so
//! duplicate keys within a batch see the first one's row, and only one of
//! them wins. A key admitted to replace live runs (`cancel_other`) ends them
//! once it holds its lease.
//!
//! [`LeaseStore::claim`]: scheduler_core::LeaseStore::claim
//! [`machine::admit`]: scheduler_core::machine::admit
//! [`machine::claim`]: scheduler_core::machine::claim

use rusqlite::{named_params, CachedStatement, OptionalExtension, Transaction};
use scheduler_core::machine::{Admission, Ending, FreshIds};
use scheduler_core::model::{LeaseRef, Steering};
use scheduler_core::time::{later, to_micros};
use scheduler_core::{ClaimOutcome, ClaimRequest, Lease, PlanKey, StoreError};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::attempts::Ended;
use crate::codec::{micros, parse_uuid, uuid_text};
use crate::error::Failure;
use crate::statements::SQL;
use crate::store::SqliteLeaseStore;
use crate::{admission, schedules};

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
        job: request.job_name.into(),
        runner: request.runner_id.to_owned(),
        max_attempts: request.max_attempts,
        stale_timeout: request.stale_timeout,
        allow_stale_reentry: request.allow_stale_reentry,
        keys: request.keys.to_vec(),
        steering: request.steering,
        finishing: request.finishing.to_vec(),
        scopes: admission::scopes_json(request.keys)?,
    };
    store.write(move |tx, now| batch.run(tx, now)).await
}

/// A claim request, owned: it runs on the writer's thread.
struct Batch {
    job: scheduler_core::model::Name,
    runner: String,
    max_attempts: i32,
    stale_timeout: std::time::Duration,
    allow_stale_reentry: bool,
    keys: Vec<PlanKey>,
    steering: Steering,
    finishing: Vec<LeaseRef>,
    /// The batch's scopes, as `claim_admission.sql` takes them.
    scopes: String,
}

/// What the lease rules of every key of a batch use: the statements,
/// prepared once per batch, and the record a takeover logs.
struct Prepared<'tx> {
    insert: CachedStatement<'tx>,
    steal_log: CachedStatement<'tx>,
    reclaim: CachedStatement<'tx>,
    stolen: Ended,
}

impl Batch {
    /// The request again, borrowed from the batch, as the machine takes it.
    fn request(&self) -> ClaimRequest<'_> {
        ClaimRequest {
            finishing: &self.finishing,
            job_name: &self.job,
            runner_id: &self.runner,
            max_attempts: self.max_attempts,
            stale_timeout: self.stale_timeout,
            allow_stale_reentry: self.allow_stale_reentry,
            keys: &self.keys,
            steering: self.steering,
        }
    }

    /// Admits, then claims, each key in turn inside the caller's IMMEDIATE
    /// transaction, at store time `now` as read under the write lock.
    fn run(&self, tx: &Transaction<'_>, now: OffsetDateTime) -> Result<Vec<ClaimOutcome>, Failure> {
        let request = self.request();
        // A stored schedule's keys, planned under a version that is no
        // longer current: nothing is claimed. A compiled-in job's claim
        // (no version) costs no read for it.
        if self.steering.schedule_version.is_some() {
            let current = schedules::current_version(tx, &self.job)?;
            if self.steering.superseded(current) {
                return Ok(vec![ClaimOutcome::Superseded; self.keys.len()]);
            }
        }
        let admissions = admission::admit(tx, &request, &self.scopes, now)?;
        let mut prepared = Prepared {
            insert: tx.prepare_cached(&SQL.claim_insert)?,
            steal_log: tx.prepare_cached(&SQL.claim_steal_log)?,
            reclaim: tx.prepare_cached(&SQL.claim_reclaim)?,
            stolen: Ended::of(Ending::Steal),
        };
        let mut outcomes = Vec::with_capacity(self.keys.len());
        for (key, admitted) in self.keys.iter().zip(admissions) {
            let outcome = match &admitted {
                Admission::Paused => ClaimOutcome::Paused,
                Admission::Busy => ClaimOutcome::Busy,
                Admission::Skip => admission::skip(tx, &request, key, now)?,
                Admission::Claim | Admission::Replace(_) => {
                    self.claim_key(&mut prepared, key, now)?
                }
            };
            if let (Admission::Replace(ids), Some(_)) = (&admitted, outcome.lease()) {
                for &id in ids {
                    admission::cancel(tx, id, now)?;
                }
            }
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    /// The lease rules for one key ([`machine::claim`]): a fresh row, a
    /// retry, a takeover, or a conflict.
    ///
    /// [`machine::claim`]: scheduler_core::machine::claim
    fn claim_key(
        &self,
        prepared: &mut Prepared<'_>,
        key: &PlanKey,
        now: OffsetDateTime,
    ) -> Result<ClaimOutcome, Failure> {
        let stale_after = later(now, self.stale_timeout);
        let (now_us, stale_us) = (micros(now), micros(stale_after));
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
        let inserted = prepared.insert.execute(named_params! {
            ":id": uuid_text(ids.id),
            ":job": self.job.as_str(),
            ":kind": key.scope.kind.as_str(),
            ":scope_id": key.scope.id.as_str(),
            ":plan_time": plan_us,
            ":max_attempts": self.max_attempts,
            ":runner": self.runner,
            ":token": uuid_text(ids.token),
            ":now": now_us,
            ":stale_after": stale_us,
            ":origin": self.steering.origin.column(),
            ":control_id": self.steering.control_id.map(uuid_text),
        })?;
        if inserted == 1 {
            return Ok(ClaimOutcome::Won(lease(
                ids.id,
                ids.token,
                1,
                self.max_attempts,
            )));
        }
        // The key exists. Should the takeover rule hold, the attempt it
        // ends is logged first, from the row as it still is.
        let stolen = &prepared.stolen;
        prepared.steal_log.execute(named_params! {
            ":job": self.job.as_str(),
            ":kind": key.scope.kind.as_str(),
            ":scope_id": key.scope.id.as_str(),
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
        let reclaimed = prepared
            .reclaim
            .query_row(
                named_params! {
                    ":job": self.job.as_str(),
                    ":kind": key.scope.kind.as_str(),
                    ":scope_id": key.scope.id.as_str(),
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
        Ok(match reclaimed {
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
        })
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
