//! Steering on a real server (`docs/contract.md` §11): pauses, the overlap
//! policies, the origins of triggers and backfills, and the controls.
//!
//! Most tests run each operation on the PostgreSQL store and on the memory
//! store (the reference) side by side, on one manual clock (PostgreSQL
//! through its client-clock option), and require the same outcomes, rows,
//! attempts logs and reads, ids and tokens aside (each store mints its
//! own). The claim lock is tested on its own, on the server's clock,
//! across connections.

mod common;

use std::sync::Arc;
use std::time::Duration;

use scheduler_core::model::{
    Control, ControlAction, ControlChange, ControlRead, ControlState, NewControl, Origin,
    OverlapPolicy, Progress, Steering,
};
use scheduler_core::{
    Attempt, ClaimOutcome, ClaimRequest, ErrorCode, Execution, ExecutionAudit, ExecutionFilter,
    Finish, Lease, LeaseStore, LeaseStoreExt, ManualClock, PlanKey, RetryDue, RetryRead, Scope,
    StoreError, TimeControl,
};
use scheduler_memory::MemoryLeaseStore;
use scheduler_postgres::{PgLeaseStore, CONTROLS_CHANNEL};
use sqlx_postgres::PgListener;
use time::macros::datetime;
use time::OffsetDateTime;
use uuid::Uuid;

use common::{test_db, TestDb};

const T0: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);
const STALE: Duration = Duration::from_secs(60);

fn scope(id: &str) -> Scope {
    Scope::new("tenant", id)
}

/// Key `(scope, T0 + minutes)`.
fn key(id: &str, minutes: i64) -> PlanKey {
    PlanKey {
        scope: scope(id),
        plan_time: T0 + time::Duration::minutes(minutes),
    }
}

fn request<'a>(job: &'a str, keys: &'a [PlanKey], steering: Steering) -> ClaimRequest<'a> {
    ClaimRequest {
        finishing: &[],
        job_name: job,
        runner_id: "r1",
        max_attempts: 3,
        stale_timeout: STALE,
        allow_stale_reentry: false,
        keys,
        steering,
    }
}

fn pause(job: &str, scope: Option<Scope>, until: Option<OffsetDateTime>) -> NewControl {
    NewControl {
        job_name: job.into(),
        scope,
        note: "maintenance window (ops)".into(),
        action: ControlAction::Pause {
            until,
            skip_missed: false,
        },
    }
}

fn blank_lease(lease: Lease) -> Lease {
    Lease {
        id: Uuid::nil(),
        token: Uuid::nil(),
        ..lease
    }
}

fn blank_row(row: Execution) -> Execution {
    Execution {
        id: Uuid::nil(),
        lease_token: Uuid::nil(),
        ..row
    }
}

fn blank_control(control: Control) -> Control {
    Control {
        id: Uuid::nil(),
        ..control
    }
}

/// The PostgreSQL store and the memory store, on one manual clock.
struct Pair {
    db: TestDb,
    pg: PgLeaseStore,
    memory: MemoryLeaseStore,
    clock: ManualClock,
}

impl Pair {
    async fn new() -> Option<Pair> {
        let db = test_db().await?;
        let clock = ManualClock::new(T0);
        let options = db.options("steering", 4).clock(Arc::new(clock.clone()));
        let pg = PgLeaseStore::connect_with(&db.url, &options)
            .await
            .expect("connect the store");
        let memory = MemoryLeaseStore::with_clock(Arc::new(clock.clone()));
        Some(Pair {
            db,
            pg,
            memory,
            clock,
        })
    }

    /// Claims on both; the outcomes must agree. Returns PostgreSQL's
    /// leases and the memory store's.
    async fn claim(
        &self,
        request: &ClaimRequest<'_>,
    ) -> (Vec<ClaimOutcome>, Vec<Option<(Lease, Lease)>>) {
        let pg = self.pg.claim(request).await.unwrap();
        let memory = self.memory.claim(request).await.unwrap();
        let blank = |o: &[ClaimOutcome]| -> Vec<ClaimOutcome> {
            o.iter().map(|o| o.clone().map(blank_lease)).collect()
        };
        assert_eq!(blank(&pg), blank(&memory), "claim outcomes");
        let leases = pg
            .iter()
            .zip(&memory)
            .map(|(p, m)| Some((p.lease()?.clone(), m.lease()?.clone())))
            .collect();
        (blank(&pg), leases)
    }

    /// The rows of `job` on both, which must agree; by scope and plan time.
    async fn rows(&self, job: &str) -> Vec<Execution> {
        let filter = ExecutionFilter {
            job_name: Some(job.into()),
            ..Default::default()
        };
        let read = |rows: Vec<Execution>| {
            let mut rows: Vec<Execution> = rows.into_iter().map(blank_row).collect();
            rows.sort_by(|a, b| (&a.scope, a.plan_time).cmp(&(&b.scope, b.plan_time)));
            rows
        };
        let pg = read(self.pg.list_executions(&filter).await.unwrap());
        let memory = read(self.memory.list_executions(&filter).await.unwrap());
        assert_eq!(pg, memory, "rows of {job}");
        pg
    }

    /// The attempts log of the rows `pg` and `memory` (one execution on
    /// each store), which must agree.
    async fn attempts(&self, pg: Uuid, memory: Uuid) -> Vec<Attempt> {
        let blank = |log: Vec<Vec<Attempt>>| -> Vec<Attempt> {
            log.into_iter()
                .flatten()
                .map(|a| Attempt {
                    execution_id: Uuid::nil(),
                    ..a
                })
                .collect()
        };
        let on_pg = blank(self.pg.attempts_of(&[pg]).await.unwrap());
        let on_memory = blank(self.memory.attempts_of(&[memory]).await.unwrap());
        assert_eq!(on_pg, on_memory, "attempts log");
        on_pg
    }

    /// Adds `control` on both; returns the stored controls (PostgreSQL's,
    /// the memory store's), which must agree, or the error both gave.
    async fn add(&self, control: &NewControl) -> Result<(Control, Control), StoreError> {
        let pg = self.pg.add_control(control).await;
        let memory = self.memory.add_control(control).await;
        match (pg, memory) {
            (Ok(pg), Ok(memory)) => {
                assert_eq!(blank_control(pg.clone()), blank_control(memory.clone()));
                Ok((pg, memory))
            }
            (Err(pg), Err(memory)) => {
                assert_eq!(
                    std::mem::discriminant(&pg),
                    std::mem::discriminant(&memory),
                    "{pg:?} / {memory:?}"
                );
                Err(pg)
            }
            (pg, memory) => panic!("the stores disagree: {pg:?} / {memory:?}"),
        }
    }

    /// Changes control `ids` (PostgreSQL's, the memory store's) on both.
    async fn update(
        &self,
        (pg, memory): (Uuid, Uuid),
        change: &ControlChange,
    ) -> Result<Control, StoreError> {
        let on_pg = self.pg.update_control(pg, change).await;
        let on_memory = self.memory.update_control(memory, change).await;
        match (on_pg, on_memory) {
            (Ok(p), Ok(m)) => {
                assert_eq!(blank_control(p.clone()), blank_control(m));
                Ok(p)
            }
            (Err(p), Err(m)) => {
                assert_eq!(std::mem::discriminant(&p), std::mem::discriminant(&m));
                Err(p)
            }
            (p, m) => panic!("the stores disagree: {p:?} / {m:?}"),
        }
    }

    /// The controls `read` selects, on both.
    async fn controls(&self, read: &ControlRead) -> Vec<Control> {
        let blank =
            |c: Vec<Control>| -> Vec<Control> { c.into_iter().map(blank_control).collect() };
        let pg = blank(self.pg.controls(read).await.unwrap());
        assert_eq!(pg, blank(self.memory.controls(read).await.unwrap()));
        pg
    }

    async fn retry_due(&self, job: &str, since: OffsetDateTime) -> Vec<RetryDue> {
        let read = RetryRead {
            job_name: job,
            since,
            allow_stale_reentry: false,
            per_scope_limit: 10,
        };
        let pg = self.pg.retry_due(&read).await.unwrap();
        assert_eq!(pg, self.memory.retry_due(&read).await.unwrap());
        pg
    }

    async fn finish(&self, (pg, memory): &(Lease, Lease), finish: &Finish) {
        self.pg.finish(pg, finish).await.unwrap();
        self.memory.finish(memory, finish).await.unwrap();
    }

    async fn done(self) {
        drop(self.pg);
        self.db.drop_schema().await;
    }
}

/// The next notification about one of `jobs`, which must come within 10 s
/// (a bound on a notification already sent, not a wait for a race). The
/// channel is the database's, so tests running beside this one (on other
/// schemas) are heard too, and passed over.
async fn heard(listener: &mut PgListener, jobs: &[&str]) -> sqlx_postgres::PgNotification {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let notification = listener.recv().await.unwrap();
            if jobs.contains(&notification.payload()) {
                return notification;
            }
        }
    })
    .await
    .expect("a notification within 10 s")
}

fn ids(pair: &(Control, Control)) -> (Uuid, Uuid) {
    (pair.0.id, pair.1.id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_stops_the_claims_it_covers_until_it_ends() {
    let Some(p) = Pair::new().await else { return };
    let job = "paused";
    let one = p.add(&pause(job, Some(scope("a")), None)).await.unwrap();
    assert_eq!(one.0.state, ControlState::Active);
    let again = p
        .add(&pause(job, Some(scope("a")), None))
        .await
        .unwrap_err();
    assert!(matches!(again, StoreError::Conflict(_)), "{again:?}");
    assert!(again.to_string().contains(&one.0.id.to_string()), "{again}");
    let keys = [key("a", 0), key("b", 0)];
    let (outcomes, _) = p.claim(&request(job, &keys, Steering::NONE)).await;
    assert!(matches!(
        outcomes[..],
        [ClaimOutcome::Paused, ClaimOutcome::Won(_)]
    ));

    // A pause of every scope is another target; it ends by itself.
    p.clock.advance(Duration::from_secs(1));
    let until = T0 + time::Duration::minutes(10);
    p.add(&pause(job, None, Some(until))).await.unwrap();
    let later = [key("b", 1), key("c", 1)];
    let (outcomes, _) = p.claim(&request(job, &later, Steering::NONE)).await;
    assert_eq!(outcomes, [ClaimOutcome::Paused, ClaimOutcome::Paused]);

    // Resuming the scope's pause leaves the other in force until `until`.
    p.clock.advance(Duration::from_secs(1));
    let resume = ControlChange::End {
        state: ControlState::Done,
        reason: Some("window over".into()),
        skip_missed: Some(true),
    };
    let resumed = p.update(ids(&one), &resume).await.unwrap();
    assert_eq!(resumed.ended_at, Some(p.pg.now().await.unwrap()));
    let again = p.update(ids(&one), &resume).await.unwrap_err();
    assert!(matches!(again, StoreError::Conflict(_)), "{again:?}");
    let (outcomes, _) = p.claim(&request(job, &keys, Steering::NONE)).await;
    assert_eq!(outcomes[0], ClaimOutcome::Paused, "every scope is paused");
    p.clock.set(until);
    let (outcomes, _) = p.claim(&request(job, &later, Steering::NONE)).await;
    assert!(matches!(
        outcomes[..],
        [ClaimOutcome::Won(_), ClaimOutcome::Won(_)]
    ));
    p.rows(job).await;

    // The reads: the active ones (the ran-out pause is still active), and
    // those ended since an instant.
    let read = ControlRead {
        jobs: Some(vec![job.into(), "other\0".into()]),
        ended_since: None,
    };
    let active = p.controls(&read).await;
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].id, Uuid::nil());
    assert!(!active[0].pauses(until));
    let since = ControlRead {
        ended_since: resumed.ended_at,
        ..read.clone()
    };
    assert_eq!(p.controls(&since).await.len(), 2);
    let after = ControlRead {
        ended_since: resumed.ended_at.map(|t| t + time::Duration::nanoseconds(1)),
        ..read
    };
    assert_eq!(p.controls(&after).await.len(), 1);
    assert_eq!(p.controls(&ControlRead::default()).await.len(), 1);
    assert!(p
        .controls(&ControlRead {
            jobs: Some(vec!["none".into()]),
            ended_since: Some(T0),
        })
        .await
        .is_empty());
    let unknown = Uuid::now_v7();
    let missing = p.update((unknown, unknown), &resume).await.unwrap_err();
    assert!(matches!(missing, StoreError::NotFound { id } if id == unknown));
    p.done().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_policies_skip_wait_and_cancel_as_the_reference_does() {
    let Some(p) = Pair::new().await else { return };
    let job = "overlap";
    let with = |policy| Steering::scheduled(policy);
    let first = [key("a", 0)];
    let (_, leases) = p
        .claim(&request(job, &first, with(OverlapPolicy::Skip)))
        .await;
    let running = leases[0].clone().unwrap();

    // skip: a FAILED overlap_skipped row, once; nothing logged.
    p.clock.advance(Duration::from_millis(250));
    let next = [key("a", 1), key("b", 1)];
    let (outcomes, _) = p
        .claim(&request(job, &next, with(OverlapPolicy::Skip)))
        .await;
    assert!(matches!(
        outcomes[..],
        [ClaimOutcome::Skipped, ClaimOutcome::Won(_)]
    ));
    let (outcomes, _) = p
        .claim(&request(job, &next[..1], with(OverlapPolicy::Skip)))
        .await;
    assert_eq!(outcomes, [ClaimOutcome::Conflicted]);
    let rows = p.rows(job).await;
    let skipped = &rows[1];
    assert_eq!(
        skipped.error_code.as_deref(),
        Some(ErrorCode::OverlapSkipped.as_str())
    );
    let skipped_ids = (
        p.pg.list_executions(&ExecutionFilter::default())
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.plan_time == skipped.plan_time && r.scope == scope("a"))
            .unwrap()
            .id,
        p.memory
            .list_executions(&ExecutionFilter::default())
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.plan_time == skipped.plan_time && r.scope == scope("a"))
            .unwrap()
            .id,
    );
    assert!(p.attempts(skipped_ids.0, skipped_ids.1).await.is_empty());

    // buffer_all waits; buffer_one skips all but the newest, which waits.
    let waiting = [key("a", 3), key("a", 2)];
    let (outcomes, _) = p
        .claim(&request(job, &waiting, with(OverlapPolicy::BufferAll)))
        .await;
    assert_eq!(outcomes, [ClaimOutcome::Busy, ClaimOutcome::Busy]);
    let (outcomes, _) = p
        .claim(&request(job, &waiting, with(OverlapPolicy::BufferOne)))
        .await;
    assert_eq!(outcomes, [ClaimOutcome::Busy, ClaimOutcome::Skipped]);

    // An operator's runs never hold the schedule up, and wait themselves.
    let trigger = Steering {
        overlap: OverlapPolicy::CancelOther,
        origin: Origin::Trigger,
        control_id: Some(Uuid::now_v7()),
        schedule_version: None,
    };
    let ad_hoc = [key("a", 4)];
    let (outcomes, _) = p.claim(&request(job, &ad_hoc, trigger)).await;
    assert_eq!(
        outcomes,
        [ClaimOutcome::Busy],
        "a trigger never replaces a plan"
    );
    let backfill = Steering {
        origin: Origin::Backfill,
        ..trigger
    };
    let (outcomes, _) = p.claim(&request(job, &ad_hoc, backfill)).await;
    assert_eq!(outcomes, [ClaimOutcome::Busy]);

    // cancel_other: the live run ends through its lease, logged, and the
    // newer one starts; a duplicate of its key changes nothing more.
    p.clock.advance(Duration::from_micros(1_500_999));
    let newer = [key("a", 5), key("a", 5)];
    let (outcomes, leases) = p
        .claim(&request(job, &newer, with(OverlapPolicy::CancelOther)))
        .await;
    assert!(matches!(
        outcomes[..],
        [ClaimOutcome::Won(_), ClaimOutcome::Conflicted]
    ));
    let rows = p.rows(job).await;
    let canceled = &rows[0];
    assert_eq!(
        canceled.error_code.as_deref(),
        Some(ErrorCode::OverlapCanceled.as_str())
    );
    assert_eq!(canceled.duration_ms, Some(1750));
    let log = p.attempts(running.0.id, running.1.id).await;
    assert_eq!(log.len(), 1);
    assert_eq!(
        log[0].error_code.as_deref(),
        Some(ErrorCode::OverlapCanceled.as_str())
    );
    let lost = p.pg.heartbeat(&running.0, STALE).await.unwrap_err();
    assert!(matches!(lost, StoreError::LeaseLost { .. }), "{lost:?}");
    let summaries = p.pg.scope_summaries(Some(job)).await.unwrap();
    assert_eq!(
        summaries,
        p.memory.scope_summaries(Some(job)).await.unwrap()
    );
    assert_eq!(
        summaries.iter().map(|s| s.skipped).collect::<Vec<_>>(),
        [3, 0]
    );
    assert_eq!(summaries[0].exhausted + summaries[0].retry_pending, 0);
    drop(leases);
    p.done().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_runs_carry_their_origin_past_planning_and_into_retries() {
    let Some(p) = Pair::new().await else { return };
    let job = "ad_hoc";
    let scheduled = [key("a", 0)];
    let (_, leases) = p.claim(&request(job, &scheduled, Steering::NONE)).await;
    let success = Finish::success(Duration::ZERO, 1, Default::default());
    p.finish(leases[0].as_ref().unwrap(), &success).await;

    // A trigger's run, later than the plan: planning does not see it.
    let trigger = p
        .add(&NewControl {
            job_name: job.into(),
            scope: Some(scope("a")),
            note: String::new(),
            action: ControlAction::Trigger,
        })
        .await
        .unwrap();
    let triggered = Steering {
        overlap: OverlapPolicy::AllowAll,
        origin: Origin::Trigger,
        control_id: Some(trigger.0.id),
        schedule_version: None,
    };
    let off_grid = [PlanKey {
        scope: scope("a"),
        plan_time: T0 + time::Duration::seconds(7),
    }];
    let (_, leases) = p.claim(&request(job, &off_grid, triggered)).await;
    let failure = Finish::failure(
        Duration::ZERO,
        ErrorCode::HandlerError,
        "boom",
        Duration::ZERO,
    );
    p.finish(leases[0].as_ref().unwrap(), &failure).await;
    let latest = p.pg.latest_executions(job, &[scope("a")]).await.unwrap();
    assert_eq!(
        latest,
        p.memory
            .latest_executions(job, &[scope("a")])
            .await
            .unwrap()
    );
    assert_eq!(
        latest[0].as_ref().unwrap().plan_time,
        T0,
        "the trigger is passed over"
    );

    // A backfill's instant is on the grid: planning sees it.
    let backfilled = Steering {
        origin: Origin::Backfill,
        control_id: Some(Uuid::now_v7()),
        ..triggered
    };
    let instant = [key("a", -60)];
    let (_, leases) = p.claim(&request(job, &instant, backfilled)).await;
    p.finish(leases[0].as_ref().unwrap(), &failure).await;
    let rows = p.rows(job).await;
    assert_eq!(
        rows.iter().map(|r| r.origin).collect::<Vec<_>>(),
        [Origin::Backfill, Origin::Scheduled, Origin::Trigger]
    );
    assert_eq!(rows[2].control_id, Some(trigger.0.id));

    // Both failed runs are due whatever their plan time: forced.
    p.clock.advance(Duration::from_secs(1));
    let due = p.retry_due(job, T0 + time::Duration::hours(1)).await;
    assert_eq!(
        due.iter()
            .map(|d| (d.origin, d.forced()))
            .collect::<Vec<_>>(),
        [(Origin::Backfill, true), (Origin::Trigger, true)]
    );
    let progress = p.pg.control_progress(trigger.0.id).await.unwrap();
    // Both stores' rows carry the id PostgreSQL minted (the claim's).
    assert_eq!(
        progress,
        p.memory.control_progress(trigger.0.id).await.unwrap()
    );
    assert_eq!(
        progress,
        Progress {
            succeeded: 0,
            failed: 1,
            running: 0
        }
    );
    assert_eq!(
        p.pg.control_progress(Uuid::now_v7()).await.unwrap(),
        Progress::default()
    );
    p.done().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfills_advance_by_compare_and_set_and_every_change_is_announced() {
    let Some(p) = Pair::new().await else { return };
    let (job, marker) = (
        format!("backfill_{}", p.db.schema),
        format!("marker_{}", p.db.schema),
    );
    let (job, marker) = (job.as_str(), marker.as_str());
    let mut listener = PgListener::connect(&p.db.url).await.unwrap();
    listener.listen(CONTROLS_CHANNEL).await.unwrap();
    let (from, to) = (T0 - time::Duration::hours(2), T0 - time::Duration::hours(1));
    let backfill = p
        .add(&NewControl {
            job_name: job.into(),
            scope: None,
            note: "é\u{1F600}".repeat(300),
            action: ControlAction::Backfill { from, to },
        })
        .await
        .unwrap();
    assert_eq!(backfill.0.cursor, Some(from));
    assert!(backfill.0.note.len() <= scheduler_core::model::MAX_NOTE_BYTES);
    let added = heard(&mut listener, &[job, marker]).await;
    assert_eq!((added.channel(), added.payload()), (CONTROLS_CHANNEL, job));

    let mid = from + time::Duration::minutes(30);
    let moved = p
        .update(ids(&backfill), &ControlChange::Advance { from, to: mid })
        .await
        .unwrap();
    assert_eq!(
        (moved.cursor, moved.state),
        (Some(mid), ControlState::Active)
    );
    let stale = p
        .update(ids(&backfill), &ControlChange::Advance { from, to: mid })
        .await
        .unwrap_err();
    assert!(matches!(stale, StoreError::Conflict(_)), "{stale:?}");
    let done = p
        .update(ids(&backfill), &ControlChange::Advance { from: mid, to })
        .await
        .unwrap();
    assert_eq!(done.state, ControlState::Done);
    // One notification per change that committed, none for the refused one.
    for _ in 0..2 {
        assert_eq!(heard(&mut listener, &[job, marker]).await.payload(), job);
    }
    let trigger = p
        .add(&NewControl {
            job_name: job.into(),
            scope: None,
            note: String::new(),
            action: ControlAction::Trigger,
        })
        .await
        .unwrap();
    let bad_reason = ControlChange::End {
        state: ControlState::Rejected,
        reason: Some("a\0b".into()),
        skip_missed: None,
    };
    let refused = p.update(ids(&trigger), &bad_reason).await.unwrap_err();
    assert!(
        matches!(refused, StoreError::InvalidInput(_)),
        "{refused:?}"
    );
    let advance = ControlChange::Advance { from, to };
    let refused = p.update(ids(&trigger), &advance).await.unwrap_err();
    assert!(
        matches!(refused, StoreError::InvalidInput(_)),
        "{refused:?}"
    );
    assert_eq!(
        heard(&mut listener, &[job, marker]).await.payload(),
        job,
        "the trigger's"
    );
    // The refused changes sent nothing: the next notification is a later
    // addition's (notifications arrive in commit order).
    p.add(&pause(marker, None, None)).await.unwrap();
    assert_eq!(heard(&mut listener, &[job, marker]).await.payload(), marker);
    for bad in [
        NewControl {
            job_name: job.into(),
            scope: None,
            note: String::new(),
            action: ControlAction::Backfill { from: to, to: from },
        },
        NewControl {
            note: "\0".into(),
            ..pause(job, None, None)
        },
    ] {
        let refused = p.add(&bad).await.unwrap_err();
        assert!(
            matches!(refused, StoreError::InvalidInput(_)),
            "{refused:?}"
        );
    }
    drop(listener);
    p.done().await;
}

/// The claim lock, across connections: a pause whose addition was waiting
/// for the lock when a claim came to wait behind it is committed before
/// that claim reads, and the claim honours it, whether it takes the lock
/// shared (allow_all) or exclusively (a policy that weighs live runs).
/// Another job's claims never wait for the lock. The stores' connections
/// default to REPEATABLE READ, under which a snapshot taken before the
/// wait would miss the pause: the store's transactions must not inherit it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_committed_while_a_claim_waits_is_seen_by_that_claim() {
    let Some(db) = test_db().await else { return };
    let url = format!(
        "{}{}options%5Bdefault_transaction_isolation%5D=repeatable%20read",
        db.url,
        if db.url.contains('?') { '&' } else { '?' }
    );
    let connect = |name: &str| {
        let (url, options) = (url.clone(), db.options(name, 4));
        async move { PgLeaseStore::connect_with(&url, &options).await.unwrap() }
    };
    let (operator, claimer) = (connect("operator").await, connect("claimer").await);
    let default: String = sqlx_core::query_scalar::query_scalar(
        "SELECT current_setting('default_transaction_isolation')",
    )
    .fetch_one(claimer.pool())
    .await
    .unwrap();
    assert_eq!(default, "repeatable read");
    let now = operator.now().await.unwrap();
    let plan = PlanKey {
        scope: scope("a"),
        plan_time: scheduler_core::plan::floor(now, Duration::from_secs(60)),
    };
    for (job, overlap) in [
        ("locked_shared", OverlapPolicy::AllowAll),
        ("locked_exclusive", OverlapPolicy::BufferAll),
    ] {
        // A transaction of our own holds the job's lock, so that both
        // calls below queue for it.
        let holder = db.hold_claim_lock(job).await;
        let adding = {
            let operator = operator.clone();
            tokio::spawn(async move { operator.add_control(&pause(job, None, None)).await })
        };
        db.wait_until_blocked("operator").await;
        let claiming = {
            let (claimer, keys) = (claimer.clone(), [plan.clone()]);
            tokio::spawn(async move {
                let steering = Steering::scheduled(overlap);
                claimer.claim(&request(job, &keys, steering)).await
            })
        };
        db.wait_until_blocked("claimer").await;
        // Another job is not held up.
        let free = [plan.clone()];
        let other = operator
            .claim(&request("unlocked", &free, Steering::scheduled(overlap)))
            .await
            .unwrap();
        assert!(matches!(
            other[0],
            ClaimOutcome::Won(_) | ClaimOutcome::Conflicted
        ));
        holder.commit().await.unwrap();
        adding.await.unwrap().unwrap();
        let outcome = claiming.await.unwrap().unwrap();
        assert_eq!(outcome, [ClaimOutcome::Paused], "{job}");
    }
    drop((operator, claimer));
    db.drop_schema().await;
}

/// A running manager wakes on `LISTEN`: a trigger stored through another
/// connection (another replica's, an operator's) runs at once, not at the
/// next tick an hour later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_stored_elsewhere_wakes_a_running_manager_at_once() {
    let Some(db) = test_db().await else { return };
    let (replica, operator) = (db.store("replica").await, db.store("operator").await);
    let took =
        scheduler_conformance::manager_wakes_at_once_for_a_trigger(Arc::new(replica), &operator)
            .await;
    eprintln!("trigger stored on another connection to its run: {took:?}");
    drop(operator);
    db.drop_schema().await;
}
