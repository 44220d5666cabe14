//! Batched terminal writes: the [`Completer`].

use std::sync::{Arc, OnceLock};

use futures::stream::FuturesUnordered;
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};

use crate::error::StoreError;
use crate::model::{Finish, Lease};
use crate::store::LeaseStore;

/// One terminal write waiting for the completer, and where its result goes.
type Completion = (Arc<Lease>, Finish, oneshot::Sender<Result<(), StoreError>>);

/// The most terminal writes sent in one [`LeaseStore::finish_many`] call.
const MAX_FINISH_BATCH: usize = 1_000;

/// The most batches being stored at once (see [`Completer`]).
const MAX_BATCHES_IN_FLIGHT: usize = 2;

/// Writes terminal states in batches: group commit. Executions that end
/// while batches are being written queue up and go out together in the
/// next one, so a burst of completions costs a few statements, not one
/// each, and a lone completion is written at once (no batching window, no
/// added latency). Each execution still gets its own result (its lease is
/// guarded on its own token).
///
/// Up to [`MAX_BATCHES_IN_FLIGHT`] batches are stored at once: a batch
/// whose commit stalls (a slow fsync, a lock) does not hold up the writes
/// that end after it, and on PostgreSQL the next batch's statement runs
/// on another connection while the first commits (one replica's fan-out
/// of 10,000 scopes: 20.8–26.6k → 27.2–30.0k plans/s, five alternating
/// runs). Two, not more: more batches in flight cut a burst into smaller
/// ones (four were slower than two), and batches of different leases
/// never touch the same row, so their order does not matter.
pub(super) struct Completer {
    pub(super) store: Arc<dyn LeaseStore>,
    pub(super) queue: OnceLock<mpsc::UnboundedSender<Completion>>,
}

impl Completer {
    pub(super) async fn finish(
        &self,
        lease: &Arc<Lease>,
        finish: &Finish,
    ) -> Result<(), StoreError> {
        // Started on first use, so `Manager::new` needs no runtime; it ends
        // when the manager (the sender's owner) is dropped.
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(Self::run(self.store.clone(), rx));
            tx
        });
        let (reply, result) = oneshot::channel();
        queue
            .send((lease.clone(), finish.clone(), reply))
            .map_err(|_| StoreError::backend_msg("terminal-write queue closed"))?;
        result
            .await
            .unwrap_or_else(|_| Err(StoreError::backend_msg("terminal-write batch was dropped")))
    }

    async fn run(store: Arc<dyn LeaseStore>, mut queue: mpsc::UnboundedReceiver<Completion>) {
        let mut in_flight = FuturesUnordered::new();
        loop {
            tokio::select! {
                next = queue.recv(), if in_flight.len() < MAX_BATCHES_IN_FLIGHT => {
                    let Some(first) = next else { break };
                    let mut batch = vec![first];
                    while batch.len() < MAX_FINISH_BATCH {
                        match queue.try_recv() {
                            Ok(next) => batch.push(next),
                            Err(_) => break,
                        }
                    }
                    in_flight.push(Self::write(store.as_ref(), batch));
                }
                Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
            }
        }
        while in_flight.next().await.is_some() {}
    }

    /// Stores one batch and sends each write its result.
    async fn write(store: &dyn LeaseStore, batch: Vec<Completion>) {
        let items: Vec<(&Lease, &Finish)> = batch
            .iter()
            .map(|(lease, finish, _)| (lease.as_ref(), finish))
            .collect();
        let results = store.finish_many(&items).await;
        debug_assert_eq!(results.len(), batch.len(), "one result per terminal write");
        for ((_, _, reply), result) in batch.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::future::join_all;

    use super::*;
    use crate::manager::fake_store::{lease, FakeStore};

    fn success() -> Finish {
        Finish::success(Duration::ZERO, 0, Default::default())
    }

    /// Holds one completion in flight (a batch of one: a lone completion
    /// is written at once), queues `leases` behind it, then lets `batches`
    /// `finish_many` calls answer; the queued completions' results.
    async fn queue_behind_a_write(
        store: &Arc<FakeStore>,
        leases: &[Arc<Lease>],
        batches: usize,
    ) -> Vec<Result<(), StoreError>> {
        let completer = Arc::new(Completer {
            store: store.clone(),
            queue: OnceLock::new(),
        });
        let first = tokio::spawn({
            let completer = completer.clone();
            async move { completer.finish(&Arc::new(lease()), &success()).await }
        });
        store.writing.notified().await;
        let finish = success();
        let mut queued: Vec<_> = leases
            .iter()
            .map(|lease| Box::pin(completer.finish(lease, &finish)))
            .collect();
        for completion in &mut queued {
            // One poll sends it to the queue; its result waits for a batch.
            assert!(futures::poll!(completion.as_mut()).is_pending());
        }
        store.gate.as_ref().unwrap().add_permits(batches);
        assert!(first.await.unwrap().is_ok());
        join_all(queued).await
    }

    #[tokio::test]
    async fn completions_queued_during_a_write_go_out_together_each_with_its_result() {
        let store = Arc::new(FakeStore::gated());
        let leases: Vec<Arc<Lease>> = (0..4).map(|_| Arc::new(lease())).collect();
        store.lost.lock().unwrap().insert(leases[2].token);
        let results = queue_behind_a_write(&store, &leases, 2).await;
        assert_eq!(
            *store.batches.lock().unwrap(),
            vec![1, 4],
            "one call for the four"
        );
        assert!(results[0].is_ok() && results[1].is_ok() && results[3].is_ok());
        assert!(
            matches!(results[2], Err(StoreError::LeaseLost { id }) if id == leases[2].id),
            "{results:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_that_ends_behind_a_stalled_batch_is_stored_meanwhile() {
        let store = Arc::new(FakeStore::gated());
        let completer = Arc::new(Completer {
            store: store.clone(),
            queue: OnceLock::new(),
        });
        let finish = |completer: Arc<Completer>| {
            tokio::spawn(async move { completer.finish(&Arc::new(lease()), &success()).await })
        };
        let stalled = finish(completer.clone());
        store.writing.notified().await;
        let behind = finish(completer.clone());
        // Paused time runs ahead once nothing else can: the timeout fires
        // only if the second batch is not started while the first stalls.
        let started = tokio::time::timeout(Duration::from_secs(60), store.writing.notified()).await;
        assert!(started.is_ok(), "the second batch waited for the first");
        assert_eq!(*store.batches.lock().unwrap(), vec![1, 1]);
        store.gate.as_ref().unwrap().add_permits(2);
        assert!(stalled.await.unwrap().is_ok());
        assert!(behind.await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn a_batch_holds_at_most_max_finish_batch_writes() {
        let store = Arc::new(FakeStore::gated());
        let leases: Vec<Arc<Lease>> = (0..MAX_FINISH_BATCH + 2)
            .map(|_| Arc::new(lease()))
            .collect();
        let results = queue_behind_a_write(&store, &leases, 3).await;
        assert_eq!(*store.batches.lock().unwrap(), vec![1, MAX_FINISH_BATCH, 2]);
        assert!(results.iter().all(Result::is_ok));
    }
}
