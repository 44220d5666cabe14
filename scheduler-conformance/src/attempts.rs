//! The attempts log (`docs/contract.md` §3 and §4): every ended attempt of
//! an execution, however it ended, appended by the transition that ended
//! it, once, and pruned with its execution.

use std::time::Duration;

use uuid::Uuid;

use scheduler_core::machine::{STALE_STEAL_MSG, STALE_SWEEP_MSG};
use scheduler_core::model::{bound_error_msg, MAX_ERROR_MSG_BYTES};
use scheduler_core::{
    Attempt, AttemptOutcome, ClaimOutcome, ErrorCode, Finish, Lease, LeaseStoreExt, Scope, Status,
};

use crate::fixtures::{
    assert_lease_lost, attempts, claim_one, exhaust, failed, finish, finish_a_mixed_batch, keys_of,
    leased, ok, plan_key, prune_all, request, row, sweep, this_minute, unique, Harness, PAST_STALE,
};

/// The record of `lease`'s attempt ended at `ended_at` by `outcome`, with
/// the error and duration given.
fn record(
    lease: &Lease,
    runner: &str,
    ended_at: time::OffsetDateTime,
    outcome: AttemptOutcome,
    error: Option<(&str, &str)>,
    duration_ms: Option<i32>,
) -> Attempt {
    Attempt {
        execution_id: lease.id,
        attempt: lease.attempt,
        runner_id: Some(runner.into()),
        started_at: Some(lease.started_at),
        ended_at,
        outcome,
        error_code: error.map(|(code, _)| code.to_owned()),
        error_msg: error.map(|(_, msg)| msg.to_owned()),
        duration_ms,
    }
}

/// A failure, then a retry that succeeds: the log holds both attempts, the
/// first with its error (bounded as the row's was), although the row now
/// shows only the success.
pub async fn failure_then_success_logs_both_attempts(h: &Harness) {
    let job = unique("attempts_retry");
    let key = [plan_key(h, Scope::global()).await];
    let first = leased(h, &request(&job, "r1", &key, true)).await;
    assert!(
        attempts(h, first.id).await.is_empty(),
        "an attempt still running has not ended"
    );
    let long = format!("upstream said: {}", "é".repeat(MAX_ERROR_MSG_BYTES));
    let failure = Finish::failure(
        Duration::from_millis(3),
        ErrorCode::HandlerError,
        &long,
        Duration::ZERO,
    );
    finish(h, &first, &failure).await;
    let failed_row = row(h, first.id).await;
    let ClaimOutcome::Retried(second) = claim_one(h, &request(&job, "r2", &key, true)).await else {
        panic!("the failed plan is retried");
    };
    h.time.advance(Duration::from_secs(1));
    finish(h, &second, &ok()).await;
    let done = row(h, first.id).await;
    assert_eq!(
        (done.status, done.error_code.as_deref()),
        (Status::Success, None),
        "the row shows only the last attempt"
    );
    let message = bound_error_msg(&long);
    assert_eq!(failed_row.error_msg.as_deref(), Some(message.as_str()));
    assert_eq!(
        attempts(h, first.id).await,
        vec![
            record(
                &first,
                "r1",
                failed_row.finished_at.unwrap(),
                AttemptOutcome::Failed,
                Some(("handler_error", &message)),
                Some(3),
            ),
            record(
                &second,
                "r2",
                done.finished_at.unwrap(),
                AttemptOutcome::Success,
                None,
                Some(3),
            ),
        ]
    );
}

/// A lease the sweep closed: the dead runner's attempt is logged as
/// `stale_timeout` (swept, no duration), its late terminal write logs
/// nothing, and the retry that follows is logged after it.
pub async fn swept_attempt_is_logged_as_stale_timeout(h: &Harness) {
    let job = unique("attempts_swept");
    let key = [plan_key(h, Scope::global()).await];
    let dead = leased(h, &request(&job, "dead", &key, true)).await;
    h.time.advance(PAST_STALE);
    assert_eq!(sweep(h, &job, true).await, 1);
    let swept_at = row(h, dead.id).await.finished_at.unwrap();
    assert_lease_lost(h.store.finish(&dead, &ok()).await);
    assert_eq!(sweep(h, &job, true).await, 0, "nothing left to sweep");
    let ClaimOutcome::Retried(retry) = claim_one(h, &request(&job, "r2", &key, true)).await else {
        panic!("a reentrant job's swept plan is retried");
    };
    finish(h, &retry, &ok()).await;
    let log = attempts(h, dead.id).await;
    assert_eq!(log.len(), 2, "{log:#?}");
    assert_eq!(
        log[0],
        record(
            &dead,
            "dead",
            swept_at,
            AttemptOutcome::Swept,
            Some(("stale_timeout", STALE_SWEEP_MSG)),
            None,
        )
    );
    assert_eq!(
        (log[1].attempt, log[1].outcome, log[1].runner_id.as_deref()),
        (2, AttemptOutcome::Success, Some("r2"))
    );
}

/// A stale lease taken over before any sweep: the taken-over attempt is
/// logged for the runner it was taken from, ended when the thief claimed
/// it; the old runner's late write logs nothing.
pub async fn stolen_attempt_is_logged_for_its_runner(h: &Harness) {
    let job = unique("attempts_stolen");
    let key = [plan_key(h, Scope::global()).await];
    let first = leased(h, &request(&job, "r1", &key, true)).await;
    h.time.advance(PAST_STALE);
    let ClaimOutcome::Stolen(second) = claim_one(h, &request(&job, "r2", &key, true)).await else {
        panic!("a stale lease of a reentrant job is stolen");
    };
    assert_lease_lost(h.store.finish(&first, &failed(Duration::ZERO)).await);
    let taken_over = record(
        &first,
        "r1",
        second.started_at,
        AttemptOutcome::Stolen,
        Some(("stale_timeout", STALE_STEAL_MSG)),
        None,
    );
    assert_eq!(attempts(h, first.id).await, vec![taken_over.clone()]);
    finish(h, &second, &ok()).await;
    let log = attempts(h, first.id).await;
    assert_eq!(log[0], taken_over);
    assert_eq!(
        (log.len(), log[1].attempt, log[1].outcome),
        (2, 2, AttemptOutcome::Success)
    );
}

/// Pruning an execution deletes its attempts with it; a newer execution
/// keeps its own.
pub async fn prune_deletes_attempts_with_their_execution(h: &Harness) {
    let job = unique("attempts_prune");
    let base = this_minute(h).await;
    let old_key = keys_of("t", &["old"], base);
    let req = request(&job, "r1", &old_key, true);
    let old = leased(h, &req).await;
    finish(h, &old, &failed(Duration::ZERO)).await;
    let retry = leased(h, &req).await;
    finish(h, &retry, &ok()).await;
    assert_eq!(attempts(h, old.id).await.len(), 2);
    h.time.advance(Duration::from_secs(3600));
    let cutoff = h.store.now().await.unwrap();
    h.time.advance(Duration::from_secs(1));
    let new = leased(h, &request(&job, "r1", &keys_of("t", &["new"], base), true)).await;
    finish(h, &new, &ok()).await;
    prune_all(h, cutoff, 100).await;
    assert_eq!(h.store.get_execution(old.id).await.unwrap(), None);
    assert!(
        attempts(h, old.id).await.is_empty(),
        "pruned with the execution"
    );
    assert_eq!(
        attempts(h, new.id).await.len(),
        1,
        "a newer row keeps its log"
    );
}

/// An operator's retries, repeated, name the last error without nesting
/// earlier messages, while the log keeps every attempt's own message: one
/// record per attempt, as many as the row's attempts.
pub async fn operator_retries_do_not_stack_messages(h: &Harness) {
    let job = unique("attempts_operator");
    let key = [plan_key(h, Scope::global()).await];
    let req = request(&job, "r1", &key, false);
    let lease = exhaust(h, &req, leased(h, &req).await).await;
    for _ in 0..2 {
        let repaired = h.store.retry_execution(lease.id).await.unwrap();
        let expected = Some("operator retry; last error: handler_error");
        assert_eq!(repaired.error_msg.as_deref(), expected);
        let again = h.store.retry_execution(lease.id).await.unwrap();
        assert_eq!(again.error_msg.as_deref(), expected, "kept, not nested");
        let ClaimOutcome::Retried(next) = claim_one(h, &req).await else {
            panic!("the repaired row runs again");
        };
        finish(h, &next, &failed(Duration::ZERO)).await;
    }
    let last = row(h, lease.id).await;
    let log = attempts(h, lease.id).await;
    assert_eq!(
        log.iter().map(|a| a.attempt).collect::<Vec<_>>(),
        (1..=last.attempt).collect::<Vec<_>>(),
        "one record per attempt"
    );
    assert_eq!(last.attempt, 5, "three attempts, then two granted");
    for attempt in &log {
        assert_eq!(
            (
                attempt.outcome,
                attempt.error_code.as_deref(),
                attempt.error_msg.as_deref()
            ),
            (AttemptOutcome::Failed, Some("handler_error"), Some("boom"))
        );
    }
}

/// A `finish_many` batch logs each item it wrote once: a lease finished
/// twice in the batch is logged for its first item only, and a lost lease
/// (taken over before the batch) logs nothing. `attempts_of` answers a
/// page of ids in their order, an unknown id with an empty log.
pub async fn finish_many_logs_each_item_once(h: &Harness) {
    let job = unique("attempts_finish_many");
    let (leases, thief) = finish_a_mixed_batch(h, &job).await;
    let ok_at = row(h, leases[0].id).await.finished_at.unwrap();
    let failed_at = row(h, leases[1].id).await.finished_at.unwrap();
    let unknown = Uuid::now_v7();
    let ids = [
        leases[2].id,
        unknown,
        leases[0].id,
        leases[1].id,
        leases[2].id,
    ];
    let logs = h.store.attempts_of(&ids).await.unwrap();
    let stolen = record(
        &leases[2],
        "r1",
        thief.started_at,
        AttemptOutcome::Stolen,
        Some(("stale_timeout", STALE_STEAL_MSG)),
        None,
    );
    assert_eq!(
        logs,
        vec![
            vec![stolen.clone()],
            vec![],
            vec![record(
                &leases[0],
                "r1",
                ok_at,
                AttemptOutcome::Success,
                None,
                Some(3),
            )],
            vec![record(
                &leases[1],
                "r1",
                failed_at,
                AttemptOutcome::Failed,
                Some(("handler_error", "boom")),
                Some(3),
            )],
            vec![stolen],
        ]
    );
    assert!(h.store.attempts_of(&[]).await.unwrap().is_empty());
}
