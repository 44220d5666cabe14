//! Retries: when a failed plan runs again, what the sweep leaves for an
//! operator, the attempt budget, and the `retry_due` read planning relies
//! on, per-scope limits and operator retries included (`docs/contract.md`
//! §4 and §5).

use std::time::Duration;

use time::OffsetDateTime;

use scheduler_core::{ClaimOutcome, PlanKey, RetryDue, Scope, Status};

use crate::fixtures::{
    assert_conflicts, claim_one, fail_each, failed, finish, key, leased, leases, ok, plan_key,
    request, retry_due, row, sweep, this_minute, unique, Harness, MINUTE, PAST_STALE,
};

/// The plan times of `due`, in answer order.
fn plan_times(due: &[RetryDue]) -> Vec<OffsetDateTime> {
    due.iter().map(|d| d.plan_time).collect()
}

/// A failed plan is retried only once `next_retry_at` has passed, and the
/// retry rotates the token and clears the error.
pub async fn retry_waits_for_next_retry_at(h: &Harness) {
    let job = unique("retry");
    let key = [plan_key(h, Scope::global()).await];
    let first = leased(h, &request(&job, "r1", &key, true)).await;
    finish(h, &first, &failed(Duration::from_secs(30))).await;
    let failed_row = row(h, first.id).await;
    assert_eq!(failed_row.status, Status::Failed);
    assert_eq!(failed_row.error_code.as_deref(), Some("handler_error"));
    assert_eq!(failed_row.error_msg.as_deref(), Some("boom"));
    assert_eq!(failed_row.duration_ms, Some(3));
    let due = failed_row.next_retry_at.expect("attempts remain");
    assert_eq!(
        due,
        failed_row.finished_at.unwrap() + Duration::from_secs(30)
    );
    assert_conflicts(h, &request(&job, "r2", &key, true), "retry not yet due").await;
    let since = key[0].plan_time - Duration::from_secs(3600);
    assert!(retry_due(h, &job, since, true, 10).await.is_empty());
    h.time.advance(Duration::from_secs(31));
    let due_list = retry_due(h, &job, since, true, 10).await;
    assert_eq!(plan_times(&due_list), vec![key[0].plan_time]);
    let ClaimOutcome::Retried(second) = claim_one(h, &request(&job, "r2", &key, true)).await else {
        panic!("a due retry should be claimed");
    };
    assert_eq!((second.id, second.attempt), (first.id, 2));
    assert_ne!(second.token, first.token);
    let running = row(h, second.id).await;
    assert_eq!(running.status, Status::Running);
    assert_eq!(
        (
            running.error_code,
            running.error_msg,
            running.next_retry_at,
            running.finished_at
        ),
        (None, None, None, None)
    );
}

/// A row the sweep closed is never retried automatically when the job
/// forbids stale re-entry, and is retried when it allows it.
pub async fn non_reentrant_stale_row_is_not_retried(h: &Harness) {
    for reentrant in [false, true] {
        let job = unique("non_reentrant");
        let key = [plan_key(h, Scope::global()).await];
        let lease = leased(h, &request(&job, "r1", &key, reentrant)).await;
        h.time.advance(PAST_STALE);
        if !reentrant {
            assert_conflicts(
                h,
                &request(&job, "r2", &key, false),
                "a stale lease of a non-reentrant job is not stolen",
            )
            .await;
        }
        assert_eq!(sweep(h, &job, reentrant).await, 1);
        let expected = if reentrant {
            None
        } else {
            Some(scheduler_core::machine::NEVER)
        };
        assert_eq!(
            row(h, lease.id).await.next_retry_at,
            expected,
            "reentrant: {reentrant}"
        );
        h.time.advance(Duration::from_secs(3600));
        let since = key[0].plan_time - Duration::from_secs(7200);
        let due = retry_due(h, &job, since, reentrant, 10).await;
        let outcome = claim_one(h, &request(&job, "r2", &key, reentrant)).await;
        if reentrant {
            assert_eq!(due.len(), 1);
            assert!(
                matches!(outcome, ClaimOutcome::Retried(ref l) if l.id == lease.id && l.attempt == 2)
            );
        } else {
            assert!(due.is_empty(), "waits for an operator");
            assert_eq!(outcome, ClaimOutcome::Conflicted);
        }
    }
}

/// Attempts never pass `max_attempts`, through retries and takeovers; the
/// last failure leaves no `next_retry_at`.
pub async fn attempts_never_exceed_max(h: &Harness) {
    let job = unique("attempts");
    let key = [plan_key(h, Scope::global()).await];
    let mut lease = leased(h, &request(&job, "r1", &key, true)).await;
    // attempt 1 fails, attempt 2 goes stale and is stolen as attempt 3
    finish(h, &lease, &failed(Duration::ZERO)).await;
    lease = leased(h, &request(&job, "r1", &key, true)).await;
    assert_eq!(lease.attempt, 2);
    h.time.advance(PAST_STALE);
    lease = leased(h, &request(&job, "r2", &key, true)).await;
    assert_eq!(lease.attempt, 3);
    h.time.advance(PAST_STALE);
    assert_conflicts(
        h,
        &request(&job, "r3", &key, true),
        "no steal past max_attempts",
    )
    .await;
    finish(h, &lease, &failed(Duration::ZERO)).await;
    let last = row(h, lease.id).await;
    assert_eq!(
        (last.attempt, last.max_attempts, last.next_retry_at),
        (3, 3, None)
    );
    h.time.advance(Duration::from_secs(3600));
    assert_conflicts(
        h,
        &request(&job, "r3", &key, true),
        "no retry past max_attempts",
    )
    .await;
    let since = key[0].plan_time - Duration::from_secs(7200);
    assert!(retry_due(h, &job, since, true, 10).await.is_empty());
}

/// `retry_due` lists FAILED plans with their retry due inside the window,
/// oldest first, and respects its limit.
pub async fn retry_due_lists_older_failed_plans(h: &Harness) {
    let job = unique("retry_due");
    let base = this_minute(h).await;
    let scope = Scope::new("tenant", "a");
    let keys: Vec<PlanKey> = (1..=4u32)
        .map(|i| key(scope.clone(), base - MINUTE * i))
        .collect();
    let leases = leases(h, &request(&job, "r1", &keys, true)).await;
    // base-1: FAILED due; base-2: FAILED not due; base-3: SUCCESS; base-4: FAILED due but outside window
    finish(h, &leases[0], &failed(Duration::ZERO)).await;
    finish(h, &leases[1], &failed(Duration::from_secs(3600))).await;
    finish(h, &leases[2], &ok()).await;
    finish(h, &leases[3], &failed(Duration::ZERO)).await;
    let since = base - MINUTE * 3;
    let due = retry_due(h, &job, since, true, 10).await;
    assert_eq!(plan_times(&due), vec![base - MINUTE]);
    assert_eq!(due[0].scope, scope);
    let all = retry_due(h, &job, base - MINUTE * 10, true, 10).await;
    assert_eq!(
        plan_times(&all),
        vec![base - MINUTE * 4, base - MINUTE],
        "oldest first"
    );
    assert_eq!(
        retry_due(h, &job, base - MINUTE * 10, true, 1).await.len(),
        1
    );
}

/// The retry read's limit is per scope: one scope's many old failures
/// never crowd another scope's due retry out of the answer, and each
/// scope's rows are its oldest.
pub async fn retry_due_limits_each_scope_on_its_own(h: &Harness) {
    let job = unique("retry_per_scope");
    let base = this_minute(h).await - MINUTE * 10;
    let (busy, quiet) = (Scope::new("t", "busy"), Scope::new("t", "quiet"));
    let mut keys: Vec<PlanKey> = (0..6)
        .map(|i| key(busy.clone(), base + MINUTE * i))
        .collect();
    keys.push(key(quiet.clone(), base + MINUTE * 5));
    let leases = leases(h, &request(&job, "r1", &keys, true)).await;
    fail_each(h, &leases, Duration::ZERO).await;
    let due = retry_due(h, &job, base, true, 2).await;
    let seen: Vec<(&str, OffsetDateTime)> = due
        .iter()
        .map(|d| (d.scope.id.as_str(), d.plan_time))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("busy", base),
            ("busy", base + MINUTE),
            ("quiet", base + MINUTE * 5)
        ],
        "two of the busy scope's oldest, and the quiet scope's one"
    );
    assert!(due.iter().all(|d| !d.operator_retry));
}

/// A row an operator retried is due whatever its plan time (even before
/// `since`), marked as such, and counted apart from the scope's other
/// retries.
pub async fn operator_retries_are_due_whatever_their_plan_time(h: &Harness) {
    let job = unique("operator_due");
    let now = this_minute(h).await;
    let scope = Scope::new("t", "a");
    let keys: Vec<PlanKey> = [now - MINUTE * 120, now - MINUTE * 2, now - MINUTE]
        .into_iter()
        .map(|plan_time| key(scope.clone(), plan_time))
        .collect();
    let leases = leases(h, &request(&job, "r1", &keys, false)).await;
    fail_each(h, &leases, Duration::from_secs(3600)).await;
    let since = now - MINUTE * 2;
    assert!(
        retry_due(h, &job, since, false, 1).await.is_empty(),
        "not due yet"
    );
    h.store.retry_execution(leases[0].id).await.unwrap();
    h.store.retry_execution(leases[2].id).await.unwrap();
    let seen = |due: Vec<RetryDue>| -> Vec<(OffsetDateTime, bool)> {
        due.iter()
            .map(|d| (d.plan_time, d.operator_retry))
            .collect()
    };
    assert_eq!(
        seen(retry_due(h, &job, since, false, 1).await),
        vec![(keys[0].plan_time, true)],
        "the old one before since; the limit of one per kind keeps the oldest"
    );
    assert_eq!(
        seen(retry_due(h, &job, since, false, 5).await),
        vec![(keys[0].plan_time, true), (keys[2].plan_time, true)]
    );
}
