//! The chaos run (`src/bin/chaos.rs`), short: 12 s on PostgreSQL and 10 s on
//! one SQLite file, each with 3 replica processes; with
//! `SCHEDULER_LONG_TESTS=1` (CI sets it) 30 s and 15 s. The short runs keep
//! a newcomer's `cargo test --workspace` quick and still kill replicas (and,
//! on PostgreSQL, a connection).
//! The binary checks its own invariants and exits non-zero on a violation;
//! these tests also read its figures, so a run that passed without checking
//! anything (nothing due, nothing killed) fails too.
//!
//! The PostgreSQL run reads `DATABASE_URL`; without it the test prints a
//! loud `SKIPPED` line and passes, unless `SCHEDULER_REQUIRE_POSTGRES=1`.
//! The two runs take turns: each wants the machine's cores to itself, since
//! a starved replica misses its heartbeats.

use std::io::Write;
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The run's length: `long` when `SCHEDULER_LONG_TESTS=1`, else `short`.
fn duration(short: &'static str, long: &'static str) -> &'static str {
    if std::env::var("SCHEDULER_LONG_TESTS").as_deref() == Ok("1") {
        long
    } else {
        short
    }
}

/// Runs the chaos binary with `args`; its stdout, after asserting that it
/// exited successfully. `name` stands for the run in messages (the
/// arguments may hold a password).
fn chaos(name: &str, args: &[&str]) -> String {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_chaos"))
        .args(args)
        .output()
        .expect("run the chaos binary");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("chaos on {name} ({:.1?}):\n{stdout}", started.elapsed());
    assert!(
        out.status.success(),
        "the chaos run failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    stdout
}

/// The figure printed after `label` (the rest of its line, trimmed).
fn figure<'a>(stdout: &'a str, label: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(label))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{stdout}"))
}

fn number(stdout: &str, label: &str) -> u64 {
    let value = figure(stdout, label);
    value
        .parse()
        .unwrap_or_else(|_| panic!("{label:?} is {value:?}, not a number:\n{stdout}"))
}

/// The checks common to both backends.
fn assert_clean(stdout: &str) {
    for label in [
        "lost plans (must be 0)",
        "duplicate non-reentrant effects (0)",
        "successes without their effect (0)",
        "failed, attempts used up (0)",
    ] {
        assert_eq!(number(stdout, label), 0, "{label}:\n{stdout}");
    }
    assert!(number(stdout, "plans due") > 0, "{stdout}");
    assert!(number(stdout, "executed (SUCCESS rows)") > 0, "{stdout}");
    assert!(number(stdout, "replica kills (SIGKILL)") > 0, "{stdout}");
}

#[test]
fn chaos_on_postgres() {
    let url = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            assert!(
                std::env::var("SCHEDULER_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "SCHEDULER_REQUIRE_POSTGRES=1 but DATABASE_URL is not set: the chaos run cannot run"
            );
            // Straight to the process's stderr: libtest captures eprintln!
            // of passing tests, and a skip must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: DATABASE_URL not set: the PostgreSQL chaos run did not run"
            );
            return;
        }
    };
    let stdout = chaos(
        "PostgreSQL",
        &[
            "--database",
            &url,
            "--replicas",
            "3",
            "--duration",
            duration("12s", "30s"),
        ],
    );
    assert_clean(&stdout);
    let conn_kills = number(&stdout, "connection kills");
    assert!(conn_kills > 0, "{stdout}");
    assert_eq!(
        number(&stdout, "reconnects (resumed after a kill)"),
        conn_kills,
        "{stdout}"
    );
}

#[test]
fn chaos_on_one_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite:{}", dir.path().join("chaos.db").display());
    let stdout = chaos(
        "SQLite",
        &[
            "--database",
            &database,
            "--replicas",
            "3",
            "--duration",
            duration("10s", "15s"),
        ],
    );
    assert_clean(&stdout);
    assert!(
        figure(&stdout, "connection kills").starts_with("n/a"),
        "{stdout}"
    );
}
