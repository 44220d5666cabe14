//! Steering on SQLite (`docs/contract.md` §11): pauses, the overlap policy
//! applied in the claim, operators' runs (triggers, backfills) and the
//! controls themselves. Each scenario runs on the memory store (the
//! reference) and on a SQLite file, each on a manual clock of its own from
//! the same instant, and what it observes must be equal on both, beside
//! what it asserts.

use std::sync::Arc;
use std::time::Duration;

use scheduler_core::machine::NEVER;
use scheduler_core::model::{
    Control, ControlAction, ControlChange, ControlRead, ControlState, NewControl, Origin,
    OverlapPolicy, Progress, Steering,
};
use scheduler_core::{
    AttemptOutcome, ClaimKind, ClaimRequest, ErrorCode, ExecutionAudit, Finish, Lease,
    LeaseStoreExt, ManualClock, PlanKey, RetryRead, Scope, Status, StoreError, TimeControl,
};
use scheduler_memory::MemoryLeaseStore;
use scheduler_sqlite::SqliteStoreOptions;
use serde_json::Map;
use tempfile::TempDir;
use time::macros::datetime;
use time::OffsetDateTime;
use uuid::Uuid;

const T0: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);
const JOB: &str = "steered";
const STALE: Duration = Duration::from_secs(60);
const MINUTE: Duration = Duration::from_secs(60);

/// One store under test, its clock, and the directory of its file (kept
/// until the store is dropped).
struct Side {
    name: &'static str,
    store: Arc<dyn ExecutionAudit>,
    clock: ManualClock,
    dir: Option<TempDir>,
}

/// The memory store and a SQLite file, each on its own clock at `T0`.
async fn sides() -> [Side; 2] {
    let clock = ManualClock::new(T0);
    let memory = Side {
        name: "memory",
        store: Arc::new(MemoryLeaseStore::with_clock(Arc::new(clock.clone()))),
        clock,
        dir: None,
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let clock = ManualClock::new(T0);
    let sqlite = SqliteStoreOptions::new(dir.path().join("steering.db"))
        .clock(Arc::new(clock.clone()))
        .open()
        .await
        .expect("the store opens");
    let sqlite = Side {
        name: "sqlite",
        store: Arc::new(sqlite),
        clock,
        dir: Some(dir),
    };
    [memory, sqlite]
}

fn scope(id: &str) -> Scope {
    Scope::new("tenant", id)
}

fn key(id: &str, plan_time: OffsetDateTime) -> PlanKey {
    PlanKey {
        scope: scope(id),
        plan_time,
    }
}

/// Claims `keys` of `JOB` under `steering`: each key's kind, and its lease
/// when one was granted.
async fn claim(
    store: &dyn ExecutionAudit,
    keys: &[PlanKey],
    steering: Steering,
) -> Vec<(ClaimKind, Option<Lease>)> {
    let request = ClaimRequest {
        finishing: &[],
        job_name: JOB,
        runner_id: "r1",
        max_attempts: 3,
        stale_timeout: STALE,
        allow_stale_reentry: false,
        keys,
        steering,
    };
    store
        .claim(&request)
        .await
        .expect("the claim runs")
        .into_iter()
        .map(|o| o.into_parts())
        .collect()
}

fn kinds(claimed: &[(ClaimKind, Option<Lease>)]) -> Vec<ClaimKind> {
    claimed.iter().map(|(kind, _)| *kind).collect()
}

fn pause(scope: Option<Scope>, until: Option<OffsetDateTime>) -> NewControl {
    NewControl {
        job_name: JOB.to_owned(),
        scope,
        note: "maintenance window".to_owned(),
        action: ControlAction::Pause {
            until,
            skip_missed: false,
        },
    }
}

/// The row of `JOB`'s key, as `(status, error code, next retry, origin)`.
async fn row_of(
    store: &dyn ExecutionAudit,
    key: &PlanKey,
) -> Option<(Status, Option<String>, Option<OffsetDateTime>, Origin)> {
    let rows = store
        .list_executions(&scheduler_core::ExecutionFilter {
            job_name: Some(JOB.to_owned()),
            scope: Some(key.scope.clone()),
            ..Default::default()
        })
        .await
        .expect("the list reads");
    rows.into_iter()
        .find(|r| r.plan_time == key.plan_time)
        .map(|r| (r.status, r.error_code, r.next_retry_at, r.origin))
}

#[tokio::test]
async fn a_pause_stops_the_claims_of_its_scopes_until_it_ends() {
    let mut observed = Vec::new();
    for side in sides().await {
        let store = &*side.store;
        let until = T0 + 10 * MINUTE;
        let held = store
            .add_control(&pause(Some(scope("a")), Some(until)))
            .await
            .unwrap();
        assert!(
            matches!(
                store.add_control(&pause(Some(scope("a")), None)).await,
                Err(StoreError::Conflict(_))
            ),
            "{}: one pause in force per target",
            side.name
        );
        let plan = [key("a", T0), key("b", T0)];
        let first =
            kinds(&claim(store, &plan, Steering::scheduled(OverlapPolicy::BufferAll)).await);
        assert_eq!(first, [ClaimKind::Paused, ClaimKind::Won], "{}", side.name);
        assert_eq!(
            row_of(store, &plan[0]).await,
            None,
            "{}: nothing written",
            side.name
        );

        // The pause runs out at `until`: still active, no longer in force.
        side.clock.advance(10 * MINUTE);
        let later = kinds(&claim(store, &plan[..1], Steering::NONE).await);
        assert_eq!(later, [ClaimKind::Won], "{}", side.name);
        let again = store
            .add_control(&pause(Some(scope("a")), None))
            .await
            .unwrap();

        // A resume ends it; a second end of the same control conflicts.
        let resume = ControlChange::End {
            state: ControlState::Done,
            reason: Some("resumed by ops".to_owned()),
            skip_missed: Some(true),
        };
        let resumed = store.update_control(again.id, &resume).await.unwrap();
        assert_eq!(
            (resumed.state, resumed.ended_at, &resumed.action),
            (
                ControlState::Done,
                Some(until),
                &ControlAction::Pause {
                    until: None,
                    skip_missed: true
                }
            ),
            "{}",
            side.name
        );
        assert!(
            matches!(
                store.update_control(again.id, &resume).await,
                Err(StoreError::Conflict(_))
            ),
            "{}",
            side.name
        );
        let unknown = Uuid::now_v7();
        assert!(
            matches!(
                store.update_control(unknown, &resume).await,
                Err(StoreError::NotFound { id }) if id == unknown
            ),
            "{}",
            side.name
        );
        let stored = store.controls(&ControlRead::default()).await.unwrap();
        assert_eq!(stored.len(), 1, "{}: active ones only", side.name);
        assert_eq!(stored[0].id, held.id, "{}", side.name);
        observed.push((first, later, resumed.reason));
    }
    assert_eq!(observed[0], observed[1]);
}

#[tokio::test]
async fn a_busy_scope_follows_the_overlap_policy() {
    let mut observed = Vec::new();
    for side in sides().await {
        let store = &*side.store;
        let at = |minutes: u32| key("a", T0 + MINUTE * minutes);
        let mut seen = Vec::new();
        let running = claim(store, &[at(0)], Steering::NONE).await;
        let first = running[0].1.clone().expect("a fresh key is won");

        let skip = Steering::scheduled(OverlapPolicy::Skip);
        seen.push(kinds(&claim(store, &[at(1)], skip).await));
        seen.push(kinds(&claim(store, &[at(1)], skip).await));
        assert_eq!(seen[0], [ClaimKind::Skipped], "{}", side.name);
        assert_eq!(
            seen[1],
            [ClaimKind::Conflicted],
            "{}: the key has a row",
            side.name
        );
        let skipped = row_of(store, &at(1)).await;
        assert_eq!(
            skipped,
            Some((
                Status::Failed,
                Some(ErrorCode::OverlapSkipped.as_str().to_owned()),
                Some(NEVER),
                Origin::Scheduled
            )),
            "{}",
            side.name
        );

        let buffer_all = Steering::scheduled(OverlapPolicy::BufferAll);
        seen.push(kinds(&claim(store, &[at(2)], buffer_all).await));
        assert_eq!(seen[2], [ClaimKind::Busy], "{}", side.name);
        assert_eq!(row_of(store, &at(2)).await, None, "{}", side.name);
        let buffer_one = Steering::scheduled(OverlapPolicy::BufferOne);
        seen.push(kinds(&claim(store, &[at(3), at(4)], buffer_one).await));
        assert_eq!(
            seen[3],
            [ClaimKind::Skipped, ClaimKind::Busy],
            "{}",
            side.name
        );
        let allowed = claim(store, &[at(5)], Steering::NONE).await;
        let second = allowed[0].1.clone().expect("allow_all claims");

        // cancel_other ends both live runs, through their leases, and logs
        // the attempts they end.
        side.clock.advance(Duration::from_secs(2));
        let cancel = Steering::scheduled(OverlapPolicy::CancelOther);
        let replacing = claim(store, &[at(6)], cancel).await;
        seen.push(kinds(&replacing));
        assert_eq!(seen[4], [ClaimKind::Won], "{}", side.name);
        for lease in [&first, &second] {
            let row = store.get_execution(lease.id).await.unwrap().unwrap();
            assert_eq!(
                (row.status, row.error_code.as_deref(), row.duration_ms),
                (Status::Failed, Some("overlap_canceled"), Some(2000)),
                "{}",
                side.name
            );
            let log = store.attempts(lease.id).await.unwrap();
            assert_eq!(log.len(), 1, "{}", side.name);
            assert_eq!(
                (log[0].outcome, log[0].error_code.as_deref(), log[0].attempt),
                (AttemptOutcome::Failed, Some("overlap_canceled"), 1),
                "{}",
                side.name
            );
            assert!(
                matches!(
                    store.heartbeat(lease, STALE).await,
                    Err(StoreError::LeaseLost { id }) if id == lease.id
                ),
                "{}: a canceled run's lease is gone",
                side.name
            );
        }
        let summary = store.scope_summaries(Some(JOB)).await.unwrap();
        assert_eq!(
            (
                summary[0].skipped,
                summary[0].running,
                summary[0].retry_pending,
                summary[0].exhausted
            ),
            (4, 1, 0, 0),
            "{}: 2 skipped and 2 canceled",
            side.name
        );
        let due = store
            .retry_due(&RetryRead {
                job_name: JOB,
                since: T0 - MINUTE,
                allow_stale_reentry: true,
                per_scope_limit: 10,
            })
            .await
            .unwrap();
        assert!(due.is_empty(), "{}: never retried by themselves", side.name);

        // A lease gone stale is no live run: the scope is free again.
        side.clock.advance(2 * MINUTE);
        seen.push(kinds(&claim(store, &[at(7)], skip).await));
        assert_eq!(seen[5], [ClaimKind::Won], "{}", side.name);
        observed.push((seen, summary));
    }
    assert_eq!(observed[0], observed[1]);
}

#[tokio::test]
async fn operators_runs_stay_off_the_plan_and_their_failures_are_due() {
    let mut observed = Vec::new();
    for side in sides().await {
        let store = &*side.store;
        let trigger = store
            .add_control(&NewControl {
                job_name: JOB.to_owned(),
                scope: Some(scope("a")),
                note: String::new(),
                action: ControlAction::Trigger,
            })
            .await
            .unwrap();
        let scheduled = claim(store, &[key("a", T0)], Steering::NONE).await;
        let scheduled = scheduled[0].1.clone().unwrap();
        store
            .finish(&scheduled, &Finish::success(Duration::ZERO, 1, Map::new()))
            .await
            .unwrap();
        let steering = Steering {
            overlap: OverlapPolicy::BufferAll,
            origin: Origin::Trigger,
            control_id: Some(trigger.id),
            schedule_version: None,
        };
        let off_grid = T0 + Duration::from_secs(30);
        let run = claim(store, &[key("a", off_grid)], steering).await;
        let run = run[0].1.clone().expect("a trigger's key is won");
        let row = store.get_execution(run.id).await.unwrap().unwrap();
        assert_eq!(
            (row.origin, row.control_id),
            (Origin::Trigger, Some(trigger.id)),
            "{}",
            side.name
        );
        let latest = store.latest_executions(JOB, &[scope("a")]).await.unwrap();
        assert_eq!(
            latest[0].as_ref().map(|l| l.plan_time),
            Some(T0),
            "{}: the trigger's row is not the plan's",
            side.name
        );
        let running = store.control_progress(trigger.id).await.unwrap();
        assert_eq!(
            running,
            Progress {
                succeeded: 0,
                failed: 0,
                running: 1
            },
            "{}",
            side.name
        );
        let failure = Finish::failure(
            Duration::ZERO,
            ErrorCode::HandlerError,
            "boom",
            Duration::ZERO,
        );
        store.finish(&run, &failure).await.unwrap();
        let failed = store.control_progress(trigger.id).await.unwrap();
        assert_eq!((failed.failed, failed.running), (1, 0), "{}", side.name);
        let nothing = store.control_progress(Uuid::now_v7()).await.unwrap();
        assert_eq!(nothing, Progress::default(), "{}", side.name);

        // A backfill's instant is a plan like the schedule's: the newest.
        side.clock.advance(MINUTE);
        let backfill = Steering {
            origin: Origin::Backfill,
            ..steering
        };
        let instant = T0 + Duration::from_secs(50);
        claim(store, &[key("a", instant)], backfill).await;
        let latest = store.latest_executions(JOB, &[scope("a")]).await.unwrap();
        assert_eq!(
            latest[0].as_ref().map(|l| l.plan_time),
            Some(instant),
            "{}",
            side.name
        );

        // The trigger's failure is due however old its plan time.
        let due = store
            .retry_due(&RetryRead {
                job_name: JOB,
                since: T0 + 10 * MINUTE,
                allow_stale_reentry: false,
                per_scope_limit: 1,
            })
            .await
            .unwrap();
        assert_eq!(due.len(), 1, "{}", side.name);
        assert_eq!(
            (
                due[0].plan_time,
                due[0].origin,
                due[0].operator_retry,
                due[0].forced()
            ),
            (off_grid, Origin::Trigger, false, true),
            "{}",
            side.name
        );
        observed.push((latest, due, failed));
    }
    assert_eq!(observed[0], observed[1]);
}

/// A control without its id, which each store mints.
fn blank(control: &Control) -> Control {
    Control {
        id: Uuid::nil(),
        ..control.clone()
    }
}

#[tokio::test]
async fn controls_round_trip_in_creation_order() {
    let mut observed = Vec::new();
    for side in sides().await {
        let store = &*side.store;
        let (from, to) = (T0 - 2 * 60 * MINUTE, T0 - 60 * MINUTE);
        let mut added = Vec::new();
        for (job, scope, action) in [
            (
                JOB,
                None,
                ControlAction::Pause {
                    until: Some(T0 + MINUTE),
                    skip_missed: true,
                },
            ),
            ("other", None, ControlAction::Backfill { from, to }),
            (JOB, Some(scope("a")), ControlAction::Trigger),
        ] {
            let control = store
                .add_control(&NewControl {
                    job_name: job.to_owned(),
                    scope,
                    note: "ünïcode ".repeat(200),
                    action,
                })
                .await
                .unwrap();
            added.push(control);
            side.clock.advance(Duration::from_millis(1500));
        }
        assert!(
            added[0].note.len() <= 1024,
            "{}: the note is bounded",
            side.name
        );
        assert_eq!(added[1].cursor, Some(from), "{}", side.name);
        let all = store.controls(&ControlRead::default()).await.unwrap();
        assert_eq!(
            all, added,
            "{}: read back as stored, oldest first",
            side.name
        );
        let mine = ControlRead {
            jobs: Some(vec![JOB.to_owned()]),
            ended_since: None,
        };
        let of_job = store.controls(&mine).await.unwrap();
        assert_eq!(
            of_job,
            [added[0].clone(), added[2].clone()],
            "{}",
            side.name
        );

        // A backfill's cursor moves by compare-and-set, and ends it at `to`.
        let backfill = added[1].id;
        let half = from + 30 * MINUTE;
        let moved = store
            .update_control(backfill, &ControlChange::Advance { from, to: half })
            .await
            .unwrap();
        assert_eq!(
            (moved.cursor, moved.state),
            (Some(half), ControlState::Active),
            "{}",
            side.name
        );
        assert!(
            matches!(
                store
                    .update_control(backfill, &ControlChange::Advance { from, to: half })
                    .await,
                Err(StoreError::Conflict(_))
            ),
            "{}: the cursor moved on",
            side.name
        );
        assert!(
            matches!(
                store
                    .update_control(added[2].id, &ControlChange::Advance { from, to: half })
                    .await,
                Err(StoreError::InvalidInput(_))
            ),
            "{}: a trigger has no cursor",
            side.name
        );
        let done = store
            .update_control(backfill, &ControlChange::Advance { from: half, to })
            .await
            .unwrap();
        let now = store.now().await.unwrap();
        assert_eq!(
            (done.state, done.ended_at),
            (ControlState::Done, Some(now)),
            "{}",
            side.name
        );
        let other = |ended_since| ControlRead {
            jobs: Some(vec!["other".to_owned()]),
            ended_since,
        };
        assert_eq!(
            store.controls(&other(None)).await.unwrap(),
            [],
            "{}",
            side.name
        );
        assert_eq!(
            store.controls(&other(Some(now))).await.unwrap(),
            std::slice::from_ref(&done),
            "{}",
            side.name
        );
        // A bound between stored microseconds compares at full precision.
        for after in [Duration::from_nanos(500), Duration::from_micros(1)] {
            assert_eq!(
                store.controls(&other(Some(now + after))).await.unwrap(),
                [],
                "{}: ended before {after:?} after",
                side.name
            );
        }
        assert!(
            matches!(
                store
                    .add_control(&NewControl {
                        job_name: JOB.to_owned(),
                        scope: None,
                        note: String::new(),
                        action: ControlAction::Backfill { from: to, to: from },
                    })
                    .await,
                Err(StoreError::InvalidInput(_))
            ),
            "{}",
            side.name
        );
        observed.push((added.iter().map(blank).collect::<Vec<_>>(), blank(&done)));
    }
    assert_eq!(observed[0], observed[1]);
}

/// A row whose `origin` another version wrote, in words this one does not
/// know, reads as a trigger's (`Origin::from_column`), and planning skips
/// it as the memory store skips a trigger's row.
#[tokio::test]
async fn an_origin_another_version_wrote_reads_as_a_trigger() {
    let [_, side] = sides().await;
    let dir = side.dir.as_ref().expect("a file");
    claim(&*side.store, &[key("a", T0)], Steering::NONE).await;
    let newer = claim(&*side.store, &[key("a", T0 + MINUTE)], Steering::NONE).await;
    let id = newer[0].1.as_ref().unwrap().id;
    let conn = rusqlite::Connection::open(dir.path().join("steering.db")).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let edited = conn
        .execute(
            "UPDATE sys_cron_executions SET origin = 'replay' WHERE id = ?1",
            [id.to_string()],
        )
        .unwrap();
    assert_eq!(edited, 1);
    let row = side.store.get_execution(id).await.unwrap().unwrap();
    assert_eq!(row.origin, Origin::Trigger);
    let latest = side
        .store
        .latest_executions(JOB, &[scope("a")])
        .await
        .unwrap();
    assert_eq!(latest[0].as_ref().map(|l| l.plan_time), Some(T0));
}

/// A running manager wakes when a control is stored through its own store
/// (the same process): a trigger runs at once, not at the next tick an
/// hour later. Other processes' controls are seen at the next tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_wakes_a_running_manager_of_the_process_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(
        scheduler_sqlite::SqliteLeaseStore::open(dir.path().join("wake.db"))
            .await
            .unwrap(),
    );
    let took =
        scheduler_conformance::manager_wakes_at_once_for_a_trigger(store.clone(), &*store).await;
    eprintln!("trigger to run on a running manager: {took:?}");
}
