//! Child processes for the tests that need several OS processes on one
//! file: the child is the test binary itself, run again with one test
//! selected and an environment variable naming its role (so no helper
//! binary has to be built).
#![allow(dead_code)] // each test binary uses its own part of this module

use std::path::{Path, PathBuf};
use std::process::Command;

/// A child process running this binary's test `name` in role `role`, on
/// the database file `db`.
pub fn child(name: &str, role: &str, db: &Path) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary"));
    cmd.args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(role, db);
    cmd
}

/// In a child started for `role`, the database file it was given; in the
/// parent, `None`.
pub fn role(role: &str) -> Option<PathBuf> {
    std::env::var_os(role).map(PathBuf::from)
}

/// A fresh directory (removed when dropped) and a database file `name` in it.
pub fn temp_db(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = dir.path().join(name);
    (dir, db)
}
