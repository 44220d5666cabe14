//! A registered job as data: what a replica announces about each job it
//! runs (`docs/contract.md` §7, "The replica registry"), so that operators
//! and dashboards see a job, its schedule and its options before it ever
//! ran. Built from a [`JobSpec`](crate::job::JobSpec) by
//! [`JobSpec::registration`](crate::job::JobSpec::registration); read back
//! from the store in [`Replica::info`](super::Replica::info).
//!
//! The stores keep a replica's jobs as one JSON array ([`jobs_to_json`],
//! [`jobs_from_json`]), written here once for every store. Its layout is
//! what the serde attributes below say: durations as whole microseconds in
//! fields ending `_us`, the schedule's machine form under `schedule_form`
//! with a `kind` of `every`, `cron` or `custom`. Reading is lenient: a
//! field a newer version added is ignored, one it removed takes its
//! default, and a schedule form this version does not know reads as
//! [`ScheduleForm::Unknown`], so an operator's tool never fails on a
//! replica of another version.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{OverlapPolicy, Scope};

/// The longest fixed scope list a replica announces whole (in
/// [`RegisteredJob::scope_list`]); a longer one is announced by its count
/// only, so an announcement stays small.
pub const MAX_LISTED_SCOPES: usize = 1000;

/// How a job catches up on plans it missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUpMode {
    /// Attempt only the latest bucket; missed buckets are never replayed (the
    /// handler keeps its own watermark).
    #[default]
    LatestOnly,
    /// Replay missed buckets oldest first, inside the catch-up window, at most
    /// `max_plans_per_tick` per tick.
    EveryPlan,
}

/// A job's schedule in a form a program can plan from
/// ([`Schedule::from_form`](crate::plan::Schedule::from_form)).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScheduleForm {
    /// Every `cadence`, on its multiples since 0001-01-01T00:00:00Z.
    Every {
        /// The cadence.
        #[serde(rename = "every_us", with = "micros")]
        cadence: Duration,
        /// How far after each multiple of the cadence plans fall (absent,
        /// as in every version before it existed: zero).
        #[serde(rename = "offset_us", with = "micros", default)]
        offset: Duration,
    },
    /// The occurrences of a cron expression in an IANA time zone.
    Cron {
        /// The expression as registered.
        expression: String,
        /// The zone name as registered, e.g. `Europe/Berlin`.
        zone: String,
    },
    /// A custom planner decides, which no other program can repeat.
    Custom,
    /// A form this version does not know (written by a newer one).
    #[default]
    #[serde(other)]
    Unknown,
}

/// How many scopes a job has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "Value", try_from = "Value")]
pub enum ScopeCount {
    /// A fixed list of this many scopes; JSON: the number.
    Fixed(usize),
    /// A provider asked at every tick; JSON: `"dynamic"`.
    Dynamic,
}

impl Default for ScopeCount {
    /// What a job whose count is unknown shows: it can change at any tick.
    fn default() -> Self {
        ScopeCount::Dynamic
    }
}

impl From<ScopeCount> for Value {
    fn from(count: ScopeCount) -> Value {
        match count {
            ScopeCount::Fixed(n) => Value::from(n),
            ScopeCount::Dynamic => Value::from("dynamic"),
        }
    }
}

impl TryFrom<Value> for ScopeCount {
    type Error = String;

    fn try_from(value: Value) -> Result<Self, String> {
        match value {
            Value::Number(n) => n
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .map(ScopeCount::Fixed)
                .ok_or_else(|| format!("scope count {n} is not a count")),
            _ => Ok(ScopeCount::Dynamic),
        }
    }
}

impl std::fmt::Display for ScopeCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScopeCount::Fixed(n) => write!(f, "{n}"),
            ScopeCount::Dynamic => f.write_str("dynamic"),
        }
    }
}

/// One job as a replica registered it: its name, its schedule in words and
/// in machine form, how many scopes it has, and its main options.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RegisteredJob {
    /// The job's name.
    pub name: String,
    /// The schedule in plain words
    /// ([`Planning::describe`](crate::plan::Planning::describe)), e.g.
    /// `every 5 minutes` or `09:00 on weekdays, Europe/Berlin`.
    pub schedule: String,
    /// The schedule in machine form.
    pub schedule_form: ScheduleForm,
    /// A plan becomes eligible this long after its plan time.
    #[serde(rename = "schedule_delay_us", with = "micros")]
    pub schedule_delay: Duration,
    /// Each scope's plans become eligible a stable offset in `[0, spread)` later.
    #[serde(rename = "spread_us", with = "micros")]
    pub spread: Duration,
    /// How many scopes.
    pub scopes: ScopeCount,
    /// How missed plans are caught up.
    pub catch_up: CatchUpMode,
    /// How far back `every_plan` replays.
    #[serde(rename = "catch_up_window_us", with = "micros")]
    pub catch_up_window: Duration,
    /// The attempts a plan gets in all.
    pub max_attempts: i32,
    /// When a handler is stopped.
    #[serde(rename = "run_timeout_us", with = "micros")]
    pub run_timeout: Duration,
    /// When a lease without a heartbeat is stale.
    #[serde(rename = "stale_timeout_us", with = "micros")]
    pub stale_timeout: Duration,
    /// Whether a plan whose runner vanished may run again by itself.
    pub allow_stale_reentry: bool,
    /// What a claim does while another run of the scope holds a live lease.
    pub overlap: OverlapPolicy,
    /// The scopes of a fixed list of at most [`MAX_LISTED_SCOPES`]; empty
    /// for a provider or a longer list. Lets an operator's tool refuse a
    /// trigger for a scope the job does not have before it is stored.
    pub scope_list: Vec<Scope>,
    /// For a stored schedule (`docs/contract.md` §12), the version the
    /// replica runs; `None` (absent) for a compiled-in job.
    pub stored_version: Option<i64>,
}

/// `jobs` as the stores keep them: one JSON array.
pub fn jobs_to_json(jobs: &[RegisteredJob]) -> String {
    serde_json::to_string(jobs).expect("registered jobs always encode")
}

/// The jobs a store kept with [`jobs_to_json`] (or a version's layout
/// before or after this one's, see the [module docs](self)).
///
/// # Errors
/// A message when the text is not a JSON array of objects.
pub fn jobs_from_json(text: &str) -> Result<Vec<RegisteredJob>, String> {
    serde_json::from_str(text).map_err(|e| format!("stored jobs are not readable: {e}"))
}

/// Durations as whole microseconds (saturating; sub-microsecond parts
/// dropped, as every store keeps instants).
mod micros {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_micros)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> RegisteredJob {
        RegisteredJob {
            name: "rollup \"q\" \\ }".into(),
            schedule: "every 5 minutes".into(),
            schedule_form: ScheduleForm::Every {
                cadence: Duration::from_secs(300),
                offset: Duration::ZERO,
            },
            schedule_delay: Duration::from_secs(30),
            spread: Duration::from_micros(1),
            scopes: ScopeCount::Fixed(2),
            catch_up: CatchUpMode::EveryPlan,
            catch_up_window: Duration::from_secs(3600),
            max_attempts: 3,
            run_timeout: Duration::from_secs(300),
            stale_timeout: Duration::from_secs(600),
            allow_stale_reentry: true,
            overlap: OverlapPolicy::Skip,
            scope_list: vec![Scope::new("tenant", "a"), Scope::global()],
            stored_version: None,
        }
    }

    #[test]
    fn jobs_round_trip_in_the_documented_layout() {
        let cron = RegisteredJob {
            schedule_form: ScheduleForm::Cron {
                expression: "0 9 * * 1-5".into(),
                zone: "Europe/Berlin".into(),
            },
            scopes: ScopeCount::Dynamic,
            ..job()
        };
        let text = jobs_to_json(&[job(), cron.clone()]);
        assert_eq!(jobs_from_json(&text), Ok(vec![job(), cron]));
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value[0]["schedule_form"],
            serde_json::json!({"kind": "every", "every_us": 300_000_000, "offset_us": 0})
        );
        assert_eq!(value[0]["scopes"], 2);
        assert_eq!(value[1]["scopes"], "dynamic");
        assert_eq!(value[0]["catch_up"], "every_plan");
        assert_eq!(value[0]["overlap"], "skip");
        assert_eq!(
            value[0]["scope_list"][0],
            serde_json::json!({"kind": "tenant", "id": "a"})
        );
        assert_eq!(value[0]["schedule_delay_us"], 30_000_000);
        assert_eq!(value[1]["schedule_form"]["zone"], "Europe/Berlin");
    }

    #[test]
    fn other_versions_layouts_are_read_leniently() {
        let text = r#"[{"name": "j", "added_later": 1,
                        "schedule_form": {"kind": "lunar", "phase": "full"}}]"#;
        let read = jobs_from_json(text).unwrap();
        assert_eq!(read[0].name, "j");
        assert_eq!(read[0].schedule_form, ScheduleForm::Unknown);
        assert_eq!(read[0].scopes, ScopeCount::Dynamic);
        assert_eq!(read[0].overlap, OverlapPolicy::BufferAll);
        assert!(jobs_from_json("{").is_err());
        assert!(jobs_from_json(r#"[{"scopes": -1}]"#).is_err());
    }
}
