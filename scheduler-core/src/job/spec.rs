//! Job specifications (`docs/contract.md` §6): what a job is, its options,
//! and their validation.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::{RunContext, Scopes};
use crate::error::{BoxError, SpecError};
use crate::model::{
    name_problem, LatestExecution, OverlapPolicy, RegisteredJob, ScheduleForm, ScheduleOptions,
    Scope, MAX_ARGUMENTS_BYTES, MAX_CATCH_UP_WINDOW,
};
use crate::plan::{CatchUpMode, CronSchedule, Planning, Schedule};

/// What a handler returns on success.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobOutput {
    /// Stored in `rows_affected`.
    pub rows_affected: i64,
    /// Stored in `result`: a small JSON object (at most 16 KiB encoded; a
    /// larger one is replaced by a marker, and the row still ends SUCCESS).
    pub result: Map<String, Value>,
    /// The SUCCESS was already written, in the handler's own transaction
    /// with its effects ([`committed`](Self::committed)).
    pub(crate) committed: bool,
}

impl JobOutput {
    /// An output reporting `rows_affected` rows and an empty result.
    pub fn rows(rows_affected: i64) -> Self {
        JobOutput {
            rows_affected,
            result: Map::new(),
            committed: false,
        }
    }

    /// Marks the output as **committed**: the run's guarded SUCCESS was
    /// already written in the transaction that holds the handler's
    /// effects, and committed with them (a transactional job,
    /// `docs/contract.md` §13). The manager then writes no terminal state
    /// of its own and counts the run a success. Only a store's
    /// transactional jobs set it, after their commit.
    pub fn committed(mut self) -> Self {
        self.committed = true;
        self
    }

    /// Whether [`committed`](Self::committed) marked it.
    pub fn is_committed(&self) -> bool {
        self.committed
    }

    /// Adds one entry to the result object.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.result.insert(key.into(), value.into());
        self
    }
}

/// The future a handler returns.
pub type HandlerFuture = BoxFuture<'static, Result<JobOutput, BoxError>>;

type HandlerFn = dyn Fn(RunContext) -> HandlerFuture + Send + Sync;
type PlannerFn =
    dyn Fn(&Scope, OffsetDateTime, Option<&LatestExecution>) -> Vec<OffsetDateTime> + Send + Sync;

/// A registered job: its name, options, scopes and handler.
///
/// Built with [`JobSpec::new`] and the option methods; checked by
/// [`JobSpec::validate`] when a manager registers it.
///
/// Defaults, chosen for safety: `latest_only`; no schedule delay or catch-up
/// window; `run_timeout` 5 min, `stale_timeout` 10 min, `heartbeat_interval`
/// 30 s; `max_attempts` 3 with backoff 10 s, 1 min, 5 min; stale re-entry
/// **not** allowed (a run whose runner vanished may have had effects, so it
/// waits for an operator unless the job says re-running is safe). A cadence
/// has no default: set one or a custom planner.
#[derive(Clone)]
pub struct JobSpec {
    pub(crate) name: String,
    pub(crate) schedule: Schedule,
    /// Why `cron()` could not build a schedule; reported by `validate`.
    pub(crate) schedule_error: Option<String>,
    pub(crate) schedule_delay: Duration,
    pub(crate) catch_up: CatchUpMode,
    pub(crate) catch_up_window: Duration,
    pub(crate) max_plans_per_tick: usize,
    pub(crate) run_timeout: Duration,
    pub(crate) stale_timeout: Duration,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) allow_stale_reentry: bool,
    pub(crate) max_attempts: i32,
    pub(crate) retry_backoff: Vec<Duration>,
    pub(crate) spread: Duration,
    pub(crate) overlap: OverlapPolicy,
    pub(crate) backfill_per_tick: usize,
    pub(crate) scopes: Scopes,
    pub(crate) planner: Option<Arc<PlannerFn>>,
    pub(crate) arguments: Arc<Map<String, Value>>,
    pub(crate) handler: Arc<HandlerFn>,
}

pub use crate::model::DEFAULT_BACKFILL_PER_TICK;

impl fmt::Debug for JobSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobSpec")
            .field("name", &self.name)
            .field("schedule", &self.schedule)
            .field("schedule_delay", &self.schedule_delay)
            .field("catch_up", &self.catch_up)
            .field("catch_up_window", &self.catch_up_window)
            .field("max_plans_per_tick", &self.max_plans_per_tick)
            .field("run_timeout", &self.run_timeout)
            .field("stale_timeout", &self.stale_timeout)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("allow_stale_reentry", &self.allow_stale_reentry)
            .field("max_attempts", &self.max_attempts)
            .field("retry_backoff", &self.retry_backoff)
            .field("spread", &self.spread)
            .field("overlap", &self.overlap)
            .field("backfill_per_tick", &self.backfill_per_tick)
            .field("scopes", &self.scopes)
            .field("custom_planner", &self.planner.is_some())
            .field("arguments", &self.arguments)
            .finish_non_exhaustive()
    }
}

impl JobSpec {
    /// A job named `name` (its audit key: keep it stable; snake_case ASCII
    /// advised) over `scopes`, running `handler` for every claimed plan.
    ///
    /// The handler must not block its thread: run blocking work in
    /// `tokio::task::spawn_blocking`. Heartbeats run in a task of their own,
    /// so on a multi-thread runtime a blocking handler does not stop them;
    /// on a current-thread runtime nothing else can run while it blocks.
    /// The manager notices late heartbeat rounds as soon as it runs again
    /// (metric `scheduler_heartbeats_late_total`, a warning) and settles the
    /// lease before writing the result: a lease taken over meanwhile cancels
    /// the run and its result is not written.
    pub fn new<F, Fut>(name: impl Into<String>, scopes: Scopes, handler: F) -> Self
    where
        F: Fn(RunContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<JobOutput, BoxError>> + Send + 'static,
    {
        JobSpec {
            name: name.into(),
            schedule: Schedule::every(Duration::ZERO),
            schedule_error: None,
            schedule_delay: Duration::ZERO,
            catch_up: CatchUpMode::LatestOnly,
            catch_up_window: Duration::ZERO,
            max_plans_per_tick: 0,
            run_timeout: Duration::ZERO,
            stale_timeout: Duration::ZERO,
            heartbeat_interval: Duration::ZERO,
            allow_stale_reentry: false,
            max_attempts: 0,
            retry_backoff: Vec::new(),
            spread: Duration::ZERO,
            overlap: OverlapPolicy::default(),
            backfill_per_tick: 0,
            scopes,
            planner: None,
            arguments: Arc::new(Map::new()),
            handler: Arc::new(move |ctx| handler(ctx).boxed()),
        }
        .options(&ScheduleOptions::default())
    }

    /// Sets every option of `options` at once (what a stored schedule
    /// carries; [`ScheduleOptions::default`] holds the defaults of
    /// [`new`](Self::new)).
    pub fn options(mut self, options: &ScheduleOptions) -> Self {
        let ScheduleOptions {
            schedule_delay,
            catch_up,
            catch_up_window,
            max_plans_per_tick,
            run_timeout,
            stale_timeout,
            heartbeat_interval,
            allow_stale_reentry,
            max_attempts,
            retry_backoff,
            spread,
            overlap,
            backfill_per_tick,
        } = options.clone();
        self.schedule_delay = schedule_delay;
        self.catch_up = catch_up;
        self.catch_up_window = catch_up_window;
        self.max_plans_per_tick = max_plans_per_tick;
        self.run_timeout = run_timeout;
        self.stale_timeout = stale_timeout;
        self.heartbeat_interval = heartbeat_interval;
        self.allow_stale_reentry = allow_stale_reentry;
        self.max_attempts = max_attempts;
        self.retry_backoff = retry_backoff;
        self.spread = spread;
        self.overlap = overlap;
        self.backfill_per_tick = backfill_per_tick;
        self
    }

    /// The JSON object the handler reads from
    /// [`RunContext::arguments`](super::RunContext::arguments) (empty by
    /// default; at most [`MAX_ARGUMENTS_BYTES`] encoded).
    pub fn arguments(mut self, arguments: Map<String, Value>) -> Self {
        self.arguments = Arc::new(arguments);
        self
    }

    /// Plans fall every `cadence`, on multiples of it since 0001-01-01T00:00:00Z.
    pub fn cadence(mut self, cadence: Duration) -> Self {
        self.schedule = Schedule::every(cadence);
        self.schedule_error = None;
        self
    }

    /// Plans fall every `cadence`, `offset` after each multiple of it
    /// since 0001-01-01T00:00:00Z: `cadence_with_offset(1 day, 2 hours)`
    /// plans at 02:00 UTC every day. The offset must be less than the
    /// cadence.
    pub fn cadence_with_offset(mut self, cadence: Duration, offset: Duration) -> Self {
        self.schedule = Schedule::Every { cadence, offset };
        self.schedule_error = None;
        self
    }

    /// The schedule a machine form describes (what a stored schedule
    /// carries): a cadence with its offset, or a cron expression in its
    /// zone. A custom or unknown form is refused at registration.
    pub fn schedule_form(self, form: &ScheduleForm) -> Self {
        match form {
            ScheduleForm::Every { cadence, offset } => self.cadence_with_offset(*cadence, *offset),
            ScheduleForm::Cron { expression, zone } => self.cron(expression, zone),
            ScheduleForm::Custom | ScheduleForm::Unknown => JobSpec {
                schedule_error: Some("must be a cadence or a cron schedule".to_owned()),
                ..self
            },
        }
    }

    /// Plans fall at the occurrences of a cron expression (5 fields, or 6
    /// with seconds; `MON-FRI`, `*/15`, `L` and the like) in an IANA time
    /// zone such as `"Europe/Berlin"` or `"UTC"`. Plan times are the UTC
    /// instants of the occurrences; see [`CronSchedule`] for the DST policy.
    /// An invalid expression or unknown zone is refused at registration.
    pub fn cron(mut self, expression: &str, time_zone: &str) -> Self {
        match CronSchedule::parse(expression, time_zone) {
            Ok(cron) => {
                self.schedule = Schedule::Cron(Arc::new(cron));
                self.schedule_error = None;
            }
            Err(e) => self.schedule_error = Some(e),
        }
        self
    }

    /// A plan becomes eligible `delay` after its plan time (e.g. to let late
    /// data arrive).
    pub fn schedule_delay(mut self, delay: Duration) -> Self {
        self.schedule_delay = delay;
        self
    }

    /// See [`CatchUpMode`].
    pub fn catch_up(mut self, mode: CatchUpMode) -> Self {
        self.catch_up = mode;
        self
    }

    /// How far back `every_plan` replays missed plans; zero means only the
    /// latest bucket. For a cron schedule with `latest_only`, a non-zero
    /// window also keeps an occurrence older than the window from firing
    /// after an outage (e.g. Friday's 09:00 run when the service comes back
    /// on Sunday). A scope with no history never starts with an occurrence
    /// older than [`FIRST_RUN_GRACE`](crate::plan::FIRST_RUN_GRACE),
    /// whatever the window.
    pub fn catch_up_window(mut self, window: Duration) -> Self {
        self.catch_up_window = window;
        self
    }

    /// The most plans attempted per scope and tick (required, at least 1, for
    /// `every_plan` without a custom planner; a cap on a custom planner's list).
    pub fn max_plans_per_tick(mut self, n: usize) -> Self {
        self.max_plans_per_tick = n;
        self
    }

    /// The handler is stopped (its future dropped) after this long, and the
    /// row records `run_timeout`.
    pub fn run_timeout(mut self, timeout: Duration) -> Self {
        self.run_timeout = timeout;
        self
    }

    /// A lease without a heartbeat for this long is stale: it may be swept,
    /// and stolen when the job allows stale re-entry. Must exceed `run_timeout`.
    pub fn stale_timeout(mut self, timeout: Duration) -> Self {
        self.stale_timeout = timeout;
        self
    }

    /// How often the manager extends a running lease. Must be between zero
    /// and `stale_timeout`, exclusive.
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// Whether a plan whose runner vanished may run again (steal of a stale
    /// lease, retry of a swept row). Only for handlers that are safe to
    /// repeat.
    pub fn allow_stale_reentry(mut self, allow: bool) -> Self {
        self.allow_stale_reentry = allow;
        self
    }

    /// How many attempts a plan gets in all, retries and takeovers included.
    pub fn max_attempts(mut self, n: i32) -> Self {
        self.max_attempts = n;
        self
    }

    /// Entry `i` is the wait after attempt `i + 1` fails; past the end the
    /// last entry repeats; empty means retry at once.
    pub fn retry_backoff(mut self, backoff: Vec<Duration>) -> Self {
        self.retry_backoff = backoff;
        self
    }

    /// Spreads the scopes' start times: each scope's plans become eligible a
    /// stable offset inside `[0, spread)` after the usual moment, from a hash
    /// of (job, scope), so 10,000 tenants do not all start at once. Plan
    /// times themselves stay on the cadence grid.
    pub fn spread(mut self, spread: Duration) -> Self {
        self.spread = spread;
        self
    }

    /// What a claim does with a plan of a scope while another execution of
    /// the same scope holds a live lease, on any replica
    /// ([`OverlapPolicy`]; `docs/contract.md` §11). Default
    /// [`OverlapPolicy::BufferAll`]: the plan waits its turn.
    ///
    /// Under the buffering policies a replica does not even claim a scope
    /// while it runs one of its plans itself. Under the others every claim
    /// goes to the store, and a run won while the scope runs here starts at
    /// once, beside the other: with `cancel_other` the older run stops at
    /// its next heartbeat (so within `heartbeat_interval`), its lease gone.
    pub fn overlap(mut self, policy: OverlapPolicy) -> Self {
        self.overlap = policy;
        self
    }

    /// The most keys (instants × scopes) a replica claims for the
    /// backfills of this job per tick, after the job's own plans and
    /// triggers and within free capacity, so that a backfill never starves
    /// them. A backfill of more scopes than this still moves on: each tick
    /// takes the keys not yet known to have a row. Default 100; at least 1.
    pub fn backfill_per_tick(mut self, keys: usize) -> Self {
        self.backfill_per_tick = keys;
        self
    }

    /// Replaces cadence planning: called per scope and tick with store time
    /// and the scope's latest execution, it returns plan times in the order
    /// to attempt them (cut at `max_plans_per_tick` when that is set). The
    /// manager does not filter them, but for the plans a resume skipped: a
    /// planner that returns a future plan time gets it claimed now.
    ///
    /// A trigger of such a job runs one microsecond after the trigger's
    /// creation instant (the planner's own plans cannot be known ahead,
    /// and tend to fall on round instants). A backfill is rejected: it
    /// runs instants of a schedule, which the job does not have.
    pub fn planner<F>(mut self, planner: F) -> Self
    where
        F: Fn(&Scope, OffsetDateTime, Option<&LatestExecution>) -> Vec<OffsetDateTime>
            + Send
            + Sync
            + 'static,
    {
        self.planner = Some(Arc::new(planner));
        self
    }

    /// The job's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The planning options.
    pub fn planning(&self) -> Planning {
        Planning {
            schedule: self.schedule.clone(),
            schedule_delay: self.schedule_delay,
            catch_up: self.catch_up,
            catch_up_window: self.catch_up_window,
            max_plans_per_tick: self.max_plans_per_tick,
            allow_stale_reentry: self.allow_stale_reentry,
            spread: self.spread,
        }
    }

    /// The job as data, as its replica announces it (`docs/contract.md`
    /// §7): its schedule in words ([`Planning::describe`], or `custom
    /// planner`) and in machine form, its scope count and main options.
    pub fn registration(&self) -> RegisteredJob {
        let planning = self.planning();
        let (schedule, schedule_form) = match &self.planner {
            Some(_) => ("custom planner".to_owned(), ScheduleForm::Custom),
            None => (planning.describe(), planning.schedule.form()),
        };
        RegisteredJob {
            name: self.name.clone(),
            schedule,
            schedule_form,
            schedule_delay: self.schedule_delay,
            spread: self.spread,
            scopes: self.scopes.count(),
            catch_up: self.catch_up,
            catch_up_window: self.catch_up_window,
            max_attempts: self.max_attempts,
            run_timeout: self.run_timeout,
            stale_timeout: self.stale_timeout,
            allow_stale_reentry: self.allow_stale_reentry,
            overlap: self.overlap,
            scope_list: self.scopes.listed(),
            stored_version: None,
        }
    }

    /// The wait before the retry that follows a failure of `attempt`.
    pub fn retry_delay(&self, attempt: i32) -> Duration {
        let index = usize::try_from(attempt.max(1) - 1).unwrap_or(0);
        self.retry_backoff
            .get(index)
            .or(self.retry_backoff.last())
            .copied()
            .unwrap_or(Duration::ZERO)
    }

    /// Checks the rules of `docs/contract.md` §6. The error names the job and
    /// the field.
    ///
    /// # Errors
    /// A [`SpecError`] for the first rule broken.
    pub fn validate(&self) -> Result<(), SpecError> {
        let fail = |field, reason: &str| Err(SpecError::new(&self.name, field, reason));
        if self.name.trim().is_empty() {
            return fail("name", "must not be empty or blank");
        }
        if let Some(problem) = name_problem("job name", &self.name) {
            return fail("name", &problem);
        }
        if let Some(error) = &self.schedule_error {
            return fail("cron", error);
        }
        if let (Schedule::Every { cadence, offset }, None) = (&self.schedule, &self.planner) {
            if *cadence < Duration::from_micros(1) {
                return fail(
                    "cadence",
                    "must be at least 1µs (or give the job a cron schedule or a custom planner)",
                );
            }
            if offset >= cadence {
                return fail("cadence_offset", "must be less than cadence");
            }
            if self.spread >= *cadence {
                return fail("spread", "must be less than cadence");
            }
        }
        if self.catch_up_window > MAX_CATCH_UP_WINDOW {
            return fail(
                "catch_up_window",
                &format!(
                    "must be at most {} (a year)",
                    humantime::format_duration(MAX_CATCH_UP_WINDOW)
                ),
            );
        }
        if self.run_timeout.is_zero() {
            return fail("run_timeout", "must be positive");
        }
        if self.stale_timeout <= self.run_timeout {
            return fail("stale_timeout", "must be greater than run_timeout");
        }
        if self.heartbeat_interval.is_zero() || self.heartbeat_interval >= self.stale_timeout {
            return fail(
                "heartbeat_interval",
                "must be greater than zero and less than stale_timeout",
            );
        }
        if self.max_attempts < 1 {
            return fail("max_attempts", "must be at least 1");
        }
        if self.catch_up == CatchUpMode::EveryPlan
            && self.planner.is_none()
            && self.max_plans_per_tick < 1
        {
            return fail("max_plans_per_tick", "must be at least 1 for every_plan");
        }
        if self.backfill_per_tick < 1 {
            return fail("backfill_per_tick", "must be at least 1");
        }
        if let Scopes::Fixed(scopes) = &self.scopes {
            if let Some(problem) = scopes.iter().find_map(Scope::storage_problem) {
                return fail("scopes", &problem);
            }
        }
        if self
            .arguments
            .iter()
            .any(|(k, v)| k.contains('\0') || holds_nul(v))
        {
            // PostgreSQL's jsonb cannot hold U+0000; refused alike everywhere.
            return fail("arguments", "must not hold a NUL character (\\u0000)");
        }
        let encoded = serde_json::to_string(&*self.arguments).map_or(usize::MAX, |t| t.len());
        if encoded > MAX_ARGUMENTS_BYTES {
            return fail(
                "arguments",
                &format!("must be at most {MAX_ARGUMENTS_BYTES} bytes as JSON, got {encoded}"),
            );
        }
        Ok(())
    }

    pub(crate) async fn run_handler(&self, ctx: RunContext) -> Result<JobOutput, BoxError> {
        (self.handler)(ctx).await
    }

    pub(crate) fn custom_plans(
        &self,
        scope: &Scope,
        now: OffsetDateTime,
        latest: Option<&LatestExecution>,
    ) -> Vec<OffsetDateTime> {
        match &self.planner {
            Some(planner) => {
                crate::plan::normalise_custom(planner(scope, now, latest), self.max_plans_per_tick)
            }
            None => Vec::new(),
        }
    }
}

/// Whether a JSON value holds a NUL character in any string or key.
fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str) -> JobSpec {
        JobSpec::new(name, Scopes::global(), |_ctx| async {
            Ok(JobOutput::default())
        })
        .cadence(Duration::from_secs(60))
    }

    fn field_of(spec: JobSpec) -> &'static str {
        spec.validate().expect_err("should be refused").field
    }

    #[test]
    fn defaults_with_a_cadence_are_valid() {
        assert_eq!(job("rollup").validate(), Ok(()));
    }

    #[test]
    fn each_rule_names_the_job_and_field() {
        let err = job("  ").validate().unwrap_err();
        assert_eq!((err.job.as_str(), err.field), ("  ", "name"));
        assert!(err.to_string().contains("name"));
        assert_eq!(field_of(job("a\0b")), "name");
        assert_eq!(field_of(job("j").cadence(Duration::ZERO)), "cadence");
        assert_eq!(
            field_of(job("j").cadence(Duration::from_nanos(999))),
            "cadence"
        );
        assert_eq!(
            field_of(job("j").run_timeout(Duration::ZERO)),
            "run_timeout"
        );
        assert_eq!(
            field_of(job("j").run_timeout(Duration::from_secs(600))),
            "stale_timeout"
        );
        assert_eq!(
            field_of(job("j").heartbeat_interval(Duration::ZERO)),
            "heartbeat_interval"
        );
        assert_eq!(
            field_of(job("j").heartbeat_interval(Duration::from_secs(600))),
            "heartbeat_interval"
        );
        assert_eq!(field_of(job("j").max_attempts(0)), "max_attempts");
        assert_eq!(
            field_of(job("j").catch_up(CatchUpMode::EveryPlan)),
            "max_plans_per_tick"
        );
        let bad_scope = JobSpec::new("j", Scopes::fixed([Scope::new("t", "a\0")]), |_| async {
            Ok(JobOutput::default())
        })
        .cadence(Duration::from_secs(1));
        assert_eq!(field_of(bad_scope), "scopes");
        let err = job("rollup").max_attempts(0).validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "job \"rollup\": max_attempts: must be at least 1"
        );
    }

    #[test]
    fn a_custom_planner_lifts_the_cadence_and_cap_rules() {
        let spec = job("j")
            .cadence(Duration::ZERO)
            .catch_up(CatchUpMode::EveryPlan)
            .planner(|_, _, _| Vec::new());
        assert_eq!(spec.validate(), Ok(()));
    }

    #[test]
    fn the_registration_describes_the_job_as_data() {
        let tenants = Scopes::fixed([Scope::new("t", "a"), Scope::new("t", "b")]);
        let spec = JobSpec::new("digest", tenants, |_| async { Ok(JobOutput::default()) })
            .cron("0 9 * * MON-FRI", "Europe/Berlin")
            .max_attempts(5)
            .allow_stale_reentry(true);
        let reg = spec.registration();
        assert_eq!(reg.name, "digest");
        assert_eq!(reg.schedule, "09:00 on weekdays, Europe/Berlin");
        assert_eq!(
            reg.schedule_form,
            ScheduleForm::Cron {
                expression: "0 9 * * MON-FRI".into(),
                zone: "Europe/Berlin".into()
            }
        );
        assert_eq!(reg.scopes, crate::model::ScopeCount::Fixed(2));
        assert_eq!((reg.max_attempts, reg.allow_stale_reentry), (5, true));
        assert_eq!(reg.stale_timeout, Duration::from_secs(600));
        let custom = job("c").planner(|_, _, _| Vec::new()).registration();
        assert_eq!(
            (custom.schedule.as_str(), custom.schedule_form),
            ("custom planner", ScheduleForm::Custom)
        );
        let dynamic = JobSpec::new("d", Scopes::dynamic(|_| async { Ok(vec![]) }), |_| async {
            Ok(JobOutput::default())
        });
        assert_eq!(
            dynamic.registration().scopes,
            crate::model::ScopeCount::Dynamic
        );
    }

    #[test]
    fn backoff_repeats_its_last_entry_and_empty_means_now() {
        let spec = job("j").retry_backoff(vec![Duration::from_secs(1), Duration::from_secs(5)]);
        assert_eq!(spec.retry_delay(1), Duration::from_secs(1));
        assert_eq!(spec.retry_delay(2), Duration::from_secs(5));
        assert_eq!(spec.retry_delay(9), Duration::from_secs(5));
        assert_eq!(
            job("j").retry_backoff(vec![]).retry_delay(1),
            Duration::ZERO
        );
    }
}
