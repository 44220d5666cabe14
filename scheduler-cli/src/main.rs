//! `scheduler`: a demo that shows the guarantees, and the operator's tool.
//!
//! Every subcommand takes `--database URL` (env `SCHEDULER_DATABASE_URL`):
//! `sqlite:PATH` (the default, `sqlite:scheduler.db`) or `postgres://...`;
//! the demo also takes `memory:` and `sqlite::memory:`. `--json` prints one
//! JSON document for scripts. Exit codes: 0 success, 1 runtime error (or a
//! failed demo check), 2 usage error. Passwords in URLs are never printed.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::layer::{Layer as _, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

mod backend;
mod commands;
mod demo;
mod output;

use output::{emit, emit_json, Failure, Zone};

/// The database when neither `--database` nor `SCHEDULER_DATABASE_URL` says.
const DEFAULT_DATABASE: &str = "sqlite:scheduler.db";

/// Distributed periodic jobs coordinated by a database: demo and operator tool.
#[derive(Debug, Parser)]
#[command(name = "scheduler", version, about)]
struct Cli {
    /// The store: sqlite:PATH or postgres://USER@HOST/DB for every command;
    /// the demo also takes memory: and sqlite::memory: (nothing kept).
    /// Default: sqlite:scheduler.db.
    #[arg(
        long,
        env = "SCHEDULER_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    database: Option<String>,

    /// Print one JSON document instead of a table.
    #[arg(long, global = true)]
    json: bool,

    /// Show instants in the local time zone (TZ, else the system's)
    /// instead of UTC; every column of instants says which.
    #[arg(long, global = true)]
    local_time: bool,

    /// The format of log lines on stderr (their level is set by
    /// SCHEDULER_LOG, e.g. info or scheduler_core=debug).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per event, for log collectors.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run N replicas in this process on one store with example jobs, show
    /// every execution event, then check the table: nothing ran twice,
    /// nothing is left RUNNING. Takes any --database, memory: included.
    Demo {
        /// How many replicas (managers) to run.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=64))]
        replicas: u16,
        /// How long to run, e.g. 20s or 1m. A run that ends before the
        /// crashed replica's lease is taken over (about 5s in) goes on,
        /// a few seconds at most, until it is, so the check can hold.
        #[arg(long, default_value = "20s", value_parser = parse_duration)]
        duration: Duration,
    },
    /// Create or upgrade the schema (idempotent). sqlite:PATH or postgres://.
    Migrate,
    /// Every registered job (from the live replicas' announcements: its
    /// schedule in words and next plan time, even before its first run),
    /// whether it is paused, its pending triggers and backfills' progress,
    /// and per job and scope: latest plan, last success, running, stale,
    /// retries pending, exhausted, operator-bound and skipped rows (with
    /// --every or --cron: plans with no execution, missed or held back by
    /// a pause). sqlite:PATH or postgres://.
    Status(commands::status::StatusArgs),
    /// The replicas that announced themselves: live (seen within 3 refresh
    /// intervals), vanished (silent longer, never stopped cleanly) and
    /// stopped, with host, pid, version, start, last sight and jobs.
    /// sqlite:PATH or postgres://.
    Replicas,
    /// Executions of a job, newest first (--attempts: one line per
    /// attempt). sqlite:PATH or postgres://.
    History(commands::history::HistoryArgs),
    /// One execution: every field, and each of its attempts. sqlite:PATH or
    /// postgres://.
    Show {
        /// The execution id.
        #[arg(value_parser = parse_uuid)]
        id: uuid::Uuid,
    },
    /// Make a FAILED execution run once more on the next tick of a replica
    /// that runs its job, whatever the job's catch-up rules (granting one
    /// more attempt when none is left). sqlite:PATH or postgres://.
    Retry {
        /// The execution id.
        #[arg(value_parser = parse_uuid)]
        id: uuid::Uuid,
    },
    /// Delete terminal executions finished before a cutoff, in bounded
    /// batches. sqlite:PATH or postgres://.
    Prune(commands::prune::PruneArgs),
    /// Pause a job (or one scope): no replica starts a new run of it until
    /// `resume` (or --until). A job no live replica runs yet is paused with
    /// a warning. sqlite:PATH or postgres://.
    Pause(commands::pause::PauseArgs),
    /// End the pause of a job (or of exactly that scope). sqlite:PATH or
    /// postgres://.
    Resume(commands::resume::ResumeArgs),
    /// Run a job (every scope, or one) once now, outside its schedule, on
    /// the next tick of a live replica. sqlite:PATH or postgres://.
    Trigger(commands::trigger::TriggerArgs),
    /// Run every planned instant of a job in [--from, --to), both in the
    /// past, oldest first; instants that already succeeded do not run
    /// again. sqlite:PATH or postgres://.
    Backfill(commands::backfill::BackfillArgs),
    /// End an active control (pause, trigger, backfill) by its id.
    /// sqlite:PATH or postgres://.
    Cancel(commands::cancel::CancelArgs),
    /// The controls in force, with the progress of triggers and backfills
    /// (--all: also those ended in the last 7 days). sqlite:PATH or
    /// postgres://.
    Controls(commands::controls::ControlsArgs),
    /// Stored schedules: created, changed and removed at run time, run by
    /// every replica whose code registered their kind (create, update,
    /// delete, show, list). sqlite:PATH or postgres://.
    #[command(subcommand)]
    Schedule(commands::schedule::ScheduleCommand),
    /// The operator's dashboard over HTTP until SIGINT or SIGTERM: every
    /// job, scope and execution, live; with a token (--token-file or
    /// SCHEDULER_WEB_TOKEN) sign-in and actions; /metrics and /healthz.
    /// Without a token it is read-only and listens on loopback only.
    /// sqlite:PATH or postgres://.
    Serve(commands::serve::ServeArgs),
}

/// Parses `20s`, `5m`, `1h 30m`, `2days`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("invalid duration {s:?}: {e} (examples: 20s, 5m, 2h, 7days)"))
}

fn parse_uuid(s: &str) -> Result<uuid::Uuid, String> {
    uuid::Uuid::parse_str(s).map_err(|e| format!("invalid execution id {s:?}: {e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run_cli(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {failure}");
            failure.exit_code()
        }
    }
}

/// The database URL to use, and a note when the default was picked while
/// `DATABASE_URL` is set: that variable is the test suite's, not read here,
/// and an operator who set it meant something.
fn database(cli: &Cli) -> (String, Option<String>) {
    match &cli.database {
        Some(url) => (url.clone(), None),
        None => {
            let note = std::env::var_os("DATABASE_URL").map(|_| {
                format!(
                    "note: using the default database {DEFAULT_DATABASE}; DATABASE_URL is set but \
                     not read: pass --database or set SCHEDULER_DATABASE_URL to use it"
                )
            });
            (DEFAULT_DATABASE.to_owned(), note)
        }
    }
}

fn run_cli(cli: Cli) -> Result<(), Failure> {
    let (raw, note) = database(&cli);
    if let Some(note) = note {
        eprintln!("{note}");
    }
    // Parsed here, not by clap: clap's message would repeat the raw value,
    // password included.
    let url = backend::DatabaseUrl::parse(&raw).map_err(Failure::Usage)?;
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Failure::Runtime(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(run(cli, url))
}

/// Log lines on stderr, in the requested format, at the level SCHEDULER_LOG
/// says (`default` when it is unset), beside any `extra` layer.
fn init_logging<L>(format: LogFormat, default: &str, extra: L)
where
    L: tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_from_env("SCHEDULER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let lines = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(extra)
        .with(lines)
        .init();
}

async fn run(cli: Cli, url: backend::DatabaseUrl) -> Result<(), Failure> {
    let zone = if cli.local_time {
        Zone::local()
    } else {
        Zone::Utc
    };
    match cli.command {
        Command::Demo { replicas, duration } => {
            let (progress, counts) = demo::ProgressLayer::new();
            let started = progress.started();
            // The manager's own log lines only on request (e.g.
            // SCHEDULER_LOG=info); the progress lines already tell the story.
            init_logging(cli.log_format, "off", progress);
            let store = backend::open(&url, true).await?;
            eprintln!(
                "demo: {replicas} replicas on {} for {}; one line per execution event, times {}\n",
                url.redacted(),
                humantime::format_duration(duration),
                zone.label()
            );
            eprintln!(
                "{:>7}  {:<10} {:<15} {:<16} {:<8} {:<3} outcome",
                "time", "replica", "job", "scope", "plan", "try"
            );
            let report = demo::run(store, replicas.into(), duration, counts, started).await;
            if cli.json {
                emit_json(&report.json)?;
            } else {
                emit(&report.text)?;
            }
            if report.ok {
                Ok(())
            } else {
                Err(Failure::Runtime("the demo's check failed".to_owned()))
            }
        }
        command => {
            init_logging(
                cli.log_format,
                "warn",
                tracing_subscriber::layer::Identity::new(),
            );
            match command {
                Command::Demo { .. } => unreachable!("handled above"),
                Command::Migrate => {
                    backend::migrate(&url).await?;
                    if cli.json {
                        emit_json(
                            &serde_json::json!({ "database": url.redacted(), "migrated": true }),
                        )
                    } else {
                        emit(&format!("{}: schema is up to date\n", url.redacted()))
                    }
                }
                command => {
                    let cx = commands::Cx {
                        url,
                        json: cli.json,
                        zone,
                    };
                    match command {
                        Command::Status(args) => commands::status::status(&cx, args).await,
                        Command::Replicas => commands::replicas::replicas(&cx).await,
                        Command::History(args) => commands::history::history(&cx, args).await,
                        Command::Show { id } => commands::show::show(&cx, id).await,
                        Command::Retry { id } => commands::retry::retry(&cx, id).await,
                        Command::Prune(args) => commands::prune::prune(&cx, args).await,
                        Command::Pause(args) => commands::pause::pause(&cx, args).await,
                        Command::Resume(args) => commands::resume::resume(&cx, args).await,
                        Command::Trigger(args) => commands::trigger::trigger(&cx, args).await,
                        Command::Backfill(args) => commands::backfill::backfill(&cx, args).await,
                        Command::Cancel(args) => commands::cancel::cancel(&cx, args).await,
                        Command::Controls(args) => commands::controls::controls(&cx, args).await,
                        Command::Schedule(command) => {
                            commands::schedule::schedule(&cx, command).await
                        }
                        Command::Serve(args) => commands::serve::serve(&cx, args).await,
                        Command::Demo { .. } | Command::Migrate => unreachable!("handled above"),
                    }
                }
            }
        }
    }
}
