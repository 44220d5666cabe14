//! One connection per dedicated thread, fed by a command channel (the model
//! sqlx uses for SQLite): rusqlite calls block, so they never run on the
//! async runtime's threads.

use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::thread;

use rusqlite::Connection;
use scheduler_core::StoreError;
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// A thread that owns one connection and runs the jobs sent to it, in order.
///
/// Dropping the worker closes its channel and joins the thread, so the
/// connection is closed (and the WAL checkpointed when it is the last one)
/// by the time the store is gone.
pub(crate) struct Worker {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Worker {
    /// Starts a thread named `name` that opens its connection with `open`;
    /// returns once the connection is open, or with the error that kept it
    /// from opening.
    pub(crate) async fn start<F>(name: &str, open: F) -> Result<Worker, StoreError>
    where
        F: FnOnce() -> Result<Connection, StoreError> + Send + 'static,
    {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (ready, opened) = oneshot::channel();
        let thread = thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let mut conn = match open() {
                    Ok(conn) => conn,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let _ = ready.send(Ok(()));
                for job in queue {
                    run(&mut conn, job);
                }
            })
            .map_err(|e| StoreError::Backend {
                message: format!("cannot start the sqlite worker thread: {e}"),
                source: Some(Box::new(e)),
            })?;
        let worker = Worker {
            jobs: Some(jobs),
            thread: Some(thread),
        };
        match opened.await {
            Ok(Ok(())) => Ok(worker),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(StoreError::backend_msg(
                "the sqlite worker thread panicked while opening the database",
            )),
        }
    }

    /// Runs `f` on the worker's connection and returns its answer.
    ///
    /// A panic inside `f` or a dead thread becomes [`StoreError::Backend`]:
    /// the reply channel is dropped unanswered, which the caller observes at
    /// once instead of waiting forever.
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = reply.send(f(conn));
        });
        self.jobs
            .as_ref()
            .and_then(|jobs| jobs.send(job).ok())
            .ok_or_else(|| StoreError::backend_msg("the sqlite worker thread has stopped"))?;
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::backend_msg(
                "the sqlite worker thread panicked while running a statement",
            ))
        })
    }
}

fn run(conn: &mut Connection, job: Job) {
    if panic::catch_unwind(AssertUnwindSafe(|| job(conn))).is_err() {
        // The panic dropped the job's reply sender, so its caller already
        // has an error. A transaction it interrupted must not stay open: it
        // would hold the write lock and block every other process.
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        tracing::error!("a sqlite worker job panicked; the connection stays in service");
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn memory_worker() -> Worker {
        Worker::start("test-worker", || {
            Connection::open_in_memory().map_err(StoreError::backend)
        })
        .await
        .expect("an in-memory connection opens")
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_and_the_worker_survives() {
        let worker = memory_worker().await;
        worker
            .call(|conn| {
                conn.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);")
                    .map_err(StoreError::backend)
            })
            .await
            .unwrap();
        let err = worker
            .call(|conn| -> Result<(), StoreError> {
                conn.execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (2);")
                    .unwrap();
                panic!("boom inside a transaction");
            })
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Backend { message, .. } if message.contains("panicked")),
            "{err:?}"
        );
        let rows: i64 = worker
            .call(|conn| {
                assert!(
                    conn.is_autocommit(),
                    "the interrupted transaction was rolled back"
                );
                conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                    .map_err(StoreError::backend)
            })
            .await
            .unwrap();
        assert_eq!(rows, 1, "the panicking job's insert was rolled back");
    }

    #[tokio::test]
    async fn a_panic_while_opening_is_an_error_not_a_hang() {
        let err = Worker::start("test-worker", || -> Result<Connection, StoreError> {
            panic!("cannot open")
        })
        .await
        .err()
        .expect("the start fails");
        assert!(matches!(err, StoreError::Backend { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn a_stopped_thread_is_an_error_not_a_hang() {
        // What callers see of a thread that is gone: nobody receives its queue.
        let (jobs, queue) = mpsc::channel::<Job>();
        drop(queue);
        let worker = Worker {
            jobs: Some(jobs),
            thread: None,
        };
        let err = worker.call(|_| Ok(())).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Backend { message, .. } if message.contains("stopped")),
            "{err:?}"
        );
    }
}
