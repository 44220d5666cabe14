//! Differential tests: random sequences of operations applied to several
//! stores in lockstep, which must give identical outcomes and identical
//! rows.
//!
//! Where the conformance suite checks chosen guarantees one at a time, this
//! module lets proptest look for the sequence nobody thought of: claims of
//! overlapping keys from several runners, heartbeats, terminal writes one
//! by one and in batches, sweeps, operator retries, pruning, retry-due and
//! audit reads, replicas announcing themselves, jumps of store time, and
//! steering (`docs/contract.md` §11): pauses, triggers and backfills stored,
//! ended, advanced and read, and claims under every overlap policy and
//! origin, so that the stores' admission (paused, busy, skipped, a live run
//! replaced) is compared too; and stored schedules (`docs/contract.md` §12):
//! creates, updates and deletes of the job's stored schedule naming the
//! current version or another, with valid and invalid definitions, and
//! claims planned under a version, current or superseded.
//! [`check`] applies each [`Op`] to every store in turn and compares, after
//! every operation, what each call returned, every row of the job field by
//! field (ids and tokens aside: they are random by design, and a control's
//! id is replaced by its number in creation order), the attempts log of
//! every execution a lease was ever handed out for (pruned ones included,
//! whose logs must be gone), the scope summaries, the replica registry and
//! the job's controls, active and ended, and the job's stored schedule. The first store is the reference (the
//! memory store, which applies [`machine`](scheduler_core::machine) directly); the
//! first difference panics with the operation's index, the operation, both
//! stores' names and both values, and the numbered operations up to there.
//! proptest then shrinks the sequence, so a failure ends as a short list of
//! operations that reads as a recipe.
//!
//! Exact comparison needs one store time that every store reads: a
//! [`ManualClock`](scheduler_core::ManualClock) injected into each (the PostgreSQL
//! store takes one through its client-clock option, for tests only), moved
//! by [`check`] through the [`TimeControl`] it is given.
//!
//! In the manner of object_store's `integration` module, these are plain
//! public functions that each backend's tests call:
//!
//! ```text
//! proptest! {
//!     #[test]
//!     fn sqlite_matches_the_memory_store(ops in differential::ops()) {
//!         runtime.block_on(async {
//!             let clock = ManualClock::new(differential::START);
//!             let memory = MemoryLeaseStore::with_clock(Arc::new(clock.clone()));
//!             let sqlite = SqliteStoreOptions::memory().clock(Arc::new(clock.clone())).open().await?;
//!             let stores: [(&'static str, Arc<dyn ExecutionAudit>); 2] =
//!                 [("memory", Arc::new(memory)), ("sqlite", Arc::new(sqlite))];
//!             differential::check(&ops, &clock, &stores).await;
//!         });
//!     }
//! }
//! ```
//!
//! proptest is a dependency of this crate for this module alone: its
//! strategies and shrinking are what turn a random failure into a readable
//! one, and the crate is only ever a dev-dependency.

use std::fmt::{self, Debug};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::Map;
use time::macros::datetime;
use time::OffsetDateTime;
use uuid::Uuid;

use scheduler_core::model::{
    Control, ControlAction, ControlChange, ControlRead, ControlState, NewControl, Origin,
    OverlapPolicy, Progress, ScheduleForm, Steering, MAX_ARGUMENTS_BYTES, MAX_CATCH_UP_WINDOW,
};
use scheduler_core::time::TimeControl;
use scheduler_core::Scope;
use scheduler_core::StoreError;
use scheduler_core::{
    Announcement, Attempt, ClaimOutcome, ClaimRequest, ErrorCode, Execution, ExecutionAudit,
    ExecutionFilter, Finish, Lease, LeaseRef, LeaseStoreExt, PlanKey, Presence, Prune,
    RegisteredJob, Replica, ReplicaInfo, RetryDue, RetryRead, ScheduleDefinition, ScheduleOptions,
    ScheduleWrite, Status, StoredSchedule, StoredScopes,
};

/// The job every operation works on. The stores should hold no rows of
/// other jobs: pruning is not per job, and [`check`] compares the scope
/// summaries of every job.
pub const JOB: &str = "differential";

/// Where the shared clock should start: half a minute past the first plan
/// time, so the plan times of the keys lie around it.
pub const START: OffsetDateTime = datetime!(2026-03-01 12:00:30 UTC);

/// The first plan time: [`Op::Claim`]'s plan `p` is `PLAN_BASE + p` minutes.
const PLAN_BASE: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

/// Scopes are `tenant/t0` to `tenant/t2`; reads also ask for `t3`, which
/// never has rows.
const SCOPES: u8 = 3;

/// Plan times are the first three minutes from `PLAN_BASE`.
const PLANS: u8 = 3;

/// One operation of a differential sequence.
///
/// Operations on a lease name it by `lease`, counted back from the newest
/// lease the store handed out (0 is the latest; the count wraps around the
/// leases so far); with no lease yet they do nothing. Keys are
/// `(scope, plan)`: scope `tenant/t{scope}`, plan time `12:0{plan}:00` on
/// 2026-03-01.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// One batch claim of `keys` by `runner-{runner}`.
    Claim {
        /// `(scope, plan)` pairs, in the order the batch attempts them.
        keys: Vec<(u8, u8)>,
        /// Which runner claims.
        runner: u8,
        /// Copied into fresh rows.
        max_attempts: i32,
        /// The new leases' stale timeout, in seconds.
        stale_secs: u64,
        /// Whether stale leases may be stolen and swept rows retried.
        reentrant: bool,
    },
    /// A heartbeat of a lease.
    Heartbeat {
        /// Which lease (see [`Op`]).
        lease: usize,
        /// The extended stale timeout, in seconds.
        stale_secs: u64,
    },
    /// A successful terminal write of a lease.
    Succeed {
        /// Which lease (see [`Op`]).
        lease: usize,
        /// The rows the handler reports, also stored in its result.
        rows: i64,
    },
    /// A failed terminal write of a lease.
    Fail {
        /// Which lease (see [`Op`]).
        lease: usize,
        /// The retry delay, in seconds.
        retry_secs: u64,
    },
    /// One `finish_many` batch: per item, a lease and a success (`None`) or
    /// a failure retried after that many seconds. The memory store's is the
    /// trait's default, `finish` once per item: the reference.
    FinishMany {
        /// `(lease, retry_secs)` per item; a lease may repeat.
        items: Vec<(usize, Option<u64>)>,
    },
    /// A sweep of the job's stale leases, for a job that allows stale
    /// re-entry or not (which decides the swept rows' `next_retry_at`).
    Sweep {
        /// The job's `allow_stale_reentry`.
        reentrant: bool,
    },
    /// An operator's retry of the row a lease was for (which may since have
    /// finished, been stolen, or been pruned).
    OperatorRetry {
        /// Which lease's row (see [`Op`]).
        lease: usize,
    },
    /// A prune with the cutoff `back_secs` before store time, plus half a
    /// microsecond when `sub_micro` (a cutoff between stored instants).
    Prune {
        /// How far before store time the cutoff lies, in seconds.
        back_secs: u64,
        /// Whether the cutoff falls between whole microseconds.
        sub_micro: bool,
        /// The most rows deleted.
        limit: usize,
        /// Count instead of deleting.
        dry_run: bool,
    },
    /// A retry-eligibility read: the job's FAILED plans at or after plan
    /// `since` (plus half a microsecond when `sub_micro`, a bound between
    /// stored instants) whose retry is due.
    RetryDue {
        /// The plan (as in keys) the bound is at; past the last plan nothing
        /// is found.
        since: u8,
        /// Whether the bound falls between whole microseconds.
        sub_micro: bool,
        /// Whether swept (`stale_timeout`) rows count as due.
        reentrant: bool,
        /// The most plans returned.
        limit: usize,
    },
    /// An audit read: the job's rows at or after plan `from` (plus half a
    /// microsecond when `sub_micro`), of one scope and status when given,
    /// at most `limit`, newest plan time first.
    List {
        /// The plan (as in keys) the lower bound is at.
        from: u8,
        /// Whether the bound falls between whole microseconds.
        sub_micro: bool,
        /// Only this scope (as in keys).
        scope: Option<u8>,
        /// Only this status.
        status: Option<Status>,
        /// At most this many rows.
        limit: Option<usize>,
    },
    /// An announcement of replica `runner-{runner}` to the registry, with
    /// the first `jobs` of three jobs.
    Announce {
        /// Which runner announces.
        runner: u8,
        /// How many jobs it registered.
        jobs: u8,
        /// Starting, alive or stopping.
        presence: Presence,
    },
    /// Store time moves forward this many seconds.
    Advance {
        /// Seconds.
        secs: u64,
    },
    /// One batch claim as [`Op::Claim`], steered: under an overlap policy,
    /// for keys of an origin, of a control when the origin is a trigger or
    /// a backfill. The leases' stale timeout is 60 s.
    SteeredClaim {
        /// `(scope, plan)` pairs, in the order the batch attempts them.
        keys: Vec<(u8, u8)>,
        /// Which runner claims.
        runner: u8,
        /// Copied into fresh rows.
        max_attempts: i32,
        /// Whether stale leases may be stolen and swept rows retried.
        reentrant: bool,
        /// What a key of a busy scope does.
        overlap: OverlapPolicy,
        /// Why the keys run.
        origin: Origin,
        /// Which control the keys belong to, counted back from the newest
        /// as [`Op`]'s leases are (ignored for scheduled keys, and before
        /// the first control).
        control: Option<usize>,
        /// The stored schedule version the keys were planned under, picked
        /// against the job's stored schedule as the store lists it; `None`
        /// for a compiled-in job.
        schedule_version: Option<VersionPick>,
        /// A lease the claimer names as finishing (its run ended there, its
        /// terminal write in flight: [`ClaimRequest::finishing`]), counted
        /// back from the newest as [`Op`]'s leases are, with its own token
        /// (`true`) or another one (`false`: an attempt taken over since);
        /// nothing before the first lease.
        finishing: Option<(usize, bool)>,
    },
    /// An operator's control of the job, stored at store time.
    AddControl {
        /// What it asks for.
        kind: ControlKind,
        /// Its scope (as in keys), or the whole job.
        scope: Option<u8>,
    },
    /// A change to a control the store handed out.
    UpdateControl {
        /// Which control, counted back from the newest as [`Op`]'s leases
        /// are; `None` for an id no store knows. Nothing happens before
        /// the first control.
        control: Option<usize>,
        /// The change.
        change: ChangeKind,
    },
    /// A write of the job's stored schedule.
    WriteSchedule {
        /// What is written.
        write: WriteKind,
    },
    /// A read of controls: the job's (or every job's), active ones and
    /// those that ended at or after `ended_back` seconds before store time
    /// (plus half a microsecond when `sub_micro`).
    ReadControls {
        /// Every job's, rather than the job's.
        all_jobs: bool,
        /// How far back the `ended_since` bound lies, in seconds; `None`
        /// for active controls only.
        ended_back: Option<u64>,
        /// Whether the bound falls between whole microseconds.
        sub_micro: bool,
    },
}

/// What an [`Op::AddControl`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlKind {
    /// A pause, ending by itself `until_secs` after store time if given.
    Pause {
        /// Seconds from store time to the pause's `until`.
        until_secs: Option<u64>,
        /// Whether missed plans are dropped.
        skip_missed: bool,
    },
    /// A trigger.
    Trigger,
    /// A backfill of plans `[from, to)` (as in keys): an empty or inverted
    /// range is refused.
    Backfill {
        /// The first plan.
        from: u8,
        /// The end plan (exclusive).
        to: u8,
    },
}

/// What an [`Op::WriteSchedule`] writes; definitions are numbered as
/// [`definition`] numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    /// A create.
    Create {
        /// Which definition.
        definition: u8,
    },
    /// An update naming a version.
    Update {
        /// The version named.
        version: VersionPick,
        /// Which definition.
        definition: u8,
    },
    /// A delete, naming a version or none.
    Delete {
        /// The version named, if any.
        version: Option<VersionPick>,
    },
}

/// A version of the job's stored schedule, relative to the one the store
/// lists as current (taken as 1 when there is none, so that a claim under
/// "the current version" of a deleted schedule is superseded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionPick {
    /// The current version.
    Current,
    /// One before the current version.
    Previous,
    /// One after the current version.
    Next,
}

impl VersionPick {
    /// The version this picks when `current` is the store's.
    fn of(self, current: Option<i64>) -> i64 {
        let current = current.unwrap_or(1);
        match self {
            VersionPick::Current => current,
            VersionPick::Previous => current - 1,
            VersionPick::Next => current + 1,
        }
    }
}

/// How many definitions [`definition`] numbers: the first
/// [`VALID_DEFINITIONS`] valid, the rest each refused for one field.
pub const DEFINITIONS: u8 = 11;

/// How many of the first [`DEFINITIONS`] are valid.
pub const VALID_DEFINITIONS: u8 = 4;

/// Definition `n` (modulo [`DEFINITIONS`]) of [`Op::WriteSchedule`]: a
/// cadence, a cadence with an offset and options, a cron schedule in a
/// zone over fixed scopes, a scope provider's with hostile arguments;
/// then a bad cron expression, an unknown zone, a zero cadence, a catch-up
/// window past the limit, arguments past the limit, a kind with a NUL, no
/// attempts.
pub fn definition(n: u8) -> ScheduleDefinition {
    let base = ScheduleDefinition {
        kind: "digest".to_owned(),
        schedule: ScheduleForm::Every {
            cadence: Duration::from_secs(60),
            offset: Duration::ZERO,
        },
        scopes: StoredScopes::default(),
        arguments: Map::new(),
        paused: false,
        options: ScheduleOptions::default(),
    };
    let cron = |expression: &str, zone: &str| ScheduleForm::Cron {
        expression: expression.to_owned(),
        zone: zone.to_owned(),
    };
    match n % DEFINITIONS {
        0 => base,
        1 => ScheduleDefinition {
            schedule: ScheduleForm::Every {
                cadence: Duration::from_secs(120),
                offset: Duration::from_secs(30),
            },
            options: ScheduleOptions {
                max_attempts: 5,
                overlap: OverlapPolicy::Skip,
                retry_backoff: vec![Duration::from_secs(1)],
                ..ScheduleOptions::default()
            },
            ..base
        },
        2 => ScheduleDefinition {
            kind: "rollup".to_owned(),
            schedule: cron("0 9 * * 1-5", "Europe/Berlin"),
            scopes: StoredScopes::Fixed((0..SCOPES).map(scope).collect()),
            paused: true,
            ..base
        },
        3 => {
            let mut arguments = Map::new();
            arguments.insert(
                "to'\"".to_owned(),
                serde_json::json!([
                    "a\"b",
                    "ü 🦀",
                    "{\"json\": 1}",
                    18_446_744_073_709_551_615_u64
                ]),
            );
            ScheduleDefinition {
                scopes: StoredScopes::Provider("tenants".to_owned()),
                arguments,
                ..base
            }
        }
        4 => ScheduleDefinition {
            schedule: cron("61 * * * *", "UTC"),
            ..base
        },
        5 => ScheduleDefinition {
            schedule: cron("0 9 * * *", "Mars/Olympus"),
            ..base
        },
        6 => ScheduleDefinition {
            schedule: ScheduleForm::Every {
                cadence: Duration::ZERO,
                offset: Duration::ZERO,
            },
            ..base
        },
        7 => {
            let mut d = base;
            d.options.catch_up_window = MAX_CATCH_UP_WINDOW + Duration::from_secs(1);
            d
        }
        8 => {
            let mut d = base;
            d.arguments
                .insert("big".to_owned(), "x".repeat(MAX_ARGUMENTS_BYTES).into());
            d
        }
        9 => ScheduleDefinition {
            kind: "di\0gest".to_owned(),
            ..base
        },
        _ => {
            let mut d = base;
            d.options.max_attempts = 0;
            d
        }
    }
}

/// What an [`Op::UpdateControl`] changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// End it in `state`, with a reason (one with a NUL character when
    /// `bad_reason`, which is refused) and a pause's new `skip_missed`.
    End {
        /// The final state (active is refused).
        state: ControlState,
        /// Whether the reason holds a NUL character.
        bad_reason: bool,
        /// A pause's new `skip_missed`.
        skip_missed: Option<bool>,
    },
    /// Move a backfill's cursor to plan `to` (as in keys), from plan
    /// `from`, or from the cursor the store last returned when `None`.
    Advance {
        /// The cursor presented; `None` for the one last seen.
        from: Option<u8>,
        /// The new cursor.
        to: u8,
    },
}

/// One random operation, over a few scopes, plan times, runners and
/// durations chosen so that leases go stale, retries come due and rows get
/// pruned within a short sequence.
pub fn op() -> impl Strategy<Value = Op> {
    let lease = || 0usize..8;
    let stale = || prop_oneof![Just(30u64), Just(60)];
    let retry = || prop_oneof![Just(0u64), Just(20), Just(90)];
    prop_oneof![
        3 => (
            prop::collection::vec((0..SCOPES, 0..PLANS), 1..4),
            0u8..3,
            1i32..4,
            stale(),
            any::<bool>(),
        )
            .prop_map(|(keys, runner, max_attempts, stale_secs, reentrant)| Op::Claim {
                keys,
                runner,
                max_attempts,
                stale_secs,
                reentrant,
            }),
        1 => (lease(), stale()).prop_map(|(lease, stale_secs)| Op::Heartbeat { lease, stale_secs }),
        1 => (lease(), 0i64..100).prop_map(|(lease, rows)| Op::Succeed { lease, rows }),
        2 => (lease(), retry()).prop_map(|(lease, retry_secs)| Op::Fail { lease, retry_secs }),
        1 => prop::collection::vec((lease(), prop::option::of(retry())), 0..6)
            .prop_map(|items| Op::FinishMany { items }),
        1 => any::<bool>().prop_map(|reentrant| Op::Sweep { reentrant }),
        1 => lease().prop_map(|lease| Op::OperatorRetry { lease }),
        1 => (
            prop_oneof![Just(0u64), Just(30), Just(120)],
            any::<bool>(),
            0usize..4,
            any::<bool>(),
        )
            .prop_map(|(back_secs, sub_micro, limit, dry_run)| Op::Prune {
                back_secs,
                sub_micro,
                limit,
                dry_run,
            }),
        1 => (0..=PLANS, any::<bool>(), any::<bool>(), 0usize..4).prop_map(
            |(since, sub_micro, reentrant, limit)| Op::RetryDue {
                since,
                sub_micro,
                reentrant,
                limit,
            }
        ),
        1 => (
            0..=PLANS,
            any::<bool>(),
            prop::option::of(0..SCOPES),
            prop::option::of(prop_oneof![
                Just(Status::Running),
                Just(Status::Success),
                Just(Status::Failed),
            ]),
            prop::option::of(0usize..4),
        )
            .prop_map(|(from, sub_micro, scope, status, limit)| Op::List {
                from,
                sub_micro,
                scope,
                status,
                limit,
            }),
        1 => (
            0u8..3,
            0u8..4,
            prop_oneof![
                Just(Presence::Started),
                Just(Presence::Alive),
                Just(Presence::Stopped),
            ],
        )
            .prop_map(|(runner, jobs, presence)| Op::Announce {
                runner,
                jobs,
                presence,
            }),
        2 => prop_oneof![Just(1u64), Just(20), Just(30), Just(60), Just(200)]
            .prop_map(|secs| Op::Advance { secs }),
        2 => (
            prop::collection::vec((0..SCOPES, 0..PLANS), 1..4),
            0u8..3,
            1i32..4,
            any::<bool>(),
            prop::sample::select(OverlapPolicy::ALL.to_vec()),
            prop_oneof![Just(Origin::Scheduled), Just(Origin::Trigger), Just(Origin::Backfill)],
            prop::option::of(0usize..4),
            prop::option::of(version_pick()),
            prop::option::of((0usize..4, any::<bool>())),
        )
            .prop_map(
                |(keys, runner, max_attempts, reentrant, overlap, origin, control, schedule_version, finishing)| {
                    Op::SteeredClaim {
                        keys,
                        runner,
                        max_attempts,
                        reentrant,
                        overlap,
                        origin,
                        control,
                        schedule_version,
                        finishing,
                    }
                }
            ),
        2 => write_kind().prop_map(|write| Op::WriteSchedule { write }),
        2 => (control_kind(), prop::option::of(0..SCOPES))
            .prop_map(|(kind, scope)| Op::AddControl { kind, scope }),
        2 => (
            prop_oneof![9 => (0usize..4).prop_map(Some), 1 => Just(None)],
            change_kind()
        )
            .prop_map(|(control, change)| Op::UpdateControl { control, change }),
        1 => (
            any::<bool>(),
            prop::option::of(prop_oneof![Just(0u64), Just(30), Just(120)]),
            any::<bool>(),
        )
            .prop_map(|(all_jobs, ended_back, sub_micro)| Op::ReadControls {
                all_jobs,
                ended_back,
                sub_micro,
            }),
    ]
}

/// One random [`ControlKind`]: pauses (mostly with an `until` a short
/// sequence reaches), triggers, and backfills over the plans, a third of
/// them empty or inverted.
fn control_kind() -> impl Strategy<Value = ControlKind> {
    prop_oneof![
        1 => (
            prop_oneof![1 => Just(None), 2 => prop_oneof![Just(Some(30u64)), Just(Some(90))]],
            any::<bool>()
        )
            .prop_map(|(until_secs, skip_missed)| ControlKind::Pause {
                until_secs,
                skip_missed,
            }),
        1 => Just(ControlKind::Trigger),
        1 => (0..PLANS, 1..=PLANS).prop_map(|(from, to)| ControlKind::Backfill { from, to }),
    ]
}

/// One random [`VersionPick`], mostly the current version.
fn version_pick() -> impl Strategy<Value = VersionPick> {
    prop_oneof![
        3 => Just(VersionPick::Current),
        1 => Just(VersionPick::Previous),
        1 => Just(VersionPick::Next),
    ]
}

/// One random [`WriteKind`]: creates, updates and deletes, with valid
/// definitions three times as often as invalid ones, and deletes naming a
/// version or none.
fn write_kind() -> impl Strategy<Value = WriteKind> {
    let definition = || {
        prop_oneof![
            3 => 0..VALID_DEFINITIONS,
            1 => VALID_DEFINITIONS..DEFINITIONS,
        ]
    };
    prop_oneof![
        2 => definition().prop_map(|definition| WriteKind::Create { definition }),
        3 => (version_pick(), definition())
            .prop_map(|(version, definition)| WriteKind::Update { version, definition }),
        1 => prop::option::of(version_pick()).prop_map(|version| WriteKind::Delete { version }),
    ]
}

/// One random [`ChangeKind`]: ends in every state (some refused), and
/// advances, mostly from the cursor last seen.
fn change_kind() -> impl Strategy<Value = ChangeKind> {
    prop_oneof![
        2 => (
            prop_oneof![
                4 => Just(ControlState::Done),
                2 => Just(ControlState::Cancelled),
                1 => Just(ControlState::Rejected),
                1 => Just(ControlState::Active),
            ],
            prop::bool::weighted(0.1),
            prop::option::of(any::<bool>()),
        )
            .prop_map(|(state, bad_reason, skip_missed)| ChangeKind::End {
                state,
                bad_reason,
                skip_missed,
            }),
        1 => (
            prop_oneof![3 => Just(None), 1 => (0..=PLANS).prop_map(Some)],
            0..=PLANS + 1,
        )
            .prop_map(|(from, to)| ChangeKind::Advance { from, to }),
    ]
}

/// A sequence of 1 to 39 random operations ([`op`]).
pub fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 1..40)
}

/// What a call returned, without the random parts (ids and tokens).
#[derive(Debug, PartialEq)]
enum Seen {
    Claimed(Vec<ClaimOutcome>),
    Heartbeat(Result<OffsetDateTime, String>),
    Finished(Result<(), String>),
    FinishedMany(Vec<Result<(), String>>),
    Swept(u64),
    Repaired(Result<Box<Execution>, String>),
    Pruned(u64),
    Due(Vec<RetryDue>),
    Listed(Listed),
    Announced,
    ControlAdded(Result<Control, String>),
    ControlUpdated(Result<Control, String>),
    Controls(Vec<Control>),
    ScheduleWritten(Result<Option<StoredSchedule>, String>),
    Nothing,
}

/// What an audit read returned, as far as it is the same in every store.
/// Rows of one plan time come in id order, and ids are random: the plan
/// times in order are compared, and the rows of each plan time as a set,
/// except the last plan time's when the limit may have cut it (which of
/// them made it depends on the ids too).
#[derive(Debug, PartialEq)]
struct Listed {
    plan_times: Vec<OffsetDateTime>,
    rows: Vec<Execution>,
}

impl Listed {
    fn of(rows: Vec<Execution>, limit: Option<usize>) -> Self {
        let plan_times: Vec<OffsetDateTime> = rows.iter().map(|r| r.plan_time).collect();
        let cut = limit
            .filter(|&l| l == rows.len())
            .and_then(|_| plan_times.last().copied());
        let mut rows: Vec<Execution> = rows
            .into_iter()
            .filter(|r| Some(r.plan_time) != cut)
            .map(blank)
            .collect();
        sort_rows(&mut rows);
        Listed { plan_times, rows }
    }
}

/// The refusals a sequence can meet, as comparable text; any other error
/// means the store failed, which no sequence may cause.
fn refusal(store: &str, e: &StoreError) -> String {
    match e {
        StoreError::LeaseLost { .. } => "lease lost".to_owned(),
        StoreError::NotFound { .. } => "not found".to_owned(),
        StoreError::Conflict(why) => format!("conflict: {why}"),
        other => panic!("{store}: unexpected store error: {other}"),
    }
}

/// The refusals a control's store or update may meet, by kind only: the
/// messages name the stores' random ids. Any other error means the store
/// failed.
fn control_refusal(store: &str, e: &StoreError) -> String {
    match e {
        StoreError::NotFound { .. } => "not found".to_owned(),
        StoreError::Conflict(_) => "conflict".to_owned(),
        StoreError::InvalidInput(_) => "invalid input".to_owned(),
        other => panic!("{store}: unexpected store error: {other}"),
    }
}

/// The refusals a stored schedule's write may meet, with their messages
/// (which [`apply_write`](scheduler_core::job::apply_write) words alike
/// for every store). Any other error means the store failed.
fn schedule_refusal(store: &str, e: &StoreError) -> String {
    match e {
        StoreError::Conflict(why) => format!("conflict: {why}"),
        StoreError::InvalidInput(why) => format!("invalid input: {why}"),
        other => panic!("{store}: unexpected store error: {other}"),
    }
}

/// What [`Op::AddControl`] stores.
fn new_control(kind: ControlKind, scope_of: Option<u8>, now: OffsetDateTime) -> NewControl {
    let action = match kind {
        ControlKind::Pause {
            until_secs,
            skip_missed,
        } => ControlAction::Pause {
            until: until_secs.map(|s| now + Duration::from_secs(s)),
            skip_missed,
        },
        ControlKind::Trigger => ControlAction::Trigger,
        ControlKind::Backfill { from, to } => ControlAction::Backfill {
            from: plan_time(from),
            to: plan_time(to),
        },
    };
    NewControl {
        job_name: JOB.to_owned(),
        scope: scope_of.map(scope),
        note: format!("differential {}", action.kind()),
        action,
    }
}

/// The label that stands for the `n`-th control (from 0) a store handed
/// out, in place of its random id.
fn control_label(n: usize) -> Uuid {
    Uuid::from_u128(n as u128 + 1)
}

/// `row` with its random id and token blanked.
fn blank(row: Execution) -> Execution {
    Execution {
        id: Uuid::nil(),
        lease_token: Uuid::nil(),
        ..row
    }
}

/// `attempt` with its execution's random id blanked.
fn blank_attempt(attempt: Attempt) -> Attempt {
    Attempt {
        execution_id: Uuid::nil(),
        ..attempt
    }
}

/// `lease` with its random id and token blanked.
fn blank_lease(lease: &Lease) -> Lease {
    Lease {
        id: Uuid::nil(),
        token: Uuid::nil(),
        ..lease.clone()
    }
}

fn blank_outcome(outcome: &ClaimOutcome) -> ClaimOutcome {
    outcome.clone().map(|l| blank_lease(&l))
}

fn scope(s: u8) -> Scope {
    Scope::new("tenant", format!("t{s}"))
}

/// `t`, or half a microsecond later when `sub_micro`: an instant between
/// stored (whole-microsecond) instants, where stores that round a bound the
/// wrong way would disagree.
fn nudged(t: OffsetDateTime, sub_micro: bool) -> OffsetDateTime {
    if sub_micro {
        t + Duration::from_nanos(500)
    } else {
        t
    }
}
fn plan_time(p: u8) -> OffsetDateTime {
    PLAN_BASE + Duration::from_secs(60 * u64::from(p))
}

fn finish_failed(millis: u64, msg: &str, retry_secs: u64) -> Finish {
    Finish::failure(
        Duration::from_millis(millis),
        ErrorCode::HandlerError,
        msg,
        Duration::from_secs(retry_secs),
    )
}

/// What [`Op::Announce`]'s runner ids start with.
const REPLICA_PREFIX: &str = "differential-runner-";

/// [`Op::Announce`]'s announcement: a runner, its first `jobs` of three
/// jobs (one of them on a cron schedule), and `presence`.
fn announcement(runner: u8, jobs: u8, presence: Presence) -> Announcement {
    let job = |i: u8| RegisteredJob {
        name: format!("job-{i}"),
        schedule: format!("every {} minutes", i + 1),
        schedule_form: match i {
            0 => ScheduleForm::Cron {
                expression: "0 9 * * 1-5".into(),
                zone: "Europe/Berlin".into(),
            },
            _ => ScheduleForm::Every {
                cadence: Duration::from_secs(60 * u64::from(i + 1)),
                offset: Duration::ZERO,
            },
        },
        max_attempts: i32::from(i) + 1,
        ..Default::default()
    };
    Announcement {
        replica: ReplicaInfo {
            runner_id: format!("{REPLICA_PREFIX}{runner}"),
            host: "host".into(),
            pid: 100 + u32::from(runner),
            version: "0.1.0".into(),
            refresh_interval: Duration::from_secs(15),
            jobs: (0..jobs).map(job).collect(),
            kinds: vec!["digest".to_owned()],
        },
        presence,
    }
}

/// One store under test and the leases it handed out, oldest first.
struct Side {
    name: &'static str,
    store: Arc<dyn ExecutionAudit>,
    leases: Vec<Lease>,
    /// The controls it handed out, oldest first, each as the store last
    /// returned it.
    controls: Vec<Control>,
}

/// The `back`-th newest of `leases` (oldest first), wrapping around; `None`
/// before the first.
fn pick(leases: &[Lease], back: usize) -> Option<&Lease> {
    let n = leases.len();
    (n > 0).then(|| &leases[n - 1 - back % n])
}

impl Side {
    fn lease(&self, back: usize) -> Option<Lease> {
        pick(&self.leases, back).cloned()
    }

    /// The position of the `back`-th newest control this store handed out
    /// (wrapping around, as [`pick`] does); `None` before the first.
    fn control(&self, back: usize) -> Option<usize> {
        let n = self.controls.len();
        (n > 0).then(|| n - 1 - back % n)
    }

    /// The label of control `id` ([`control_label`]); the nil id for one
    /// this store never handed out.
    fn label(&self, id: Uuid) -> Uuid {
        self.controls
            .iter()
            .position(|c| c.id == id)
            .map_or(Uuid::nil(), control_label)
    }

    /// `row` with its random id and token blanked and its control
    /// labelled.
    fn mask(&self, row: Execution) -> Execution {
        Execution {
            control_id: row.control_id.map(|id| self.label(id)),
            ..blank(row)
        }
    }

    /// `control` with its id labelled.
    fn mask_control(&self, control: Control) -> Control {
        Control {
            id: self.label(control.id),
            ..control
        }
    }

    /// The controls of an answer, labelled, in order of creation time and
    /// then of creation (the order of controls created at one instant
    /// follows their random ids); panics unless the store answered in
    /// `(created_at, id)` order.
    fn masked_controls(&self, controls: Vec<Control>, what: &str) -> Vec<Control> {
        assert!(
            controls
                .windows(2)
                .all(|w| (w[0].created_at, w[0].id) < (w[1].created_at, w[1].id)),
            "{}: {what} not in (created_at, id) order: {controls:#?}",
            self.name
        );
        let mut masked: Vec<Control> = controls.into_iter().map(|c| self.mask_control(c)).collect();
        masked.sort_by_key(|c| (c.created_at, c.id));
        masked
    }

    /// Every control of the job, active or ended, labelled: one read.
    async fn all_controls(&self) -> Vec<Control> {
        let read = ControlRead {
            jobs: Some(vec![JOB.to_owned()]),
            ended_since: Some(START - Duration::from_secs(86_400)),
        };
        let controls = self
            .store
            .controls(&read)
            .await
            .unwrap_or_else(|e| panic!("{}: controls failed: {e}", self.name));
        self.masked_controls(controls, "the job's controls")
    }

    /// The progress of every control this store handed out, in order.
    async fn progress(&self) -> Vec<Progress> {
        let mut out = Vec::with_capacity(self.controls.len());
        for control in &self.controls {
            out.push(
                self.store
                    .control_progress(control.id)
                    .await
                    .unwrap_or_else(|e| panic!("{}: control_progress failed: {e}", self.name)),
            );
        }
        out
    }

    /// Applies `op` at store time `now` (which the store's own clock must
    /// read too: it only picks cutoffs).
    async fn apply(&mut self, op: &Op, now: OffsetDateTime) -> Seen {
        let name = self.name;
        match op {
            Op::Claim {
                keys,
                runner,
                max_attempts,
                stale_secs,
                reentrant,
            } => {
                let keys: Vec<PlanKey> = keys
                    .iter()
                    .map(|&(s, p)| PlanKey {
                        scope: scope(s),
                        plan_time: plan_time(p),
                    })
                    .collect();
                let runner = format!("runner-{runner}");
                let request = ClaimRequest {
                    finishing: &[],
                    steering: scheduler_core::model::Steering::NONE,
                    job_name: JOB,
                    runner_id: &runner,
                    max_attempts: *max_attempts,
                    stale_timeout: Duration::from_secs(*stale_secs),
                    allow_stale_reentry: *reentrant,
                    keys: &keys,
                };
                let outcomes = self
                    .store
                    .claim(&request)
                    .await
                    .unwrap_or_else(|e| panic!("{name}: claim failed: {e}"));
                assert_eq!(outcomes.len(), keys.len(), "{name}: one outcome per key");
                self.leases
                    .extend(outcomes.iter().filter_map(|o| o.lease().cloned()));
                Seen::Claimed(outcomes.iter().map(blank_outcome).collect())
            }
            Op::Heartbeat { lease, stale_secs } => match self.lease(*lease) {
                Some(l) => Seen::Heartbeat(
                    self.store
                        .heartbeat(&l, Duration::from_secs(*stale_secs))
                        .await
                        .map_err(|e| refusal(name, &e)),
                ),
                None => Seen::Nothing,
            },
            Op::Succeed { lease, rows } => match self.lease(*lease) {
                Some(l) => {
                    let mut result = Map::new();
                    result.insert("rows".into(), (*rows).into());
                    let done = Finish::success(Duration::from_millis(7), *rows, result);
                    Seen::Finished(
                        self.store
                            .finish(&l, &done)
                            .await
                            .map_err(|e| refusal(name, &e)),
                    )
                }
                None => Seen::Nothing,
            },
            Op::Fail { lease, retry_secs } => match self.lease(*lease) {
                Some(l) => Seen::Finished(
                    self.store
                        .finish(&l, &finish_failed(9, "boom", *retry_secs))
                        .await
                        .map_err(|e| refusal(name, &e)),
                ),
                None => Seen::Nothing,
            },
            Op::FinishMany { items } => {
                if self.leases.is_empty() {
                    return Seen::Nothing;
                }
                let batch: Vec<(Lease, Finish)> = items
                    .iter()
                    .map(|&(i, retry_secs)| {
                        let lease = self.lease(i).expect("a lease exists");
                        let finish = match retry_secs {
                            None => Finish::success(Duration::from_millis(5), 3, Map::new()),
                            Some(secs) => finish_failed(6, "batched boom", secs),
                        };
                        (lease, finish)
                    })
                    .collect();
                let refs: Vec<(&Lease, &Finish)> = batch.iter().map(|(l, f)| (l, f)).collect();
                let results = self.store.finish_many(&refs).await;
                assert_eq!(results.len(), batch.len(), "{name}: one result per item");
                Seen::FinishedMany(
                    results
                        .iter()
                        .zip(&batch)
                        .map(|(r, (lease, _))| {
                            r.as_ref().map(|_| ()).map_err(|e| {
                                if let StoreError::LeaseLost { id } = e {
                                    assert_eq!(*id, lease.id, "{name}: the item's own execution");
                                }
                                refusal(name, e)
                            })
                        })
                        .collect(),
                )
            }
            Op::Sweep { reentrant } => Seen::Swept(
                self.store
                    .sweep_stale(JOB, *reentrant)
                    .await
                    .unwrap_or_else(|e| panic!("{name}: sweep failed: {e}")),
            ),
            Op::OperatorRetry { lease } => match self.lease(*lease) {
                Some(l) => Seen::Repaired(
                    self.store
                        .retry_execution(l.id)
                        .await
                        .map(|row| Box::new(self.mask(row)))
                        .map_err(|e| refusal(name, &e)),
                ),
                None => Seen::Nothing,
            },
            Op::Prune {
                back_secs,
                sub_micro,
                limit,
                dry_run,
            } => {
                let cutoff = nudged(now - Duration::from_secs(*back_secs), *sub_micro);
                Seen::Pruned(
                    self.store
                        .prune_finished(&Prune {
                            finished_before: cutoff,
                            limit: *limit,
                            dry_run: *dry_run,
                        })
                        .await
                        .unwrap_or_else(|e| panic!("{name}: prune failed: {e}")),
                )
            }
            Op::RetryDue {
                since,
                sub_micro,
                reentrant,
                limit,
            } => {
                let since = nudged(plan_time(*since), *sub_micro);
                Seen::Due(
                    self.store
                        .retry_due(&RetryRead {
                            job_name: JOB,
                            since,
                            allow_stale_reentry: *reentrant,
                            per_scope_limit: *limit,
                        })
                        .await
                        .unwrap_or_else(|e| panic!("{name}: retry_due failed: {e}")),
                )
            }
            Op::List {
                from,
                sub_micro,
                scope: of_scope,
                status,
                limit,
            } => {
                let from = nudged(plan_time(*from), *sub_micro);
                let filter = ExecutionFilter {
                    job_name: Some(JOB.into()),
                    scope: of_scope.map(scope),
                    status: *status,
                    plan_time_from: Some(from),
                    limit: *limit,
                };
                let rows = self
                    .store
                    .list_executions(&filter)
                    .await
                    .unwrap_or_else(|e| panic!("{name}: list_executions failed: {e}"));
                let rows = rows.into_iter().map(|r| self.mask(r)).collect();
                Seen::Listed(Listed::of(rows, *limit))
            }
            Op::Announce {
                runner,
                jobs,
                presence,
            } => {
                self.store
                    .announce(&announcement(*runner, *jobs, *presence))
                    .await
                    .unwrap_or_else(|e| panic!("{name}: announce failed: {e}"));
                Seen::Announced
            }
            Op::Advance { .. } => Seen::Nothing,
            Op::SteeredClaim {
                keys,
                runner,
                max_attempts,
                reentrant,
                overlap,
                origin,
                control,
                schedule_version,
                finishing,
            } => {
                let finishing: Vec<LeaseRef> = finishing
                    .and_then(|(back, own_token)| {
                        let lease = self.lease(back)?.lease_ref();
                        Some(match own_token {
                            true => lease,
                            false => LeaseRef {
                                token: Uuid::new_v4(),
                                ..lease
                            },
                        })
                    })
                    .into_iter()
                    .collect();
                let schedule_version = match schedule_version {
                    Some(pick) => Some(pick.of(self.schedule().await.map(|s| s.version))),
                    None => None,
                };
                let keys: Vec<PlanKey> = keys
                    .iter()
                    .map(|&(s, p)| PlanKey {
                        scope: scope(s),
                        plan_time: plan_time(p),
                    })
                    .collect();
                let runner = format!("runner-{runner}");
                let control_id = control
                    .filter(|_| origin.is_ad_hoc())
                    .and_then(|back| self.control(back))
                    .map(|i| self.controls[i].id);
                let request = ClaimRequest {
                    finishing: &finishing,
                    steering: Steering {
                        overlap: *overlap,
                        origin: *origin,
                        control_id,
                        schedule_version,
                    },
                    job_name: JOB,
                    runner_id: &runner,
                    max_attempts: *max_attempts,
                    stale_timeout: Duration::from_secs(60),
                    allow_stale_reentry: *reentrant,
                    keys: &keys,
                };
                let outcomes = self
                    .store
                    .claim(&request)
                    .await
                    .unwrap_or_else(|e| panic!("{name}: claim failed: {e}"));
                assert_eq!(outcomes.len(), keys.len(), "{name}: one outcome per key");
                self.leases
                    .extend(outcomes.iter().filter_map(|o| o.lease().cloned()));
                Seen::Claimed(outcomes.iter().map(blank_outcome).collect())
            }
            Op::AddControl { kind, scope } => {
                let added = self
                    .store
                    .add_control(&new_control(*kind, *scope, now))
                    .await
                    .map_err(|e| control_refusal(name, &e));
                if let Ok(control) = &added {
                    self.controls.push(control.clone());
                }
                Seen::ControlAdded(added.map(|c| self.mask_control(c)))
            }
            Op::UpdateControl { control, change } => {
                let picked = match control {
                    Some(back) => match self.control(*back) {
                        Some(i) => Some(i),
                        None => return Seen::Nothing,
                    },
                    None => None,
                };
                let change = match *change {
                    ChangeKind::End {
                        state,
                        bad_reason,
                        skip_missed,
                    } => ControlChange::End {
                        state,
                        reason: Some(
                            if bad_reason {
                                "bad\0reason"
                            } else {
                                "differential"
                            }
                            .to_owned(),
                        ),
                        skip_missed,
                    },
                    ChangeKind::Advance { from, to } => ControlChange::Advance {
                        from: match (from, picked) {
                            (Some(p), _) => plan_time(p),
                            (None, Some(i)) => self.controls[i].cursor.unwrap_or(PLAN_BASE),
                            (None, None) => PLAN_BASE,
                        },
                        to: plan_time(to),
                    },
                };
                let id = picked.map_or_else(Uuid::now_v7, |i| self.controls[i].id);
                let updated = self
                    .store
                    .update_control(id, &change)
                    .await
                    .map_err(|e| control_refusal(name, &e));
                if let (Ok(control), Some(i)) = (&updated, picked) {
                    self.controls[i] = control.clone();
                }
                Seen::ControlUpdated(updated.map(|c| self.mask_control(c)))
            }
            Op::WriteSchedule { write } => {
                let current = self.schedule().await.map(|s| s.version);
                let write = match *write {
                    WriteKind::Create { definition: n } => ScheduleWrite::Create(definition(n)),
                    WriteKind::Update {
                        version,
                        definition: n,
                    } => ScheduleWrite::Update {
                        version: version.of(current),
                        definition: definition(n),
                    },
                    WriteKind::Delete { version } => ScheduleWrite::Delete {
                        version: version.map(|v| v.of(current)),
                    },
                };
                Seen::ScheduleWritten(
                    self.store
                        .write_schedule(JOB, &write)
                        .await
                        .map_err(|e| schedule_refusal(name, &e)),
                )
            }
            Op::ReadControls {
                all_jobs,
                ended_back,
                sub_micro,
            } => {
                let read = ControlRead {
                    jobs: (!all_jobs).then(|| vec![JOB.to_owned()]),
                    ended_since: ended_back
                        .map(|back| nudged(now - Duration::from_secs(back), *sub_micro)),
                };
                let controls = self
                    .store
                    .controls(&read)
                    .await
                    .unwrap_or_else(|e| panic!("{name}: controls failed: {e}"));
                Seen::Controls(self.masked_controls(controls, "the controls read"))
            }
        }
    }

    /// The job's stored schedule, if any: one
    /// [`schedules`](scheduler_core::LeaseStore::schedules) read, which
    /// must list every schedule in bytewise name order.
    async fn schedule(&self) -> Option<StoredSchedule> {
        let all = self
            .store
            .schedules()
            .await
            .unwrap_or_else(|e| panic!("{}: schedules failed: {e}", self.name));
        assert!(
            all.windows(2)
                .all(|w| w[0].name.as_bytes() < w[1].name.as_bytes()),
            "{}: schedules not in name order",
            self.name
        );
        all.into_iter().find(|s| s.name == JOB)
    }

    /// The replicas of the registry that [`Op::Announce`] names, in the
    /// order the store lists them.
    async fn replicas(&self) -> Vec<Replica> {
        self.store
            .replicas()
            .await
            .unwrap_or_else(|e| panic!("{}: replicas failed: {e}", self.name))
            .into_iter()
            .filter(|r| r.info.runner_id.starts_with(REPLICA_PREFIX))
            .collect()
    }

    /// The attempts log of every execution a lease was handed out for, in
    /// the order of its first lease (the same in every store, since the
    /// claims' outcomes are), each labelled with its key, ids blanked: one
    /// `attempts_of` read.
    async fn logs(&self) -> Vec<(String, Vec<Attempt>)> {
        let mut ids: Vec<Uuid> = Vec::new();
        let mut labels = Vec::new();
        for lease in &self.leases {
            if !ids.contains(&lease.id) {
                ids.push(lease.id);
                labels.push(format!("{} {}", lease.scope, lease.plan_time));
            }
        }
        let logs = self
            .store
            .attempts_of(&ids)
            .await
            .unwrap_or_else(|e| panic!("{}: attempts_of failed: {e}", self.name));
        assert_eq!(logs.len(), ids.len(), "{}: one log per id", self.name);
        labels
            .into_iter()
            .zip(logs)
            .map(|(label, log)| (label, log.into_iter().map(blank_attempt).collect()))
            .collect()
    }

    /// Every row of the job, in key order, with the random id and token
    /// blanked.
    async fn rows(&self) -> Vec<Execution> {
        let filter = ExecutionFilter {
            job_name: Some(JOB.into()),
            ..Default::default()
        };
        let mut rows: Vec<Execution> = self
            .store
            .list_executions(&filter)
            .await
            .unwrap_or_else(|e| panic!("{}: list_executions failed: {e}", self.name))
            .into_iter()
            .map(|r| self.mask(r))
            .collect();
        sort_rows(&mut rows);
        rows
    }
}

/// Key order: by scope, then plan time.
fn sort_rows(rows: &mut [Execution]) {
    rows.sort_by(|a, b| (&a.scope, a.plan_time).cmp(&(&b.scope, b.plan_time)));
}

/// Where in the sequence a comparison is made, for the failure message.
#[derive(Clone, Copy)]
enum At {
    Start,
    Op(usize),
    End,
}

/// The numbered operations up to and including `upto`.
struct Listing<'a>(&'a [Op], usize);

impl fmt::Display for Listing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, op) in self.0.iter().enumerate().take(self.1) {
            writeln!(f, "  #{i} {op:?}")?;
        }
        Ok(())
    }
}

/// Panics unless `got` (of store `name`) equals `expected` (of the
/// reference), naming the operation, both stores and both values.
fn same<T: Debug + PartialEq>(
    ops: &[Op],
    at: At,
    what: &str,
    (reference, expected): (&str, &T),
    (name, got): (&str, &T),
) {
    if got == expected {
        return;
    }
    let (when, upto) = match at {
        At::Start => ("before the first operation".to_owned(), 0),
        At::Op(i) => (format!("at operation #{i} {:?}", ops[i]), i + 1),
        At::End => ("after the last operation".to_owned(), ops.len()),
    };
    panic!(
        "stores diverge {when}: {what} of {name} differs from {reference}'s\n\
         {reference}: {expected:#?}\n\
         {name}: {got:#?}\n\
         operations so far:\n{ops}",
        ops = Listing(ops, upto),
    );
}

/// Lists compare as a whole, but a failure shows the first entry that
/// differs, `what` and its index, rather than two long lists.
fn same_each<T: Debug + PartialEq>(
    ops: &[Op],
    at: At,
    what: &str,
    (reference, expected): (&str, &[T]),
    (name, got): (&str, &[T]),
) {
    let differs = (0..expected.len().max(got.len())).find(|&i| expected.get(i) != got.get(i));
    if let Some(i) = differs {
        same(
            ops,
            at,
            &format!("{what} {i}"),
            (reference, &expected.get(i)),
            (name, &got.get(i)),
        );
    }
}

/// Rows compare as a whole; a failure shows which rows each store has when
/// they differ in number, else the first pair that differs.
fn same_rows(
    ops: &[Op],
    at: At,
    (reference, expected): (&str, &[Execution]),
    (name, got): (&str, &[Execution]),
) {
    if got.len() != expected.len() {
        let keys = |rows: &[Execution]| -> Vec<String> {
            rows.iter()
                .map(|r| format!("{} {} {}", r.scope, r.plan_time, r.status))
                .collect()
        };
        same(
            ops,
            at,
            "the rows (scope, plan time, status)",
            (reference, &keys(expected)),
            (name, &keys(got)),
        );
    }
    same_each(
        ops,
        at,
        "row in key order",
        (reference, expected),
        (name, got),
    );
}

/// Applies `ops` to every store in turn, one operation at a time, and
/// panics at the first difference from the first store (the reference).
///
/// After every operation it compares what each call returned, every row of
/// [`JOB`] (ids and tokens blanked), the attempts log of every execution a
/// lease was handed out for, the replicas [`Op::Announce`] wrote, the
/// scope summaries of the job and of all jobs, and every control of the
/// job (ids replaced by their number in creation order, after a check that
/// each store answered in `(created_at, id)` order), and the job's stored
/// schedule; after the last, the
/// latest-execution views, every retry-due read and the progress of every
/// control. Each store must be
/// empty of [`JOB`]'s rows, controls and stored schedule, and of the replicas
/// [`Op::Announce`] names, and all must
/// read one store time that `time` moves ([`Op::Advance`] advances it once,
/// for every store): [`check`] verifies first that they agree on it, and
/// that it still agrees at the end.
///
/// # Panics
/// At the first difference, naming the index of the operation, the
/// operation, both stores and both values, and listing the operations up to
/// there; also when a store fails outright (a [`StoreError`] other than a
/// refusal the sequence can cause), or when fewer than two stores are given.
pub async fn check(
    ops: &[Op],
    time: &dyn TimeControl,
    stores: &[(&'static str, Arc<dyn ExecutionAudit>)],
) {
    assert!(stores.len() >= 2, "a differential check needs two stores");
    let mut sides: Vec<Side> = stores
        .iter()
        .map(|(name, store)| Side {
            name,
            store: Arc::clone(store),
            leases: Vec::new(),
            controls: Vec::new(),
        })
        .collect();
    let reference = sides[0].name;
    let mut now = store_time(&sides[0]).await;
    for side in &sides[1..] {
        same(
            ops,
            At::Start,
            "store time (do the stores share one clock?)",
            (reference, &now),
            (side.name, &store_time(side).await),
        );
    }
    for side in &sides {
        same(
            ops,
            At::Start,
            "the rows of the job (a store must start empty)",
            (reference, &Vec::new()),
            (side.name, &side.rows().await),
        );
        same(
            ops,
            At::Start,
            "the replicas (a store must start without them)",
            (reference, &Vec::new()),
            (side.name, &side.replicas().await),
        );
        same(
            ops,
            At::Start,
            "the controls of the job (a store must start without them)",
            (reference, &Vec::new()),
            (side.name, &side.all_controls().await),
        );
        same(
            ops,
            At::Start,
            "the job's stored schedule (a store must start without one)",
            (reference, &None),
            (side.name, &side.schedule().await),
        );
    }

    for (step, op) in ops.iter().enumerate() {
        let at = At::Op(step);
        if let Op::Advance { secs } = op {
            let by = Duration::from_secs(*secs);
            time.advance(by);
            now += by;
        }
        let mut seen = Vec::with_capacity(sides.len());
        for side in &mut sides {
            seen.push(side.apply(op, now).await);
        }
        for (side, got) in sides.iter().zip(&seen).skip(1) {
            same(
                ops,
                at,
                "the outcome",
                (reference, &seen[0]),
                (side.name, got),
            );
        }
        let expected = sides[0].rows().await;
        for side in &sides[1..] {
            same_rows(
                ops,
                at,
                (reference, &expected),
                (side.name, &side.rows().await),
            );
        }
        let expected = sides[0].replicas().await;
        for side in &sides[1..] {
            same(
                ops,
                at,
                "the replicas",
                (reference, &expected),
                (side.name, &side.replicas().await),
            );
        }
        let expected = sides[0].all_controls().await;
        for side in &sides[1..] {
            same_each(
                ops,
                at,
                "the job's control in creation order",
                (reference, &expected),
                (side.name, &side.all_controls().await),
            );
        }
        let expected = sides[0].schedule().await;
        for side in &sides[1..] {
            same(
                ops,
                at,
                "the job's stored schedule",
                (reference, &expected),
                (side.name, &side.schedule().await),
            );
        }
        let expected = sides[0].logs().await;
        for side in &sides[1..] {
            same_each(
                ops,
                at,
                "the attempts log of the execution in lease order",
                (reference, &expected),
                (side.name, &side.logs().await),
            );
        }
        for job in [Some(JOB), None] {
            let summaries = |side: &Side| {
                let store = Arc::clone(&side.store);
                let name = side.name;
                async move {
                    store
                        .scope_summaries(job)
                        .await
                        .unwrap_or_else(|e| panic!("{name}: scope_summaries failed: {e}"))
                }
            };
            let expected = summaries(&sides[0]).await;
            let what = match job {
                Some(_) => "the job's scope summaries",
                None => "the scope summaries of every job",
            };
            for side in &sides[1..] {
                same(
                    ops,
                    at,
                    what,
                    (reference, &expected),
                    (side.name, &summaries(side).await),
                );
            }
        }
    }

    let asked: Vec<Scope> = (0..=SCOPES).map(scope).collect();
    let latest = |side: &Side| {
        let (store, name, asked) = (Arc::clone(&side.store), side.name, asked.clone());
        async move {
            store
                .latest_executions(JOB, &asked)
                .await
                .unwrap_or_else(|e| panic!("{name}: latest_executions failed: {e}"))
        }
    };
    let expected = latest(&sides[0]).await;
    for side in &sides[1..] {
        same(
            ops,
            At::End,
            "latest_executions",
            (reference, &expected),
            (side.name, &latest(side).await),
        );
    }
    let expected = sides[0].progress().await;
    for side in &sides[1..] {
        same_each(
            ops,
            At::End,
            "the progress of the control in creation order",
            (reference, &expected),
            (side.name, &side.progress().await),
        );
    }
    for reentrant in [false, true] {
        let due = |side: &Side| {
            let (store, name) = (Arc::clone(&side.store), side.name);
            async move {
                store
                    .retry_due(&RetryRead {
                        job_name: JOB,
                        since: PLAN_BASE,
                        allow_stale_reentry: reentrant,
                        per_scope_limit: 100,
                    })
                    .await
                    .unwrap_or_else(|e| panic!("{name}: retry_due failed: {e}"))
            }
        };
        let expected = due(&sides[0]).await;
        for side in &sides[1..] {
            same(
                ops,
                At::End,
                &format!("retry_due (allow_stale_reentry = {reentrant})"),
                (reference, &expected),
                (side.name, &due(side).await),
            );
        }
    }
    for side in &sides {
        same(
            ops,
            At::End,
            "store time (only the time control may move it)",
            ("the time control", &now),
            (side.name, &store_time(side).await),
        );
    }
}

async fn store_time(side: &Side) -> OffsetDateTime {
    side.store
        .now()
        .await
        .unwrap_or_else(|e| panic!("{}: now failed: {e}", side.name))
}

impl Op {
    /// A claim of `keys` by runner 0, not reentrant: the shape most
    /// regression sequences start with.
    pub fn claim(keys: &[(u8, u8)], max_attempts: i32, stale_secs: u64) -> Op {
        Op::Claim {
            keys: keys.to_vec(),
            runner: 0,
            max_attempts,
            stale_secs,
            reentrant: false,
        }
    }

    /// A steered claim of `keys` by `runner`, with three attempts, not
    /// reentrant, of the `control`-th newest control for an ad-hoc
    /// origin.
    pub fn steered(
        keys: &[(u8, u8)],
        runner: u8,
        overlap: OverlapPolicy,
        origin: Origin,
        control: Option<usize>,
    ) -> Op {
        Op::SteeredClaim {
            keys: keys.to_vec(),
            runner,
            max_attempts: 3,
            reentrant: false,
            overlap,
            origin,
            control,
            schedule_version: None,
            finishing: None,
        }
    }

    /// This claim, if a steered one, naming the `back`-th newest lease as
    /// finishing, with its own token when `own_token`.
    pub fn finishing(mut self, back: usize, own_token: bool) -> Op {
        if let Op::SteeredClaim { finishing, .. } = &mut self {
            *finishing = Some((back, own_token));
        }
        self
    }

    /// A write of the job's stored schedule.
    pub fn write_schedule(write: WriteKind) -> Op {
        Op::WriteSchedule { write }
    }

    /// A steered claim of `keys` by runner 0 as [`Op::steered`] (scheduled,
    /// overlap allowed), planned under the `version` of the stored
    /// schedule.
    pub fn versioned(keys: &[(u8, u8)], version: VersionPick) -> Op {
        Op::SteeredClaim {
            keys: keys.to_vec(),
            runner: 0,
            max_attempts: 3,
            reentrant: false,
            overlap: OverlapPolicy::AllowAll,
            origin: Origin::Scheduled,
            control: None,
            schedule_version: Some(version),
            finishing: None,
        }
    }

    /// The end of the `control`-th newest control, as done.
    pub fn end_control(control: usize) -> Op {
        Op::UpdateControl {
            control: Some(control),
            change: ChangeKind::End {
                state: ControlState::Done,
                bad_reason: false,
                skip_missed: None,
            },
        }
    }
}

/// Sequences the random search once failed on (on one store or another),
/// and a few written by hand for what a short random sequence rarely
/// reaches, by name: every backend's differential test runs them all, so a
/// fix made for one store is held by the others too.
pub fn regressions() -> Vec<(&'static str, Vec<Op>)> {
    let announce = |runner, jobs, presence| Op::Announce {
        runner,
        jobs,
        presence,
    };
    use OverlapPolicy::{AllowAll, BufferAll, BufferOne, CancelOther, Skip};
    let write = Op::write_schedule;
    let pause = |until_secs, scope| Op::AddControl {
        kind: ControlKind::Pause {
            until_secs,
            skip_missed: false,
        },
        scope,
    };
    vec![
        // Written by hand: a pause of the whole job stops every claim,
        // whatever its steering, and a second pause of it is refused; a
        // scope's pause stands beside it; once both are resumed, the keys
        // are won.
        (
            "a_pause_stops_claims_until_resumed",
            vec![
                pause(None, None),
                pause(None, None),
                pause(None, Some(1)),
                Op::claim(&[(0, 0), (1, 0)], 3, 30),
                Op::steered(&[(0, 1)], 1, Skip, Origin::Trigger, None),
                Op::end_control(1),
                Op::claim(&[(0, 0), (1, 0)], 3, 30),
                Op::end_control(0),
                Op::claim(&[(0, 0), (1, 0)], 3, 30),
                Op::ReadControls {
                    all_jobs: true,
                    ended_back: Some(0),
                    sub_micro: false,
                },
            ],
        ),
        // Written by hand: a live run of t0 named as finishing by its
        // claimer, first with another token (an attempt taken over since:
        // the plan waits, is skipped, or replaces it), then with its own
        // (over for the claimer: the plans are won, nothing replaced).
        (
            "a_finishing_run_holds_up_only_with_another_token",
            vec![
                Op::steered(&[(0, 0)], 0, AllowAll, Origin::Scheduled, None),
                Op::steered(&[(0, 1)], 0, BufferAll, Origin::Scheduled, None).finishing(0, false),
                Op::steered(&[(0, 1)], 0, Skip, Origin::Scheduled, None).finishing(0, false),
                Op::steered(&[(0, 2), (0, 3)], 0, BufferOne, Origin::Scheduled, None)
                    .finishing(0, true),
                Op::steered(&[(0, 4)], 0, CancelOther, Origin::Scheduled, None).finishing(2, true),
                Op::steered(&[(0, 5)], 0, CancelOther, Origin::Scheduled, None).finishing(3, false),
            ],
        ),
        // Written by hand: each policy against a live scheduled run of
        // scope t0: a plan waiting (buffer_all), a backfill instant and a
        // trigger waiting, the older of two plans skipped and the newer
        // waiting (buffer_one), a plan skipped (skip); then a plan of t1
        // replacing the live run there (cancel_other), whose runner finds
        // its lease lost, and a stale lease holding nothing up.
        (
            "overlap_policies_against_a_live_run",
            vec![
                Op::steered(&[(0, 0)], 0, AllowAll, Origin::Scheduled, None),
                Op::steered(&[(0, 2)], 1, BufferAll, Origin::Scheduled, None),
                Op::steered(&[(0, 2)], 1, Skip, Origin::Backfill, None),
                Op::steered(&[(0, 2)], 1, CancelOther, Origin::Trigger, None),
                Op::steered(
                    &[(0, 2), (0, 1), (1, 1)],
                    1,
                    BufferOne,
                    Origin::Scheduled,
                    None,
                ),
                Op::steered(&[(0, 2)], 1, Skip, Origin::Scheduled, None),
                Op::Advance { secs: 1 },
                Op::steered(&[(1, 2)], 2, CancelOther, Origin::Scheduled, None),
                Op::Heartbeat {
                    lease: 1,
                    stale_secs: 60,
                },
                Op::Advance { secs: 61 },
                Op::steered(&[(1, 0)], 2, Skip, Origin::Scheduled, None),
                Op::Sweep { reentrant: false },
            ],
        ),
        // Written by hand: a scope's pause runs out at its `until`; a
        // backfill's cursor moves by compare-and-set to its end; a
        // trigger's runs carry its id, fail, are retried by a scheduled
        // claim and counted in its progress.
        (
            "a_pause_runs_out_a_backfill_advances_a_trigger_runs",
            vec![
                pause(Some(30), Some(1)),
                Op::claim(&[(1, 0), (0, 0)], 3, 30),
                Op::Advance { secs: 30 },
                Op::claim(&[(1, 0)], 3, 30),
                Op::AddControl {
                    kind: ControlKind::Backfill { from: 0, to: 2 },
                    scope: None,
                },
                Op::UpdateControl {
                    control: Some(0),
                    change: ChangeKind::Advance { from: None, to: 1 },
                },
                Op::UpdateControl {
                    control: Some(0),
                    change: ChangeKind::Advance {
                        from: Some(0),
                        to: 2,
                    },
                },
                Op::UpdateControl {
                    control: Some(0),
                    change: ChangeKind::Advance { from: None, to: 3 },
                },
                Op::AddControl {
                    kind: ControlKind::Trigger,
                    scope: Some(2),
                },
                Op::steered(&[(2, 1), (2, 2)], 0, AllowAll, Origin::Trigger, Some(0)),
                Op::Fail {
                    lease: 1,
                    retry_secs: 0,
                },
                Op::claim(&[(2, 1)], 3, 30),
                Op::UpdateControl {
                    control: None,
                    change: ChangeKind::End {
                        state: ControlState::Cancelled,
                        bad_reason: false,
                        skip_missed: None,
                    },
                },
                Op::ReadControls {
                    all_jobs: false,
                    ended_back: Some(30),
                    sub_micro: true,
                },
            ],
        ),
        // Written by hand: the stored schedule's writes by compare-and-set
        // on its version, and claims planned under a version: superseded
        // before the schedule exists, after an update (an older or a newer
        // version), before a pause is considered, and after a delete; a
        // name deleted is created again at version 1.
        (
            "stored_schedule_versions_guard_writes_and_claims",
            vec![
                Op::versioned(&[(0, 0)], VersionPick::Current),
                write(WriteKind::Create { definition: 0 }),
                write(WriteKind::Create { definition: 1 }),
                Op::versioned(&[(0, 0), (1, 0)], VersionPick::Current),
                write(WriteKind::Update {
                    version: VersionPick::Previous,
                    definition: 1,
                }),
                write(WriteKind::Update {
                    version: VersionPick::Current,
                    definition: 4,
                }),
                Op::Advance { secs: 30 },
                write(WriteKind::Update {
                    version: VersionPick::Current,
                    definition: 2,
                }),
                Op::versioned(&[(2, 1)], VersionPick::Previous),
                Op::versioned(&[(2, 1)], VersionPick::Next),
                pause(None, None),
                Op::versioned(&[(2, 1)], VersionPick::Previous),
                Op::steered(&[(2, 1)], 0, AllowAll, Origin::Scheduled, None),
                Op::end_control(0),
                Op::versioned(&[(2, 1)], VersionPick::Current),
                write(WriteKind::Delete {
                    version: Some(VersionPick::Previous),
                }),
                write(WriteKind::Delete {
                    version: Some(VersionPick::Current),
                }),
                Op::versioned(&[(2, 2)], VersionPick::Current),
                write(WriteKind::Delete { version: None }),
                Op::Advance { secs: 1 },
                write(WriteKind::Create { definition: 3 }),
                write(WriteKind::Update {
                    version: VersionPick::Current,
                    definition: 8,
                }),
                write(WriteKind::Delete { version: None }),
            ],
        ),
        // A replica starts, refreshes with other jobs, stops and starts
        // again, beside a second one: one row each, with the start kept
        // by a refresh and reset by a new start.
        (
            "replicas_start_refresh_stop_and_restart",
            vec![
                announce(0, 2, Presence::Started),
                Op::Advance { secs: 20 },
                announce(1, 0, Presence::Alive),
                announce(0, 3, Presence::Alive),
                Op::Advance { secs: 1 },
                announce(0, 1, Presence::Stopped),
                Op::Advance { secs: 30 },
                announce(0, 1, Presence::Started),
            ],
        ),
        // Written by hand: every way an attempt ends, in a few steps. A
        // steal (t0), a sweep (t1), a batch writing the thief's success
        // once and losing its duplicate and the swept lease, and a prune
        // of one of the two, whose log must go with it.
        (
            "every_ending_of_an_attempt_is_logged_once",
            vec![
                Op::Claim {
                    keys: vec![(0, 0), (1, 0)],
                    runner: 0,
                    max_attempts: 3,
                    stale_secs: 30,
                    reentrant: true,
                },
                Op::Advance { secs: 60 },
                Op::Claim {
                    keys: vec![(0, 0)],
                    runner: 1,
                    max_attempts: 3,
                    stale_secs: 30,
                    reentrant: true,
                },
                Op::Sweep { reentrant: true },
                Op::FinishMany {
                    items: vec![(0, None), (0, Some(0)), (1, None)],
                },
                Op::OperatorRetry { lease: 1 },
                Op::Advance { secs: 200 },
                Op::Prune {
                    back_secs: 0,
                    sub_micro: false,
                    limit: 1,
                    dry_run: false,
                },
            ],
        ),
        // A failure on the fifth of six fresh leases, among rows of several
        // scopes and plan times.
        (
            "failing_one_lease_among_many",
            vec![
                Op::claim(&[(0, 0)], 1, 30),
                Op::claim(&[(2, 0), (1, 0), (0, 1)], 1, 30),
                Op::claim(&[(2, 1)], 2, 30),
                Op::claim(&[(1, 1)], 1, 30),
                Op::Fail {
                    lease: 1,
                    retry_secs: 0,
                },
            ],
        ),
        // A lease exactly one stale timeout old is not yet stale: the sweep
        // closes it only once store time is past `stale_after`.
        (
            "sweep_at_the_stale_instant",
            vec![
                Op::claim(&[(0, 0)], 1, 60),
                Op::Advance { secs: 60 },
                Op::Sweep { reentrant: true },
            ],
        ),
        // A prune cutoff half a microsecond after a row's `finished_at` keeps it
        // in range.
        (
            "prune_cutoff_between_microseconds",
            vec![
                Op::claim(&[(0, 0)], 1, 30),
                Op::Succeed { lease: 0, rows: 0 },
                Op::Prune {
                    back_secs: 0,
                    sub_micro: true,
                    limit: 0,
                    dry_run: true,
                },
            ],
        ),
        // Swept rows finished at one instant are pruned in key order.
        (
            "prune_order_among_rows_finished_together",
            vec![
                Op::claim(&[(0, 0), (0, 1)], 1, 30),
                Op::claim(&[(0, 0)], 1, 30),
                Op::Advance { secs: 60 },
                Op::Sweep { reentrant: true },
                Op::Prune {
                    back_secs: 0,
                    sub_micro: true,
                    limit: 1,
                    dry_run: false,
                },
            ],
        ),
        // Terminal rows finished at one instant, of several scopes, pruned one.
        (
            "prune_one_of_rows_finished_together",
            vec![
                Op::claim(&[(0, 0)], 1, 30),
                Op::claim(&[(0, 0)], 1, 30),
                Op::claim(&[(1, 0), (0, 1)], 1, 30),
                Op::Succeed { lease: 2, rows: 0 },
                Op::Fail {
                    lease: 1,
                    retry_secs: 0,
                },
                Op::Succeed { lease: 0, rows: 0 },
                Op::Prune {
                    back_secs: 0,
                    sub_micro: true,
                    limit: 1,
                    dry_run: false,
                },
            ],
        ),
        // A retry-due bound half a microsecond after a FAILED plan's time leaves
        // that plan out. SQLite once floored the bound to whole microseconds and
        // listed it.
        (
            "retry_due_bound_between_microseconds",
            vec![
                Op::claim(&[(0, 0)], 2, 30),
                Op::Fail {
                    lease: 0,
                    retry_secs: 0,
                },
                Op::RetryDue {
                    since: 0,
                    sub_micro: true,
                    reentrant: false,
                    limit: 1,
                },
            ],
        ),
        // An audit read's `plan_time_from` half a microsecond after a row's plan
        // time leaves that row out. SQLite once floored the bound and listed it.
        (
            "list_bound_between_microseconds",
            vec![
                Op::claim(&[(0, 2)], 1, 30),
                Op::List {
                    from: 2,
                    sub_micro: true,
                    scope: None,
                    status: None,
                    limit: None,
                },
            ],
        ),
        // Rows finished at one instant are pruned in key order. PostgreSQL
        // once ordered them by `finished_at` alone, so a prune with a limit
        // deleted whichever of them the plan met first (here t1/12:01, the
        // first to finish in the table, where the others delete t0/12:00).
        (
            "prune_order_with_ties_in_finished_at",
            vec![
                Op::claim(&[(1, 1), (0, 0)], 1, 30),
                Op::Succeed { lease: 1, rows: 0 },
                Op::claim(&[(0, 2), (0, 1)], 1, 30),
                Op::Succeed { lease: 2, rows: 0 },
                Op::Succeed { lease: 0, rows: 0 },
                Op::Advance { secs: 30 },
                Op::Prune {
                    back_secs: 0,
                    sub_micro: false,
                    limit: 1,
                    dry_run: false,
                },
            ],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_counted_back_from_the_newest() {
        let lease = |n: u8| Lease {
            id: Uuid::nil(),
            token: Uuid::nil(),
            job_name: JOB.into(),
            scope: scope(n),
            plan_time: PLAN_BASE,
            attempt: 1,
            max_attempts: 1,
            started_at: START,
            stale_after: START,
        };
        assert_eq!(pick(&[], 0), None);
        let leases = [lease(0), lease(1), lease(2)];
        assert_eq!(pick(&leases, 0).unwrap().scope, scope(2));
        assert_eq!(pick(&leases, 2).unwrap().scope, scope(0));
        assert_eq!(pick(&leases, 3).unwrap().scope, scope(2));
    }

    #[test]
    fn a_difference_names_the_operation_the_stores_and_both_values() {
        let ops = [Op::Sweep { reentrant: false }, Op::Advance { secs: 1 }];
        let panicked = std::panic::catch_unwind(|| {
            same(
                ops.as_slice(),
                At::Op(1),
                "the outcome",
                ("a", &1),
                ("b", &2),
            );
        })
        .unwrap_err();
        let message = panicked.downcast_ref::<String>().unwrap();
        for needle in [
            "at operation #1 Advance { secs: 1 }",
            "the outcome of b differs from a's",
            "a: 1",
            "b: 2",
            "#0 Sweep { reentrant: false }",
        ] {
            assert!(message.contains(needle), "{needle:?} in {message}");
        }
    }
}
