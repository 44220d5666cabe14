//! Batched terminal writes: the [`Completer`].

use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot};

use crate::error::StoreError;
use crate::model::{Finish, Lease};
use crate::store::LeaseStore;

/// One terminal write waiting for the completer, and where its result goes.
type Completion = (Arc<Lease>, Finish, oneshot::Sender<Result<(), StoreError>>);

/// The most terminal writes sent in one [`LeaseStore::finish_many`] call.
const MAX_FINISH_BATCH: usize = 1_000;

/// Writes terminal states in batches: group commit. Executions that end
/// while the previous batch is being written queue up and go out together
/// in the next one, so a burst of completions costs a few statements, not
/// one each, and a lone completion is written at once (no batching
/// window, no added latency). Each execution still gets its own result
/// (its lease is guarded on its own token).
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
        while let Some(first) = queue.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_FINISH_BATCH {
                match queue.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
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
}
