//! Steering a schedule at run time (`docs/contract.md` §11): the controls an
//! operator stores (pauses, triggers, backfills) read back and updated as
//! [`ControlChange::apply`] says, the pauses and the overlap policy that
//! the store's claim applies under its per-job lock
//! ([`machine::admit`]), the origin and
//! control every row carries, and what the reads make of them: the
//! latest-execution view, forced retries, scope summaries and a control's
//! progress.
//!
//! "Live" means a RUNNING row whose `stale_after` has not passed; the
//! overlap checks claim one scope from two runners (`r1` holds the live
//! lease, `r2` comes second), as two replicas would.

use std::time::Duration;

use time::OffsetDateTime;
use uuid::Uuid;

use scheduler_core::machine::{self, Ending, FreshIds};
use scheduler_core::model::{
    Control, ControlAction, ControlChange, ControlRead, ControlState, NewControl, Origin,
    OverlapPolicy, Progress, Steering, MAX_NOTE_BYTES,
};
use scheduler_core::{
    AttemptOutcome, ClaimKind, ClaimOutcome, ClaimRequest, ErrorCode, Execution, ExecutionFilter,
    LeaseRef, LeaseStoreExt, PlanKey, Scope, ScopeSummary, Status, StoreError,
};

use crate::fixtures::{
    assert_conflicts, assert_lease_lost, attempts, claim, claim_one, fail_each, finish, key,
    leased, leases, list, ok, request, retry_due, row, rows_of, this_minute, unique, Harness,
    MINUTE, PAST_STALE,
};

/// One hour.
const HOUR: Duration = Duration::from_secs(3600);

/// A moment after the minute: where the suite puts a trigger's runs, off
/// the one-minute grid of the scheduled plans.
const OFF_GRID: Duration = Duration::from_secs(7);

/// `req` under `overlap`, for keys of `origin`.
fn steer(req: ClaimRequest<'_>, overlap: OverlapPolicy, origin: Origin) -> ClaimRequest<'_> {
    ClaimRequest {
        steering: Steering {
            overlap,
            origin,
            control_id: None,
            schedule_version: None,
        },
        ..req
    }
}

/// A reentrant claim of `keys` for `job` by `runner` under `overlap`, for
/// keys of `origin`.
fn steered<'a>(
    job: &'a str,
    runner: &'a str,
    keys: &'a [PlanKey],
    overlap: OverlapPolicy,
    origin: Origin,
) -> ClaimRequest<'a> {
    steer(request(job, runner, keys, true), overlap, origin)
}

/// `req` for the runs of control `id` (a trigger or a backfill): keys of
/// `origin` that may overlap anything.
fn of_control(req: ClaimRequest<'_>, origin: Origin, id: Uuid) -> ClaimRequest<'_> {
    ClaimRequest {
        steering: Steering {
            overlap: OverlapPolicy::AllowAll,
            origin,
            control_id: Some(id),
            schedule_version: None,
        },
        ..req
    }
}

/// A pause until resumed, missed plans caught up.
fn pause() -> ControlAction {
    ControlAction::Pause {
        until: None,
        skip_missed: false,
    }
}

/// A control of `job` (of `scope`, or the whole job) asking for `action`.
fn new_control(job: &str, scope: Option<Scope>, action: ControlAction) -> NewControl {
    NewControl {
        job_name: job.to_owned(),
        scope,
        note: format!("conformance: {}", action.kind()),
        action,
    }
}

/// Stores a control of `job`, which must be accepted.
async fn add(h: &Harness, job: &str, scope: Option<Scope>, action: ControlAction) -> Control {
    h.store
        .add_control(&new_control(job, scope, action))
        .await
        .expect("add_control")
}

/// Ends control `id` as done, which must succeed.
async fn end(h: &Harness, id: Uuid) -> Control {
    h.store
        .update_control(
            id,
            &ControlChange::End {
                state: ControlState::Done,
                reason: None,
                skip_missed: None,
            },
        )
        .await
        .expect("update_control")
}

/// The controls `read` selects, which must not fail.
async fn controls(h: &Harness, read: &ControlRead) -> Vec<Control> {
    h.store.controls(read).await.expect("controls")
}

/// The controls of `jobs` that are active or ended at or after `since`.
async fn controls_of(h: &Harness, jobs: &[&str], since: Option<OffsetDateTime>) -> Vec<Control> {
    controls(
        h,
        &ControlRead {
            jobs: Some(jobs.iter().map(|j| (*j).to_owned()).collect()),
            ended_since: since,
        },
    )
    .await
}

/// Store time, which must be readable.
async fn now(h: &Harness) -> OffsetDateTime {
    h.store.now().await.expect("store time")
}

/// The kind of each outcome.
fn kinds(outcomes: &[ClaimOutcome]) -> Vec<ClaimKind> {
    outcomes.iter().map(ClaimOutcome::kind).collect()
}

/// The row of `job` at `key`, if any.
async fn row_at(h: &Harness, job: &str, key: &PlanKey) -> Option<Execution> {
    rows_of(h, job)
        .await
        .into_iter()
        .find(|r| r.scope == key.scope && r.plan_time == key.plan_time)
}

/// Whether `t` is a UTC instant of whole microseconds.
fn utc_micros(t: OffsetDateTime) -> bool {
    t.offset().is_utc() && t.nanosecond() % 1_000 == 0
}

/// Every kind of control is stored as asked and read back as stored: a
/// new id (v7), active, created at store time (UTC, whole microseconds),
/// the note cut to [`MAX_NOTE_BYTES`] on a character boundary, a
/// backfill's cursor at its `from`; read per job, in creation order.
pub async fn controls_are_stored_and_read_back(h: &Harness) {
    let job = unique("controls");
    let other = unique("controls_other");
    let m = this_minute(h).await;
    let a = Scope::new("t", "a");
    let long_note = format!("x{}", "é".repeat(MAX_NOTE_BYTES));
    let asked = [
        NewControl {
            note: "maintenance window".into(),
            ..new_control(
                &job,
                None,
                ControlAction::Pause {
                    until: Some(m + HOUR),
                    skip_missed: true,
                },
            )
        },
        NewControl {
            note: long_note.clone(),
            ..new_control(&job, Some(a.clone()), pause())
        },
        NewControl {
            note: String::new(),
            ..new_control(&job, Some(a.clone()), ControlAction::Trigger)
        },
        new_control(
            &job,
            None,
            ControlAction::Backfill {
                from: m - HOUR * 3,
                to: m - HOUR,
            },
        ),
        new_control(&other, None, ControlAction::Trigger),
    ];
    let mut stored = Vec::new();
    for new in &asked {
        let before = now(h).await;
        let control = h.store.add_control(new).await.expect("add_control");
        let after = now(h).await;
        assert_eq!(control.id.get_version_num(), 7, "id {}", control.id);
        assert_eq!(
            (&control.job_name, &control.scope, &control.action),
            (&new.job_name, &new.scope, &new.action)
        );
        assert_eq!(control.note, new.stored_note());
        assert_eq!(
            (control.state, &control.reason, control.ended_at),
            (ControlState::Active, &None, None)
        );
        assert!(
            before <= control.created_at && control.created_at <= after,
            "created at store time: {} not in [{before}, {after}]",
            control.created_at
        );
        assert!(utc_micros(control.created_at));
        assert_eq!(control.updated_at, control.created_at);
        let cursor = match new.action {
            ControlAction::Backfill { from, .. } => Some(from),
            _ => None,
        };
        assert_eq!(control.cursor, cursor, "a backfill starts at its from");
        stored.push(control);
        h.time.advance(Duration::from_secs(1));
    }
    let cut = &stored[1].note;
    assert!(
        cut.len() <= MAX_NOTE_BYTES && cut.len() > MAX_NOTE_BYTES - 4,
        "{}",
        cut.len()
    );
    assert!(long_note.starts_with(cut.as_str()), "a prefix of the note");
    assert!(stored.windows(2).all(|w| w[0].id != w[1].id));

    assert_eq!(controls_of(h, &[&job, &other], None).await, stored);
    assert_eq!(controls_of(h, &[&job], None).await, stored[..4]);
    assert_eq!(controls_of(h, &[&other], None).await, stored[4..]);
    assert!(controls_of(h, &[], None).await.is_empty());
    let every = controls(h, &ControlRead::default()).await;
    assert!(every
        .windows(2)
        .all(|w| (w[0].created_at, w[0].id) < (w[1].created_at, w[1].id)));
    let mine: Vec<Control> = every
        .into_iter()
        .filter(|c| c.job_name == job || c.job_name == other)
        .collect();
    assert_eq!(mine, stored, "every job's controls");

    // Controls stored at one instant (where store time stands still) come
    // in id order.
    let same = unique("controls_same_instant");
    for _ in 0..3 {
        add(h, &same, None, ControlAction::Trigger).await;
    }
    let read = controls_of(h, &[&same], None).await;
    assert_eq!(read.len(), 3);
    assert!(read
        .windows(2)
        .all(|w| (w[0].created_at, w[0].id) < (w[1].created_at, w[1].id)));
}

/// A read selects its jobs' active controls, and also those that ended at
/// or after `ended_since`; never one that ended before it.
pub async fn control_reads_select_active_and_recently_ended(h: &Harness) {
    let job = unique("control_reads");
    let first = add(h, &job, None, ControlAction::Trigger).await;
    let second = add(h, &job, Some(Scope::new("t", "b")), ControlAction::Trigger).await;
    let active = add(h, &job, None, pause()).await;
    h.time.advance(Duration::from_secs(5));
    let first = end(h, first.id).await;
    h.time.advance(Duration::from_secs(5));
    let second = end(h, second.id).await;
    let (t1, t2) = (first.ended_at.unwrap(), second.ended_at.unwrap());
    assert!(t1 < t2);
    let ids = |controls: Vec<Control>| controls.iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(ids(controls_of(h, &[&job], None).await), [active.id]);
    assert_eq!(
        ids(controls_of(h, &[&job], Some(t1)).await),
        [first.id, second.id, active.id],
        "ended at the bound counts; creation order"
    );
    assert_eq!(
        ids(controls_of(h, &[&job], Some(t1 + Duration::from_micros(1))).await),
        [second.id, active.id]
    );
    assert_eq!(
        ids(controls_of(h, &[&job], Some(t2 + Duration::from_secs(1))).await),
        [active.id]
    );
    let read = controls_of(h, &[&job], Some(t1)).await;
    assert_eq!(read[..2], [first, second], "ended controls read back whole");
}

/// A control no store can hold (a NUL character in its note, job or
/// scope; a backfill range that is empty or inverted) is refused as
/// invalid input, and nothing is stored.
pub async fn unstorable_controls_are_refused(h: &Harness) {
    let job = unique("bad_controls");
    let m = this_minute(h).await;
    let since = Some(m - HOUR * 24);
    let good = new_control(&job, None, ControlAction::Trigger);
    let bad = [
        NewControl {
            note: "a\0b".into(),
            ..good.clone()
        },
        NewControl {
            scope: Some(Scope::new("t", "a\0b")),
            ..good.clone()
        },
        new_control(
            &job,
            None,
            ControlAction::Backfill {
                from: m - HOUR,
                to: m - HOUR,
            },
        ),
        new_control(
            &job,
            None,
            ControlAction::Backfill {
                from: m - HOUR,
                to: m - HOUR * 2,
            },
        ),
        NewControl {
            job_name: format!("{job}\0"),
            ..new_control(&job, None, pause())
        },
    ];
    for control in &bad {
        let refused = h.store.add_control(control).await;
        assert!(
            matches!(refused, Err(StoreError::InvalidInput(_))),
            "{control:?}: {refused:?}"
        );
    }
    assert!(controls_of(h, &[&job], since).await.is_empty());
    let every = controls(
        h,
        &ControlRead {
            jobs: None,
            ended_since: since,
        },
    )
    .await;
    assert!(
        every.iter().all(|c| !c.job_name.starts_with(&job)),
        "nothing stored: {every:?}"
    );
    let stored = h.store.add_control(&good).await.expect("a good control");
    assert_eq!(controls_of(h, &[&job], since).await, [stored]);
}

/// Ending a control writes what [`ControlChange::apply`] says at store
/// time (state, reason, `ended_at`, a pause's `skip_missed`); a control
/// ends once (then `Conflict`); an unknown id is `NotFound`; an end in the
/// active state, a reason with a NUL character and an advance of what is
/// not a backfill are invalid input. Refusals change nothing.
pub async fn ending_a_control_is_final(h: &Harness) {
    let job = unique("end_control");
    let paused = add(h, &job, None, pause()).await;
    h.time.advance(Duration::from_secs(2));
    let resume = ControlChange::End {
        state: ControlState::Done,
        reason: Some("resumed by the on-call".into()),
        skip_missed: Some(true),
    };
    let resumed = h
        .store
        .update_control(paused.id, &resume)
        .await
        .expect("resume");
    assert_eq!(
        resumed,
        resume.apply(&paused, resumed.updated_at).unwrap(),
        "as the reference says"
    );
    assert_eq!(resumed.state, ControlState::Done);
    assert_eq!(resumed.reason.as_deref(), Some("resumed by the on-call"));
    assert_eq!(resumed.ended_at, Some(resumed.updated_at));
    assert!(resumed.updated_at >= paused.created_at + Duration::from_secs(2));
    assert!(utc_micros(resumed.updated_at));
    assert_eq!(
        resumed.action,
        ControlAction::Pause {
            until: None,
            skip_missed: true
        }
    );
    let since = Some(paused.created_at);
    assert_eq!(
        controls_of(h, &[&job], since).await,
        std::slice::from_ref(&resumed)
    );
    let again = h.store.update_control(paused.id, &resume).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let cancel = ControlChange::End {
        state: ControlState::Cancelled,
        reason: None,
        skip_missed: None,
    };
    let again = h.store.update_control(paused.id, &cancel).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(
        controls_of(h, &[&job], since).await,
        std::slice::from_ref(&resumed)
    );

    let unknown = Uuid::now_v7();
    let missing = h.store.update_control(unknown, &cancel).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { id }) if id == unknown),
        "{missing:?}"
    );

    let trigger = add(h, &job, None, ControlAction::Trigger).await;
    let m = this_minute(h).await;
    for invalid in [
        ControlChange::End {
            state: ControlState::Active,
            reason: None,
            skip_missed: None,
        },
        ControlChange::End {
            state: ControlState::Rejected,
            reason: Some("no\0such scope".into()),
            skip_missed: None,
        },
        ControlChange::Advance { from: m, to: m },
    ] {
        let refused = h.store.update_control(trigger.id, &invalid).await;
        assert!(
            matches!(refused, Err(StoreError::InvalidInput(_))),
            "{invalid:?}: {refused:?}"
        );
    }
    let reject = ControlChange::End {
        state: ControlState::Rejected,
        reason: Some(format!("no scope {}", "é".repeat(MAX_NOTE_BYTES))),
        skip_missed: None,
    };
    let rejected = h
        .store
        .update_control(trigger.id, &reject)
        .await
        .expect("reject");
    assert_eq!(
        rejected,
        reject.apply(&trigger, rejected.updated_at).unwrap()
    );
    assert!(rejected.reason.as_ref().unwrap().len() <= MAX_NOTE_BYTES);
    assert_eq!(
        controls_of(h, &[&job], since).await,
        [resumed, rejected],
        "the refused changes changed nothing"
    );
}

/// A backfill's cursor moves by compare-and-set: an advance from a cursor
/// the backfill no longer has is a `Conflict` and changes nothing; one
/// that reaches (or passes) the backfill's end makes it done.
pub async fn a_backfill_cursor_advances_by_compare_and_set(h: &Harness) {
    let job = unique("advance");
    let m = this_minute(h).await;
    let (from, mid, to) = (m - HOUR * 3, m - HOUR * 2, m - HOUR);
    let backfill = add(h, &job, None, ControlAction::Backfill { from, to }).await;
    h.time.advance(Duration::from_secs(1));
    let first = ControlChange::Advance { from, to: mid };
    let moved = h
        .store
        .update_control(backfill.id, &first)
        .await
        .expect("advance");
    assert_eq!(moved, first.apply(&backfill, moved.updated_at).unwrap());
    assert_eq!(
        (moved.cursor, moved.state, moved.ended_at),
        (Some(mid), ControlState::Active, None)
    );
    assert!(moved.updated_at > backfill.updated_at);
    let stale = h.store.update_control(backfill.id, &first).await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    assert_eq!(
        controls_of(h, &[&job], None).await,
        std::slice::from_ref(&moved)
    );
    let last = ControlChange::Advance { from: mid, to };
    let done = h
        .store
        .update_control(backfill.id, &last)
        .await
        .expect("advance to the end");
    assert_eq!(done, last.apply(&moved, done.updated_at).unwrap());
    assert_eq!(
        (done.cursor, done.state, done.ended_at),
        (Some(to), ControlState::Done, Some(done.updated_at))
    );
    assert!(
        controls_of(h, &[&job], None).await.is_empty(),
        "no longer active"
    );
    let after_end = h
        .store
        .update_control(backfill.id, &ControlChange::Advance { from: to, to })
        .await;
    assert!(
        matches!(after_end, Err(StoreError::Conflict(_))),
        "{after_end:?}"
    );

    // An advance past the end also ends it.
    let backfill = add(h, &job, None, ControlAction::Backfill { from, to }).await;
    let past = ControlChange::Advance {
        from,
        to: to + HOUR,
    };
    let done = h
        .store
        .update_control(backfill.id, &past)
        .await
        .expect("advance past the end");
    assert_eq!(
        (done.cursor, done.state),
        (Some(to + HOUR), ControlState::Done)
    );
}

/// A second pause of exactly the target a pause in force already covers
/// (the same job, and the same scope or the whole job) is a `Conflict`
/// and stores nothing; a pause of a scope and a pause of the whole job
/// coexist, as do pauses of other scopes and other jobs, and a pause that
/// ran out or was resumed no longer stands in the way.
pub async fn a_second_pause_of_the_same_target_conflicts(h: &Harness) {
    let job = unique("pause_twice");
    let other = unique("pause_twice_other");
    let (a, b) = (Scope::new("t", "a"), Scope::new("t", "b"));
    let whole = add(h, &job, None, pause()).await;
    let conflicts = |scope: Option<Scope>| {
        let job = job.clone();
        async move {
            let refused = h
                .store
                .add_control(&new_control(&job, scope, pause()))
                .await;
            assert!(
                matches!(refused, Err(StoreError::Conflict(_))),
                "{refused:?}"
            );
        }
    };
    conflicts(None).await;
    let of_a = add(h, &job, Some(a.clone()), pause()).await;
    conflicts(Some(a.clone())).await;
    conflicts(None).await;
    let of_b = add(h, &job, Some(b.clone()), pause()).await;
    let elsewhere = add(h, &other, None, pause()).await;
    let trigger = add(h, &job, None, ControlAction::Trigger).await;
    assert_eq!(
        controls_of(h, &[&job, &other], None).await,
        [whole.clone(), of_a, of_b, elsewhere, trigger],
        "the refused pauses stored nothing"
    );
    end(h, whole.id).await;
    add(h, &job, None, pause()).await;

    let job = unique("pause_ran_out");
    let until = now(h).await + Duration::from_secs(30);
    let first = ControlAction::Pause {
        until: Some(until),
        skip_missed: false,
    };
    add(h, &job, None, first.clone()).await;
    let refused = h.store.add_control(&new_control(&job, None, first)).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    h.time.advance(Duration::from_secs(31));
    add(h, &job, None, pause()).await;
    assert_eq!(controls_of(h, &[&job], None).await.len(), 2);
}

/// A pause of the whole job stops every claim of it, under every policy
/// and origin: no fresh row, no retry of a due FAILED row, no takeover of
/// a stale RUNNING row (each key `Paused`, nothing written, nothing
/// logged). Once resumed, the same claim wins, retries and steals.
pub async fn a_job_pause_stops_every_claim_of_the_job(h: &Harness) {
    let job = unique("paused_job");
    let m = this_minute(h).await;
    let (a, b) = (Scope::new("t", "a"), Scope::new("t", "b"));
    let old = [
        key(a.clone(), m - MINUTE * 2),
        key(b.clone(), m - MINUTE * 2),
    ];
    let held = leases(h, &request(&job, "r1", &old, true)).await;
    fail_each(h, &held[..1], Duration::ZERO).await;
    h.time.advance(PAST_STALE);
    let paused = add(h, &job, None, pause()).await;
    let keys = [
        key(a.clone(), m),
        key(b.clone(), m),
        old[0].clone(),
        old[1].clone(),
    ];
    let before = rows_of(h, &job).await;
    for overlap in OverlapPolicy::ALL {
        for origin in [Origin::Scheduled, Origin::Trigger, Origin::Backfill] {
            let req = steer(request(&job, "r2", &keys, true), overlap, origin);
            assert_eq!(
                kinds(&claim(h, &req).await),
                [ClaimKind::Paused; 4],
                "{overlap} {origin}"
            );
        }
    }
    assert_eq!(rows_of(h, &job).await, before, "nothing written");
    assert!(attempts(h, held[1].id).await.is_empty(), "no takeover");
    end(h, paused.id).await;
    let outcomes = claim(h, &request(&job, "r2", &keys, true)).await;
    assert_eq!(
        kinds(&outcomes),
        [
            ClaimKind::Won,
            ClaimKind::Won,
            ClaimKind::Retried,
            ClaimKind::Stolen
        ],
        "resumed"
    );
}

/// A pause of one scope stops that scope's keys only; a pause of another
/// job stops none of this job's.
pub async fn a_scope_pause_stops_only_its_scope(h: &Harness) {
    let job = unique("paused_scope");
    let other = unique("paused_other_job");
    let m = this_minute(h).await;
    let (a, b) = (Scope::new("t", "a"), Scope::new("t", "b"));
    add(h, &job, Some(a.clone()), pause()).await;
    add(h, &other, None, pause()).await;
    add(h, &other, Some(b.clone()), pause()).await;
    let keys = [
        key(a.clone(), m),
        key(b.clone(), m),
        key(a.clone(), m - MINUTE),
    ];
    let outcomes = claim(h, &request(&job, "r1", &keys, true)).await;
    assert_eq!(
        kinds(&outcomes),
        [ClaimKind::Paused, ClaimKind::Won, ClaimKind::Paused]
    );
    let rows = rows_of(h, &job).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].scope, b);
}

/// A pause with an `until` stops claims until store time reaches it, and
/// none after, though it is still stored as active; a pause resumed
/// early stops nothing either.
pub async fn a_pause_ends_at_its_until_or_when_resumed(h: &Harness) {
    let job = unique("pause_until");
    let m = this_minute(h).await;
    let until = now(h).await + Duration::from_secs(30);
    let paused = add(
        h,
        &job,
        None,
        ControlAction::Pause {
            until: Some(until),
            skip_missed: false,
        },
    )
    .await;
    let first = [key(Scope::global(), m)];
    let req = request(&job, "r1", &first, true);
    assert_eq!(claim_one(h, &req).await, ClaimOutcome::Paused);
    h.time.advance(Duration::from_secs(31));
    assert!(claim_one(h, &req).await.lease().is_some(), "ran out");
    assert_eq!(
        controls_of(h, &[&job], None).await,
        [paused],
        "still stored as active"
    );

    let job = unique("pause_resumed");
    let paused = add(h, &job, None, pause()).await;
    let req = request(&job, "r1", &first, true);
    assert_eq!(claim_one(h, &req).await, ClaimOutcome::Paused);
    end(h, paused.id).await;
    assert!(claim_one(h, &req).await.lease().is_some(), "resumed");
}

/// Policy `skip`: a plan whose scope another runner holds a live lease on
/// is recorded as skipped, [`machine::skipped`] exactly (FAILED
/// `overlap_skipped`, attempt 1, retried never, the origin and control
/// asked for, no attempt logged), and no retry read reports it however
/// late. The live run's own key is merely conflicted, and the skipped key
/// conflicts from then on, busy scope or not.
pub async fn overlap_skip_records_the_plan_as_skipped(h: &Harness) {
    for origin in [Origin::Scheduled, Origin::Trigger] {
        let job = unique("overlap_skip");
        let m = this_minute(h).await;
        let s = Scope::new("t", "a");
        let first = [key(s.clone(), m - MINUTE)];
        let skip = OverlapPolicy::Skip;
        let live = leased(h, &steered(&job, "r1", &first, skip, origin)).await;
        let next = [key(s.clone(), m + OFF_GRID)];
        let mut req = steered(&job, "r2", &next, skip, origin);
        if origin == Origin::Trigger {
            req.steering.control_id = Some(add(h, &job, None, ControlAction::Trigger).await.id);
        }
        assert_eq!(claim_one(h, &req).await, ClaimOutcome::Skipped, "{origin}");
        let skipped = row_at(h, &job, &next[0]).await.expect("a skipped row");
        let ids = FreshIds {
            id: skipped.id,
            token: skipped.lease_token,
        };
        assert_eq!(
            skipped,
            machine::skipped(&req, &next[0], skipped.created_at, ids),
            "{origin}"
        );
        assert_eq!(
            (
                skipped.status,
                skipped.attempt,
                skipped.next_retry_at,
                skipped.error_code.as_deref(),
                skipped.origin
            ),
            (
                Status::Failed,
                1,
                Some(machine::NEVER),
                Some(ErrorCode::OverlapSkipped.as_str()),
                origin
            )
        );
        assert_eq!(skipped.runner_id.as_deref(), Some("r2"));
        assert!(skipped.created_at >= live.started_at);
        assert!(attempts(h, skipped.id).await.is_empty(), "no attempt ran");
        let own = steered(&job, "r2", &first, skip, origin);
        assert_conflicts(h, &own, "the live run's own key").await;
        assert_conflicts(h, &req, "skipped once, while busy").await;
        finish(h, &live, &ok()).await;
        assert_conflicts(h, &req, "skipped once, once free").await;
        h.time.advance(HOUR * 24);
        assert!(retry_due(h, &job, m - HOUR, true, 10).await.is_empty());
        assert_conflicts(h, &req, "never retried by itself").await;
        assert_eq!(row(h, skipped.id).await, skipped);
    }
}

/// Policy `buffer_all`: a plan whose scope is busy waits (`Busy`, nothing
/// written) and is won once the live run has finished.
pub async fn overlap_buffer_all_waits_for_the_scope(h: &Harness) {
    let job = unique("overlap_buffer_all");
    let m = this_minute(h).await;
    let s = Scope::new("t", "a");
    let (first, next) = ([key(s.clone(), m - MINUTE)], [key(s.clone(), m)]);
    let (buffer, origin) = (OverlapPolicy::BufferAll, Origin::Scheduled);
    let live = leased(h, &steered(&job, "r1", &first, buffer, origin)).await;
    let req = steered(&job, "r2", &next, buffer, origin);
    for _ in 0..2 {
        assert_eq!(claim_one(h, &req).await, ClaimOutcome::Busy);
    }
    assert_eq!(rows_of(h, &job).await.len(), 1, "nothing written");
    h.time.advance(Duration::from_secs(5));
    finish(h, &live, &ok()).await;
    let ClaimOutcome::Won(lease) = claim_one(h, &req).await else {
        panic!("the scope is free");
    };
    assert_eq!((lease.plan_time, lease.attempt), (m, 1));
}

/// Policy `buffer_one`: of the plans of a busy scope waiting in one batch,
/// the newest waits (`Busy`) and the older are skipped, whatever their
/// order in the batch; once the scope is free the newest is won.
pub async fn overlap_buffer_one_keeps_the_newest_waiting(h: &Harness) {
    let job = unique("overlap_buffer_one");
    let m = this_minute(h).await;
    let s = Scope::new("t", "a");
    let first = [key(s.clone(), m - MINUTE * 2)];
    let waiting = [key(s.clone(), m), key(s.clone(), m - MINUTE)];
    let (buffer, origin) = (OverlapPolicy::BufferOne, Origin::Scheduled);
    let live = leased(h, &steered(&job, "r1", &first, buffer, origin)).await;
    let req = steered(&job, "r2", &waiting, buffer, origin);
    let outcomes = claim(h, &req).await;
    assert_eq!(kinds(&outcomes), [ClaimKind::Busy, ClaimKind::Skipped]);
    assert!(
        row_at(h, &job, &waiting[0]).await.is_none(),
        "the newest waits"
    );
    let skipped = row_at(h, &job, &waiting[1])
        .await
        .expect("the older is skipped");
    assert_eq!(
        skipped.error_code.as_deref(),
        Some(ErrorCode::OverlapSkipped.as_str())
    );
    finish(h, &live, &ok()).await;
    let outcomes = claim(h, &req).await;
    assert_eq!(kinds(&outcomes), [ClaimKind::Won, ClaimKind::Conflicted]);
}

/// Policy `cancel_other`: a new plan of a busy scope is won and the live
/// run is ended in the same claim, [`machine::cancel_for_overlap`]
/// exactly (FAILED `overlap_canceled`, never retried by itself), its
/// attempt logged as FAILED `overlap_canceled`; its runner's heartbeat and
/// terminal write find the lease lost. A key the claim does not win
/// cancels nothing.
pub async fn overlap_cancel_other_replaces_the_live_run(h: &Harness) {
    let job = unique("overlap_cancel_other");
    let m = this_minute(h).await;
    let s = Scope::new("t", "a");
    let (cancel, origin) = (OverlapPolicy::CancelOther, Origin::Scheduled);
    let done = [key(s.clone(), m - MINUTE * 2)];
    finish(
        h,
        &leased(h, &steered(&job, "r1", &done, cancel, origin)).await,
        &ok(),
    )
    .await;
    let first = [key(s.clone(), m - MINUTE)];
    let live = leased(h, &steered(&job, "r1", &first, cancel, origin)).await;
    let before = row(h, live.id).await;
    h.time.advance(Duration::from_secs(2));
    let again = steered(&job, "r2", &done, cancel, origin);
    assert_conflicts(h, &again, "a finished plan is not claimed").await;
    assert_eq!(row(h, live.id).await, before, "and cancels nothing");

    let next = [key(s.clone(), m)];
    let ClaimOutcome::Won(lease) = claim_one(h, &steered(&job, "r2", &next, cancel, origin)).await
    else {
        panic!("the new plan replaces the live run");
    };
    let at = lease.started_at;
    let canceled = row(h, live.id).await;
    assert_eq!(
        canceled,
        machine::cancel_for_overlap(&before, at).unwrap(),
        "ended in the same claim"
    );
    assert_eq!(
        (
            canceled.status,
            canceled.error_code.as_deref(),
            canceled.next_retry_at
        ),
        (
            Status::Failed,
            Some(ErrorCode::OverlapCanceled.as_str()),
            Some(machine::NEVER)
        )
    );
    assert!(canceled.duration_ms.unwrap() >= 2000);
    let log = attempts(h, live.id).await;
    assert_eq!(log, [machine::ended_attempt(&before, Ending::Overlap, at)]);
    assert_eq!(
        (
            log[0].outcome,
            log[0].error_code.as_deref(),
            log[0].runner_id.as_deref()
        ),
        (
            AttemptOutcome::Failed,
            Some(ErrorCode::OverlapCanceled.as_str()),
            Some("r1")
        )
    );
    assert_lease_lost(h.store.heartbeat(&live, crate::fixtures::STALE).await);
    assert_lease_lost(h.store.finish(&live, &ok()).await);
    assert_eq!(
        row(h, live.id).await,
        canceled,
        "the old runner wrote nothing"
    );
    assert_eq!(row(h, lease.id).await.status, Status::Running);
    h.time.advance(HOUR);
    assert!(retry_due(h, &job, m - HOUR, true, 10).await.is_empty());
}

/// Policy `allow_all`: runs of one scope overlap freely; the live run is
/// untouched and keeps its lease.
pub async fn overlap_allow_all_runs_both(h: &Harness) {
    let job = unique("overlap_allow_all");
    let m = this_minute(h).await;
    let s = Scope::new("t", "a");
    let (allow, origin) = (OverlapPolicy::AllowAll, Origin::Scheduled);
    let (first, next) = ([key(s.clone(), m - MINUTE)], [key(s.clone(), m)]);
    let live = leased(h, &steered(&job, "r1", &first, allow, origin)).await;
    let second = leased(h, &steered(&job, "r2", &next, allow, origin)).await;
    h.store
        .heartbeat(&live, crate::fixtures::STALE)
        .await
        .expect("the first lease holds");
    let rows = rows_of(h, &job).await;
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.status == Status::Running));
    finish(h, &second, &ok()).await;
    finish(h, &live, &ok()).await;
}

/// A RUNNING row whose lease went stale (not yet swept) is not a live run:
/// under every policy a new plan of its scope is won, and the stale row is
/// left alone.
pub async fn a_stale_lease_does_not_hold_its_scope(h: &Harness) {
    for overlap in OverlapPolicy::ALL {
        let job = unique("overlap_stale");
        let m = this_minute(h).await;
        let s = Scope::new("t", "a");
        let (first, next) = ([key(s.clone(), m - MINUTE)], [key(s.clone(), m)]);
        let stale = leased(h, &request(&job, "r1", &first, false)).await;
        let before = row(h, stale.id).await;
        h.time.advance(PAST_STALE);
        let req = steer(
            request(&job, "r2", &next, false),
            overlap,
            Origin::Scheduled,
        );
        assert!(
            matches!(claim_one(h, &req).await, ClaimOutcome::Won(_)),
            "{overlap}"
        );
        assert_eq!(row(h, stale.id).await, before, "{overlap}");
    }
}

/// A claim naming a live run among its `finishing` leases (the claimer's
/// run whose handler ended, its terminal write still in flight) is not
/// held up, skipped or cancelling because of it, under every policy and
/// origin: it is won and the run is untouched. Named with another token
/// (an attempt taken over since) the run still counts: the buffers and
/// backfills wait, `skip` skips, `cancel_other` replaces it.
pub async fn a_finishing_run_does_not_hold_its_claimers_next_plan(h: &Harness) {
    for overlap in OverlapPolicy::ALL {
        for origin in [Origin::Scheduled, Origin::Backfill] {
            let job = unique("overlap_finishing");
            let m = this_minute(h).await;
            let s = Scope::new("t", "a");
            let first = [key(s.clone(), m - MINUTE)];
            let (own_key, other_key) = ([key(s.clone(), m)], [key(s.clone(), m + OFF_GRID)]);
            let ended = leased(h, &steered(&job, "r1", &first, overlap, origin)).await;
            let before = row(h, ended.id).await;
            let own = ended.lease_ref();
            let with_own = ClaimRequest {
                finishing: std::slice::from_ref(&own),
                ..steered(&job, "r1", &own_key, overlap, origin)
            };
            let next = leased(h, &with_own).await;
            assert_eq!(
                row(h, ended.id).await,
                before,
                "{overlap} {origin}: untouched"
            );
            finish(h, &next, &ok()).await;

            let stolen = LeaseRef {
                token: Uuid::new_v4(),
                ..own
            };
            let with_stolen = ClaimRequest {
                finishing: std::slice::from_ref(&stolen),
                ..steered(&job, "r1", &other_key, overlap, origin)
            };
            let expected = match (overlap, origin) {
                (OverlapPolicy::AllowAll, _) => ClaimKind::Won,
                (_, Origin::Backfill) => ClaimKind::Busy,
                (OverlapPolicy::Skip, _) => ClaimKind::Skipped,
                (OverlapPolicy::CancelOther, _) => ClaimKind::Won,
                (OverlapPolicy::BufferAll | OverlapPolicy::BufferOne, _) => ClaimKind::Busy,
            };
            assert_eq!(
                kinds(&claim(h, &with_stolen).await),
                [expected],
                "{overlap} {origin}: another token is another attempt"
            );
            let replaced = overlap == OverlapPolicy::CancelOther && origin == Origin::Scheduled;
            if replaced {
                assert_eq!(
                    row(h, ended.id).await.error_code.as_deref(),
                    Some(ErrorCode::OverlapCanceled.as_str()),
                    "{origin}: replaced, named with another token"
                );
            } else {
                assert_eq!(row(h, ended.id).await, before, "{overlap} {origin}");
                finish(h, &ended, &ok()).await;
                assert_eq!(row(h, ended.id).await.status, Status::Success);
            }
        }
    }
}

/// The keys of one scope in one batch do not hold each other up, under
/// any policy: the claiming replica runs them one after the other.
pub async fn keys_of_one_batch_do_not_hold_each_other_up(h: &Harness) {
    for overlap in OverlapPolicy::ALL {
        for origin in [Origin::Scheduled, Origin::Trigger, Origin::Backfill] {
            let job = unique("overlap_batch");
            let m = this_minute(h).await;
            let s = Scope::new("t", "a");
            let keys = [
                key(s.clone(), m - MINUTE * 2),
                key(s.clone(), m - MINUTE),
                key(s.clone(), m),
            ];
            let req = steer(request(&job, "r1", &keys, true), overlap, origin);
            assert_eq!(
                kinds(&claim(h, &req).await),
                [ClaimKind::Won; 3],
                "{overlap} {origin}"
            );
        }
    }
}

/// A scheduled plan is never held up, skipped or cancelling because of an
/// operator's run of its scope (a trigger's or a backfill's), under any
/// policy; the operator's runs are left alone.
pub async fn operators_runs_never_hold_up_the_schedule(h: &Harness) {
    for overlap in OverlapPolicy::ALL {
        let job = unique("origin_schedule");
        let m = this_minute(h).await;
        let s = Scope::new("t", "a");
        let trigger = add(h, &job, Some(s.clone()), ControlAction::Trigger).await;
        let backfill = add(
            h,
            &job,
            None,
            ControlAction::Backfill {
                from: m - HOUR * 2,
                to: m - HOUR,
            },
        )
        .await;
        let (t, b) = (
            [key(s.clone(), m + OFF_GRID)],
            [key(s.clone(), m - HOUR * 2)],
        );
        let triggered = leased(
            h,
            &of_control(request(&job, "r1", &t, true), Origin::Trigger, trigger.id),
        )
        .await;
        let backfilled = leased(
            h,
            &of_control(request(&job, "r1", &b, true), Origin::Backfill, backfill.id),
        )
        .await;
        let before = [row(h, triggered.id).await, row(h, backfilled.id).await];
        let next = [key(s.clone(), m)];
        let req = steer(request(&job, "r2", &next, true), overlap, Origin::Scheduled);
        assert!(
            matches!(claim_one(h, &req).await, ClaimOutcome::Won(_)),
            "{overlap}"
        );
        let after = [row(h, triggered.id).await, row(h, backfilled.id).await];
        assert_eq!(after, before, "{overlap}");
    }
}

/// A backfill instant waits (`Busy`, nothing written) while any run of its
/// scope is live, scheduled or a trigger's, under every policy but
/// `allow_all`: it is never skipped, and never cancels anything.
pub async fn a_backfill_instant_waits_for_a_live_run(h: &Harness) {
    for overlap in OverlapPolicy::ALL {
        let job = unique("origin_backfill");
        let m = this_minute(h).await;
        let (a, b) = (Scope::new("t", "a"), Scope::new("t", "b"));
        let scheduled = [key(a.clone(), m)];
        let triggered = [key(b.clone(), m + OFF_GRID)];
        let live = [
            leased(h, &request(&job, "r1", &scheduled, true)).await,
            leased(
                h,
                &steer(
                    request(&job, "r1", &triggered, true),
                    OverlapPolicy::AllowAll,
                    Origin::Trigger,
                ),
            )
            .await,
        ];
        let before = rows_of(h, &job).await;
        let instants = [key(a.clone(), m - HOUR), key(b.clone(), m - HOUR)];
        let req = steer(
            request(&job, "r2", &instants, true),
            overlap,
            Origin::Backfill,
        );
        let expected = if overlap == OverlapPolicy::AllowAll {
            ClaimKind::Won
        } else {
            ClaimKind::Busy
        };
        assert_eq!(kinds(&claim(h, &req).await), [expected; 2], "{overlap}");
        if overlap != OverlapPolicy::AllowAll {
            assert_eq!(rows_of(h, &job).await, before, "{overlap}: nothing written");
        }
        for lease in &live {
            assert_eq!(row(h, lease.id).await.status, Status::Running, "{overlap}");
        }
    }
}

/// A trigger under `cancel_other` replaces a live run of another trigger,
/// but never a scheduled plan's or a backfill instant's run: then it
/// waits (`Busy`); under `buffer_one` it waits rather than being skipped.
pub async fn a_trigger_replaces_only_other_triggers_runs(h: &Harness) {
    let job = unique("origin_trigger");
    let m = this_minute(h).await;
    let (a, b, c) = (
        Scope::new("t", "a"),
        Scope::new("t", "b"),
        Scope::new("t", "c"),
    );
    let trigger = Origin::Trigger;
    let allow = OverlapPolicy::AllowAll;
    let older = [key(a.clone(), m + OFF_GRID)];
    let other_trigger = leased(h, &steered(&job, "r1", &older, allow, trigger)).await;
    let scheduled = [key(b.clone(), m)];
    let plan = leased(h, &request(&job, "r1", &scheduled, true)).await;
    let instant = [key(c.clone(), m - HOUR)];
    let backfill = leased(
        h,
        &steer(request(&job, "r1", &instant, true), allow, Origin::Backfill),
    )
    .await;
    let untouched = [row(h, plan.id).await, row(h, backfill.id).await];

    let later = |scope: &Scope| [key(scope.clone(), m + OFF_GRID * 2)];
    let cancel = OverlapPolicy::CancelOther;
    for scope in [&b, &c] {
        let keys = later(scope);
        let req = steered(&job, "r2", &keys, cancel, trigger);
        assert_eq!(claim_one(h, &req).await, ClaimOutcome::Busy, "{scope}");
        let keys = [key(scope.clone(), m + OFF_GRID * 3)];
        let req = steered(&job, "r2", &keys, OverlapPolicy::BufferOne, trigger);
        assert_eq!(claim_one(h, &req).await, ClaimOutcome::Busy, "{scope}");
    }
    assert_eq!(
        [row(h, plan.id).await, row(h, backfill.id).await],
        untouched
    );
    let keys = later(&a);
    let ClaimOutcome::Won(lease) = claim_one(h, &steered(&job, "r2", &keys, cancel, trigger)).await
    else {
        panic!("a trigger replaces another trigger's run");
    };
    let canceled = row(h, other_trigger.id).await;
    assert_eq!(
        (
            canceled.status,
            canceled.error_code.as_deref(),
            canceled.finished_at
        ),
        (
            Status::Failed,
            Some(ErrorCode::OverlapCanceled.as_str()),
            Some(lease.started_at)
        )
    );
    assert_eq!(
        rows_of(h, &job).await.len(),
        4,
        "the waiting keys wrote nothing"
    );
}

/// Every row carries the origin and control of the claim that created it,
/// through `get_execution` and `list_executions`, and keeps them through a
/// retry by a claim of another origin. The latest-execution view ignores
/// a trigger's rows (off the schedule's grid) but not a backfill's.
pub async fn rows_carry_their_origin_and_control(h: &Harness) {
    let job = unique("origins");
    let m = this_minute(h).await;
    let (a, b, c) = (
        Scope::new("t", "a"),
        Scope::new("t", "b"),
        Scope::new("t", "c"),
    );
    let trigger = add(h, &job, None, ControlAction::Trigger).await;
    let backfill = add(
        h,
        &job,
        None,
        ControlAction::Backfill {
            from: m - HOUR * 3,
            to: m - HOUR,
        },
    )
    .await;
    let scheduled = [key(a.clone(), m - MINUTE)];
    let triggered = [key(a.clone(), m + OFF_GRID), key(c.clone(), m + OFF_GRID)];
    let backfilled = [key(b.clone(), m - HOUR * 2)];
    let s = leased(h, &request(&job, "r1", &scheduled, true)).await;
    let t = leases(
        h,
        &of_control(
            request(&job, "r1", &triggered, true),
            Origin::Trigger,
            trigger.id,
        ),
    )
    .await;
    let bf = leased(
        h,
        &of_control(
            request(&job, "r1", &backfilled, true),
            Origin::Backfill,
            backfill.id,
        ),
    )
    .await;
    let expected = [
        (s.id, Origin::Scheduled, None),
        (t[0].id, Origin::Trigger, Some(trigger.id)),
        (t[1].id, Origin::Trigger, Some(trigger.id)),
        (bf.id, Origin::Backfill, Some(backfill.id)),
    ];
    let listed = rows_of(h, &job).await;
    assert_eq!(listed.len(), expected.len());
    for (id, origin, control) in expected {
        let got = row(h, id).await;
        assert_eq!((got.origin, got.control_id), (origin, control), "{id}");
        let in_list = listed.iter().find(|r| r.id == id).expect("listed");
        assert_eq!(in_list, &got);
    }
    let views = h
        .store
        .latest_executions(&job, &[a.clone(), b.clone(), c.clone()])
        .await
        .expect("latest_executions");
    assert_eq!(
        views[0].as_ref().map(|v| v.plan_time),
        Some(m - MINUTE),
        "not the trigger's"
    );
    assert_eq!(
        views[1].as_ref().map(|v| v.plan_time),
        Some(m - HOUR * 2),
        "the backfill's"
    );
    assert_eq!(views[2], None, "a trigger's row alone");

    // A retry keeps them, whoever claims it.
    fail_each(h, &t[..1], Duration::ZERO).await;
    let ClaimOutcome::Retried(again) =
        claim_one(h, &request(&job, "r2", &triggered[..1], true)).await
    else {
        panic!("the failed trigger run is retried");
    };
    let retried = row(h, again.id).await;
    assert_eq!(
        (retried.attempt, retried.origin, retried.control_id),
        (2, Origin::Trigger, Some(trigger.id))
    );
}

/// A failed run of a trigger or a backfill is due whatever its plan time
/// (forced, like an operator's retry), reported with its origin; a
/// scheduled one only from `since` on. Each waits for its `next_retry_at`.
pub async fn failed_operator_runs_are_due_whatever_their_plan_time(h: &Harness) {
    let job = unique("forced_retries");
    let m = this_minute(h).await;
    let s = Scope::new("t", "a");
    let trigger = add(h, &job, None, ControlAction::Trigger).await;
    let backfill = add(
        h,
        &job,
        None,
        ControlAction::Backfill {
            from: m - HOUR * 3,
            to: m - HOUR,
        },
    )
    .await;
    let scheduled = [key(s.clone(), m - HOUR)];
    let triggered = [key(s.clone(), m + OFF_GRID)];
    let backfilled = [key(s.clone(), m - HOUR * 2)];
    let runs = [
        leased(h, &request(&job, "r1", &scheduled, true)).await,
        leased(
            h,
            &of_control(
                request(&job, "r1", &triggered, true),
                Origin::Trigger,
                trigger.id,
            ),
        )
        .await,
        leased(
            h,
            &of_control(
                request(&job, "r1", &backfilled, true),
                Origin::Backfill,
                backfill.id,
            ),
        )
        .await,
    ];
    fail_each(h, &runs, Duration::from_secs(30)).await;
    let since = m + HOUR;
    assert!(
        retry_due(h, &job, m - HOUR * 24, true, 10).await.is_empty(),
        "not yet"
    );
    h.time.advance(Duration::from_secs(31));
    let seen = |due: Vec<scheduler_core::RetryDue>| -> Vec<(OffsetDateTime, Origin, bool, bool)> {
        due.iter()
            .map(|d| (d.plan_time, d.origin, d.operator_retry, d.forced()))
            .collect()
    };
    assert_eq!(
        seen(retry_due(h, &job, since, true, 10).await),
        [
            (m - HOUR * 2, Origin::Backfill, false, true),
            (m + OFF_GRID, Origin::Trigger, false, true)
        ]
    );
    assert_eq!(
        seen(retry_due(h, &job, m - HOUR, true, 10).await),
        [
            (m - HOUR * 2, Origin::Backfill, false, true),
            (m - HOUR, Origin::Scheduled, false, false),
            (m + OFF_GRID, Origin::Trigger, false, true)
        ]
    );
}

/// Rows the overlap policy ended without a run of their own (skipped,
/// canceled) count in a scope summary's `skipped` only, whatever their
/// attempts; the summary equals [`ScopeSummary::of_rows`].
pub async fn overlap_rows_count_as_skipped_in_summaries(h: &Harness) {
    let job = unique("summary_skipped");
    let m = this_minute(h).await;
    let s = Scope::new("t", "a");
    let at = |back: u32| [key(s.clone(), m - MINUTE * back)];
    let canceled = leased(h, &request(&job, "r1", &at(3), true)).await;
    let skip_keys = at(2);
    let skip = ClaimRequest {
        max_attempts: 1,
        ..steered(
            &job,
            "r2",
            &skip_keys,
            OverlapPolicy::Skip,
            Origin::Scheduled,
        )
    };
    assert_eq!(claim_one(h, &skip).await, ClaimOutcome::Skipped);
    let replace_keys = at(1);
    let replace = steered(
        &job,
        "r3",
        &replace_keys,
        OverlapPolicy::CancelOther,
        Origin::Scheduled,
    );
    let failing = leased(h, &replace).await;
    assert_eq!(row(h, canceled.id).await.status, Status::Failed);
    fail_each(h, [&failing], HOUR).await;
    let running = leased(h, &request(&job, "r4", &at(0), true)).await;
    let summaries = h
        .store
        .scope_summaries(Some(&job))
        .await
        .expect("scope_summaries");
    let now = now(h).await;
    assert_eq!(summaries.len(), 1);
    let summary = &summaries[0];
    assert_eq!(
        (
            summary.skipped,
            summary.exhausted,
            summary.retry_pending,
            summary.running
        ),
        (2, 0, 1, 1)
    );
    assert_eq!((summary.stale, summary.stale_timeout), (0, 0));
    assert_eq!(
        (summary.latest.plan_time, summary.latest.status),
        (running.plan_time, Status::Running)
    );
    let rows = rows_of(h, &job).await;
    assert_eq!(Some(summary), ScopeSummary::of_rows(&rows, now).as_ref());
}

/// A control's progress counts its rows by status (a skipped one as
/// failed), and no other control's or the schedule's; an unknown id, or a
/// control without runs, has zeros.
pub async fn control_progress_counts_the_rows_of_a_control(h: &Harness) {
    let job = unique("progress");
    let m = this_minute(h).await;
    let trigger = add(h, &job, None, ControlAction::Trigger).await;
    let other = add(h, &job, None, ControlAction::Trigger).await;
    let idle = add(h, &job, None, ControlAction::Trigger).await;
    let keys: Vec<PlanKey> = ["a", "b", "c"]
        .into_iter()
        .map(|id| key(Scope::new("t", id), m + OFF_GRID))
        .collect();
    let runs = leases(
        h,
        &of_control(
            request(&job, "r1", &keys, true),
            Origin::Trigger,
            trigger.id,
        ),
    )
    .await;
    finish(h, &runs[0], &ok()).await;
    fail_each(h, &runs[1..2], Duration::ZERO).await;
    let skipped_key = [key(Scope::new("t", "c"), m + OFF_GRID * 2)];
    let mut skip = steered(
        &job,
        "r2",
        &skipped_key,
        OverlapPolicy::Skip,
        Origin::Trigger,
    );
    skip.steering.control_id = Some(trigger.id);
    assert_eq!(claim_one(h, &skip).await, ClaimOutcome::Skipped);
    let elsewhere = [key(Scope::new("t", "d"), m + OFF_GRID)];
    leased(
        h,
        &of_control(
            request(&job, "r1", &elsewhere, true),
            Origin::Trigger,
            other.id,
        ),
    )
    .await;
    leased(
        h,
        &request(&job, "r1", &[key(Scope::new("t", "a"), m)], true),
    )
    .await;

    let progress = |id| async move {
        h.store
            .control_progress(id)
            .await
            .expect("control_progress")
    };
    let counted = progress(trigger.id).await;
    assert_eq!(
        counted,
        Progress {
            succeeded: 1,
            failed: 2,
            running: 1
        }
    );
    let of_trigger: Vec<Execution> = list(
        h,
        ExecutionFilter {
            job_name: Some(job.clone()),
            ..Default::default()
        },
    )
    .await
    .into_iter()
    .filter(|r| r.control_id == Some(trigger.id))
    .collect();
    assert_eq!(counted, Progress::of_rows(&of_trigger));
    assert_eq!(
        progress(other.id).await,
        Progress {
            running: 1,
            ..Progress::default()
        }
    );
    assert_eq!(progress(idle.id).await, Progress::default());
    assert_eq!(progress(Uuid::now_v7()).await, Progress::default());
}
