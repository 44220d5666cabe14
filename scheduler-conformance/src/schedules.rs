//! Stored schedules (`docs/contract.md` §12): what
//! [`ExecutionAudit::write_schedule`](scheduler_core::ExecutionAudit::write_schedule)
//! stores and [`LeaseStore::schedules`](scheduler_core::LeaseStore::schedules)
//! reads back. Every write is decided by
//! [`job::apply_write`](scheduler_core::job::apply_write) at store time under
//! the job's claim lock: a create at version 1, an update naming the
//! current version moving it by one, a delete; a stale version, an existing
//! or missing name a conflict naming the current version; an invalid
//! definition or name refused by field; nothing written on a refusal. A
//! claim planned under a stored schedule's version
//! ([`Steering::schedule_version`]) claims nothing once another version is
//! current or the schedule is gone.
//!
//! Store time may move on its own (PostgreSQL's clock), so instants are
//! checked between two readings of it; every check uses schedule names of
//! its own and reads back only those, so checks may share one database.

use std::time::Duration;

use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use scheduler_core::model::{ScheduleForm, Steering, MAX_ARGUMENTS_BYTES, MAX_CATCH_UP_WINDOW};
use scheduler_core::{
    ClaimKind, ClaimOutcome, ClaimRequest, PlanKey, ScheduleDefinition, ScheduleOptions,
    ScheduleWrite, Scope, StoreError, StoredSchedule, StoredScopes, MAX_NAME_BYTES,
};

use crate::fixtures::{
    claim, finish, incompressible, keys_of, leased, ok, plan_key, request, rows_of, this_minute,
    unique, Harness, MINUTE,
};

/// A valid definition of `kind`: every minute, on the global scope, no
/// arguments, the default options.
fn definition(kind: &str) -> ScheduleDefinition {
    ScheduleDefinition {
        kind: kind.to_owned(),
        schedule: ScheduleForm::Every {
            cadence: MINUTE,
            offset: Duration::ZERO,
        },
        scopes: StoredScopes::default(),
        arguments: Map::new(),
        paused: false,
        options: ScheduleOptions::default(),
    }
}

/// A second valid definition, unlike [`definition`] in every part: a cron
/// schedule in a zone, fixed scopes, arguments, paused, other options.
fn other_definition() -> ScheduleDefinition {
    let mut options = ScheduleOptions {
        run_timeout: Duration::from_secs(120),
        max_attempts: 5,
        retry_backoff: vec![Duration::from_secs(5), Duration::from_secs(90)],
        ..ScheduleOptions::default()
    };
    options.catch_up_window = Duration::from_secs(3600);
    ScheduleDefinition {
        kind: "rollup".to_owned(),
        schedule: ScheduleForm::Cron {
            expression: "0 7 * * 1-5".to_owned(),
            zone: "Asia/Tokyo".to_owned(),
        },
        scopes: StoredScopes::Fixed(vec![Scope::new("tenant", "a"), Scope::new("tenant", "b")]),
        arguments: object(json!({"to": "ops@example.com", "limit": 10})),
        paused: true,
        options,
    }
}

/// `value`, which must be a JSON object.
fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// Applies `write` to `name`.
async fn write(
    h: &Harness,
    name: &str,
    write: &ScheduleWrite,
) -> Result<Option<StoredSchedule>, StoreError> {
    h.store.write_schedule(name, write).await
}

/// Creates `name` as `definition`, which must be accepted; the schedule
/// as stored and the store times just before and just after.
async fn create(
    h: &Harness,
    name: &str,
    definition: ScheduleDefinition,
) -> (StoredSchedule, (OffsetDateTime, OffsetDateTime)) {
    let before = now(h).await;
    let created = write(h, name, &ScheduleWrite::Create(definition))
        .await
        .expect("create")
        .expect("a created schedule is returned");
    (created, (before, now(h).await))
}

/// Updates `name` from `version` to `definition`, which must be accepted.
async fn update(
    h: &Harness,
    name: &str,
    version: i64,
    definition: ScheduleDefinition,
) -> StoredSchedule {
    write(
        h,
        name,
        &ScheduleWrite::Update {
            version,
            definition,
        },
    )
    .await
    .expect("update")
    .expect("an updated schedule is returned")
}

/// Store time, which must be readable.
async fn now(h: &Harness) -> OffsetDateTime {
    h.store.now().await.expect("store time")
}

/// Every stored schedule, as the store lists them.
async fn schedules(h: &Harness) -> Vec<StoredSchedule> {
    h.store.schedules().await.expect("schedules")
}

/// The stored schedule `name`, if there is one (at most one, or the store
/// is broken).
async fn stored(h: &Harness, name: &str) -> Option<StoredSchedule> {
    let mut found: Vec<StoredSchedule> = schedules(h)
        .await
        .into_iter()
        .filter(|s| s.name == name)
        .collect();
    assert!(found.len() <= 1, "one row per name: {found:#?}");
    found.pop()
}

fn assert_within(t: OffsetDateTime, (before, after): (OffsetDateTime, OffsetDateTime)) {
    assert!(before <= t && t <= after, "{t} not in [{before}, {after}]");
}

/// Whether `t` is a UTC instant of whole microseconds.
fn utc_micros(t: OffsetDateTime) -> bool {
    t.offset().is_utc() && t.nanosecond() % 1_000 == 0
}

/// Asserts that `result` is a [`StoreError::Conflict`] whose message
/// holds each of `needles`.
fn assert_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>, needles: &[&str]) {
    match result {
        Err(StoreError::Conflict(message)) => {
            for needle in needles {
                assert!(message.contains(needle), "{needle:?} in {message:?}");
            }
        }
        other => panic!("expected a conflict naming {needles:?}, got {other:?}"),
    }
}

/// Asserts that `result` is a [`StoreError::InvalidInput`] whose message
/// holds `needle`, and is not transient.
fn assert_invalid<T: std::fmt::Debug>(result: Result<T, StoreError>, needle: &str) {
    match result {
        Err(e @ StoreError::InvalidInput(_)) => {
            assert!(!e.is_transient(), "invalid input is never transient");
            let message = e.to_string();
            assert!(message.contains(needle), "{needle:?} in {message:?}");
        }
        other => panic!("expected invalid input naming {needle:?}, got {other:?}"),
    }
}

/// A claim request of `keys` for `job` by `runner`, planned under stored
/// schedule version `version` (`None`: a compiled-in job).
fn versioned<'a>(
    job: &'a str,
    runner: &'a str,
    keys: &'a [PlanKey],
    version: Option<i64>,
) -> ClaimRequest<'a> {
    ClaimRequest {
        steering: Steering {
            schedule_version: version,
            ..Steering::NONE
        },
        ..request(job, runner, keys, false)
    }
}

/// The kind of each outcome.
fn kinds(outcomes: &[ClaimOutcome]) -> Vec<ClaimKind> {
    outcomes.iter().map(ClaimOutcome::kind).collect()
}

/// A create is stored at version 1, with `created_at` and `updated_at`
/// both the store time of the write (UTC, whole microseconds), the
/// definition as given; [`schedules`](scheduler_core::LeaseStore::schedules)
/// reads back exactly what the write returned.
pub async fn a_created_schedule_is_read_back_at_version_one(h: &Harness) {
    for def in [definition("digest"), other_definition()] {
        let name = unique("stored");
        let (created, window) = create(h, &name, def.clone()).await;
        assert_eq!(created.name, name);
        assert_eq!(created.version, 1);
        assert_eq!(created.definition, def);
        assert_eq!(created.created_at, created.updated_at);
        assert_within(created.created_at, window);
        assert!(utc_micros(created.created_at), "{}", created.created_at);
        assert_eq!(stored(h, &name).await, Some(created));
    }
}

/// Every stored schedule is listed once, ordered by name bytewise whatever
/// the database's collation (`B` before `a` before `b` before `ä`).
pub async fn schedules_are_listed_in_name_order(h: &Harness) {
    let prefix = unique("stored_order");
    let names = ["ä", "b", "B", "a"].map(|suffix| format!("{prefix}-{suffix}"));
    for name in &names {
        create(h, name, definition("digest")).await;
    }
    let listed: Vec<String> = schedules(h)
        .await
        .into_iter()
        .map(|s| s.name)
        .filter(|n| n.starts_with(&prefix))
        .collect();
    assert_eq!(
        listed,
        [&names[2], &names[3], &names[1], &names[0]].map(String::clone)
    );
    let all: Vec<String> = schedules(h).await.into_iter().map(|s| s.name).collect();
    assert!(
        all.windows(2).all(|w| w[0].as_bytes() < w[1].as_bytes()),
        "every schedule in bytewise name order, once: {all:?}"
    );
}

/// An update naming the current version replaces the definition and moves
/// the version by one; `updated_at` is the store time of the update,
/// `created_at` stays.
pub async fn an_update_naming_the_current_version_moves_it_by_one(h: &Harness) {
    let name = unique("stored_update");
    let (created, _) = create(h, &name, definition("digest")).await;
    h.time.advance(Duration::from_secs(30));
    let before = now(h).await;
    let updated = update(h, &name, 1, other_definition()).await;
    let window = (before, now(h).await);
    assert_eq!(updated.version, 2);
    assert_eq!(updated.definition, other_definition());
    assert_eq!(updated.created_at, created.created_at, "created_at stays");
    assert_within(updated.updated_at, window);
    assert!(updated.updated_at >= created.updated_at + Duration::from_secs(30));
    assert!(utc_micros(updated.updated_at));
    assert_eq!(stored(h, &name).await.as_ref(), Some(&updated));

    h.time.advance(Duration::from_secs(1));
    let again = update(h, &name, 2, definition("digest")).await;
    assert_eq!(
        (again.version, &again.definition, again.created_at),
        (3, &definition("digest"), created.created_at)
    );
    assert!(again.updated_at > updated.updated_at);
    assert_eq!(stored(h, &name).await, Some(again));
}

/// An update or a delete naming a version that is not current (an older
/// one, a newer one) is refused as a conflict naming the current version;
/// nothing changes.
pub async fn a_write_naming_another_version_conflicts_and_changes_nothing(h: &Harness) {
    let name = unique("stored_stale");
    create(h, &name, definition("digest")).await;
    let current = update(h, &name, 1, definition("digest")).await;
    h.time.advance(Duration::from_secs(5));
    for version in [1, 3, 0, -1] {
        let lost = ScheduleWrite::Update {
            version,
            definition: other_definition(),
        };
        assert_conflict(write(h, &name, &lost).await, &["version 2"]);
        let delete = ScheduleWrite::Delete {
            version: Some(version),
        };
        assert_conflict(write(h, &name, &delete).await, &["version 2"]);
    }
    assert_eq!(stored(h, &name).await, Some(current), "nothing changed");
}

/// A create of a name that exists is a conflict naming its version; the
/// stored schedule stays as it was.
pub async fn creating_an_existing_name_conflicts(h: &Harness) {
    let name = unique("stored_twice");
    create(h, &name, definition("digest")).await;
    let current = update(h, &name, 1, definition("digest")).await;
    h.time.advance(Duration::from_secs(5));
    let again = ScheduleWrite::Create(other_definition());
    assert_conflict(
        write(h, &name, &again).await,
        &["already exists", "version 2"],
    );
    assert_eq!(stored(h, &name).await, Some(current));
}

/// An update or a delete (with a version or without) of a name with no
/// stored schedule is a conflict; none is created.
pub async fn writing_a_missing_schedule_conflicts(h: &Harness) {
    let name = unique("stored_missing");
    let writes = [
        ScheduleWrite::Update {
            version: 1,
            definition: definition("digest"),
        },
        ScheduleWrite::Delete { version: Some(1) },
        ScheduleWrite::Delete { version: None },
    ];
    for w in &writes {
        assert_conflict(write(h, &name, w).await, &[&name]);
    }
    assert_eq!(stored(h, &name).await, None);
}

/// A delete naming the current version (or none) removes the schedule:
/// it is no longer listed, the executions of its job name stay as they
/// were, and the name may be created again, at version 1 and the store
/// time of that create.
pub async fn a_deleted_schedule_is_gone_and_its_executions_stay(h: &Harness) {
    let name = unique("stored_delete");
    create(h, &name, definition("digest")).await;
    let key = [plan_key(h, Scope::global()).await];
    let lease = leased(h, &versioned(&name, "r1", &key, Some(1))).await;
    finish(h, &lease, &ok()).await;
    let rows = rows_of(h, &name).await;
    assert_eq!(rows.len(), 1);

    let deleted = write(h, &name, &ScheduleWrite::Delete { version: Some(1) }).await;
    assert_eq!(deleted.expect("delete"), None, "a delete returns nothing");
    assert_eq!(stored(h, &name).await, None);
    assert_eq!(rows_of(h, &name).await, rows, "its history stays");

    h.time.advance(Duration::from_secs(60));
    let (again, window) = create(h, &name, other_definition()).await;
    assert_eq!(again.version, 1, "a new schedule of the name starts over");
    assert_within(again.created_at, window);
    assert_eq!(again.created_at, again.updated_at);

    let deleted = write(h, &name, &ScheduleWrite::Delete { version: None }).await;
    assert_eq!(deleted.expect("a delete without a version"), None);
    assert_eq!(stored(h, &name).await, None);
    assert_eq!(rows_of(h, &name).await, rows);
}

/// Definitions that break a rule, each refused as
/// [`StoreError::InvalidInput`] naming the field (`job "name": field:
/// reason`), on create and on update: a bad cron expression, an unknown
/// time zone, a zero cadence, an offset past the cadence, a catch-up
/// window past [`MAX_CATCH_UP_WINDOW`], arguments past
/// [`MAX_ARGUMENTS_BYTES`], a kind with a NUL, empty or past
/// [`MAX_NAME_BYTES`], no scopes, a provider name with a NUL, no
/// attempts, a stale timeout within the heartbeat. Nothing is written.
pub async fn invalid_definitions_are_refused_by_field_and_nothing_is_written(h: &Harness) {
    let with = |change: &dyn Fn(&mut ScheduleDefinition)| {
        let mut def = definition("digest");
        change(&mut def);
        def
    };
    let cron = |expression: &str, zone: &str| ScheduleForm::Cron {
        expression: expression.to_owned(),
        zone: zone.to_owned(),
    };
    let cases: Vec<(&str, ScheduleDefinition)> = vec![
        ("cron", with(&|d| d.schedule = cron("61 * * * *", "UTC"))),
        ("cron", with(&|d| d.schedule = cron("not cron", "UTC"))),
        (
            "cron",
            with(&|d| d.schedule = cron("0 9 * * *", "Mars/Olympus")),
        ),
        (
            "cadence",
            with(&|d| {
                d.schedule = ScheduleForm::Every {
                    cadence: Duration::ZERO,
                    offset: Duration::ZERO,
                }
            }),
        ),
        (
            "cadence_offset",
            with(&|d| {
                d.schedule = ScheduleForm::Every {
                    cadence: MINUTE,
                    offset: MINUTE,
                }
            }),
        ),
        (
            "catch_up_window",
            with(&|d| d.options.catch_up_window = MAX_CATCH_UP_WINDOW + Duration::from_secs(1)),
        ),
        (
            "arguments",
            with(&|d| {
                // `{"big":"…"}`: one byte past the limit, encoded.
                let text = "x".repeat(MAX_ARGUMENTS_BYTES + 1 - r#"{"big":""}"#.len());
                d.arguments.insert("big".to_owned(), Value::String(text));
            }),
        ),
        (
            "arguments",
            // PostgreSQL's jsonb cannot hold U+0000: refused everywhere.
            with(&|d| {
                d.arguments
                    .insert("to".to_owned(), json!(["ok", {"n": "before\u{0}after"}]));
            }),
        ),
        ("kind", with(&|d| d.kind = "di\0gest".to_owned())),
        (
            "kind",
            with(&|d| d.kind = incompressible(MAX_NAME_BYTES + 1)),
        ),
        ("kind", with(&|d| d.kind = " ".to_owned())),
        ("scopes", with(&|d| d.scopes = StoredScopes::Fixed(vec![]))),
        (
            "scopes",
            with(&|d| d.scopes = StoredScopes::Provider("ten\0ants".to_owned())),
        ),
        ("max_attempts", with(&|d| d.options.max_attempts = 0)),
        (
            "stale_timeout",
            with(&|d| d.options.stale_timeout = Duration::from_secs(1)),
        ),
    ];
    let name = unique("stored_invalid");
    for (field, def) in &cases {
        let needle = format!(": {field}: ");
        assert_invalid(
            write(h, &name, &ScheduleWrite::Create(def.clone())).await,
            &needle,
        );
        assert_eq!(stored(h, &name).await, None, "{field}: nothing created");
    }
    // The limit itself is allowed: arguments of exactly the most bytes.
    let mut at_limit = definition("digest");
    let text = "x".repeat(MAX_ARGUMENTS_BYTES - r#"{"big":""}"#.len());
    at_limit
        .arguments
        .insert("big".to_owned(), Value::String(text));
    at_limit.options.catch_up_window = MAX_CATCH_UP_WINDOW;
    let (created, _) = create(h, &name, at_limit).await;
    for (field, def) in &cases {
        let refused = ScheduleWrite::Update {
            version: 1,
            definition: def.clone(),
        };
        assert_invalid(write(h, &name, &refused).await, &format!(": {field}: "));
    }
    assert_eq!(stored(h, &name).await, Some(created), "nothing updated");
}

/// A schedule name with a NUL, blank, or one byte past [`MAX_NAME_BYTES`]
/// is refused as [`StoreError::InvalidInput`] naming the schedule name,
/// for every kind of write, and nothing is written; a name of exactly the
/// limit, with quotes, backslashes, SQL, JSON and non-ASCII in it, is
/// stored and read back as it is.
pub async fn schedule_names_past_the_limits_are_refused(h: &Harness) {
    let base = unique("stored_name");
    let over = format!("{base}{}", incompressible(MAX_NAME_BYTES + 1 - base.len()));
    for bad in [format!("{base}\0"), over.clone()] {
        let writes = [
            ScheduleWrite::Create(definition("digest")),
            ScheduleWrite::Update {
                version: 1,
                definition: definition("digest"),
            },
            ScheduleWrite::Delete { version: None },
        ];
        for w in &writes {
            assert_invalid(write(h, &bad, w).await, "schedule name");
        }
    }
    assert_invalid(
        write(h, " ", &ScheduleWrite::Create(definition("digest"))).await,
        "name",
    );
    assert!(
        schedules(h)
            .await
            .iter()
            .all(|s| !s.name.starts_with(&base) && !s.name.trim().is_empty()),
        "nothing of a refused name is written"
    );

    let mut hostile = format!("{base}'\"\\; DROP TABLE x; -- {{\"a\": [1]}} ü 🦀");
    hostile.push_str(&incompressible(MAX_NAME_BYTES - hostile.len()));
    assert_eq!(hostile.len(), MAX_NAME_BYTES);
    let (created, _) = create(h, &hostile, definition("digest")).await;
    assert_eq!(created.name, hostile);
    assert_eq!(stored(h, &hostile).await, Some(created));
}

/// Hostile text in a definition is stored and read back exactly:
/// quotes, backslashes, SQL and JSON syntax, control characters,
/// non-ASCII, in argument keys and values, nested, with large
/// and negative numbers; in the kind (of exactly [`MAX_NAME_BYTES`]), the
/// cron expression's zone, scope kinds and ids, and a provider's name.
pub async fn hostile_text_in_a_definition_round_trips_exactly(h: &Harness) {
    let arguments = object(json!({
        "quote'\"\\": "back\\slash \"dq\" 'sq' `bt`",
        "sql": "'; DROP TABLE sys_cron_schedules; --",
        "json": "{\"kind\": \"every\", \"every_us\": 1}], [{",
        "control": "tab\tnew\nline\r\u{1}bell\u{7}del\u{7f}",
        "unicode": "日本語 ü 🦀 \u{202e}rtl \u{fffd}",
        "": "empty key",
        "nested": {"list": [1, -2, 3.5, null, true, "x"], "deep": {"deeper": [[], {}]}},
        "numbers": [0, -1, 9_007_199_254_740_993_u64, u64::MAX, i64::MIN, 0.1, 1.5e300],
        "empty": "",
    }));
    let mut kind = "kind 'q' \"dq\" \\ {\"json\": 1} ü 🦀 ".to_owned();
    kind.push_str(&incompressible(MAX_NAME_BYTES - kind.len()));
    let definitions = [
        ScheduleDefinition {
            kind: kind.clone(),
            arguments: arguments.clone(),
            scopes: StoredScopes::Fixed(vec![
                Scope::new("tenant 'a'", "id \"1\" \\ ü"),
                Scope::new("{\"kind\"}", "[1, 2]"),
                Scope::global(),
            ]),
            ..definition("unused")
        },
        ScheduleDefinition {
            kind: "日本語".to_owned(),
            schedule: ScheduleForm::Cron {
                expression: "30 7 * * 1-5".to_owned(),
                zone: "America/Argentina/Buenos_Aires".to_owned(),
            },
            scopes: StoredScopes::Provider("provider '\"; -- ü".to_owned()),
            arguments,
            ..definition("unused")
        },
    ];
    let name = unique("stored_hostile");
    let (created, _) = create(h, &name, definitions[0].clone()).await;
    assert_eq!(created.definition, definitions[0]);
    assert_eq!(stored(h, &name).await, Some(created));
    let updated = update(h, &name, 1, definitions[1].clone()).await;
    assert_eq!(updated.definition, definitions[1]);
    assert_eq!(stored(h, &name).await, Some(updated));
}

/// A claim planned under the stored schedule's current version is decided
/// as any claim is: fresh keys are won, and a key another runner holds
/// conflicts.
pub async fn a_claim_under_the_current_version_is_decided_as_usual(h: &Harness) {
    let name = unique("stored_claim");
    create(h, &name, definition("digest")).await;
    update(h, &name, 1, definition("digest")).await;
    let keys = keys_of("t", &["a", "b"], this_minute(h).await);
    let won = claim(h, &versioned(&name, "r1", &keys, Some(2))).await;
    assert_eq!(kinds(&won), [ClaimKind::Won, ClaimKind::Won]);
    let again = claim(h, &versioned(&name, "r2", &keys, Some(2))).await;
    assert_eq!(
        kinds(&again),
        [ClaimKind::Conflicted, ClaimKind::Conflicted]
    );
    assert_eq!(rows_of(h, &name).await.len(), 2);
}

/// A claim planned under a version that is no longer current (an older
/// one, a newer one), or of a stored schedule that was deleted or never
/// existed, answers [`ClaimOutcome::Superseded`] for every key and changes
/// nothing: no row is written, and rows already there stay as they were.
pub async fn a_claim_under_a_superseded_version_claims_nothing(h: &Harness) {
    let name = unique("stored_superseded");
    create(h, &name, definition("digest")).await;
    let m = this_minute(h).await;
    let held = keys_of("t", &["held"], m);
    let lease = leased(h, &versioned(&name, "r1", &held, Some(1))).await;
    update(h, &name, 1, other_definition()).await;
    let rows = rows_of(h, &name).await;

    let keys = vec![held[0].clone(), keys_of("t", &["fresh"], m)[0].clone()];
    for version in [1, 3] {
        let outcomes = claim(h, &versioned(&name, "r2", &keys, Some(version))).await;
        assert_eq!(
            outcomes,
            [ClaimOutcome::Superseded, ClaimOutcome::Superseded]
        );
    }
    assert_eq!(rows_of(h, &name).await, rows, "nothing written");

    write(h, &name, &ScheduleWrite::Delete { version: Some(2) })
        .await
        .expect("delete");
    let outcomes = claim(h, &versioned(&name, "r2", &keys, Some(2))).await;
    assert_eq!(
        outcomes,
        [ClaimOutcome::Superseded, ClaimOutcome::Superseded]
    );
    assert_eq!(rows_of(h, &name).await, rows, "nothing written");
    h.store
        .heartbeat(&lease, Duration::from_secs(60))
        .await
        .expect("the lease of the old version still holds");

    let never = unique("stored_never");
    let outcomes = claim(h, &versioned(&never, "r1", &keys, Some(1))).await;
    assert_eq!(
        outcomes,
        [ClaimOutcome::Superseded, ClaimOutcome::Superseded]
    );
    assert!(rows_of(h, &never).await.is_empty());
}

/// A claim with no schedule version (a compiled-in job's) is decided as
/// always, whether or not a stored schedule of the name exists, at
/// whatever version.
pub async fn a_claim_without_a_version_ignores_stored_schedules(h: &Harness) {
    let name = unique("stored_compiled");
    let m = this_minute(h).await;
    let before = keys_of("t", &["before"], m);
    assert_eq!(
        kinds(&claim(h, &versioned(&name, "r1", &before, None)).await),
        [ClaimKind::Won]
    );
    create(h, &name, definition("digest")).await;
    update(h, &name, 1, definition("digest")).await;
    let during = keys_of("t", &["during"], m);
    assert_eq!(
        kinds(&claim(h, &versioned(&name, "r1", &during, None)).await),
        [ClaimKind::Won]
    );
    write(h, &name, &ScheduleWrite::Delete { version: None })
        .await
        .expect("delete");
    let after = keys_of("t", &["after"], m);
    assert_eq!(
        kinds(&claim(h, &versioned(&name, "r1", &after, None)).await),
        [ClaimKind::Won]
    );
    assert_eq!(rows_of(h, &name).await.len(), 3);
}

/// Every accepted write (create, update, delete) marks the store's
/// [`control_changes`](scheduler_core::LeaseStore::control_changes)
/// receiver changed, so that a running manager reads the schedules at
/// once. A store with no channel has nothing to check. Real time: a 30 s
/// bound only makes a missing wake-up fail instead of hanging. (A store
/// may also mark it spuriously, as PostgreSQL's does once its listener is
/// up; with three writes in turn, each awaited, a store whose writes never
/// wake fails all the same.)
pub async fn a_schedule_write_wakes_the_control_changes_receiver(h: &Harness) {
    let Some(mut changes) = h.store.control_changes() else {
        return;
    };
    let name = unique("stored_wake");
    let writes = [
        ScheduleWrite::Create(definition("digest")),
        ScheduleWrite::Update {
            version: 1,
            definition: other_definition(),
        },
        ScheduleWrite::Delete { version: Some(2) },
    ];
    for w in &writes {
        changes.borrow_and_update();
        write(h, &name, w).await.expect("the write is accepted");
        tokio::time::timeout(Duration::from_secs(30), changes.changed())
            .await
            .unwrap_or_else(|_| panic!("no change seen within 30 s after {w:?}"))
            .expect("the channel stays open");
    }
    assert_eq!(stored(h, &name).await, None);
}
