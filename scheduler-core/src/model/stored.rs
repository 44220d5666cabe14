//! Stored schedules (`docs/contract.md` §12): schedules kept as data in the
//! store, created, changed and removed at run time by an operator, and run
//! by every replica whose code registered the schedule's **kind** (a named
//! handler, [`Manager::register_kind`](crate::Manager::register_kind)).
//!
//! A stored schedule is a [`ScheduleDefinition`] (kind, schedule, scopes,
//! arguments, options) under a unique name, with a version that every
//! update moves by one ([`StoredSchedule`]). Writes are a
//! [`ScheduleWrite`]: create, an update naming the version it read, or a
//! delete; [`job::apply_write`](crate::job::apply_write) decides each one
//! for every store alike. Nothing stored is ever executed as code: a
//! definition only names a kind and a scope provider that code registered.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::{CatchUpMode, OverlapPolicy, ScheduleForm, Scope};

/// The largest [`ScheduleDefinition::arguments`] object, encoded as JSON:
/// arguments configure a handler (a report's recipients, a table name);
/// data belongs in the handler's own tables.
pub const MAX_ARGUMENTS_BYTES: usize = 16 * 1024;

/// The longest catch-up window a job may have, compiled-in or stored: a
/// year. A longer one would make a replica plan (and a store keep) more
/// history than any catch-up needs.
pub const MAX_CATCH_UP_WINDOW: Duration = Duration::from_secs(366 * 24 * 3600);

/// The default of [`ScheduleOptions::backfill_per_tick`] (and
/// [`JobSpec::backfill_per_tick`](crate::job::JobSpec::backfill_per_tick)).
pub const DEFAULT_BACKFILL_PER_TICK: usize = 100;

/// The most scopes a stored schedule's fixed list may hold; more belong to
/// a scope provider registered in code.
pub const MAX_STORED_SCOPES: usize = 10_000;

/// Where a stored schedule's scopes come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoredScopes {
    /// The same scopes every tick; JSON `{"fixed": [{"kind": "tenant",
    /// "id": "a"}]}`.
    Fixed(Vec<Scope>),
    /// A scope provider the replica's code registered under this name
    /// ([`Manager::register_scope_provider`](crate::Manager::register_scope_provider)),
    /// asked every tick; JSON `{"provider": "tenants"}`.
    Provider(String),
}

impl Default for StoredScopes {
    /// Only [`Scope::global`].
    fn default() -> Self {
        StoredScopes::Fixed(vec![Scope::global()])
    }
}

/// The options a stored schedule shares with a compiled-in
/// [`JobSpec`](crate::job::JobSpec), with the same defaults and the same
/// rules (`docs/contract.md` §6). Durations are written in words in JSON
/// and TOML (`"30s"`, `"5m"`, `"1h 30m"`); every field may be left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScheduleOptions {
    /// A plan becomes eligible this long after its plan time.
    #[serde(with = "words")]
    pub schedule_delay: Duration,
    /// How missed plans are caught up.
    pub catch_up: CatchUpMode,
    /// How far back `every_plan` replays (at most [`MAX_CATCH_UP_WINDOW`]).
    #[serde(with = "words")]
    pub catch_up_window: Duration,
    /// The most plans attempted per scope and tick (at least 1 for
    /// `every_plan`).
    pub max_plans_per_tick: usize,
    /// When a handler is stopped.
    #[serde(with = "words")]
    pub run_timeout: Duration,
    /// When a lease without a heartbeat is stale.
    #[serde(with = "words")]
    pub stale_timeout: Duration,
    /// How often a running lease is extended.
    #[serde(with = "words")]
    pub heartbeat_interval: Duration,
    /// Whether a plan whose runner vanished may run again by itself.
    pub allow_stale_reentry: bool,
    /// The attempts a plan gets in all.
    pub max_attempts: i32,
    /// The waits between attempts; the last repeats.
    #[serde(with = "words_list")]
    pub retry_backoff: Vec<Duration>,
    /// Each scope's plans become eligible a stable offset in `[0, spread)` later.
    #[serde(with = "words")]
    pub spread: Duration,
    /// What a claim does while another run of the scope holds a live lease.
    pub overlap: OverlapPolicy,
    /// The most backfill keys claimed per tick.
    pub backfill_per_tick: usize,
}

impl Default for ScheduleOptions {
    /// The defaults of [`JobSpec::new`](crate::job::JobSpec::new).
    fn default() -> Self {
        ScheduleOptions {
            schedule_delay: Duration::ZERO,
            catch_up: CatchUpMode::LatestOnly,
            catch_up_window: Duration::ZERO,
            max_plans_per_tick: 0,
            run_timeout: Duration::from_secs(300),
            stale_timeout: Duration::from_secs(600),
            heartbeat_interval: Duration::from_secs(30),
            allow_stale_reentry: false,
            max_attempts: 3,
            retry_backoff: vec![
                Duration::from_secs(10),
                Duration::from_secs(60),
                Duration::from_secs(300),
            ],
            spread: Duration::ZERO,
            overlap: OverlapPolicy::default(),
            backfill_per_tick: DEFAULT_BACKFILL_PER_TICK,
        }
    }
}

/// What an operator writes: everything a stored schedule is but its name
/// and version.
///
/// Reading it with serde is lenient, as a replica must be: a field that a
/// newer version wrote is ignored, so an older build in a rolling deploy
/// still runs the schedule. What an operator types goes through
/// [`ScheduleDefinition::from_operator`], which refuses unknown fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleDefinition {
    /// The handler's kind, as registered in code
    /// ([`Manager::register_kind`](crate::Manager::register_kind)).
    pub kind: String,
    /// When plans fall: `{"kind": "every", "every_us": …, "offset_us": …}`
    /// or `{"kind": "cron", "expression": …, "zone": …}`.
    pub schedule: ScheduleForm,
    /// Where its scopes come from; default: the global scope.
    #[serde(default)]
    pub scopes: StoredScopes,
    /// A JSON object the handler reads from its run context
    /// ([`RunContext::arguments`](crate::job::RunContext::arguments)), at
    /// most [`MAX_ARGUMENTS_BYTES`] encoded.
    #[serde(default)]
    pub arguments: Map<String, Value>,
    /// Paused: nothing of it is planned or claimed (a trigger or backfill
    /// included) until an update sets it back; runs in flight finish.
    #[serde(default)]
    pub paused: bool,
    /// The options a compiled-in job has.
    #[serde(default)]
    pub options: ScheduleOptions,
}

impl ScheduleDefinition {
    /// The definition an operator wrote (JSON, or TOML read as JSON),
    /// strictly: a field this version does not know (a typo such as
    /// `optoins`) is refused by its path, where serde alone would ignore it.
    ///
    /// # Errors
    /// A message naming the unknown field, or serde's for a value of the
    /// wrong type.
    pub fn from_operator(value: Value) -> Result<ScheduleDefinition, String> {
        let definition: ScheduleDefinition =
            serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
        let known = serde_json::to_value(&definition).expect("a definition always encodes");
        match unknown_field(&value, &known, "") {
            Some(path) => Err(format!("unknown field `{path}`")),
            None => Ok(definition),
        }
    }
}

/// The first key of `given` (recursively, through objects) that `known`,
/// the same value as read and written back, does not have.
fn unknown_field(given: &Value, known: &Value, at: &str) -> Option<String> {
    let (Value::Object(given), Value::Object(known)) = (given, known) else {
        return None;
    };
    given.iter().find_map(|(key, value)| {
        let path = if at.is_empty() {
            key.clone()
        } else {
            format!("{at}.{key}")
        };
        match known.get(key) {
            None => Some(path),
            Some(kept) => unknown_field(value, kept, &path),
        }
    })
}

/// A stored schedule as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSchedule {
    /// Its unique name: the job name of its executions (their history
    /// stays attached to it through every change).
    pub name: String,
    /// 1 when created, one more at every update.
    pub version: i64,
    /// What it is.
    pub definition: ScheduleDefinition,
    /// Store time of its creation.
    pub created_at: OffsetDateTime,
    /// Store time at which this version became current: its plans are
    /// those at or after it (earlier plan times belong to earlier versions).
    pub updated_at: OffsetDateTime,
}

impl StoredSchedule {
    /// The definition as the stores keep it: one JSON text.
    pub fn definition_json(&self) -> String {
        serde_json::to_string(&self.definition).expect("a definition always encodes")
    }

    /// The definition a store kept with [`definition_json`](Self::definition_json).
    ///
    /// # Errors
    /// A message when the text is not a definition this version can read.
    pub fn definition_from_json(text: &str) -> Result<ScheduleDefinition, String> {
        serde_json::from_str(text).map_err(|e| format!("stored schedule is not readable: {e}"))
    }
}

/// One write of a stored schedule, decided by
/// [`job::apply_write`](crate::job::apply_write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleWrite {
    /// Creates it at version 1; refused when the name exists.
    Create(ScheduleDefinition),
    /// Replaces its definition, moving its version by one; refused unless
    /// the current version is `version` (the one the writer read).
    Update {
        /// The version the writer read.
        version: i64,
        /// The new definition.
        definition: ScheduleDefinition,
    },
    /// Removes it (its history stays); refused unless the current version
    /// is `version`, when one is given.
    Delete {
        /// The version the writer read, if it read one.
        version: Option<i64>,
    },
}

/// A duration in words, or why `text` is none.
fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| {
        format!("{text:?} is not a duration ({e}); write e.g. \"30s\", \"5m\", \"1h 30m\"")
    })
}

/// Durations in words (`"5m"`, `"1h 30m"`, `"250ms"`) via humantime.
mod words {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        super::duration(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A list of durations in words.
mod words_list {
    use std::time::Duration;

    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(list: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(list.len()))?;
        for d in list {
            seq.serialize_element(&humantime::format_duration(*d).to_string())?;
        }
        seq.end()
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|text| super::duration(text).map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_definition_reads_from_words_and_defaults_and_round_trips() {
        let text = r#"{"kind": "digest",
            "schedule": {"kind": "cron", "expression": "0 7 * * *", "zone": "Asia/Tokyo"},
            "scopes": {"provider": "tenants"},
            "arguments": {"to": "ops@example.com"},
            "options": {"run_timeout": "2m", "retry_backoff": ["5s", "1m"], "overlap": "skip"}}"#;
        let def: ScheduleDefinition = serde_json::from_str(text).unwrap();
        assert_eq!(def.scopes, StoredScopes::Provider("tenants".into()));
        assert_eq!(def.options.run_timeout, Duration::from_secs(120));
        assert_eq!(
            def.options.retry_backoff,
            [Duration::from_secs(5), Duration::from_secs(60)]
        );
        assert_eq!(def.options.overlap, OverlapPolicy::Skip);
        assert_eq!(def.options.max_attempts, 3, "defaults as JobSpec's");
        assert!(!def.paused);
        let stored = StoredSchedule {
            name: "n".into(),
            version: 1,
            definition: def.clone(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        };
        assert_eq!(
            StoredSchedule::definition_from_json(&stored.definition_json()),
            Ok(def)
        );
        let every: ScheduleDefinition = serde_json::from_str(
            r#"{"kind": "k", "schedule": {"kind": "every", "every_us": 60000000}}"#,
        )
        .unwrap();
        assert_eq!(every.scopes, StoredScopes::Fixed(vec![Scope::global()]));
        assert_eq!(
            every.schedule,
            ScheduleForm::Every {
                cadence: Duration::from_secs(60),
                offset: Duration::ZERO
            }
        );
    }

    #[test]
    fn an_operators_unknown_fields_and_bad_durations_are_refused_by_name() {
        let strict = |text: &str| {
            ScheduleDefinition::from_operator(serde_json::from_str(text).unwrap()).unwrap_err()
        };
        let err =
            strict(r#"{"kind": "k", "schedule": {"kind": "every", "every_us": 1}, "optoins": {}}"#);
        assert_eq!(err, "unknown field `optoins`");
        let err = strict(
            r#"{"kind": "k", "schedule": {"kind": "every", "every_us": 1},
                "options": {"run_timeot": "5m"}}"#,
        );
        assert_eq!(err, "unknown field `options.run_timeot`");
        let err = strict(
            r#"{"kind": "k", "schedule": {"kind": "cron", "expression": "* * * * *",
                "zone": "UTC", "tz": "UTC"}}"#,
        );
        assert_eq!(err, "unknown field `schedule.tz`");
        let err = strict(
            r#"{"kind": "k", "schedule": {"kind": "every", "every_us": 1},
                "options": {"run_timeout": "soon"}}"#,
        );
        assert!(err.contains("soon"), "{err}");
        let fine = r#"{"kind": "k", "schedule": {"kind": "every", "every_us": 1},
                       "arguments": {"anything": {"nested": [1]}}}"#;
        assert!(ScheduleDefinition::from_operator(serde_json::from_str(fine).unwrap()).is_ok());
    }

    #[test]
    fn a_stored_definition_a_newer_version_wrote_is_read_leniently() {
        let newer = r#"{"kind": "k", "schedule": {"kind": "every", "every_us": 60000000},
                        "priority": 3, "options": {"max_attempts": 2, "jitter": "1s"}}"#;
        let read = StoredSchedule::definition_from_json(newer).unwrap();
        assert_eq!(read.options.max_attempts, 2);
    }
}
