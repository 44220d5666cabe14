//! Bad input gets a clear error, at open or at the call, and loses nothing:
//! a file that is not a database, a truncated or corrupt file, a missing or
//! read-only directory, a write-protected file, a file another program keeps
//! locked, a schema from the future, and URLs of the wrong form.

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use scheduler_core::{
    ClaimOutcome, ClaimRequest, ExecutionAudit, ExecutionFilter, Finish, LeaseStore, LeaseStoreExt,
    PlanKey, Scope, StoreError,
};
use scheduler_sqlite::{SqliteLeaseStore, SqliteStoreOptions, SCHEMA_VERSION};

fn request<'a>(job: &'a str, keys: &'a [PlanKey]) -> ClaimRequest<'a> {
    ClaimRequest {
        finishing: &[],
        steering: scheduler_core::model::Steering::NONE,
        job_name: job,
        runner_id: "r1",
        max_attempts: 3,
        stale_timeout: Duration::from_secs(60),
        allow_stale_reentry: false,
        keys,
    }
}

async fn keys(store: &SqliteLeaseStore, n: usize) -> Vec<PlanKey> {
    let plan_time = store.now().await.unwrap();
    (0..n)
        .map(|i| PlanKey {
            // long scope ids spread the rows over many pages
            scope: Scope::new("tenant", format!("{i:05}-{}", "x".repeat(200))),
            plan_time,
        })
        .collect()
}

/// A database file with `n` claimed rows, closed (so its WAL is checkpointed
/// into the file and removed).
async fn filled(path: &Path, n: usize) {
    let store = SqliteLeaseStore::open(path).await.unwrap();
    let keys = keys(&store, n).await;
    store.claim(&request("fill", &keys)).await.unwrap();
}

/// The message of a backend error, or a panic naming what came instead.
fn backend_message<T: std::fmt::Debug>(result: Result<T, StoreError>) -> String {
    match result {
        Err(StoreError::Backend { message, .. }) => {
            assert_eq!(message, message.to_string(), "plain text");
            message
        }
        other => panic!("expected a backend error, got {other:?}"),
    }
}

fn assert_mentions(message: &str, needles: &[&str]) {
    for needle in needles {
        assert!(
            message.contains(needle),
            "{message:?} should mention {needle:?}"
        );
    }
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused_at_open_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    let text = "these are someone's notes, not a database\n".repeat(100);
    fs::write(&path, &text).unwrap();
    let message = backend_message(SqliteLeaseStore::open(&path).await);
    assert_mentions(&message, &["notes.db", "not a sqlite database"]);
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        text,
        "the file is untouched"
    );
}

#[tokio::test]
async fn truncated_and_corrupt_files_are_refused_at_open_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    // each damages the file, given its length
    type Damage = fn(&mut fs::File, u64);
    let damage: [(&str, Damage); 4] = [
        ("half", |f, len| f.set_len(len / 2).unwrap()),
        ("one_page", |f, _| f.set_len(4096).unwrap()),
        ("torn_header", |f, _| f.set_len(60).unwrap()),
        ("garbage_schema", |f, _| {
            f.seek(SeekFrom::Start(4096)).unwrap();
            f.write_all(&[0xAB; 4096 * 20]).unwrap();
        }),
    ];
    for (name, damage) in damage {
        let path = dir.path().join(format!("{name}.db"));
        filled(&path, 2000).await;
        let len = fs::metadata(&path).unwrap().len();
        damage(
            &mut fs::OpenOptions::new().write(true).open(&path).unwrap(),
            len,
        );
        let before = fs::read(&path).unwrap();
        let message = backend_message(SqliteLeaseStore::open(&path).await);
        assert_mentions(&message, &[name, "corrupt or truncated"]);
        assert!(
            fs::read(&path).unwrap() == before,
            "{name}: the file is untouched"
        );
    }
}

#[tokio::test]
async fn corruption_past_the_schema_is_an_error_at_the_call_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rotten.db");
    filled(&path, 2000).await;
    {
        let mut f = fs::OpenOptions::new().write(true).open(&path).unwrap();
        let len = f.metadata().unwrap().len();
        f.seek(SeekFrom::Start(len - 4096 * 40)).unwrap();
        f.write_all(&[0xAB; 4096 * 20]).unwrap();
    }
    let store = SqliteLeaseStore::open(&path)
        .await
        .expect("the schema pages are intact");
    let all = ExecutionFilter::default();
    let message = backend_message(store.list_executions(&all).await);
    assert_mentions(
        &message,
        &["rotten.db", "corrupt or truncated", "malformed"],
    );
    let keys = keys(&store, 1).await;
    let message = backend_message(store.claim(&request("after", &keys)).await);
    assert_mentions(&message, &["corrupt or truncated"]);
    let only_new_job = ExecutionFilter {
        job_name: Some("after".into()),
        ..Default::default()
    };
    assert!(
        store
            .list_executions(&only_new_job)
            .await
            .unwrap()
            .is_empty(),
        "the failed claim left no row"
    );
}

#[tokio::test]
async fn a_missing_directory_or_a_directory_path_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir/jobs.db");
    let message = backend_message(SqliteLeaseStore::open(&missing).await);
    assert_mentions(&message, &["directory", "no/such/dir", "does not exist"]);
    assert!(!dir.path().join("no").exists(), "no directory was created");

    let message = backend_message(SqliteLeaseStore::open(dir.path()).await);
    assert_mentions(&message, &["is a directory"]);

    let absent = dir.path().join("absent.db");
    let message = backend_message(
        SqliteStoreOptions::new(&absent)
            .create_if_missing(false)
            .open()
            .await,
    );
    assert_mentions(&message, &["does not exist", "create_if_missing"]);
    assert!(!absent.exists());
}

const READ_ONLY_FIXTURE: &str = "SCHEDULER_SQLITE_READ_ONLY_FIXTURE";

/// Whether this process bypasses file permissions (root does).
fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// A read-only directory holding a database, and a write-protected database
/// file in a writable directory.
async fn read_only_fixture(base: &Path) {
    fs::set_permissions(base, fs::Permissions::from_mode(0o755)).unwrap();
    let ro = base.join("ro");
    fs::create_dir(&ro).unwrap();
    filled(&ro.join("existing.db"), 3).await;
    fs::set_permissions(ro.join("existing.db"), fs::Permissions::from_mode(0o666)).unwrap();
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
    let rw = base.join("rw");
    fs::create_dir(&rw).unwrap();
    filled(&rw.join("protected.db"), 3).await;
    fs::set_permissions(rw.join("protected.db"), fs::Permissions::from_mode(0o444)).unwrap();
    fs::set_permissions(&rw, fs::Permissions::from_mode(0o777)).unwrap();
}

async fn read_only_checks(base: &Path) {
    let ro = base.join("ro");
    let message = backend_message(SqliteLeaseStore::open(ro.join("new.db")).await);
    assert_mentions(&message, &["new.db", "cannot open", "writable"]);
    assert!(!ro.join("new.db").exists());

    let existing = ro.join("existing.db");
    let before = fs::read(&existing).unwrap();
    let message = backend_message(SqliteLeaseStore::open(&existing).await);
    assert_mentions(&message, &["existing.db", "read-only"]);
    assert!(
        fs::read(&existing).unwrap() == before,
        "the file is untouched"
    );

    let protected = base.join("rw/protected.db");
    let before = fs::read(&protected).unwrap();
    let message = backend_message(SqliteLeaseStore::open(&protected).await);
    assert_mentions(&message, &["protected.db", "read-only"]);
    assert!(
        fs::read(&protected).unwrap() == before,
        "the file is untouched"
    );
}

/// Root ignores permissions, so as root the checks run in a copy of this
/// test binary executed as `nobody`, on a fixture root prepared.
#[tokio::test]
async fn a_read_only_directory_or_file_is_refused_at_open() {
    if let Some(base) = std::env::var_os(READ_ONLY_FIXTURE) {
        read_only_checks(Path::new(&base)).await;
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    read_only_fixture(dir.path()).await;
    if !is_root() {
        read_only_checks(dir.path()).await;
        return;
    }
    // A copy of this binary beside the fixture, since `nobody` may not be
    // allowed into the build directory.
    let exe = dir.path().join("bad_input_as_nobody");
    fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new(&exe)
        .args([
            "--exact",
            "a_read_only_directory_or_file_is_refused_at_open",
            "--nocapture",
        ])
        .env(READ_ONLY_FIXTURE, dir.path())
        .current_dir(dir.path())
        .uid(65534)
        .gid(65534)
        .output()
        .expect("the test binary runs as nobody");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the checks failed as nobody: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn quick_locks(path: &Path) -> SqliteStoreOptions {
    SqliteStoreOptions::new(path)
        .busy_timeout(Duration::from_millis(20))
        .max_lock_wait(Duration::from_millis(200))
}

#[tokio::test]
async fn a_file_locked_by_another_program_fails_the_call_after_the_wait_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locked.db");
    let store = quick_locks(&path).open().await.unwrap();
    let keys = keys(&store, 2).await;
    let ClaimOutcome::Won(lease) = store
        .claim(&request("locked", &keys[..1]))
        .await
        .unwrap()
        .remove(0)
    else {
        panic!("a fresh key is won");
    };

    let other = rusqlite::Connection::open(&path).unwrap();
    other
        .execute_batch("BEGIN EXCLUSIVE; UPDATE sys_cron_executions SET runner_id = 'other';")
        .unwrap();
    let message = backend_message(store.claim(&request("locked", &keys[1..])).await);
    assert_mentions(&message, &["locked.db", "database is locked", "gave up"]);
    let message = backend_message(store.heartbeat(&lease, Duration::from_secs(60)).await);
    assert_mentions(&message, &["database is locked"]);
    let ok = Finish::success(Duration::ZERO, 1, Default::default());
    backend_message(store.finish(&lease, &ok).await);
    // WAL readers are not blocked by the writer, and see none of its work
    let rows = store
        .list_executions(&ExecutionFilter::default())
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].runner_id.as_deref(), Some("r1"));

    other.execute_batch("ROLLBACK").unwrap();
    assert!(matches!(
        store.claim(&request("locked", &keys[1..])).await.unwrap()[..],
        [ClaimOutcome::Won(_)]
    ));
    store
        .finish(&lease, &ok)
        .await
        .expect("the lease survived the wait");
    assert_eq!(
        store
            .list_executions(&ExecutionFilter::default())
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn a_file_locked_by_another_program_fails_the_open_after_the_wait() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let other = rusqlite::Connection::open(&path).unwrap();
    // a rollback-journal database whose exclusive lock keeps even readers out
    other
        .execute_batch(
            "PRAGMA journal_mode = DELETE; CREATE TABLE app (x INTEGER);
             BEGIN EXCLUSIVE; INSERT INTO app VALUES (1);",
        )
        .unwrap();
    let message = backend_message(quick_locks(&path).open().await);
    assert_mentions(&message, &["app.db", "database is locked"]);

    other.execute_batch("COMMIT").unwrap();
    let store = quick_locks(&path)
        .open()
        .await
        .expect("opens once the lock is gone");
    assert!(store
        .list_executions(&ExecutionFilter::default())
        .await
        .unwrap()
        .is_empty());
    let app_rows: i64 = other
        .query_row("SELECT count(*) FROM app", [], |r| r.get(0))
        .unwrap();
    assert_eq!(app_rows, 1, "the application's own table is untouched");
}

#[tokio::test]
async fn a_schema_from_a_newer_version_is_refused_and_migrate_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    {
        let store = SqliteLeaseStore::open(&path).await.unwrap();
        store.migrate().await.unwrap();
        store.migrate().await.unwrap();
    }
    let raw = rusqlite::Connection::open(&path).unwrap();
    let versions: Vec<i64> = raw
        .prepare("SELECT version FROM sys_cron_schema_migrations ORDER BY version")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
    raw.execute(
        "INSERT INTO sys_cron_schema_migrations (version, description, applied_at) VALUES (?1, 'from the future', 0)",
        [SCHEMA_VERSION + 7],
    )
    .unwrap();
    match SqliteLeaseStore::open(&path).await {
        Err(StoreError::SchemaTooNew { found, known }) => {
            assert_eq!((found, known), (SCHEMA_VERSION + 7, SCHEMA_VERSION));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[tokio::test]
async fn urls_of_every_form_open_and_others_are_invalid_input() {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("url.db");
    for url in [
        format!("sqlite:{}", path.display()),
        format!("sqlite://{}", path.display()),
        "sqlite::memory:".to_owned(),
    ] {
        let store = SqliteLeaseStore::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let keys = keys(&store, 1).await;
        assert_eq!(store.claim(&request(&url, &keys)).await.unwrap().len(), 1);
    }
    assert!(path.exists());
    for url in ["postgres://u:secret@localhost/db", "mysql:x", "sqlite:", ""] {
        match SqliteLeaseStore::connect(url).await {
            Err(StoreError::InvalidInput(message)) => assert!(!message.contains("secret")),
            other => panic!("{url}: expected invalid input, got {other:?}"),
        }
    }
}
