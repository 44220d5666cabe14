//! Micro-benchmarks of the pure parts: planning and the lease state machine.
//!
//! `cargo bench -p benches --bench core`

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use scheduler_core::machine::{self, FreshIds};
use scheduler_core::plan::{self, CatchUpMode, CronSchedule, Planning, Schedule};
use scheduler_core::{ClaimRequest, ErrorCode, Finish, PlanKey, Scope};
use time::macros::datetime;

fn planning(schedule: Schedule, catch_up: CatchUpMode) -> Planning {
    Planning {
        schedule,
        schedule_delay: Duration::ZERO,
        catch_up,
        catch_up_window: Duration::from_secs(3600),
        max_plans_per_tick: 12,
        allow_stale_reentry: true,
        spread: Duration::ZERO,
    }
}

fn plans(c: &mut Criterion) {
    let now = datetime!(2026-03-05 12:34:56.789 UTC);
    let five_min = Duration::from_secs(300);
    c.bench_function("floor 5m", |b| {
        b.iter(|| plan::floor(black_box(now), five_min))
    });
    let every = planning(Schedule::every(five_min), CatchUpMode::EveryPlan);
    let after = Some(now - Duration::from_secs(3000));
    c.bench_function("plan_scope every_plan, 10 due", |b| {
        b.iter(|| plan::plan_scope(&every, black_box(now), Duration::ZERO, after, &[], &[]))
    });
    let latest = planning(Schedule::every(five_min), CatchUpMode::LatestOnly);
    c.bench_function("plan_scope latest_only, idle", |b| {
        let done = Some(plan::floor(now, five_min));
        b.iter(|| plan::plan_scope(&latest, black_box(now), Duration::ZERO, done, &[], &[]))
    });
    let scope = Scope::new("tenant", "acme-corporation");
    c.bench_function("scope_offset", |b| {
        b.iter(|| plan::scope_offset("rollup", black_box(&scope), five_min))
    });
    let cron = CronSchedule::parse("0 9 * * MON-FRI", "Europe/Berlin").unwrap();
    c.bench_function("cron at_or_before", |b| {
        b.iter(|| cron.at_or_before(black_box(now)))
    });
}

fn lease_machine(c: &mut Criterion) {
    let now = datetime!(2026-03-05 12:00 UTC);
    let request = ClaimRequest {
        finishing: &[],
        steering: scheduler_core::model::Steering::NONE,
        job_name: "rollup",
        runner_id: "replica-1",
        max_attempts: 3,
        stale_timeout: Duration::from_secs(600),
        allow_stale_reentry: true,
        keys: &[],
    };
    let key = PlanKey {
        scope: Scope::new("tenant", "acme"),
        plan_time: now,
    };
    let ids = FreshIds::mint();
    c.bench_function("claim fresh", |b| {
        b.iter(|| machine::claim(None, &request, black_box(&key), now, ids))
    });
    let row = machine::claim(None, &request, &key, now, ids)
        .get()
        .unwrap()
        .clone();
    c.bench_function("claim conflict", |b| {
        b.iter(|| machine::claim(Some(black_box(&row)), &request, &key, now, ids))
    });
    c.bench_function("heartbeat", |b| {
        b.iter(|| machine::heartbeat(black_box(&row), ids.token, now, Duration::from_secs(600)))
    });
    let ok = Finish::success(Duration::from_millis(5), 1, Default::default());
    c.bench_function("finish success", |b| {
        b.iter(|| machine::finish(black_box(&row), ids.token, now, &ok))
    });
    let failed = Finish::failure(
        Duration::ZERO,
        ErrorCode::HandlerError,
        "boom",
        Duration::from_secs(10),
    );
    c.bench_function("finish failure", |b| {
        b.iter(|| machine::finish(black_box(&row), ids.token, now, &failed))
    });
    c.bench_function("mint ids (v7 + v4)", |b| b.iter(FreshIds::mint));
}

criterion_group!(benches, plans, lease_machine);
criterion_main!(benches);
