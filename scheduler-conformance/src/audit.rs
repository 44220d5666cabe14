//! The operator's side ([`ExecutionAudit`](scheduler_core::ExecutionAudit)):
//! reads by id and by filter, scope summaries, an operator's retry, and
//! pruning (`docs/contract.md` §3 and §4).

use std::time::Duration;

use uuid::Uuid;

use scheduler_core::model::{OverlapPolicy, Steering};
use scheduler_core::{
    ClaimOutcome, ClaimRequest, ExecutionFilter, Finish, Lease, PlanKey, PlannedAt, Prune, Scope,
    ScopeSummary, Status, StoreError,
};

use crate::fixtures::{
    assert_conflicts, claim_one, exhaust, failed, finish, key, keys_of, leased, leases, list, ok,
    plan_key, prune_all, request, row, rows_of, sweep, swept, this_minute, unique, Harness, MINUTE,
    PAST_STALE,
};

/// Audit reads: get by id (unknown id is `None`) and list with filters,
/// newest plan time first, limited.
pub async fn audit_reads_filter_and_order(h: &Harness) {
    let job = unique("audit");
    let base = this_minute(h).await;
    let a = Scope::new("tenant", "a");
    let keys: Vec<PlanKey> = (0..4u32)
        .map(|i| {
            let scope = if i % 2 == 0 {
                a.clone()
            } else {
                Scope::new("tenant", "b")
            };
            key(scope, base - MINUTE * i)
        })
        .collect();
    let leases = leases(h, &request(&job, "r1", &keys, true)).await;
    finish(h, &leases[0], &ok()).await;
    finish(h, &leases[1], &failed(Duration::ZERO)).await;
    assert_eq!(h.store.get_execution(Uuid::now_v7()).await.unwrap(), None);
    let of_job = || ExecutionFilter {
        job_name: Some(job.clone()),
        ..Default::default()
    };
    let all = rows_of(h, &job).await;
    assert_eq!(
        all.iter().map(|r| r.plan_time).collect::<Vec<_>>(),
        vec![base, base - MINUTE, base - MINUTE * 2, base - MINUTE * 3]
    );
    let only_a = list(
        h,
        ExecutionFilter {
            scope: Some(a),
            ..of_job()
        },
    )
    .await;
    assert_eq!(only_a.len(), 2);
    let with_status = |status| {
        list(
            h,
            ExecutionFilter {
                status: Some(status),
                ..of_job()
            },
        )
    };
    let failed_rows = with_status(Status::Failed).await;
    assert_eq!(failed_rows.len(), 1);
    assert_eq!(failed_rows[0].plan_time, base - MINUTE);
    let recent = list(
        h,
        ExecutionFilter {
            plan_time_from: Some(base - MINUTE),
            limit: Some(1),
            ..of_job()
        },
    )
    .await;
    assert_eq!(
        recent.iter().map(|r| r.plan_time).collect::<Vec<_>>(),
        vec![base]
    );
    let running = with_status(Status::Running).await;
    assert_eq!(running.len(), 2);
}

/// Scope summaries: one per (job, scope), in order, equal to
/// [`ScopeSummary::of_rows`] over the scope's rows.
pub async fn scope_summaries_describe_each_scope(h: &Harness) {
    let job = unique("summary");
    let base = this_minute(h).await;
    let (a, b) = (Scope::new("tenant", "a"), Scope::new("tenant", "b"));
    let at = |scope: &Scope, back: u32| [key(scope.clone(), base - MINUTE * back)];
    // a: SUCCESS (5 back), FAILED retry pending (4), FAILED exhausted (3),
    //    stale_timeout (2, swept), RUNNING stale (1, after the sweep), RUNNING live (0)
    let keys = [at(&a, 5), at(&a, 4), at(&a, 3), at(&a, 2)].concat();
    let leases = leases(h, &request(&job, "r1", &keys, true)).await;
    finish(h, &leases[0], &ok()).await;
    finish(h, &leases[1], &failed(Duration::from_secs(7200))).await;
    exhaust(h, &request(&job, "r1", &at(&a, 3), true), leases[2].clone()).await;
    h.time.advance(PAST_STALE);
    assert_eq!(sweep(h, &job, true).await, 1, "at(a, 2) is closed");
    let stale = claim_one(h, &request(&job, "r1", &at(&a, 1), true)).await;
    h.time.advance(PAST_STALE);
    let live = claim_one(h, &request(&job, "r1", &at(&a, 0), true)).await;
    let b_lease = leased(h, &request(&job, "r1", &at(&b, 9), true)).await;
    finish(h, &b_lease, &ok()).await;
    assert!(stale.lease().is_some() && live.lease().is_some());

    let now = h.store.now().await.unwrap();
    let summaries = summaries_as_of_rows(h, &job).await;
    assert_eq!(summaries.len(), 2);
    let sa = &summaries[0];
    assert_eq!((&sa.job_name, &sa.scope), (&job, &a));
    assert_eq!(
        (sa.latest.plan_time, sa.latest.status),
        (base, Status::Running)
    );
    assert_eq!(sa.last_success_plan_time, Some(base - MINUTE * 5));
    assert!(sa.last_success_finished_at.is_some());
    assert_eq!((sa.running, sa.stale), (1, 1));
    assert_eq!(
        (sa.retry_pending, sa.exhausted, sa.stale_timeout),
        (1, 1, 1)
    );
    assert!(sa.next_retry_at.unwrap() > now);
    assert_eq!(summaries[1].scope, b);
    assert_eq!(summaries[1].latest.status, Status::Success);
    let all = h.store.scope_summaries(None).await.unwrap();
    assert!(all
        .windows(2)
        .all(|w| (&w[0].job_name, &w[0].scope) < (&w[1].job_name, &w[1].scope)));
    assert!(all.iter().filter(|s| s.job_name == job).count() == 2);
}

/// The summaries of `job`, each checked against [`ScopeSummary::of_rows`]
/// over its scope's rows, read at one store time.
async fn summaries_as_of_rows(h: &Harness, job: &str) -> Vec<ScopeSummary> {
    let summaries = h.store.scope_summaries(Some(job)).await.unwrap();
    let now = h.store.now().await.unwrap();
    for summary in &summaries {
        let filter = ExecutionFilter {
            job_name: Some(job.to_owned()),
            scope: Some(summary.scope.clone()),
            ..Default::default()
        };
        let rows = list(h, filter).await;
        assert_eq!(Some(summary), ScopeSummary::of_rows(&rows, now).as_ref());
    }
    summaries
}

/// The FAILED rows that ended for good (exhausted, skipped by the overlap
/// policy) stay counted right in the summaries through every write that
/// makes or unmakes one — a batch of failing finishes, an overlap skip, an
/// operator's retry of an exhausted row and its exhaustion again, prunes —
/// each time equal to [`ScopeSummary::of_rows`] (a store may keep these
/// counts apart from the rows: `docs/contract.md` §10, "Operator reads").
pub async fn summaries_count_ended_failures_through_retries_and_prunes(h: &Harness) {
    let job = unique("ended");
    let base = this_minute(h).await;
    let (a, b) = (Scope::new("tenant", "a"), Scope::new("tenant", "b"));
    let keys = [
        key(a.clone(), base - MINUTE * 6),
        key(a.clone(), base - MINUTE * 5),
        key(a.clone(), base - MINUTE * 4),
        key(b.clone(), base - MINUTE * 6),
    ];
    let once = ClaimRequest {
        max_attempts: 1,
        ..request(&job, "r1", &keys, true)
    };
    let ended = leases(h, &once).await;
    let failure = failed(Duration::ZERO);
    let items: Vec<(&Lease, &Finish)> = ended.iter().map(|l| (l, &failure)).collect();
    assert!(h.store.finish_many(&items).await.iter().all(Result::is_ok));
    // a: a live run, then a plan the overlap policy skips.
    let live = [key(a.clone(), base - MINUTE)];
    let live = leased(h, &request(&job, "r1", &live, true)).await;
    let skipped = [key(a.clone(), base)];
    let skip = ClaimRequest {
        steering: Steering {
            overlap: OverlapPolicy::Skip,
            ..Steering::NONE
        },
        ..request(&job, "r1", &skipped, true)
    };
    assert_eq!(
        h.store.claim(&skip).await.unwrap(),
        vec![ClaimOutcome::Skipped]
    );
    let counts = |s: &[ScopeSummary]| -> Vec<(u64, u64)> {
        s.iter().map(|s| (s.exhausted, s.skipped)).collect()
    };
    let now = summaries_as_of_rows(h, &job).await;
    assert_eq!(counts(&now), [(3, 1), (1, 0)]);

    // An operator's retry takes a row out of the exhausted ones; failing
    // again puts it back.
    h.store.retry_execution(ended[0].id).await.unwrap();
    let now = summaries_as_of_rows(h, &job).await;
    assert_eq!(counts(&now), [(2, 1), (1, 0)]);
    assert_eq!(now[0].retry_pending, 1);
    let again = [key(a.clone(), base - MINUTE * 6)];
    let retried = leased(h, &request(&job, "r1", &again, true)).await;
    finish(h, &retried, &failed(Duration::ZERO)).await;
    assert_eq!(
        counts(&summaries_as_of_rows(h, &job).await),
        [(3, 1), (1, 0)]
    );

    // Pruned one by one: a keeps its live run and loses every ended row,
    // b goes whole.
    // A second on, so every row finished so far is before the cutoff and
    // the live run is still well within its lease.
    h.time.advance(Duration::from_secs(1));
    prune_all(h, h.store.now().await.unwrap(), 1).await;
    let now = summaries_as_of_rows(h, &job).await;
    assert_eq!(counts(&now), [(0, 0)]);
    assert_eq!((now[0].scope.clone(), now[0].running), (a, 1));
    finish(h, &live, &ok()).await;
}

/// `plan_times_since`: every row of the job planned at or after the
/// instant, whatever its status, each once, ordered by scope (byte-wise)
/// then plan time; rows before the instant, and other jobs' rows, are not
/// listed; a job without rows, or one no row can have, lists nothing.
pub async fn plan_times_since_lists_every_scope_in_one_read(h: &Harness) {
    let job = unique("planned");
    let other = unique("planned_other");
    let base = this_minute(h).await;
    // Scopes whose byte order differs from a case-insensitive one.
    let scopes = [
        Scope::new("tenant", "b"),
        Scope::new("tenant", "B"),
        Scope::new("global", "global"),
    ];
    let keys: Vec<PlanKey> = scopes
        .iter()
        .flat_map(|s| (0..4u32).map(move |i| key(s.clone(), base - MINUTE * i)))
        .collect();
    let claimed = leases(h, &request(&job, "r1", &keys, true)).await;
    finish(h, &claimed[0], &ok()).await;
    finish(h, &claimed[1], &failed(Duration::ZERO)).await;
    leases(h, &request(&other, "r1", &keys[..2], true)).await;
    let from = base - MINUTE * 2;
    let found = h.store.plan_times_since(&job, from).await.unwrap();
    let mut expected: Vec<PlannedAt> = keys
        .iter()
        .filter(|k| k.plan_time >= from)
        .map(|k| PlannedAt {
            scope: k.scope.clone(),
            plan_time: k.plan_time,
        })
        .collect();
    expected.sort();
    assert_eq!(found.len(), 9);
    assert_eq!(found, expected);
    // A bound between two plan times is rounded up, as plan_time_from is.
    let just_after = from - Duration::from_nanos(1);
    assert_eq!(
        h.store.plan_times_since(&job, just_after).await.unwrap(),
        expected
    );
    assert!(h
        .store
        .plan_times_since(&unique("planned_none"), from)
        .await
        .unwrap()
        .is_empty());
    assert!(h
        .store
        .plan_times_since("nul\0job", from)
        .await
        .unwrap()
        .is_empty());
}

/// An operator's retry makes a FAILED row run again on the next claim, even
/// a non-reentrant job's `stale_timeout` row or one with no attempt left;
/// RUNNING, SUCCESS and unknown rows are refused and unchanged.
pub async fn operator_retry_repairs_failed_rows_and_refuses_others(h: &Harness) {
    // A non-reentrant job's swept row.
    let job = unique("operator_stale");
    let (key, lease) = swept(h, &job, "dead").await;
    assert_conflicts(
        h,
        &request(&job, "r2", &key, false),
        "waits for an operator",
    )
    .await;
    let before = h.store.now().await.unwrap();
    let repaired = h.store.retry_execution(lease.id).await.unwrap();
    let after = h.store.now().await.unwrap();
    assert_eq!(repaired.status, Status::Failed);
    assert_eq!(
        repaired.error_code.as_deref(),
        Some(scheduler_core::machine::OPERATOR_RETRY_CODE)
    );
    assert_eq!(
        repaired.error_msg.as_deref(),
        Some("operator retry; last error: stale_timeout")
    );
    let due = repaired.next_retry_at.unwrap();
    assert!(due >= before && due <= after);
    assert_eq!((repaired.attempt, repaired.max_attempts), (1, 3));
    assert_eq!(row(h, lease.id).await, repaired);
    let ClaimOutcome::Retried(again) = claim_one(h, &request(&job, "r2", &key, false)).await else {
        panic!("the repaired row runs again");
    };
    assert_eq!(again.attempt, 2);
    // RUNNING and SUCCESS rows are refused, unchanged.
    let refused_unchanged = || async {
        let before = row(h, again.id).await;
        assert!(matches!(
            h.store.retry_execution(again.id).await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(row(h, again.id).await, before);
    };
    refused_unchanged().await;
    finish(h, &again, &ok()).await;
    refused_unchanged().await;
    let unknown = Uuid::now_v7();
    assert!(
        matches!(h.store.retry_execution(unknown).await, Err(StoreError::NotFound { id }) if id == unknown)
    );

    // An exhausted row gets one more attempt.
    let job = unique("operator_exhausted");
    let key = [plan_key(h, Scope::global()).await];
    let req = request(&job, "r1", &key, true);
    let lease = exhaust(h, &req, leased(h, &req).await).await;
    assert_conflicts(h, &req, "no attempt left").await;
    let repaired = h.store.retry_execution(lease.id).await.unwrap();
    assert_eq!((repaired.attempt, repaired.max_attempts), (3, 4));
    let ClaimOutcome::Retried(last) = claim_one(h, &req).await else {
        panic!("one more attempt is granted");
    };
    assert_eq!((last.attempt, last.max_attempts), (4, 4));
}

/// Pruning deletes terminal rows finished before the cutoff, at most
/// `limit` per call, oldest first; a dry run counts without deleting;
/// RUNNING rows and newer rows stay.
pub async fn prune_deletes_only_old_terminal_rows(h: &Harness) {
    let job = unique("prune");
    let base = this_minute(h).await;
    let old_keys = keys_of("t", &["old_ok", "old_failed", "old_running"], base);
    let old = leases(h, &request(&job, "r1", &old_keys, true)).await;
    finish(h, &old[0], &ok()).await;
    h.time.advance(Duration::from_secs(1));
    finish(h, &old[1], &failed(Duration::ZERO)).await;
    h.time.advance(Duration::from_secs(3600));
    let cutoff = h.store.now().await.unwrap();
    h.time.advance(Duration::from_secs(1));
    let new_key = keys_of("t", &["new_ok"], base);
    let fresh = leased(h, &request(&job, "r1", &new_key, true)).await;
    finish(h, &fresh, &ok()).await;
    let mine = || async {
        let mut ids: Vec<String> = rows_of(h, &job)
            .await
            .into_iter()
            .map(|r| r.scope.id.to_string())
            .collect();
        ids.sort();
        ids
    };
    // Other rows of this store (other tests' jobs) may be old too, so count
    // only this job's.
    let counted = h.store.prune_finished(&Prune::count(cutoff)).await.unwrap();
    assert!(
        counted >= 2,
        "the dry run counts both old terminal rows: {counted}"
    );
    assert_eq!(mine().await.len(), 4, "a dry run deletes nothing");
    assert!(
        h.store
            .prune_finished(&Prune::batch(cutoff, 1))
            .await
            .unwrap()
            <= 1,
        "at most `limit` per call"
    );
    prune_all(h, cutoff, 1).await;
    assert_eq!(
        mine().await,
        vec!["new_ok".to_owned(), "old_running".to_owned()]
    );
    assert_eq!(
        h.store.prune_finished(&Prune::count(cutoff)).await.unwrap(),
        0
    );
}
