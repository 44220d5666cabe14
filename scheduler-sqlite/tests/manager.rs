//! The manager on SQLite when the database is unavailable as it starts:
//! another program holds the file's write lock.

use std::sync::Arc;
use std::time::Duration;

use scheduler_sqlite::SqliteStoreOptions;

#[tokio::test]
async fn a_manager_started_while_the_file_is_locked_retries_and_runs_once_it_is_free() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locked-at-start.db");
    let store = SqliteStoreOptions::new(&path)
        .busy_timeout(Duration::from_millis(20))
        .max_lock_wait(Duration::from_millis(100))
        .open()
        .await
        .unwrap();
    let other = rusqlite::Connection::open(&path).unwrap();
    other
        .execute_batch("BEGIN EXCLUSIVE; UPDATE sys_cron_executions SET runner_id = 'other';")
        .unwrap();
    scheduler_conformance::manager_rides_out_a_store_down_at_start(Arc::new(store), async move {
        other.execute_batch("ROLLBACK").unwrap();
    })
    .await;
}
