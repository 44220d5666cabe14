//! The SQL statements held to the pure rules of `scheduler_core::machine`,
//! field by field, over seeded random sequences of claims (with duplicate
//! keys), heartbeats and terminal writes (one by one and in batches) with
//! current and stale tokens, sweeps, reads and jumps of store time.
//!
//! PostgreSQL decides each write at one store instant `n` that the test
//! cannot choose. For a row that changed, `n` is its new `updated_at`, and
//! the pure function applied at `n` (with the ids the store minted) must give
//! exactly the stored row. For a row that did not change, the pure function
//! must refuse at the store time read just before the call: every guard only
//! ever opens as time passes, so refusing at `n` implies refusing earlier.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use scheduler_core::machine::{self, FreshIds};
use scheduler_core::plan::floor;
use scheduler_core::{
    ClaimOutcome, ClaimRequest, ErrorCode, Execution, ExecutionAudit, ExecutionFilter, Finish,
    Lease, LeaseStore, LeaseStoreExt, PlanKey, RetryRead, Scope, ScopeSummary, StoreError,
    TimeControl,
};
use scheduler_postgres::{PgLeaseStore, TimeOffset};
use time::OffsetDateTime;

const STALE: Duration = Duration::from_secs(60);

type Key = (Scope, OffsetDateTime);

/// xorshift64*: reproducible sequences without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

struct Run<'a> {
    store: &'a PgLeaseStore,
    offset: &'a TimeOffset,
    job: String,
    keys: Vec<PlanKey>,
    leases: Vec<Lease>,
    context: String,
}

impl Run<'_> {
    async fn rows(&self) -> HashMap<Key, Execution> {
        let filter = ExecutionFilter {
            job_name: Some(self.job.clone()),
            ..Default::default()
        };
        let rows = self.store.list_executions(&filter).await.unwrap();
        rows.into_iter()
            .map(|r| ((r.scope.clone(), r.plan_time), r))
            .collect()
    }

    async fn now(&self) -> OffsetDateTime {
        self.store.now().await.unwrap()
    }

    /// Asserts the rows other than `touched` did not change.
    fn untouched(
        &self,
        before: &HashMap<Key, Execution>,
        after: &HashMap<Key, Execution>,
        touched: &[Key],
    ) {
        for (key, row) in after {
            if !touched.contains(key) {
                assert_eq!(
                    before.get(key),
                    Some(row),
                    "{}: an untouched row changed",
                    self.context
                );
            }
        }
        assert!(
            before.keys().all(|k| after.contains_key(k)),
            "{}: a row vanished",
            self.context
        );
    }

    async fn claim(&mut self, rng: &mut Rng) {
        let n = 1 + rng.below(5) as usize;
        let keys: Vec<PlanKey> = (0..n)
            .map(|_| self.keys[rng.below(self.keys.len() as u64) as usize].clone())
            .collect();
        let runner = ["r1", "r2"][rng.below(2) as usize];
        let request = ClaimRequest {
            finishing: &[],
            steering: scheduler_core::model::Steering::NONE,
            job_name: &self.job,
            runner_id: runner,
            // Copied into fresh rows only: budgets of 1 and 2 reach
            // exhausted rows within a short walk.
            max_attempts: 1 + rng.below(3) as i32,
            stale_timeout: STALE,
            allow_stale_reentry: rng.below(2) == 0,
            keys: &keys,
        };
        let before = self.rows().await;
        let t0 = self.now().await;
        let outcomes = self.store.claim(&request).await.unwrap();
        let t1 = self.now().await;
        let after = self.rows().await;
        let ctx = &self.context;
        assert_eq!(outcomes.len(), keys.len(), "{ctx}");
        let mut seen: Vec<Key> = Vec::new();
        for (key, outcome) in keys.iter().zip(&outcomes) {
            let k = (key.scope.clone(), key.plan_time);
            if seen.contains(&k) {
                assert_eq!(
                    *outcome,
                    ClaimOutcome::Conflicted,
                    "{ctx}: a repeated key won twice"
                );
                continue;
            }
            seen.push(k.clone());
            let (old, new) = (before.get(&k), after.get(&k));
            match new.filter(|new| Some(*new) != old) {
                Some(new) => {
                    let at = new.updated_at;
                    assert!(
                        t0 <= at && at <= t1,
                        "{ctx}: decided at {at}, outside [{t0}, {t1}]"
                    );
                    let ids = FreshIds {
                        id: new.id,
                        token: new.lease_token,
                    };
                    let expected = machine::claim(old, &request, key, at, ids);
                    assert_eq!(
                        expected.get(),
                        Some(new),
                        "{ctx}: claimed row differs from the rules"
                    );
                    assert_eq!(expected.to_lease(), *outcome, "{ctx}: outcome differs");
                    self.leases.push(outcome.lease().unwrap().clone());
                }
                None => {
                    assert_eq!(
                        *outcome,
                        ClaimOutcome::Conflicted,
                        "{ctx}: a lease without a change"
                    );
                    let refused = machine::claim(old, &request, key, t0, FreshIds::mint());
                    assert_eq!(
                        refused,
                        ClaimOutcome::Conflicted,
                        "{ctx}: the rules would have claimed {k:?}"
                    );
                }
            }
        }
        self.untouched(&before, &after, &seen);
    }

    fn pick_lease(&self, rng: &mut Rng) -> Option<Lease> {
        (!self.leases.is_empty())
            .then(|| self.leases[rng.below(self.leases.len() as u64) as usize].clone())
    }

    async fn heartbeat(&mut self, rng: &mut Rng) {
        let Some(lease) = self.pick_lease(rng) else {
            return;
        };
        let k = (lease.scope.clone(), lease.plan_time);
        let before = self.rows().await;
        let t0 = self.now().await;
        let result = self.store.heartbeat(&lease, STALE).await;
        let after = self.rows().await;
        let (old, new) = (&before[&k], &after[&k]);
        let ctx = &self.context;
        match result {
            Ok(stale_after) => {
                let expected = machine::heartbeat(old, lease.token, new.updated_at, STALE);
                assert_eq!(
                    expected.ok().as_ref(),
                    Some(new),
                    "{ctx}: heartbeat differs from the rules"
                );
                assert_eq!(Some(stale_after), new.stale_after, "{ctx}");
            }
            Err(StoreError::LeaseLost { id }) => {
                assert_eq!(
                    (id, old),
                    (lease.id, new),
                    "{ctx}: a refused heartbeat changed the row"
                );
                assert!(
                    machine::heartbeat(old, lease.token, t0, STALE).is_err(),
                    "{ctx}: wrongly refused"
                );
            }
            Err(e) => panic!("{ctx}: {e}"),
        }
        self.untouched(&before, &after, &[k]);
    }

    async fn finish(&mut self, rng: &mut Rng) {
        let Some(lease) = self.pick_lease(rng) else {
            return;
        };
        let finish = random_finish(rng);
        let k = (lease.scope.clone(), lease.plan_time);
        let before = self.rows().await;
        let t0 = self.now().await;
        let result = self.store.finish(&lease, &finish).await;
        let after = self.rows().await;
        let (old, new) = (&before[&k], &after[&k]);
        let ctx = &self.context;
        match result {
            Ok(()) => {
                let expected = machine::finish(old, lease.token, new.updated_at, &finish);
                assert_eq!(
                    expected.ok().as_ref(),
                    Some(new),
                    "{ctx}: terminal write differs from the rules"
                );
            }
            Err(StoreError::LeaseLost { .. }) => {
                assert_eq!(old, new, "{ctx}: a refused terminal write changed the row");
                assert!(
                    machine::finish(old, lease.token, t0, &finish).is_err(),
                    "{ctx}: wrongly refused"
                );
            }
            Err(e) => panic!("{ctx}: {e}"),
        }
        self.untouched(&before, &after, &[k]);
    }

    /// A batch of terminal writes, with repeated leases and stale tokens:
    /// one statement, so one store time `n` for every row it changed, and
    /// each item's result and the rows exactly what `machine::finish`
    /// applied item by item at `n` gives.
    async fn finish_many(&mut self, rng: &mut Rng) {
        if self.leases.is_empty() {
            return;
        }
        let n = 1 + rng.below(6) as usize;
        let batch: Vec<(Lease, Finish)> = (0..n)
            .map(|_| (self.pick_lease(rng).unwrap(), random_finish(rng)))
            .collect();
        let items: Vec<(&Lease, &Finish)> = batch.iter().map(|(l, f)| (l, f)).collect();
        let before = self.rows().await;
        let results = self.store.finish_many(&items).await;
        let after = self.rows().await;
        let ctx = &self.context;
        assert_eq!(results.len(), n, "{ctx}: one result per item");
        let stamps: std::collections::BTreeSet<OffsetDateTime> = after
            .iter()
            .filter(|(k, row)| before.get(*k) != Some(*row))
            .map(|(_, row)| row.updated_at)
            .collect();
        assert!(stamps.len() <= 1, "{ctx}: several store times {stamps:?}");
        // The guard does not depend on time: with nothing changed, every
        // item must be refused at any instant.
        let at = stamps
            .first()
            .copied()
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let mut expected = before.clone();
        let mut touched = Vec::new();
        for ((lease, finish), result) in batch.iter().zip(&results) {
            let k = (lease.scope.clone(), lease.plan_time);
            match machine::finish(&expected[&k], lease.token, at, finish) {
                Ok(new) => {
                    assert!(
                        result.is_ok(),
                        "{ctx}: refused {result:?}, the rules accept"
                    );
                    expected.insert(k.clone(), new);
                }
                Err(_) => assert!(
                    matches!(result, Err(StoreError::LeaseLost { id }) if *id == lease.id),
                    "{ctx}: {result:?}, the rules refuse"
                ),
            }
            touched.push(k);
        }
        for k in &touched {
            assert_eq!(
                after.get(k),
                expected.get(k),
                "{ctx}: batched terminal write differs from the rules"
            );
        }
        self.untouched(&before, &after, &touched);
    }

    /// An operator's retry of one of the rows (whatever its state), or of
    /// an id no row has.
    async fn operator_retry(&mut self, rng: &mut Rng) {
        let before = self.rows().await;
        let mut known: Vec<&Execution> = before.values().collect();
        known.sort_by_key(|r| r.id);
        let pick = rng.below(known.len() as u64 + 1) as usize;
        let ctx = &self.context;
        let Some(old) = known.get(pick).copied() else {
            let unknown = uuid::Uuid::now_v7();
            assert!(
                matches!(self.store.retry_execution(unknown).await,
                    Err(StoreError::NotFound { id }) if id == unknown),
                "{ctx}: an unknown id is not found"
            );
            return;
        };
        let k = (old.scope.clone(), old.plan_time);
        let t0 = self.now().await;
        let result = self.store.retry_execution(old.id).await;
        let after = self.rows().await;
        let new = &after[&k];
        match result {
            Ok(returned) => {
                assert_eq!(&returned, new, "{ctx}: the returned row is the stored one");
                assert_eq!(
                    machine::operator_retry(old, new.updated_at).as_ref(),
                    Ok(new),
                    "{ctx}: operator retry differs from the rules"
                );
            }
            Err(StoreError::Conflict(why)) => {
                assert_eq!(old, new, "{ctx}: a refused operator retry changed the row");
                assert_eq!(
                    machine::operator_retry(old, t0),
                    Err(why.as_str()),
                    "{ctx}: refused for another reason"
                );
            }
            Err(e) => panic!("{ctx}: {e}"),
        }
        self.untouched(&before, &after, &[k]);
    }

    async fn sweep(&mut self, rng: &mut Rng) {
        let before = self.rows().await;
        let t0 = self.now().await;
        let reentrant = rng.below(2) == 0;
        let closed = self.store.sweep_stale(&self.job, reentrant).await.unwrap();
        let after = self.rows().await;
        let ctx = &self.context;
        let mut changed = 0;
        for (k, old) in &before {
            let new = &after[k];
            if new == old {
                assert_eq!(
                    machine::sweep(old, t0, reentrant),
                    None,
                    "{ctx}: the rules would have swept {k:?}"
                );
            } else {
                changed += 1;
                assert_eq!(
                    machine::sweep(old, new.updated_at, reentrant).as_ref(),
                    Some(new),
                    "{ctx}: sweep differs"
                );
            }
        }
        assert_eq!(closed, changed, "{ctx}: sweep count");
    }

    /// The reads against the rules applied to the rows as they are.
    async fn reads(&self, rng: &mut Rng) {
        let ctx = &self.context;
        let rows = self.rows().await;
        let scopes = [
            self.keys[0].scope.clone(),
            Scope::new("t", "none"),
            self.keys[3].scope.clone(),
        ];
        let views = self
            .store
            .latest_executions(&self.job, &scopes)
            .await
            .unwrap();
        for (scope, view) in scopes.iter().zip(&views) {
            let newest = rows
                .values()
                .filter(|r| &r.scope == scope)
                .max_by_key(|r| r.plan_time);
            assert_eq!(
                view.as_ref(),
                newest.map(Execution::latest_view).as_ref(),
                "{ctx}: latest view"
            );
        }
        let reentrant = rng.below(2) == 0;
        let since = self.keys[0].plan_time - Duration::from_secs(3600);
        let t0 = self.now().await;
        let read = RetryRead {
            job_name: &self.job,
            since,
            allow_stale_reentry: reentrant,
            per_scope_limit: 10,
        };
        let due = self.store.retry_due(&read).await.unwrap();
        let t1 = self.now().await;
        let expected_at = |now| machine::retry_due(rows.values(), &read, now);
        let (early, late) = (expected_at(t0), expected_at(t1));
        if early == late {
            assert_eq!(due, early, "{ctx}: retry_due");
        }

        let t0 = self.now().await;
        let summaries = self.store.scope_summaries(Some(&self.job)).await.unwrap();
        let t1 = self.now().await;
        let expected_at = |now| {
            let mut scopes: Vec<&Scope> = rows.values().map(|r| &r.scope).collect();
            scopes.sort();
            scopes.dedup();
            scopes
                .into_iter()
                .map(|scope| {
                    let of_scope: Vec<Execution> = rows
                        .values()
                        .filter(|r| &r.scope == scope)
                        .cloned()
                        .collect();
                    ScopeSummary::of_rows(&of_scope, now).unwrap()
                })
                .collect::<Vec<_>>()
        };
        let (early, late) = (expected_at(t0), expected_at(t1));
        if early == late {
            assert_eq!(summaries, early, "{ctx}: scope summaries");
        } else {
            assert_eq!(summaries.len(), early.len(), "{ctx}: scope summaries");
        }
    }
}

/// A success or a failure, with attempts left or not depending on the row.
fn random_finish(rng: &mut Rng) -> Finish {
    match rng.below(3) {
        0 => Finish::success(
            Duration::from_millis(rng.below(5000)),
            7,
            serde_json::Map::from_iter([("n".to_owned(), serde_json::Value::from(rng.below(100)))]),
        ),
        1 => Finish::failure(
            Duration::from_millis(3),
            ErrorCode::HandlerError,
            "boom",
            Duration::ZERO,
        ),
        _ => Finish::failure(
            Duration::ZERO,
            ErrorCode::RunTimeout,
            "slow",
            Duration::from_secs(30),
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_transitions_match_the_pure_rules() {
    let Some(db) = test_db_store().await else {
        return;
    };
    let (db, store, offset) = db;
    let base = floor(store.now().await.unwrap(), Duration::from_secs(60));
    for seed in 1..=6u64 {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed.wrapping_mul(0x1234_5678_9abc));
        let keys = [("a", 0u32), ("a", 1), ("b", 0), ("b", 1)]
            .map(|(id, back)| PlanKey {
                scope: Scope::new("t", id),
                plan_time: base - Duration::from_secs(60) * back,
            })
            .to_vec();
        let mut run = Run {
            store: &store,
            offset: &offset,
            job: format!("differential_{seed}"),
            keys,
            leases: Vec::new(),
            context: String::new(),
        };
        for step in 0..80 {
            let op = rng.below(12);
            run.context = format!("seed {seed} step {step} op {op}");
            match op {
                0..=2 => run.claim(&mut rng).await,
                3 => run.heartbeat(&mut rng).await,
                4..=5 => run.finish(&mut rng).await,
                6 => run.sweep(&mut rng).await,
                7 => run.reads(&mut rng).await,
                8 => run.operator_retry(&mut rng).await,
                9 => run.finish_many(&mut rng).await,
                _ => {
                    let jumps = [1, 29, 31, 61, 200];
                    run.offset
                        .advance(Duration::from_secs(jumps[rng.below(5) as usize]));
                }
            }
        }
        run.reads(&mut rng).await;
    }
    drop(store);
    db.drop_schema().await;
}

async fn test_db_store() -> Option<(common::TestDb, PgLeaseStore, TimeOffset)> {
    let db = common::test_db().await?;
    let offset = TimeOffset::new();
    let store = db
        .store("differential")
        .await
        .with_time_offset(offset.clone());
    Some((db, store, offset))
}
