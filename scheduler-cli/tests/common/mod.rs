//! What the tests of the `scheduler` binary share: running it, reading
//! its output, and a PostgreSQL database of their own.
#![allow(dead_code)] // each test binary uses its own part of this module

pub mod processes;

use std::process::Output;
use std::time::Duration;

use assert_cmd::Command;
use serde_json::Value;

/// The binary, on `database`, with `args`; its output.
pub fn scheduler(database: &str, args: &[&str]) -> Output {
    Command::cargo_bin("scheduler")
        .unwrap()
        .env_remove("SCHEDULER_DATABASE_URL")
        .arg("--database")
        .arg(database)
        .args(args)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap()
}

/// The one JSON document a successful run printed.
pub fn stdout_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON document on stdout")
}

/// What a run printed on stderr.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A PostgreSQL database a test created, dropped when the test ends
/// (passing or not).
pub struct TempDb {
    /// The server's URL as `DATABASE_URL` gave it.
    pub admin: String,
    /// The database's name.
    pub name: String,
    /// The database's URL.
    pub url: String,
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .args(["-X", "-q", "-d", &self.admin, "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .status();
    }
}

/// The test server's URL, or `None` (reported loudly) when `DATABASE_URL`
/// is unset and PostgreSQL is not required.
pub fn postgres_admin() -> Option<String> {
    let Ok(admin) = std::env::var("DATABASE_URL") else {
        skip("DATABASE_URL not set");
        return None;
    };
    Some(admin)
}

/// Says a PostgreSQL test did not run, and why; fails it instead when
/// `SCHEDULER_REQUIRE_POSTGRES=1`.
pub fn skip(why: &str) {
    assert!(
        std::env::var("SCHEDULER_REQUIRE_POSTGRES").as_deref() != Ok("1"),
        "SCHEDULER_REQUIRE_POSTGRES=1 but {why}"
    );
    eprintln!("SKIPPED: {why}: this PostgreSQL test did not run");
}

/// `admin`, the test server's URL, naming database `db` instead.
pub fn on_database(admin: &str, db: &str) -> String {
    let (base, _) = admin.rsplit_once('/').expect("a database in DATABASE_URL");
    format!("{base}/{db}")
}

/// One line of output of `sql` run by psql on `admin`.
pub fn psql(admin: &str, sql: &str) -> String {
    let out = std::process::Command::new("psql")
        .args(["-X", "-q", "-At", "-d", admin, "-c", sql])
        .output()
        .expect("psql runs");
    assert!(out.status.success(), "psql {sql}: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A fresh PostgreSQL database for one test, or `None` as
/// [`postgres_admin`] says.
pub fn postgres_db(name: &str) -> Option<TempDb> {
    let admin = postgres_admin()?;
    let db = format!("cli_{name}_{}", uuid::Uuid::new_v4().simple());
    psql(&admin, &format!("CREATE DATABASE {db}"));
    Some(TempDb {
        url: on_database(&admin, &db),
        admin,
        name: db,
    })
}
