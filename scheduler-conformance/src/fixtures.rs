//! What every area of the suite builds on: the [`Harness`], claim requests,
//! and the plumbing the checks would otherwise repeat (claim keys and
//! collect their leases, finish each with a failure, read one job's rows).
//!
//! A few fixtures are public, for the other crates' test suites (the
//! operator, the dashboard, the command line), which set their stores up
//! the same way: announce a replica ([`replica`], [`announce`]) and claim
//! fresh plans to finish as each test needs ([`claim_keys`],
//! [`claim_now`]). They take any [`LeaseStore`], not a [`Harness`].
//!
//! The fixtures panic on any store error they do not expect: they set a
//! check up, and a check whose set-up fails must fail loudly, not assert
//! on a half-built state.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt};

use serde_json::Map;
use time::OffsetDateTime;
use uuid::Uuid;

use scheduler_core::plan::floor;
use scheduler_core::time::TimeControl;
use scheduler_core::{
    Announcement, Attempt, ClaimOutcome, ClaimRequest, ErrorCode, Execution, ExecutionAudit,
    ExecutionFilter, Finish, Lease, LeaseStore, LeaseStoreExt, PlanKey, Presence, Prune,
    RegisteredJob, ReplicaInfo, RetryDue, RetryRead, Scope, StoreError,
};

/// A store under test and control over its store time, and what to undo
/// once a check has passed.
#[derive(Clone)]
pub struct Harness {
    /// The store.
    pub store: Arc<dyn ExecutionAudit>,
    /// Moves the store's time forward.
    pub time: Arc<dyn TimeControl>,
    teardown: Option<Teardown>,
}

/// Removes what a harness's set-up created (a schema, say): called once,
/// after the store is dropped.
type Teardown = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

impl Harness {
    /// A harness over `store` whose time `time` controls, with nothing to
    /// tear down.
    pub fn new(store: Arc<dyn ExecutionAudit>, time: Arc<dyn TimeControl>) -> Self {
        Harness {
            store,
            time,
            teardown: None,
        }
    }

    /// Runs `teardown` in [`tear_down`](Self::tear_down), after a passing
    /// check: for a set-up that creates what outlives the store, such as
    /// a schema on a shared server. A check that panics never gets there,
    /// and leaves what it used for a look (and for a janitor).
    pub fn with_teardown<F, Fut>(mut self, teardown: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.teardown = Some(Arc::new(move || teardown().boxed()));
        self
    }

    /// Drops the store and time control, then runs the teardown, if any.
    /// [`conformance_tests!`](crate::conformance_tests) calls it after each
    /// check that passed.
    pub async fn tear_down(self) {
        let Harness {
            store,
            time,
            teardown,
        } = self;
        // The store's connections go before what they were connected to.
        drop((store, time));
        if let Some(teardown) = teardown {
            teardown().await;
        }
    }
}

/// The stale timeout of every claim the suite makes.
pub(crate) const STALE: Duration = Duration::from_secs(60);

/// One minute: the cadence the suite's plan times fall on.
pub(crate) const MINUTE: Duration = Duration::from_secs(60);

/// Long enough past [`STALE`] that a lease claimed before is surely stale.
pub(crate) const PAST_STALE: Duration = Duration::from_secs(61);

/// A name no other check uses, so checks may share one database.
pub(crate) fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", Uuid::new_v4().simple())
}

/// A claim of `keys` for `job` by `runner`, with three attempts and the
/// suite's [`STALE`] timeout.
pub(crate) fn request<'a>(
    job: &'a str,
    runner: &'a str,
    keys: &'a [PlanKey],
    reentrant: bool,
) -> ClaimRequest<'a> {
    ClaimRequest {
        finishing: &[],
        steering: scheduler_core::model::Steering::NONE,
        job_name: job,
        runner_id: runner,
        max_attempts: 3,
        stale_timeout: STALE,
        allow_stale_reentry: reentrant,
        keys,
    }
}

/// The key of `scope` at `plan_time`.
pub(crate) fn key(scope: Scope, plan_time: OffsetDateTime) -> PlanKey {
    PlanKey { scope, plan_time }
}

/// Store time, floored to the minute: the current plan time.
pub(crate) async fn this_minute(h: &Harness) -> OffsetDateTime {
    floor(h.store.now().await.expect("store time"), MINUTE)
}

/// The key of `scope` at the current plan time.
pub(crate) async fn plan_key(h: &Harness, scope: Scope) -> PlanKey {
    key(scope, this_minute(h).await)
}

/// One key per scope id of `ids`, each of kind `kind`, all at `plan_time`.
pub(crate) fn keys_of(kind: &str, ids: &[&str], plan_time: OffsetDateTime) -> Vec<PlanKey> {
    ids.iter()
        .map(|id| key(Scope::new(kind, *id), plan_time))
        .collect()
}

/// Claims `req`, which must not fail.
pub(crate) async fn claim(h: &Harness, req: &ClaimRequest<'_>) -> Vec<ClaimOutcome> {
    h.store.claim(req).await.expect("claim")
}

/// Claims the one key of `req`.
pub(crate) async fn claim_one(h: &Harness, req: &ClaimRequest<'_>) -> ClaimOutcome {
    let mut outcomes = claim(h, req).await;
    assert_eq!(outcomes.len(), 1, "one outcome per key");
    outcomes.remove(0)
}

/// Claims the one key of `req`, which must yield a lease (won, retried
/// or stolen).
pub(crate) async fn leased(h: &Harness, req: &ClaimRequest<'_>) -> Lease {
    match claim_one(h, req).await.lease() {
        Some(lease) => lease.clone(),
        None => panic!("expected a lease for {:?}", req.keys),
    }
}

/// Claims the one key of `req`, which must conflict: `why` says why.
pub(crate) async fn assert_conflicts(h: &Harness, req: &ClaimRequest<'_>, why: &str) {
    assert_eq!(claim_one(h, req).await, ClaimOutcome::Conflicted, "{why}");
}

/// A lease of `job` (non-reentrant) on the global scope, claimed by
/// `runner`, gone stale and swept: its row is FAILED with
/// `stale_timeout`, never due by itself. The key and the dead lease.
pub(crate) async fn swept(h: &Harness, job: &str, runner: &str) -> ([PlanKey; 1], Lease) {
    let key = [plan_key(h, Scope::global()).await];
    let lease = leased(h, &request(job, runner, &key, false)).await;
    h.time.advance(PAST_STALE);
    assert_eq!(sweep(h, job, false).await, 1);
    (key, lease)
}

/// One `finish_many` batch over three leases of `job` claimed by `r1`
/// (scopes `t/ok`, `t/failed`, `t/stolen`), the first two kept alive by a
/// heartbeat, the third gone stale and taken over by `r2` before the batch:
/// a success of the first, a failure ("boom", retried after 30 s) of the
/// second, a success of the stolen one, then both live leases again. The
/// first two items must be written and the other three refused as
/// `LeaseLost`. The three leases, and the thief's.
pub(crate) async fn finish_a_mixed_batch(h: &Harness, job: &str) -> (Vec<Lease>, Lease) {
    let keys = keys_of("t", &["ok", "failed", "stolen"], this_minute(h).await);
    let leases = leases(h, &request(job, "r1", &keys, true)).await;
    h.time.advance(STALE - Duration::from_secs(5));
    for lease in &leases[..2] {
        h.store.heartbeat(lease, STALE).await.expect("heartbeat");
    }
    h.time.advance(Duration::from_secs(10));
    let ClaimOutcome::Stolen(thief) = claim_one(h, &request(job, "r2", &keys[2..], true)).await
    else {
        panic!("the third lease went stale and is taken over");
    };
    let (success, failure) = (ok(), failed(Duration::from_secs(30)));
    let items = [
        (&leases[0], &success),
        (&leases[1], &failure),
        (&leases[2], &success),
        (&leases[0], &failure),
        (&leases[1], &success),
    ];
    let results = h.store.finish_many(&items).await;
    assert_eq!(results.len(), items.len(), "one result per item");
    assert!(results[0].is_ok() && results[1].is_ok(), "{results:?}");
    for lost in results.into_iter().skip(2) {
        assert_lease_lost(lost);
    }
    (leases, thief)
}

/// Prunes the terminal rows finished before `cutoff`, `limit` per call,
/// until a call deletes nothing. Other rows of the store may be that old
/// too: callers look only at their own.
pub(crate) async fn prune_all(h: &Harness, cutoff: OffsetDateTime, limit: usize) {
    while h
        .store
        .prune_finished(&Prune::batch(cutoff, limit))
        .await
        .expect("prune_finished")
        > 0
    {}
}

/// Claims every key of `req`, each of which must yield a lease, in key
/// order.
pub(crate) async fn leases(h: &Harness, req: &ClaimRequest<'_>) -> Vec<Lease> {
    granted(h.store.as_ref(), req).await
}

/// Claims every key of `req` on `store`, each of which must yield a
/// lease, in key order.
async fn granted(store: &dyn LeaseStore, req: &ClaimRequest<'_>) -> Vec<Lease> {
    store
        .claim(req)
        .await
        .expect("claim")
        .iter()
        .map(|o| match o.lease() {
            Some(lease) => lease.clone(),
            None => panic!("expected a lease for every key of {:?}: {o:?}", req.keys),
        })
        .collect()
}

/// The stale timeout of the public fixtures' claims: an hour, so that no
/// lease they leave running goes stale however slow the test (a store on
/// the host's clock included).
const HOUR: Duration = Duration::from_secs(3600);

/// Claims `keys` of `job` for `runner_id` with `max_attempts`, an hour's
/// stale timeout and no stale reentry: fresh plans (or retries due) to
/// finish as the test needs. Every key must be granted; the leases, in
/// key order.
pub async fn claim_keys(
    store: &dyn LeaseStore,
    job: &str,
    runner_id: &str,
    keys: &[PlanKey],
    max_attempts: i32,
) -> Vec<Lease> {
    let req = ClaimRequest {
        max_attempts,
        stale_timeout: HOUR,
        ..request(job, runner_id, keys, false)
    };
    granted(store, &req).await
}

/// Claims, as [`claim_keys`] does, the current plan (store time floored to
/// the minute) of `job` in each scope `tenant/ID` of `tenant_ids`. The
/// leases, in the order of `tenant_ids`.
pub async fn claim_now(
    store: &dyn LeaseStore,
    job: &str,
    runner_id: &str,
    tenant_ids: &[&str],
    max_attempts: i32,
) -> Vec<Lease> {
    let now = floor(store.now().await.expect("store time"), MINUTE);
    let keys = keys_of("tenant", tenant_ids, now);
    claim_keys(store, job, runner_id, &keys, max_attempts).await
}

/// Replica `runner_id` running `jobs`: host `h`, pid 1, version `test`,
/// refreshed every 30 s (live for 90 s of store time after it announces),
/// no kinds. Change what a test needs with struct update syntax.
pub fn replica(runner_id: &str, jobs: Vec<RegisteredJob>) -> ReplicaInfo {
    ReplicaInfo {
        runner_id: runner_id.to_owned(),
        host: "h".to_owned(),
        pid: 1,
        version: "test".to_owned(),
        refresh_interval: Duration::from_secs(30),
        jobs,
        kinds: Vec::new(),
    }
}

/// Announces `replica` starting, at store time, as a manager's first tick
/// would.
pub async fn announce(store: &dyn LeaseStore, replica: ReplicaInfo) {
    store
        .announce(&Announcement {
            replica,
            presence: Presence::Started,
        })
        .await
        .expect("announce");
}

/// `claimers` runners (`runner-0`, `runner-1`, ...) claiming `key` at
/// once; their outcomes in runner order.
pub(crate) async fn race(
    h: &Harness,
    job: &str,
    key: &[PlanKey],
    runners: &[String],
) -> Vec<ClaimOutcome> {
    let claims = runners.iter().map(|runner| {
        let req = request(job, runner, key, true);
        let store = h.store.clone();
        async move { store.claim(&req).await.expect("claim").remove(0) }
    });
    futures::future::join_all(claims).await
}

/// The names of `claimers` racing runners.
pub(crate) fn runners(claimers: usize) -> Vec<String> {
    (0..claimers).map(|i| format!("runner-{i}")).collect()
}

/// A success: 3 ms, 7 rows, no result.
pub(crate) fn ok() -> Finish {
    Finish::success(Duration::from_millis(3), 7, Map::new())
}

/// A handler error, "boom", retried after `retry_after` while attempts
/// remain.
pub(crate) fn failed(retry_after: Duration) -> Finish {
    Finish::failure(
        Duration::from_millis(3),
        ErrorCode::HandlerError,
        "boom",
        retry_after,
    )
}

/// Writes `finish` for `lease`, which must still hold.
pub(crate) async fn finish(h: &Harness, lease: &Lease, finish: &Finish) {
    h.store
        .finish(lease, finish)
        .await
        .expect("the terminal write succeeds");
}

/// Finishes each of `leases` with a failure retried after `retry_after`.
pub(crate) async fn fail_each<'a>(
    h: &Harness,
    leases: impl IntoIterator<Item = &'a Lease>,
    retry_after: Duration,
) {
    for lease in leases {
        finish(h, lease, &failed(retry_after)).await;
    }
}

/// Fails `lease` and every attempt after it (retried at once by `runner`)
/// until none is left; the last lease, whose row is now FAILED with no
/// retry.
pub(crate) async fn exhaust(h: &Harness, req: &ClaimRequest<'_>, mut lease: Lease) -> Lease {
    while lease.attempt < lease.max_attempts {
        finish(h, &lease, &failed(Duration::ZERO)).await;
        lease = leased(h, req).await;
    }
    finish(h, &lease, &failed(Duration::ZERO)).await;
    lease
}

/// The row `id`, which must exist.
pub(crate) async fn row(h: &Harness, id: Uuid) -> Execution {
    h.store
        .get_execution(id)
        .await
        .expect("get_execution")
        .expect("the row exists")
}

/// The attempts log of execution `id`, which must be readable.
pub(crate) async fn attempts(h: &Harness, id: Uuid) -> Vec<Attempt> {
    h.store.attempts(id).await.expect("attempts")
}

/// Every row of `job`, as the audit lists them (newest plan time first).
pub(crate) async fn rows_of(h: &Harness, job: &str) -> Vec<Execution> {
    list(
        h,
        ExecutionFilter {
            job_name: Some(job.to_owned()),
            ..Default::default()
        },
    )
    .await
}

/// The rows `filter` lists, which must not fail.
pub(crate) async fn list(h: &Harness, filter: ExecutionFilter) -> Vec<Execution> {
    h.store
        .list_executions(&filter)
        .await
        .expect("list_executions")
}

/// The due retries of `job` from `since`, at most `limit` per scope and
/// kind, which must not fail.
pub(crate) async fn retry_due(
    h: &Harness,
    job: &str,
    since: OffsetDateTime,
    reentrant: bool,
    limit: usize,
) -> Vec<RetryDue> {
    h.store
        .retry_due(&RetryRead {
            job_name: job,
            since,
            allow_stale_reentry: reentrant,
            per_scope_limit: limit,
        })
        .await
        .expect("retry_due")
}

/// Sweeps `job`'s stale leases; how many rows were closed.
pub(crate) async fn sweep(h: &Harness, job: &str, reentrant: bool) -> u64 {
    h.store
        .sweep_stale(job, reentrant)
        .await
        .expect("sweep_stale")
}

/// Asserts that `result` is [`StoreError::LeaseLost`].
pub(crate) fn assert_lease_lost<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    assert!(
        matches!(result, Err(StoreError::LeaseLost { .. })),
        "expected LeaseLost: {result:?}"
    );
}

/// Text that cannot be compressed: hexadecimal UUIDs, `bytes` long.
pub(crate) fn incompressible(bytes: usize) -> String {
    let mut text = String::new();
    while text.len() < bytes {
        text.push_str(&Uuid::new_v4().simple().to_string());
    }
    text.truncate(bytes);
    text
}

/// Polls `done` every 10 ms (real time) until it holds; panics after a
/// minute naming `what`.
pub(crate) async fn wait_for<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !done().await {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
