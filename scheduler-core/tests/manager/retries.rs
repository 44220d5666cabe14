//! Retries: the next tick, older plans after newer ones ran, failures another
//! replica saw, per-scope retry reads, and operator retries.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use scheduler_core::time::TimeControl;
use scheduler_core::{
    BoxError, CatchUpMode, ErrorCode, ExecutionAudit, Finish, JobOutput, JobSpec, LeaseStoreExt,
    PlanKey, RunContext, Scope, Scopes, Status,
};
use time::macros::datetime;

use crate::common::{
    claim_as, dead_runners_lease, manager, on_manual_clock, record, recording_job, row, rows_of,
    Ledger, MIN, T0,
};

#[tokio::test]
async fn every_plan_retries_the_same_failed_plan_on_the_next_tick() {
    let (clock, store) = on_manual_clock(T0);
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Ledger::default();
    let m = manager(&store, "r1");
    m.register(
        fails_first_call("flaky", &calls, &seen)
            .catch_up(CatchUpMode::EveryPlan)
            .catch_up_window(10 * MIN)
            .max_plans_per_tick(5)
            .retry_backoff(vec![Duration::from_secs(20)]),
    )
    .unwrap();
    let first = m.run_once().await;
    assert_eq!((first.won, first.failed), (1, 1));
    // Backoff not over, same bucket: nothing to do.
    clock.advance(Duration::from_secs(10));
    let idle = m.run_once().await;
    assert_eq!((idle.won, idle.retried), (0, 0), "{idle:?}");
    // Backoff over, a new bucket is also due: the failed plan comes first.
    clock.advance(Duration::from_secs(25));
    let second = m.run_once().await;
    assert_eq!(
        (second.retried, second.won, second.succeeded),
        (1, 1, 2),
        "{second:?}"
    );
    let seen = seen.lock().unwrap().clone();
    let plan = datetime!(2026-03-05 12:00 UTC);
    assert_eq!(
        seen.iter().map(|(_, t, a)| (*t, *a)).collect::<Vec<_>>(),
        vec![(plan, 1), (plan, 2), (plan + MIN, 1)]
    );
}

#[tokio::test]
async fn an_older_failed_plan_is_retried_after_a_newer_plan_ran() {
    let (clock, store) = on_manual_clock(T0);
    let fail_once = Arc::new(AtomicUsize::new(0));
    let m = manager(&store, "r1");
    m.register(
        fails_first_call("stranded", &fail_once, &Ledger::default())
            .catch_up(CatchUpMode::EveryPlan)
            .catch_up_window(30 * MIN)
            .max_plans_per_tick(5)
            .retry_backoff(vec![5 * MIN]),
    )
    .unwrap();
    m.run_once().await; // 12:00 fails, retry due 12:05:30
    clock.advance(MIN);
    m.run_once().await; // 12:01 succeeds: now the newest row is SUCCESS
    clock.advance(5 * MIN);
    let report = m.run_once().await; // 12:02..12:06 new, and the 12:00 retry
    assert_eq!(report.retried, 1, "{report:?}");
    let row = store
        .list_executions(&Default::default())
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.plan_time == datetime!(2026-03-05 12:00 UTC))
        .unwrap();
    assert_eq!((row.status, row.attempt), (Status::Success, 2));
}

#[tokio::test]
async fn a_failure_seen_by_another_replica_is_retried_through_retry_due() {
    // Replica A knows the plan exists; replica B runs it and fails; A must
    // still retry it once due, although its own knowledge says "exists".
    let (clock, store) = on_manual_clock(T0);
    let fail = Arc::new(AtomicUsize::new(0));
    let make = |runner: &str| {
        let m = manager(&store, runner);
        m.register(
            fails_first_call("shared", &fail, &Ledger::default())
                .retry_backoff(vec![Duration::from_secs(5)]),
        )
        .unwrap();
        m
    };
    let b = make("b");
    let a = make("a");
    assert_eq!(b.run_once().await.failed, 1);
    assert_eq!(
        a.run_once().await.won,
        0,
        "A learns the plan exists (conflict)"
    );
    clock.advance(Duration::from_secs(6));
    let report = a.run_once().await;
    assert_eq!((report.retried, report.succeeded), (1, 1), "{report:?}");
}

/// A one-minute job on the global scope whose handler records each run and
/// fails the first call of all the handlers sharing `calls` (whatever the
/// plan), succeeding afterwards.
fn fails_first_call(name: &str, calls: &Arc<AtomicUsize>, ledger: &Ledger) -> JobSpec {
    let (calls, ledger) = (calls.clone(), ledger.clone());
    JobSpec::new(name, Scopes::global(), move |ctx: RunContext| {
        let (calls, ledger) = (calls.clone(), ledger.clone());
        async move {
            record(&ledger, &ctx);
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                return Err::<JobOutput, BoxError>("the first call fails".into());
            }
            Ok(JobOutput::rows(1))
        }
    })
    .cadence(MIN)
}

/// A job whose handler fails the first attempt of every plan and succeeds
/// afterwards, recording each run.
fn fails_first_attempt(name: &str, scopes: Scopes, ledger: &Ledger) -> JobSpec {
    let ledger = ledger.clone();
    JobSpec::new(name, scopes, move |ctx: RunContext| {
        let ledger = ledger.clone();
        async move {
            record(&ledger, &ctx);
            if ctx.attempt() == 1 {
                Err(BoxError::from("first attempts fail"))
            } else {
                Ok(JobOutput::rows(1))
            }
        }
    })
    .retry_backoff(vec![])
}

#[tokio::test]
async fn latest_only_retries_the_newest_plan_whatever_older_failures_exist() {
    for scopes in [1, 3] {
        let at = datetime!(2026-03-05 08:15:30 UTC);
        let (clock, store) = on_manual_clock(at);
        let ledger = Ledger::default();
        let m = manager(&store, "r1");
        let tenants = Scopes::fixed((0..scopes).map(|i| Scope::new("tenant", format!("t{i}"))));
        m.register(
            fails_first_attempt("latest", tenants, &ledger)
                .cadence(5 * MIN)
                .catch_up_window(60 * MIN),
        )
        .unwrap();
        // 08:15 fails; no tick runs again inside its bucket.
        assert_eq!(m.run_once().await.failed, scopes);
        // 08:20 fails too; the older failure stays behind, due.
        clock.set(datetime!(2026-03-05 08:20:30 UTC));
        assert_eq!(m.run_once().await.failed, scopes);
        // The next tick inside 08:20's bucket retries 08:20 (attempt 2).
        clock.set(datetime!(2026-03-05 08:20:40 UTC));
        let report = m.run_once().await;
        assert_eq!(
            (report.retried, report.succeeded),
            (scopes, scopes),
            "{scopes} scope(s)"
        );
        let newest = datetime!(2026-03-05 08:20 UTC);
        for row in rows_of(&store, "latest")
            .iter()
            .filter(|r| r.plan_time == newest)
        {
            assert_eq!((row.status, row.attempt), (Status::Success, 2));
        }
    }
}

#[tokio::test]
async fn every_plan_retries_of_one_scope_never_wait_behind_another_scopes_failures() {
    let now = datetime!(2026-03-05 12:00:30 UTC);
    let (_clock, store) = on_manual_clock(now);
    let bucket = datetime!(2026-03-05 12:00 UTC);
    let (a, b) = (Scope::new("t", "a"), Scope::new("t", "b"));
    // Scope a: five old failures; scope b: one, with a newer success.
    // Both scopes' current bucket already succeeded.
    let key = |scope: &Scope, plan_time| PlanKey {
        scope: scope.clone(),
        plan_time,
    };
    let mut failures: Vec<PlanKey> = (6..=10).map(|m| key(&a, bucket - MIN * m)).collect();
    failures.push(key(&b, bucket - MIN * 5));
    let stale_timeout = Duration::from_secs(600);
    let failure = Finish::failure(
        Duration::ZERO,
        ErrorCode::HandlerError,
        "old failure",
        Duration::ZERO,
    );
    for lease in claim_as(&store, "every", "seed", stale_timeout, false, &failures).await {
        store.finish(&lease, &failure).await.unwrap();
    }
    let ok = Finish::success(Duration::ZERO, 0, Default::default());
    let done = [key(&a, bucket), key(&b, bucket)];
    for lease in claim_as(&store, "every", "seed", stale_timeout, false, &done).await {
        store.finish(&lease, &ok).await.unwrap();
    }
    let ledger = Ledger::default();
    let m = manager(&store, "r1");
    m.register(
        recording_job("every", Scopes::fixed([a.clone(), b.clone()]), &ledger)
            .catch_up(CatchUpMode::EveryPlan)
            .catch_up_window(60 * MIN)
            .max_plans_per_tick(1),
    )
    .unwrap();
    let report = m.run_once().await;
    assert_eq!(report.retried, 2, "one per scope: {report:?}");
    let mut ran = ledger.lock().unwrap().clone();
    ran.sort();
    assert_eq!(
        ran,
        vec![(a, bucket - MIN * 10, 2), (b, bucket - MIN * 5, 2)],
        "each scope's oldest failure"
    );
}

#[tokio::test]
async fn a_non_reentrant_stale_row_waits_for_an_operator() {
    let (clock, store) = on_manual_clock(T0);
    let job = "billing";
    let plan_time = datetime!(2026-03-05 12:00 UTC);
    let id = dead_runners_lease(&store, &clock, job, false, plan_time).await;
    let ledger = Ledger::default();
    let m = manager(&store, "r1");
    m.register(
        recording_job(job, Scopes::global(), &ledger)
            .catch_up(CatchUpMode::EveryPlan)
            .catch_up_window(60 * MIN)
            .max_plans_per_tick(20),
    )
    .unwrap();
    m.run_once().await;
    m.run_once().await;
    assert!(
        !ledger
            .lock()
            .unwrap()
            .iter()
            .any(|(_, t, _)| *t == plan_time),
        "the abandoned plan is not run again"
    );
    assert_eq!(
        row(&store, id).await.error_code.as_deref(),
        Some("stale_timeout")
    );
    // Never due by itself, even to a reader that ignores the code (the Go
    // seed sharing the table).
    let swept = row(&store, id).await;
    assert_eq!(swept.next_retry_at, Some(scheduler_core::machine::NEVER));
    // The operator's repair.
    store.retry_execution(id).await.unwrap();
    let report = m.run_once().await;
    assert_eq!(report.retried, 1);
    assert!(ledger
        .lock()
        .unwrap()
        .contains(&(Scope::global(), plan_time, 2)));
}

#[tokio::test]
async fn an_operator_retry_runs_once_whatever_the_catch_up_rules_say() {
    for mode in [CatchUpMode::LatestOnly, CatchUpMode::EveryPlan] {
        let (clock, store) = on_manual_clock(T0);
        let ledger = Ledger::default();
        let m = manager(&store, "r1");
        m.register(
            fails_first_attempt("digest", Scopes::global(), &ledger)
                .cadence(MIN)
                .max_attempts(1)
                .catch_up(mode)
                .catch_up_window(5 * MIN)
                .max_plans_per_tick(1),
        )
        .unwrap();
        assert_eq!(m.run_once().await.failed, 1, "{mode:?}: attempts used up");
        let old = rows_of(&store, "digest")[0].clone();
        // Half an hour on: newer buckets ran, the failure is outside the
        // window, and latest_only would never look at it again.
        clock.advance(30 * MIN);
        m.run_once().await;
        let repaired = store.retry_execution(old.id).await.unwrap();
        assert_eq!(repaired.max_attempts, 2);
        let report = m.run_once().await;
        assert_eq!(report.retried, 1, "{mode:?}: {report:?}");
        let row = row(&store, old.id).await;
        assert_eq!((row.status, row.attempt), (Status::Success, 2), "{mode:?}");
        assert_eq!(m.run_once().await.retried, 0, "{mode:?}: once, not again");
    }
}
