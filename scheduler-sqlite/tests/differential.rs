//! Random operation sequences give identical results on the memory store
//! (the reference, which applies `machine` directly) and on SQLite: every
//! outcome, every row field by field (ids and tokens aside, which are
//! random by design), and every scope summary.

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use scheduler_core::{
    ClaimOutcome, ClaimRequest, ErrorCode, Execution, ExecutionFilter, Finish, Lease, LeaseStore,
    ManualClock, PlanKey, Scope, StoreError, TimeControl,
};
use scheduler_memory::MemoryLeaseStore;
use scheduler_sqlite::SqliteOptions;
use time::macros::datetime;
use time::OffsetDateTime;
use uuid::Uuid;

const JOB: &str = "differential";
const T0: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

#[derive(Debug, Clone)]
enum Op {
    Claim {
        keys: Vec<(u8, u8)>,
        runner: u8,
        max_attempts: i32,
        stale_secs: u64,
        reentrant: bool,
    },
    Heartbeat {
        lease: usize,
        stale_secs: u64,
    },
    Succeed {
        lease: usize,
        rows: i64,
    },
    Fail {
        lease: usize,
        retry_secs: u64,
    },
    /// One `finish_many` batch: per item, a lease and a success (`None`)
    /// or a failure retried after that many seconds. The memory store's is
    /// the trait's default, `finish` once per item: the reference.
    FinishMany {
        items: Vec<(usize, Option<u64>)>,
    },
    Sweep,
    /// An operator's retry of the row a lease was for (which may since
    /// have finished, been stolen, or been pruned).
    OperatorRetry {
        lease: usize,
    },
    /// A prune with the cutoff `back_secs` before store time, plus half a
    /// microsecond when `sub_micro` (a cutoff between stored instants).
    Prune {
        back_secs: u64,
        sub_micro: bool,
        limit: usize,
        dry_run: bool,
    },
    Advance {
        secs: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (
            prop::collection::vec((0u8..3, 0u8..3), 1..4),
            0u8..3,
            1i32..4,
            prop_oneof![Just(30u64), Just(60)],
            any::<bool>(),
        )
            .prop_map(|(keys, runner, max_attempts, stale_secs, reentrant)| Op::Claim {
                keys,
                runner,
                max_attempts,
                stale_secs,
                reentrant,
            }),
        1 => (any::<usize>(), prop_oneof![Just(30u64), Just(60)])
            .prop_map(|(lease, stale_secs)| Op::Heartbeat { lease, stale_secs }),
        1 => (any::<usize>(), 0i64..100).prop_map(|(lease, rows)| Op::Succeed { lease, rows }),
        2 => (any::<usize>(), prop_oneof![Just(0u64), Just(20), Just(90)])
            .prop_map(|(lease, retry_secs)| Op::Fail { lease, retry_secs }),
        1 => prop::collection::vec(
            (any::<usize>(), prop::option::of(prop_oneof![Just(0u64), Just(20), Just(90)])),
            0..6,
        )
        .prop_map(|items| Op::FinishMany { items }),
        1 => Just(Op::Sweep),
        1 => any::<usize>().prop_map(|lease| Op::OperatorRetry { lease }),
        1 => (
            prop_oneof![Just(0u64), Just(30), Just(120)],
            any::<bool>(),
            0usize..4,
            any::<bool>(),
        )
            .prop_map(|(back_secs, sub_micro, limit, dry_run)| Op::Prune {
                back_secs,
                sub_micro,
                limit,
                dry_run,
            }),
        2 => prop_oneof![Just(1u64), Just(20), Just(30), Just(60), Just(200)]
            .prop_map(|secs| Op::Advance { secs }),
    ]
}

/// What a call returned, without the random parts.
#[derive(Debug, PartialEq)]
enum Seen {
    Claimed(Vec<String>),
    Heartbeat(Result<OffsetDateTime, String>),
    Finished(Result<(), String>),
    FinishedMany(Vec<Result<(), String>>),
    Swept(u64),
    Repaired(Result<Box<Execution>, String>),
    Pruned(u64),
    Nothing,
}

fn kind(outcome: &ClaimOutcome) -> String {
    match outcome {
        ClaimOutcome::Won(l) => format!(
            "won {} {} a{}/{}",
            l.scope, l.plan_time, l.attempt, l.max_attempts
        ),
        ClaimOutcome::Retried(l) => format!(
            "retried {} {} a{}/{}",
            l.scope, l.plan_time, l.attempt, l.max_attempts
        ),
        ClaimOutcome::Stolen(l) => format!(
            "stolen {} {} a{}/{}",
            l.scope, l.plan_time, l.attempt, l.max_attempts
        ),
        ClaimOutcome::Conflicted => "conflicted".to_owned(),
    }
}

fn err_kind(e: &StoreError) -> String {
    match e {
        StoreError::LeaseLost { .. } => "lease lost".to_owned(),
        StoreError::NotFound { .. } => "not found".to_owned(),
        StoreError::Conflict(why) => format!("conflict: {why}"),
        other => panic!("unexpected store error: {other}"),
    }
}

/// `row` with its random id and token blanked.
fn blank(row: Execution) -> Execution {
    Execution {
        id: Uuid::nil(),
        lease_token: Uuid::nil(),
        ..row
    }
}

/// One store under test and the leases it handed out, in order.
struct Side {
    store: Arc<dyn LeaseStore>,
    leases: Vec<Lease>,
}

impl Side {
    async fn apply(&mut self, op: &Op) -> Seen {
        let pick = |i: usize, leases: &[Lease]| {
            (!leases.is_empty()).then(|| leases[i % leases.len()].clone())
        };
        match op {
            Op::Claim {
                keys,
                runner,
                max_attempts,
                stale_secs,
                reentrant,
            } => {
                let keys: Vec<PlanKey> = keys
                    .iter()
                    .map(|&(s, p)| PlanKey {
                        scope: Scope::new("tenant", format!("t{s}")),
                        plan_time: T0 + Duration::from_secs(60 * u64::from(p)),
                    })
                    .collect();
                let runner = format!("runner-{runner}");
                let request = ClaimRequest {
                    job_name: JOB,
                    runner_id: &runner,
                    max_attempts: *max_attempts,
                    stale_timeout: Duration::from_secs(*stale_secs),
                    allow_stale_reentry: *reentrant,
                    keys: &keys,
                };
                let outcomes = self.store.claim(&request).await.expect("claim");
                self.leases
                    .extend(outcomes.iter().filter_map(|o| o.lease().cloned()));
                Seen::Claimed(outcomes.iter().map(kind).collect())
            }
            Op::Heartbeat { lease, stale_secs } => match pick(*lease, &self.leases) {
                Some(l) => Seen::Heartbeat(
                    self.store
                        .heartbeat(&l, Duration::from_secs(*stale_secs))
                        .await
                        .map_err(|e| err_kind(&e)),
                ),
                None => Seen::Nothing,
            },
            Op::Succeed { lease, rows } => match pick(*lease, &self.leases) {
                Some(l) => {
                    let mut result = serde_json::Map::new();
                    result.insert("rows".into(), (*rows).into());
                    let done = Finish::success(Duration::from_millis(7), *rows, result);
                    Seen::Finished(self.store.finish(&l, &done).await.map_err(|e| err_kind(&e)))
                }
                None => Seen::Nothing,
            },
            Op::Fail { lease, retry_secs } => match pick(*lease, &self.leases) {
                Some(l) => {
                    let failed = Finish::failure(
                        Duration::from_millis(9),
                        ErrorCode::HandlerError,
                        "boom",
                        Duration::from_secs(*retry_secs),
                    );
                    Seen::Finished(
                        self.store
                            .finish(&l, &failed)
                            .await
                            .map_err(|e| err_kind(&e)),
                    )
                }
                None => Seen::Nothing,
            },
            Op::FinishMany { items } => {
                if self.leases.is_empty() {
                    return Seen::Nothing;
                }
                let batch: Vec<(Lease, Finish)> = items
                    .iter()
                    .map(|&(i, retry_secs)| {
                        let lease = self.leases[i % self.leases.len()].clone();
                        let finish = match retry_secs {
                            None => {
                                Finish::success(Duration::from_millis(5), 3, Default::default())
                            }
                            Some(secs) => Finish::failure(
                                Duration::from_millis(6),
                                ErrorCode::HandlerError,
                                "batched boom",
                                Duration::from_secs(secs),
                            ),
                        };
                        (lease, finish)
                    })
                    .collect();
                let refs: Vec<(&Lease, &Finish)> = batch.iter().map(|(l, f)| (l, f)).collect();
                let results = self.store.finish_many(&refs).await;
                assert_eq!(results.len(), batch.len(), "one result per item");
                Seen::FinishedMany(
                    results
                        .iter()
                        .zip(&batch)
                        .map(|(r, (lease, _))| {
                            r.as_ref().map(|_| ()).map_err(|e| {
                                if let StoreError::LeaseLost { id } = e {
                                    assert_eq!(*id, lease.id, "the item's own execution");
                                }
                                err_kind(e)
                            })
                        })
                        .collect(),
                )
            }
            Op::Sweep => Seen::Swept(self.store.sweep_stale(JOB).await.expect("sweep")),
            Op::OperatorRetry { lease } => match pick(*lease, &self.leases) {
                Some(l) => Seen::Repaired(
                    self.store
                        .retry_execution(l.id)
                        .await
                        .map(|row| Box::new(blank(row)))
                        .map_err(|e| err_kind(&e)),
                ),
                None => Seen::Nothing,
            },
            Op::Prune {
                back_secs,
                sub_micro,
                limit,
                dry_run,
            } => {
                let now = self.store.now().await.expect("now");
                let mut cutoff = now - Duration::from_secs(*back_secs);
                if *sub_micro {
                    cutoff += Duration::from_nanos(500);
                }
                Seen::Pruned(
                    self.store
                        .prune_finished(cutoff, *limit, *dry_run)
                        .await
                        .expect("prune"),
                )
            }
            Op::Advance { .. } => Seen::Nothing,
        }
    }

    /// Every row, in key order, with the random id and token blanked.
    async fn rows(&self) -> Vec<Execution> {
        let filter = ExecutionFilter {
            job_name: Some(JOB.into()),
            ..Default::default()
        };
        let mut rows: Vec<Execution> = self
            .store
            .list_executions(&filter)
            .await
            .expect("list")
            .into_iter()
            .map(blank)
            .collect();
        rows.sort_by(|a, b| (&a.scope, a.plan_time).cmp(&(&b.scope, b.plan_time)));
        rows
    }
}

async fn run(ops: Vec<Op>) {
    let clock = ManualClock::new(T0 + Duration::from_secs(30));
    let memory = MemoryLeaseStore::with_clock(Arc::new(clock.clone()));
    let sqlite = SqliteOptions::memory()
        .clock(Arc::new(clock.clone()))
        .open()
        .await
        .expect("open");
    let mut sides = [
        Side {
            store: Arc::new(memory),
            leases: Vec::new(),
        },
        Side {
            store: Arc::new(sqlite),
            leases: Vec::new(),
        },
    ];
    for (step, op) in ops.iter().enumerate() {
        if let Op::Advance { secs } = op {
            clock.advance(Duration::from_secs(*secs));
        }
        let expected = sides[0].apply(op).await;
        let got = sides[1].apply(op).await;
        assert_eq!(got, expected, "step {step}: {op:?}");
        assert_eq!(
            sides[1].rows().await,
            sides[0].rows().await,
            "rows after step {step}: {op:?}"
        );
        let summaries = sides[0].store.scope_summaries(Some(JOB)).await.unwrap();
        assert_eq!(
            sides[1].store.scope_summaries(Some(JOB)).await.unwrap(),
            summaries,
            "scope summaries after step {step}: {op:?}"
        );
        assert_eq!(
            sides[1].store.scope_summaries(None).await.unwrap(),
            summaries,
            "scope summaries of every job after step {step}: {op:?}"
        );
    }
    let scopes: Vec<Scope> = (0..4)
        .map(|s| Scope::new("tenant", format!("t{s}")))
        .collect();
    for allow in [false, true] {
        assert_eq!(
            sides[1].store.retry_due(JOB, T0, allow, 100).await.unwrap(),
            sides[0].store.retry_due(JOB, T0, allow, 100).await.unwrap(),
            "retry_due (allow_stale_reentry = {allow})"
        );
    }
    assert_eq!(
        sides[1]
            .store
            .latest_executions(JOB, &scopes)
            .await
            .unwrap(),
        sides[0]
            .store
            .latest_executions(JOB, &scopes)
            .await
            .unwrap(),
        "latest_executions"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn sqlite_matches_the_memory_store(ops in prop::collection::vec(op(), 1..40)) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(run(ops));
    }
}
