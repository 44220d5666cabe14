//! `scheduler schedule create|update|delete|show|list`: stored schedules
//! (`docs/contract.md` §12), schedules kept as data in the store and run by
//! every replica whose code registered their kind, through
//! [`Operator`].
//!
//! A definition comes from flags, or from a JSON or TOML file (`--file`,
//! the format by its extension) holding a [`ScheduleDefinition`] as serde
//! reads it, with flags on top. An update names the version it read
//! (`--version`) and starts from the stored definition, so that its flags
//! change only what they name. Every definition is checked by the rules of
//! a compiled-in job before anything is written: a bad one is a usage error
//! (exit 2) naming the field; a version another writer moved on is a
//! conflict (exit 1) naming the current version.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};
use scheduler_core::model::ScheduleForm;
use scheduler_core::plan::Schedule;
use scheduler_core::{
    CatchUpMode, Operator, OverlapPolicy, Replica, ReplicaState, ScheduleDefinition, Scope,
    StoredSchedule, StoredScopes,
};
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use super::steering::operator_failure;
use super::{parse_scope, Cx};
use crate::output::{emit, emit_json, escape, json_ts, table, Failure};
use crate::parse_duration;

/// How many characters of a schedule's scopes a table shows.
const TABLE_SCOPES_CHARS: usize = 40;

/// `scheduler schedule ...`
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Store a new schedule (version 1). Needs --kind and --every or
    /// --cron, or a --file that has them. A kind no live replica has
    /// registered yet is stored with a warning: it runs once a replica
    /// with that kind is up.
    Create(CreateArgs),
    /// Change a stored schedule: only what the flags name (or the --file's
    /// definition, flags on top), if it is still at --version. It applies
    /// from its next plan on every replica.
    Update(UpdateArgs),
    /// Remove a stored schedule (at --version, when given): no replica
    /// plans it any more; its history stays.
    Delete(DeleteArgs),
    /// One stored schedule: its definition, version and times (--json: the
    /// stored schedule with its definition as a file holds it).
    Show(ShowArgs),
    /// Every stored schedule: kind, version, schedule in words, scopes,
    /// whether it is paused, when its version became current.
    List,
}

/// `scheduler schedule create`
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The schedule's name: the job name of its executions.
    name: String,
    #[command(flatten)]
    definition: Box<DefinitionArgs>,
}

/// `scheduler schedule update`
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The schedule's name.
    name: String,
    /// The version read (`scheduler schedule show`): the update is refused
    /// if another writer changed the schedule since.
    #[arg(long)]
    version: i64,
    #[command(flatten)]
    definition: Box<DefinitionArgs>,
}

/// `scheduler schedule delete`
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The schedule's name.
    name: String,
    /// Delete only if it is still at this version.
    #[arg(long)]
    version: Option<i64>,
}

/// `scheduler schedule show`
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The schedule's name.
    name: String,
}

/// A definition as flags, each changing one thing of the definition they
/// apply to (the --file's, the stored one, or a new one).
#[derive(Debug, Args)]
pub struct DefinitionArgs {
    /// A JSON (.json) or TOML (.toml) file holding the definition, e.g.
    /// {"kind": "report", "schedule": {"kind": "every", "every_us":
    /// 60000000}}; flags change it further.
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
    /// The handler's kind, as the replicas' code registered it.
    #[arg(long)]
    kind: Option<String>,
    /// Plan every DURATION (e.g. 30s, 5m, 1h), on its multiples since
    /// 0001-01-01T00:00:00Z.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, conflicts_with = "cron")]
    every: Option<Duration>,
    /// Plans fall this long after each multiple of the cadence (less than
    /// it); kept from the stored schedule when not given.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, conflicts_with = "cron")]
    offset: Option<Duration>,
    /// Plan at the occurrences of a cron expression (5 fields, or 6 with
    /// seconds first).
    #[arg(long, value_name = "EXPR")]
    cron: Option<String>,
    /// The cron expression's IANA time zone (e.g. Asia/Tokyo); UTC for a
    /// new one, else kept.
    #[arg(long, value_name = "ZONE", conflicts_with = "every")]
    tz: Option<String>,
    /// A scope, as KIND/ID (e.g. tenant/acme); repeat for more. Replaces
    /// the scopes. Default of a new schedule: global/global.
    #[arg(long, value_name = "KIND/ID", value_parser = parse_scope, conflicts_with = "provider")]
    scope: Vec<Scope>,
    /// The scopes are asked of this scope provider, registered in the
    /// replicas' code, at every tick.
    #[arg(long, value_name = "NAME")]
    provider: Option<String>,
    /// The handler's arguments, a JSON object; replaces them.
    #[arg(long, value_name = "JSON", value_parser = parse_arguments)]
    args: Option<Map<String, Value>>,
    /// One argument, KEY=JSON (e.g. limit=10, 'to="ops@example.com"');
    /// repeat for more. Set on top of the arguments.
    #[arg(long, value_name = "KEY=JSON", value_parser = parse_argument)]
    arg: Vec<(String, Value)>,
    /// Paused: nothing of it is planned until an update sets
    /// --paused=false.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    paused: Option<bool>,
    /// How missed plans are caught up: latest_only or every_plan.
    #[arg(long, value_name = "MODE", value_parser = parse_catch_up)]
    catch_up: Option<CatchUpMode>,
    /// How far back every_plan replays (at most a year).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    window: Option<Duration>,
    /// The most plans attempted per scope and tick.
    #[arg(long, value_name = "N")]
    max_plans_per_tick: Option<usize>,
    /// A plan becomes eligible this long after its plan time.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    delay: Option<Duration>,
    /// When a handler is stopped.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    run_timeout: Option<Duration>,
    /// When a lease without a heartbeat is stale.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    stale_timeout: Option<Duration>,
    /// How often a running lease is extended.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    heartbeat: Option<Duration>,
    /// The attempts a plan gets in all.
    #[arg(long, value_name = "N")]
    max_attempts: Option<i32>,
    /// The waits between attempts, comma-separated (e.g. 10s,1m,5m); the
    /// last repeats.
    #[arg(long, value_name = "DURATIONS", value_parser = parse_backoff)]
    backoff: Option<Vec<Duration>>,
    /// Each scope's plans become eligible a stable offset in [0, spread)
    /// later.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    spread: Option<Duration>,
    /// What a claim does while another run of the scope holds a live
    /// lease: skip, buffer_one, buffer_all, cancel_other or allow_all.
    #[arg(long, value_name = "POLICY", value_parser = parse_overlap)]
    overlap: Option<OverlapPolicy>,
    /// Whether a plan whose runner vanished may run again by itself.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    reentrant: Option<bool>,
    /// The most backfill keys claimed per tick.
    #[arg(long, value_name = "N")]
    backfill_per_tick: Option<usize>,
}

/// `--args`: a JSON object.
fn parse_arguments(s: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str::<Value>(s) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!(
            "arguments: must be a JSON object such as {{\"limit\": 10}}, not {}",
            json_type(&other)
        )),
        Err(e) => Err(format!("arguments: not JSON: {e}")),
    }
}

/// `--arg KEY=JSON`.
fn parse_argument(s: &str) -> Result<(String, Value), String> {
    let Some((key, value)) = s.split_once('=').filter(|(k, _)| !k.is_empty()) else {
        return Err(
            "arguments: expected KEY=JSON, e.g. limit=10 or 'to=\"ops@example.com\"'".to_owned(),
        );
    };
    let value = serde_json::from_str(value).map_err(|e| {
        format!(
            "arguments: the value of {key:?} is not JSON ({e}); quote a string: '{key}=\"...\"'"
        )
    })?;
    Ok((key.to_owned(), value))
}

/// `--backoff 10s,1m`.
fn parse_backoff(s: &str) -> Result<Vec<Duration>, String> {
    s.split(',').map(|d| parse_duration(d.trim())).collect()
}

fn parse_catch_up(s: &str) -> Result<CatchUpMode, String> {
    serde_json::from_value(Value::String(s.to_owned()))
        .map_err(|_| format!("invalid catch-up mode {s:?}: expected latest_only or every_plan"))
}

fn parse_overlap(s: &str) -> Result<OverlapPolicy, String> {
    serde_json::from_value(Value::String(s.to_owned())).map_err(|_| {
        format!(
            "invalid overlap policy {s:?}: expected skip, buffer_one, buffer_all, cancel_other or allow_all"
        )
    })
}

/// A value of a snake_case enum as flags and files write it.
fn name_of(value: serde_json::Result<Value>) -> String {
    value
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// `text` cut to at most `max` characters with `...`.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    text.chars().take(max.saturating_sub(3)).collect::<String>() + "..."
}

/// `an array`, `a string`, ...: a JSON value's type in a message.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads a definition from a `.json` or `.toml` file.
///
/// # Errors
/// A usage failure naming the file, and the field where serde can tell.
fn read_file(path: &Path) -> Result<ScheduleDefinition, Failure> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Usage(format!("--file {shown}: cannot read it: {e}")))?;
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let value: Value = match extension.as_deref() {
        Some("json") => serde_json::from_str(&text)
            .map_err(|e| Failure::Usage(format!("--file {shown}: not JSON: {e}")))?,
        Some("toml") => toml::from_str(&text)
            .map_err(|e| Failure::Usage(format!("--file {shown}: not TOML: {e}")))?,
        _ => {
            return Err(Failure::Usage(format!(
                "--file {shown}: name a .json or a .toml file (the extension says which)"
            )))
        }
    };
    // serde says "expected a map" without the field; say it.
    if let Some(arguments) = value.get("arguments").filter(|a| !a.is_object()) {
        return Err(Failure::Usage(format!(
            "--file {shown}: arguments: must be a JSON object, not {}",
            json_type(arguments)
        )));
    }
    ScheduleDefinition::from_operator(value).map_err(|e| {
        Failure::Usage(format!(
            "--file {shown}: not a stored schedule's definition: {e}"
        ))
    })
}

impl DefinitionArgs {
    /// The definition these flags make of `base` (the stored one, for an
    /// update): the --file's if given, else `base`, else a new one (which
    /// needs --kind and a schedule), changed by every flag given.
    ///
    /// # Errors
    /// A usage failure naming the flag or field.
    fn apply(&self, base: Option<ScheduleDefinition>) -> Result<ScheduleDefinition, Failure> {
        let base = match &self.file {
            Some(path) => Some(read_file(path)?),
            None => base,
        };
        let mut def = match base {
            Some(def) => def,
            None => {
                let kind = self.kind.clone().ok_or_else(|| {
                    Failure::Usage(
                        "kind: a new schedule needs --kind (the handler's kind), or a --file"
                            .to_owned(),
                    )
                })?;
                if self.every.is_none() && self.cron.is_none() {
                    return Err(Failure::Usage(
                        "schedule: a new schedule needs --every DURATION or --cron EXPR, or a --file"
                            .to_owned(),
                    ));
                }
                ScheduleDefinition {
                    kind,
                    schedule: ScheduleForm::Unknown,
                    scopes: StoredScopes::default(),
                    arguments: Map::new(),
                    paused: false,
                    options: Default::default(),
                }
            }
        };
        if let Some(kind) = &self.kind {
            def.kind = kind.clone();
        }
        def.schedule = self.schedule(&def.schedule)?;
        if !self.scope.is_empty() {
            def.scopes = StoredScopes::Fixed(self.scope.clone());
        }
        if let Some(provider) = &self.provider {
            def.scopes = StoredScopes::Provider(provider.clone());
        }
        if let Some(args) = &self.args {
            def.arguments = args.clone();
        }
        for (key, value) in &self.arg {
            def.arguments.insert(key.clone(), value.clone());
        }
        if let Some(paused) = self.paused {
            def.paused = paused;
        }
        let o = &mut def.options;
        let set = |target: &mut Duration, given: Option<Duration>| {
            if let Some(d) = given {
                *target = d;
            }
        };
        set(&mut o.catch_up_window, self.window);
        set(&mut o.schedule_delay, self.delay);
        set(&mut o.run_timeout, self.run_timeout);
        set(&mut o.stale_timeout, self.stale_timeout);
        set(&mut o.heartbeat_interval, self.heartbeat);
        set(&mut o.spread, self.spread);
        if let Some(mode) = self.catch_up {
            o.catch_up = mode;
        }
        if let Some(n) = self.max_plans_per_tick {
            o.max_plans_per_tick = n;
        }
        if let Some(n) = self.max_attempts {
            o.max_attempts = n;
        }
        if let Some(backoff) = &self.backoff {
            o.retry_backoff = backoff.clone();
        }
        if let Some(policy) = self.overlap {
            o.overlap = policy;
        }
        if let Some(reentrant) = self.reentrant {
            o.allow_stale_reentry = reentrant;
        }
        if let Some(n) = self.backfill_per_tick {
            o.backfill_per_tick = n;
        }
        Ok(def)
    }

    /// The schedule the flags make of `current`: --every (keeping the
    /// offset unless --offset), --cron (keeping the zone unless --tz, UTC
    /// for a new one), or only --offset of a cadence or --tz of a cron.
    fn schedule(&self, current: &ScheduleForm) -> Result<ScheduleForm, Failure> {
        Ok(match (self.every, &self.cron, current) {
            (Some(cadence), _, current) => ScheduleForm::Every {
                cadence,
                offset: self.offset.unwrap_or(match current {
                    ScheduleForm::Every { offset, .. } => *offset,
                    _ => Duration::ZERO,
                }),
            },
            (None, Some(expression), current) => ScheduleForm::Cron {
                expression: expression.clone(),
                zone: self.tz.clone().unwrap_or_else(|| match current {
                    ScheduleForm::Cron { zone, .. } => zone.clone(),
                    _ => "UTC".to_owned(),
                }),
            },
            (None, None, ScheduleForm::Every { cadence, offset }) => {
                if self.tz.is_some() {
                    return Err(Failure::Usage(
                        "--tz applies to a cron schedule; this one is a cadence (--every)"
                            .to_owned(),
                    ));
                }
                ScheduleForm::Every {
                    cadence: *cadence,
                    offset: self.offset.unwrap_or(*offset),
                }
            }
            (None, None, ScheduleForm::Cron { expression, zone }) => {
                if self.offset.is_some() {
                    return Err(Failure::Usage(
                        "--offset applies to a cadence (--every); this schedule is a cron one"
                            .to_owned(),
                    ));
                }
                ScheduleForm::Cron {
                    expression: expression.clone(),
                    zone: self.tz.clone().unwrap_or_else(|| zone.clone()),
                }
            }
            (None, None, other) => other.clone(),
        })
    }
}

/// `scheduler schedule ...`
pub async fn schedule(cx: &Cx, command: ScheduleCommand) -> Result<(), Failure> {
    match command {
        ScheduleCommand::Create(args) => create(cx, args).await,
        ScheduleCommand::Update(args) => update(cx, args).await,
        ScheduleCommand::Delete(args) => delete(cx, args).await,
        ScheduleCommand::Show(args) => show(cx, args).await,
        ScheduleCommand::List => list(cx).await,
    }
}

async fn operator(cx: &Cx) -> Result<Operator, Failure> {
    Ok(Operator::new(cx.store().await?))
}

async fn create(cx: &Cx, args: CreateArgs) -> Result<(), Failure> {
    let definition = args.definition.apply(None)?;
    let operator = operator(cx).await?;
    let written = operator
        .create_schedule(&args.name, &definition)
        .await
        .map_err(|e| operator_failure(cx, e))?;
    report_written(cx, "created", &written)
}

async fn update(cx: &Cx, args: UpdateArgs) -> Result<(), Failure> {
    let operator = operator(cx).await?;
    // The flags change the definition the operator read at --version; a
    // stored one at another version is refused below, by the store, with
    // the version it is at.
    let stored = operator
        .schedule(&args.name)
        .await
        .map_err(|e| operator_failure(cx, e))?;
    let base = match stored {
        Some(s) if s.version == args.version => Some(s.definition),
        Some(s) if args.definition.file.is_none() => {
            return Err(Failure::Runtime(format!(
                "nothing changed: stored schedule {:?} is at version {}, not {}: read it again",
                args.name, s.version, args.version
            )))
        }
        Some(s) => Some(s.definition),
        None => {
            return Err(Failure::Runtime(format!(
                "nothing changed: no stored schedule named {:?} (`scheduler schedule list`)",
                args.name
            )))
        }
    };
    let definition = args.definition.apply(base)?;
    let written = operator
        .update_schedule(&args.name, args.version, &definition)
        .await
        .map_err(|e| operator_failure(cx, e))?;
    report_written(cx, "updated", &written)
}

async fn delete(cx: &Cx, args: DeleteArgs) -> Result<(), Failure> {
    let store = cx.store().await?;
    Operator::new(store.clone())
        .delete_schedule(&args.name, args.version)
        .await
        .map_err(|e| operator_failure(cx, e))?;
    // Read once the delete is committed: no claim of the schedule starts
    // after this store time.
    let now = store.now().await.map_err(|e| cx.error(e))?;
    if cx.json {
        return emit_json(&json!({
            "name": args.name,
            "deleted": true,
            "version": args.version,
            "store_time": json_ts(Some(now)),
        }));
    }
    emit(&format!(
        "deleted stored schedule {:?}: no replica plans it any more (runs in flight finish); its history stays\n",
        args.name
    ))
}

/// Prints a create's or update's result: warnings on stderr, then the
/// stored schedule (`--json`: with its warnings).
fn report_written(cx: &Cx, verb: &str, written: &scheduler_core::Written) -> Result<(), Failure> {
    for w in &written.warnings {
        eprintln!("warning: {w}");
    }
    let s = &written.schedule;
    if cx.json {
        let mut doc = stored_json(s);
        doc["warnings"] = written.warnings.clone().into();
        return emit_json(&doc);
    }
    let zone = &cx.zone;
    emit(&format!(
        "{verb} stored schedule {:?}, version {}: {} (kind {:?}, {}{}); replicas with its kind plan it from {} {}\n",
        s.name,
        s.version,
        words(&s.definition.schedule),
        s.definition.kind,
        scopes_words(&s.definition.scopes),
        if s.definition.paused { ", paused" } else { "" },
        zone.ts(Some(s.updated_at)),
        zone.label(),
    ))
}

/// A schedule in words (`every 5m`, `at 07:00, Asia/Tokyo`), escaped.
pub fn words(form: &ScheduleForm) -> String {
    match Schedule::from_form(form) {
        Some(schedule) => escape(&schedule.describe()),
        None => format!("unreadable schedule {form:?}"),
    }
}

/// `scope global/global`, `3 scopes: tenant/a, ...`, `provider "tenants"`.
pub fn scopes_words(scopes: &StoredScopes) -> String {
    match scopes {
        StoredScopes::Fixed(list) if list.len() == 1 => format!("scope {}", list[0]),
        StoredScopes::Fixed(list) => format!(
            "{} scopes: {}",
            list.len(),
            list.iter()
                .map(Scope::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        StoredScopes::Provider(name) => format!("provider {name:?}"),
    }
}

/// A stored schedule for `--json`: name, version, times, the schedule in
/// words, and the definition as a `--file` holds it.
pub fn stored_json(s: &StoredSchedule) -> Value {
    json!({
        "name": s.name,
        "version": s.version,
        "created_at": json_ts(Some(s.created_at)),
        "updated_at": json_ts(Some(s.updated_at)),
        "schedule_words": Schedule::from_form(&s.definition.schedule).map(|p| p.describe()),
        "definition": serde_json::to_value(&s.definition).unwrap_or(Value::Null),
    })
}

/// The live replicas that registered `kind`.
fn with_kind<'a>(replicas: &'a [Replica], kind: &str, now: OffsetDateTime) -> Vec<&'a str> {
    replicas
        .iter()
        .filter(|r| r.state(now) == ReplicaState::Live && r.info.kinds.iter().any(|k| k == kind))
        .map(|r| r.info.runner_id.as_str())
        .collect()
}

/// The live replicas of the store, and its time; none when the registry
/// cannot be read (an older schema still lists its schedules).
async fn live_replicas(cx: &Cx) -> Result<(Vec<Replica>, OffsetDateTime), Failure> {
    let store = cx.store().await?;
    let now = store.now().await.map_err(|e| cx.error(e))?;
    let replicas = store.replicas().await.unwrap_or_default();
    Ok((replicas, now))
}

/// `N live`, or `none live has kind "k"`.
fn replicas_cell(runners: &[&str], kind: &str) -> String {
    if runners.is_empty() {
        format!("none live has kind {}", escape(kind))
    } else {
        format!("{} live", runners.len())
    }
}

async fn show(cx: &Cx, args: ShowArgs) -> Result<(), Failure> {
    let operator = operator(cx).await?;
    let Some(s) = operator
        .schedule(&args.name)
        .await
        .map_err(|e| operator_failure(cx, e))?
    else {
        return Err(Failure::Runtime(format!(
            "no stored schedule named {:?} (`scheduler schedule list`)",
            args.name
        )));
    };
    let (replicas, now) = live_replicas(cx).await?;
    let runners = with_kind(&replicas, &s.definition.kind, now);
    if cx.json {
        let mut doc = stored_json(&s);
        doc["live_replicas_with_kind"] = json!(runners);
        return emit_json(&doc);
    }
    let zone = &cx.zone;
    let d = &s.definition;
    let o = &d.options;
    let human = |d: Duration| humantime::format_duration(d).to_string();
    let lines = vec![
        ("name", escape(&s.name)),
        ("version", s.version.to_string()),
        ("kind", escape(&d.kind)),
        ("schedule", words(&d.schedule)),
        ("scopes", scopes_words(&d.scopes)),
        ("arguments", Value::Object(d.arguments.clone()).to_string()),
        ("paused", if d.paused { "yes" } else { "no" }.to_owned()),
        (
            "created",
            format!("{} {}", zone.ts(Some(s.created_at)), zone.label()),
        ),
        (
            "updated",
            format!(
                "{} {} (this version plans from then on)",
                zone.ts(Some(s.updated_at)),
                zone.label()
            ),
        ),
        ("replicas", replicas_cell(&runners, &d.kind)),
        ("catch-up", name_of(serde_json::to_value(o.catch_up))),
        ("window", human(o.catch_up_window)),
        ("max plans per tick", o.max_plans_per_tick.to_string()),
        ("delay", human(o.schedule_delay)),
        ("spread", human(o.spread)),
        ("run timeout", human(o.run_timeout)),
        ("stale timeout", human(o.stale_timeout)),
        ("heartbeat", human(o.heartbeat_interval)),
        ("max attempts", o.max_attempts.to_string()),
        (
            "backoff",
            o.retry_backoff
                .iter()
                .map(|d| human(*d))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        ("overlap", name_of(serde_json::to_value(o.overlap))),
        ("reentrant", o.allow_stale_reentry.to_string()),
        ("backfill per tick", o.backfill_per_tick.to_string()),
    ];
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut text = String::new();
    for (key, value) in lines {
        text.push_str(&format!("{key:<width$}  {value}\n"));
    }
    emit(&text)
}

async fn list(cx: &Cx) -> Result<(), Failure> {
    let operator = operator(cx).await?;
    let schedules = operator
        .schedules()
        .await
        .map_err(|e| operator_failure(cx, e))?;
    let (replicas, now) = live_replicas(cx).await?;
    if cx.json {
        let list: Vec<Value> = schedules
            .iter()
            .map(|s| {
                let mut doc = stored_json(s);
                doc["live_replicas_with_kind"] =
                    json!(with_kind(&replicas, &s.definition.kind, now));
                doc
            })
            .collect();
        return emit_json(&Value::Array(list));
    }
    if schedules.is_empty() {
        return emit("no stored schedules (`scheduler schedule create --help`)\n");
    }
    let zone = &cx.zone;
    let rows: Vec<Vec<String>> = schedules
        .iter()
        .map(|s| {
            let d = &s.definition;
            vec![
                escape(&s.name),
                escape(&d.kind),
                format!("v{}", s.version),
                words(&d.schedule),
                cut(&scopes_words(&d.scopes), TABLE_SCOPES_CHARS),
                if d.paused { "yes" } else { "-" }.to_owned(),
                zone.ts(Some(s.updated_at)),
                replicas_cell(&with_kind(&replicas, &d.kind, now), &d.kind),
            ]
        })
        .collect();
    let updated = format!("updated {}", zone.label());
    emit(&table(
        &[
            "name", "kind", "version", "schedule", "scopes", "paused", &updated, "replicas",
        ],
        &rows,
    ))
}
