//! Registration over random job specs: a spec is accepted exactly when it
//! breaks no rule of `docs/contract.md` §6 (including this library's own:
//! NUL characters, a cron expression that does not parse, `spread >=
//! cadence`), and a refusal names the job and one of the fields actually at
//! fault. A refused spec changes nothing: the manager's jobs are as before.
//!
//! The oracle below lists every rule as a predicate on the generated
//! *inputs*, independently of how `JobSpec::validate` is written.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use proptest::prelude::*;
use scheduler_core::{
    CatchUpMode, JobOutput, JobSpec, Manager, ManagerOptions, Scope, Scopes, MAX_NAME_BYTES,
};
use scheduler_memory::MemoryLeaseStore;

/// The inputs of one spec, kept so the oracle can judge them.
#[derive(Debug, Clone)]
struct Inputs {
    name: &'static str,
    schedule: Schedule,
    planner: bool,
    every_plan: bool,
    max_plans_per_tick: usize,
    run_timeout: Duration,
    stale_timeout: Duration,
    heartbeat_interval: Duration,
    max_attempts: i32,
    spread: Duration,
    scope_id: &'static str,
}

#[derive(Debug, Clone)]
enum Schedule {
    Every(Duration),
    /// `(expression, zone, parses)`
    Cron(&'static str, &'static str, bool),
}

/// `text` repeated `times` times, for the life of the test.
fn repeated(text: &str, times: usize) -> &'static str {
    Box::leak(text.repeat(times).into_boxed_str())
}

/// Names at and one byte past [`MAX_NAME_BYTES`], beside hostile short ones.
static NAMES: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    vec![
        "rollup",
        "",
        "   ",
        "a\0b",
        "tenant's \"digest\"",
        "日次の集計",
        "x",
        repeated("é", MAX_NAME_BYTES / 2),
        repeated("x", MAX_NAME_BYTES + 1),
    ]
});
static SCOPE_IDS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    vec![
        "acme",
        "",
        "a\0b",
        "ünïcødé 'quoted'",
        repeated("語", MAX_NAME_BYTES / 3),
        repeated("語", 10_000),
    ]
});
const CRONS: [(&str, &str, bool); 5] = [
    ("*/5 * * * *", "UTC", true),
    ("30 2 * * *", "America/New_York", true),
    ("61 * * * *", "UTC", false),
    ("not a cron", "UTC", false),
    ("0 3 * * *", "Mars/Olympus_Mons", false),
];

fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::from_nanos(999)),
        Just(Duration::from_micros(1)),
        Just(Duration::from_secs(1)),
        Just(Duration::from_secs(30)),
        Just(Duration::from_secs(60)),
        Just(Duration::from_secs(300)),
        Just(Duration::from_secs(600)),
    ]
}

fn inputs() -> impl Strategy<Value = Inputs> {
    let schedule = prop_oneof![
        3 => duration().prop_map(Schedule::Every),
        1 => (0..CRONS.len()).prop_map(|i| Schedule::Cron(CRONS[i].0, CRONS[i].1, CRONS[i].2)),
    ];
    (
        (
            0..NAMES.len(),
            schedule,
            any::<bool>(),
            any::<bool>(),
            0usize..3,
        ),
        (duration(), duration(), duration()),
        (-1i32..3, duration(), 0..SCOPE_IDS.len()),
    )
        .prop_map(
            |(
                (name, schedule, planner, every_plan, max_plans_per_tick),
                (run_timeout, stale_timeout, heartbeat_interval),
                (max_attempts, spread, scope),
            )| Inputs {
                name: NAMES[name],
                schedule,
                planner,
                every_plan,
                max_plans_per_tick,
                run_timeout,
                stale_timeout,
                heartbeat_interval,
                max_attempts,
                spread,
                scope_id: SCOPE_IDS[scope],
            },
        )
}

fn build(i: &Inputs) -> JobSpec {
    let scopes = Scopes::fixed([Scope::new("tenant", i.scope_id)]);
    let mut spec = JobSpec::new(i.name, scopes, |_| async { Ok(JobOutput::default()) })
        .catch_up(if i.every_plan {
            CatchUpMode::EveryPlan
        } else {
            CatchUpMode::LatestOnly
        })
        .max_plans_per_tick(i.max_plans_per_tick)
        .run_timeout(i.run_timeout)
        .stale_timeout(i.stale_timeout)
        .heartbeat_interval(i.heartbeat_interval)
        .max_attempts(i.max_attempts)
        .spread(i.spread);
    spec = match i.schedule {
        Schedule::Every(cadence) => spec.cadence(cadence),
        Schedule::Cron(expression, zone, _) => spec.cron(expression, zone),
    };
    if i.planner {
        spec = spec.planner(|_, _, _| Vec::new());
    }
    spec
}

/// Every field at fault, by the rules as documented.
fn faults(i: &Inputs) -> Vec<&'static str> {
    let mut faults = Vec::new();
    let mut rule = |broken: bool, field| {
        if broken {
            faults.push(field);
        }
    };
    rule(
        i.name.trim().is_empty() || i.name.contains('\0') || i.name.len() > MAX_NAME_BYTES,
        "name",
    );
    match i.schedule {
        Schedule::Cron(_, _, parses) => rule(!parses, "cron"),
        Schedule::Every(cadence) => {
            rule(!i.planner && cadence < Duration::from_micros(1), "cadence");
            rule(!i.planner && i.spread >= cadence, "spread");
        }
    }
    rule(i.run_timeout.is_zero(), "run_timeout");
    rule(i.stale_timeout <= i.run_timeout, "stale_timeout");
    rule(
        i.heartbeat_interval.is_zero() || i.heartbeat_interval >= i.stale_timeout,
        "heartbeat_interval",
    );
    rule(i.max_attempts < 1, "max_attempts");
    rule(
        i.every_plan && !i.planner && i.max_plans_per_tick < 1,
        "max_plans_per_tick",
    );
    rule(
        i.scope_id.contains('\0') || i.scope_id.len() > MAX_NAME_BYTES,
        "scopes",
    );
    faults
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn a_spec_is_accepted_exactly_when_it_breaks_no_rule(i in inputs()) {
        let faults = faults(&i);
        let manager = Manager::new(Arc::new(MemoryLeaseStore::new()), ManagerOptions::default()).expect("valid manager options");
        match manager.register(build(&i)) {
            Ok(()) => {
                prop_assert!(faults.is_empty(), "accepted, but {faults:?} are at fault");
                prop_assert_eq!(manager.job_names(), vec![i.name.to_owned()]);
                // A second job of the same name is refused and the first kept.
                let again = manager.register(build(&i)).expect_err("duplicate name");
                prop_assert_eq!(again.field, "name");
                prop_assert_eq!(manager.job_names(), vec![i.name.to_owned()]);
            }
            Err(e) => {
                prop_assert!(
                    faults.contains(&e.field),
                    "refused for {} ({}), but the faults are {faults:?}",
                    e.field,
                    e.reason
                );
                prop_assert_eq!(&e.job, i.name);
                prop_assert!(e.to_string().contains(e.field));
                prop_assert!(manager.job_names().is_empty(), "a refused spec was kept");
            }
        }
    }
}

#[test]
fn a_manager_refuses_a_runner_id_that_can_never_be_stored() {
    let with_runner = |runner_id: String| {
        Manager::new(
            Arc::new(MemoryLeaseStore::new()),
            ManagerOptions {
                runner_id,
                ..Default::default()
            },
        )
    };
    for bad in [
        "replica\0one".to_owned(),
        String::new(),
        "  ".to_owned(),
        "r".repeat(MAX_NAME_BYTES + 1),
    ] {
        let err = with_runner(bad.clone()).expect_err("refused");
        assert_eq!(err.field, "runner_id", "{bad:?}");
        assert!(err.to_string().contains("runner_id"), "{err}");
        assert!(
            err.to_string().len() < 300,
            "a long id is not echoed whole: {err}"
        );
    }
    assert!(with_runner("r".repeat(MAX_NAME_BYTES)).is_ok());
    let zero_tick = Manager::new(
        Arc::new(MemoryLeaseStore::new()),
        ManagerOptions {
            tick_interval: Duration::ZERO,
            ..Default::default()
        },
    );
    assert_eq!(zero_tick.expect_err("refused").field, "tick_interval");
}
