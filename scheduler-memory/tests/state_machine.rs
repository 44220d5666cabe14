//! Random claims, heartbeats, finishes, sweeps and time steps from several
//! runners, driven through `MemoryLeaseStore` and checked against a small,
//! independent reference model after every step.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::executor::block_on;
use proptest::prelude::*;
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};
use scheduler_core::time::TimeControl;
use scheduler_core::{
    ClaimRequest, ErrorCode, Execution, ExecutionAudit, ExecutionFilter, Finish, Lease, LeaseStore,
    LeaseStoreExt, ManualClock, PlanKey, Scope, Status, StoreError,
};
use scheduler_memory::MemoryLeaseStore;
use serde_json::Map;
use time::macros::datetime;
use time::OffsetDateTime;

const RUNNERS: usize = 3;
/// Key 0 belongs to a reentrant job, key 1 to a non-reentrant one.
const KEYS: usize = 2;
const STALE_SECS: i64 = 60;
const MAX_ATTEMPTS: i32 = 3;
const T0: OffsetDateTime = datetime!(2026-03-05 12:00 UTC);

/// The model's `retry_at` of a row only an operator may run again.
const NEVER: i64 = i64::MAX;

fn reentrant(key: usize) -> bool {
    key == 0
}

#[derive(Debug, Clone)]
enum Step {
    Claim {
        runner: usize,
        key: usize,
    },
    Heartbeat {
        runner: usize,
        key: usize,
    },
    Succeed {
        runner: usize,
        key: usize,
    },
    Fail {
        runner: usize,
        key: usize,
        backoff: u8,
    },
    Sweep {
        key: usize,
    },
    Advance {
        secs: u8,
    },
}

/// What the model expects the store to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    Claim(&'static str),
    Accepted(bool),
    Swept(u64),
    Nothing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ModelRow {
    status: Status,
    attempt: i32,
    /// Which claim (counted per key) holds the current lease.
    generation: u32,
    runner: usize,
    stale_at: i64,
    retry_at: Option<i64>,
    swept: bool,
}

#[derive(Debug, Clone, Default)]
struct Model {
    now: i64,
    rows: [Option<ModelRow>; KEYS],
    /// The generation of the lease each runner last received for each key.
    held: HashMap<(usize, usize), u32>,
    generations: [u32; KEYS],
    last: Option<Expect>,
}

impl Model {
    fn holds(&self, runner: usize, key: usize) -> bool {
        matches!(
            (&self.rows[key], self.held.get(&(runner, key))),
            (Some(row), Some(g)) if row.status == Status::Running && row.generation == *g
        )
    }
}

struct Reference;

impl ReferenceStateMachine for Reference {
    type State = Model;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model::default()).boxed()
    }

    fn transitions(_: &Model) -> BoxedStrategy<Step> {
        let runner = 0..RUNNERS;
        let key = 0..KEYS;
        prop_oneof![
            3 => (runner.clone(), key.clone()).prop_map(|(runner, key)| Step::Claim { runner, key }),
            2 => (runner.clone(), key.clone()).prop_map(|(runner, key)| Step::Heartbeat { runner, key }),
            2 => (runner.clone(), key.clone()).prop_map(|(runner, key)| Step::Succeed { runner, key }),
            2 => (runner, key.clone(), prop::sample::select(vec![0u8, 1, 20, 60])).prop_map(|(runner, key, backoff)| Step::Fail { runner, key, backoff }),
            1 => key.prop_map(|key| Step::Sweep { key }),
            // Steps that land exactly on lease and retry boundaries, where `<` versus
            // `<=` matters.
            2 => prop::sample::select(vec![1u8, 19, 20, 40, 59, 60, 61]).prop_map(|secs| Step::Advance { secs }),
        ]
        .boxed()
    }

    fn apply(mut m: Model, step: &Step) -> Model {
        let now = m.now;
        m.last = Some(match *step {
            Step::Advance { secs } => {
                m.now += i64::from(secs);
                Expect::Nothing
            }
            Step::Claim { runner, key } => {
                let (kind, attempt) = match &m.rows[key] {
                    None => ("won", 1),
                    Some(r)
                        if r.status == Status::Failed
                            && r.attempt < MAX_ATTEMPTS
                            && r.retry_at.is_none_or(|t| t <= now)
                            && (!r.swept || reentrant(key)) =>
                    {
                        ("retried", r.attempt + 1)
                    }
                    Some(r)
                        if r.status == Status::Running
                            && r.stale_at < now
                            && reentrant(key)
                            && r.attempt < MAX_ATTEMPTS =>
                    {
                        ("stolen", r.attempt + 1)
                    }
                    Some(_) => ("conflicted", 0),
                };
                if kind != "conflicted" {
                    m.generations[key] += 1;
                    m.held.insert((runner, key), m.generations[key]);
                    m.rows[key] = Some(ModelRow {
                        status: Status::Running,
                        attempt,
                        generation: m.generations[key],
                        runner,
                        stale_at: now + STALE_SECS,
                        retry_at: None,
                        swept: false,
                    });
                }
                Expect::Claim(kind)
            }
            Step::Heartbeat { runner, key } => {
                let ok = m.holds(runner, key);
                if ok {
                    m.rows[key].as_mut().unwrap().stale_at = now + STALE_SECS;
                }
                Expect::Accepted(ok)
            }
            Step::Succeed { runner, key } => {
                let ok = m.holds(runner, key);
                if ok {
                    m.rows[key].as_mut().unwrap().status = Status::Success;
                }
                Expect::Accepted(ok)
            }
            Step::Fail {
                runner,
                key,
                backoff,
            } => {
                let ok = m.holds(runner, key);
                if ok {
                    let row = m.rows[key].as_mut().unwrap();
                    row.status = Status::Failed;
                    row.retry_at = (row.attempt < MAX_ATTEMPTS).then_some(now + i64::from(backoff));
                }
                Expect::Accepted(ok)
            }
            Step::Sweep { key } => {
                let mut n = 0;
                if let Some(row) = m.rows[key].as_mut() {
                    if row.status == Status::Running && row.stale_at < now {
                        row.status = Status::Failed;
                        // Reentrant: due at once; else never (an operator's).
                        row.retry_at = (!reentrant(key)).then_some(NEVER);
                        row.swept = true;
                        n = 1;
                    }
                }
                Expect::Swept(n)
            }
        });
        m
    }
}

struct Store {
    store: MemoryLeaseStore,
    clock: ManualClock,
    /// The lease each runner last received for each key.
    leases: HashMap<(usize, usize), Lease>,
    /// SUCCESS rows as first seen: they must never change.
    successes: HashMap<usize, Execution>,
}

fn key(k: usize) -> PlanKey {
    PlanKey {
        scope: Scope::new("tenant", format!("t{k}")),
        plan_time: T0,
    }
}

fn job(k: usize) -> String {
    format!("job{k}")
}

impl Store {
    fn row(&self, k: usize) -> Option<Execution> {
        let filter = ExecutionFilter {
            job_name: Some(job(k)),
            ..Default::default()
        };
        block_on(self.store.list_executions(&filter)).unwrap().pop()
    }

    /// Records SUCCESS rows as first seen, for the "never changes" invariant.
    fn remember_successes(&mut self) {
        for k in 0..KEYS {
            if let Some(row) = self.row(k).filter(|r| r.status == Status::Success) {
                self.successes.entry(k).or_insert(row);
            }
        }
    }

    fn accepted(result: Result<(), StoreError>) -> bool {
        match result {
            Ok(()) => true,
            Err(StoreError::LeaseLost { .. }) => false,
            Err(e) => panic!("unexpected store error: {e}"),
        }
    }
}

impl StateMachineTest for Store {
    type SystemUnderTest = Store;
    type Reference = Reference;

    fn init_test(_: &Model) -> Store {
        let clock = ManualClock::new(T0);
        Store {
            store: MemoryLeaseStore::with_clock(Arc::new(clock.clone())),
            clock,
            leases: HashMap::new(),
            successes: HashMap::new(),
        }
    }

    fn apply(mut sut: Store, model: &Model, step: Step) -> Store {
        let got = match step {
            Step::Advance { secs } => {
                sut.clock.advance(Duration::from_secs(u64::from(secs)));
                Expect::Nothing
            }
            Step::Claim { runner, key: k } => {
                let keys = [key(k)];
                let runner_id = format!("r{runner}");
                let job_name = job(k);
                let request = ClaimRequest {
                    finishing: &[],
                    steering: scheduler_core::model::Steering::NONE,
                    job_name: &job_name,
                    runner_id: &runner_id,
                    max_attempts: MAX_ATTEMPTS,
                    stale_timeout: Duration::from_secs(STALE_SECS as u64),
                    allow_stale_reentry: reentrant(k),
                    keys: &keys,
                };
                let outcome = block_on(sut.store.claim(&request)).unwrap().remove(0);
                if let Some(lease) = outcome.lease() {
                    sut.leases.insert((runner, k), lease.clone());
                }
                // Unsteered claims (no pause, overlap allowed): won,
                // retried, stolen or conflicted, as the model says.
                Expect::Claim(outcome.kind().as_str())
            }
            Step::Heartbeat { runner, key } => match sut.leases.get(&(runner, key)) {
                None => Expect::Accepted(false),
                Some(lease) => Expect::Accepted(Store::accepted(
                    block_on(
                        sut.store
                            .heartbeat(lease, Duration::from_secs(STALE_SECS as u64)),
                    )
                    .map(drop),
                )),
            },
            Step::Succeed { runner, key } => match sut.leases.get(&(runner, key)) {
                None => Expect::Accepted(false),
                Some(lease) => Expect::Accepted(Store::accepted(block_on(
                    sut.store
                        .finish(lease, &Finish::success(Duration::ZERO, 1, Map::new())),
                ))),
            },
            Step::Fail {
                runner,
                key,
                backoff,
            } => match sut.leases.get(&(runner, key)) {
                None => Expect::Accepted(false),
                Some(lease) => {
                    let finish = Finish::failure(
                        Duration::ZERO,
                        ErrorCode::HandlerError,
                        "failed",
                        Duration::from_secs(u64::from(backoff)),
                    );
                    Expect::Accepted(Store::accepted(block_on(sut.store.finish(lease, &finish))))
                }
            },
            Step::Sweep { key } => {
                Expect::Swept(block_on(sut.store.sweep_stale(&job(key), reentrant(key))).unwrap())
            }
        };
        assert_eq!(
            Some(&got),
            model.last.as_ref(),
            "store and model disagree on {step:?}"
        );
        Store::check_invariants(&sut, model);
        sut.remember_successes();
        sut
    }

    fn check_invariants(sut: &Store, model: &Model) {
        for k in 0..KEYS {
            let row = sut.row(k);
            match (&row, &model.rows[k]) {
                (None, None) => continue,
                (Some(row), Some(expected)) => {
                    assert_eq!(row.status, expected.status, "status of key {k}");
                    assert_eq!(row.attempt, expected.attempt, "attempt of key {k}");
                    assert!(
                        row.attempt <= row.max_attempts,
                        "attempts never exceed the max"
                    );
                    assert_eq!(row.runner_id, Some(format!("r{}", expected.runner).into()));
                    let stale_at = T0 + Duration::from_secs(expected.stale_at as u64);
                    assert_eq!(row.stale_after, Some(stale_at), "stale_after of key {k}");
                    let retry_at = expected.retry_at.map(|s| match s {
                        NEVER => scheduler_core::machine::NEVER,
                        s => T0 + Duration::from_secs(s as u64),
                    });
                    assert_eq!(row.next_retry_at, retry_at, "next_retry_at of key {k}");
                    assert_eq!(
                        row.error_code.as_deref() == Some("stale_timeout"),
                        expected.swept,
                        "sweep marker of key {k}"
                    );
                }
                (row, expected) => panic!("key {k}: store {row:?} vs model {expected:?}"),
            }
            let row = row.unwrap();
            // At most one runner holds a token the store would accept.
            let live = (0..RUNNERS)
                .filter(|r| {
                    sut.leases.get(&(*r, k)).is_some_and(|l| {
                        l.token == row.lease_token && row.status == Status::Running
                    })
                })
                .count();
            assert!(live <= 1, "{live} live leases on key {k}");
            if let Some(first) = sut.successes.get(&k) {
                assert_eq!(first, &row, "a SUCCESS row never changes");
            }
        }
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
    #[test]
    fn memory_store_follows_the_reference_model(sequential 1..60 => Store);
}
