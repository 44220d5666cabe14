//! `scheduler`: a demo that shows the guarantees, and the operator's tool.
//!
//! Every subcommand takes `--database URL` (env `SCHEDULER_DATABASE_URL`):
//! `sqlite:PATH` (the default, `sqlite:scheduler.db`), `postgres://...`, or
//! `memory:` where that makes sense. `--json` prints one JSON document for
//! scripts. Exit codes: 0 success, 1 runtime error (or a failed demo
//! check), 2 usage error. Passwords in URLs are never printed.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tracing_subscriber::layer::{Layer as _, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

mod backend;
mod commands;
mod demo;

/// Distributed periodic jobs coordinated by a database: demo and operator tool.
#[derive(Debug, Parser)]
#[command(name = "scheduler", version, about)]
struct Cli {
    /// The store: sqlite:PATH, sqlite::memory:, postgres://USER@HOST/DB, or memory:
    #[arg(
        long,
        env = "SCHEDULER_DATABASE_URL",
        default_value = "sqlite:scheduler.db",
        global = true,
        hide_env_values = true
    )]
    database: String,

    /// Print one JSON document instead of a table.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run N replicas in this process on one store with example jobs, show
    /// every execution event, then check the table: nothing ran twice,
    /// nothing is left RUNNING.
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
    /// Create or upgrade the schema (idempotent).
    Migrate,
    /// Per job and scope: latest plan, last success, running, stale, retries
    /// pending, exhausted and operator-bound rows.
    Status(commands::StatusArgs),
    /// Executions of a job, newest first.
    History(commands::HistoryArgs),
    /// Make a FAILED execution run once more on the next tick of a replica
    /// that runs its job, whatever the job's catch-up rules (granting one
    /// more attempt when none is left).
    Retry {
        /// The execution id.
        #[arg(value_parser = parse_uuid)]
        id: uuid::Uuid,
    },
    /// Delete terminal executions finished before a cutoff, in bounded batches.
    Prune(commands::PruneArgs),
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
    // Parsed here, not by clap: clap's message would repeat the raw value,
    // password included.
    let url = match backend::DatabaseUrl::parse(&cli.database) {
        Ok(url) => url,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli, url)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli, url: backend::DatabaseUrl) -> Result<ExitCode, String> {
    match cli.command {
        Command::Demo { replicas, duration } => {
            let (progress, counts) = demo::ProgressLayer::new();
            tracing_subscriber::registry()
                .with(progress)
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_writer(std::io::stderr)
                        // The manager's own log lines only on request
                        // (e.g. SCHEDULER_LOG=info); the progress lines
                        // above already tell the story.
                        .with_filter(
                            tracing_subscriber::EnvFilter::try_from_env("SCHEDULER_LOG")
                                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
                        ),
                )
                .init();
            let store = backend::open(&url, true).await?;
            eprintln!(
                "demo: {replicas} replicas on {} for {}; one line per execution event\n",
                url.redacted(),
                humantime::format_duration(duration)
            );
            eprintln!(
                "{:>7}  {:<10} {:<15} {:<16} {:<8} {:<3} outcome",
                "time", "replica", "job", "scope", "plan", "try"
            );
            let report = demo::run(store, replicas.into(), duration, counts).await;
            if cli.json {
                println!("{}", report.json);
            } else {
                print!("{}", report.text);
            }
            Ok(if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Migrate => {
            backend::migrate(&url).await?;
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({ "database": url.redacted(), "migrated": true })
                );
            } else {
                println!("{}: schema is up to date", url.redacted());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Status(args) => commands::status(&url, args, cli.json).await,
        Command::History(args) => commands::history(&url, args, cli.json).await,
        Command::Retry { id } => commands::retry(&url, id, cli.json).await,
        Command::Prune(args) => commands::prune(&url, args, cli.json).await,
    }
}
