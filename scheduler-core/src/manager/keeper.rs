//! Keeping leases alive: one [`LeaseKeeper`] per won lease, heartbeaten
//! by one task per claimed batch while any of the batch's runs last.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::{join_all, BoxFuture};
use futures::FutureExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn, Instrument};

use crate::error::StoreError;
use crate::job::Heartbeat;
use crate::model::Lease;
use crate::store::LeaseStore;

/// Keeps one lease alive and remembers how long it is surely ours.
pub(super) struct LeaseKeeper {
    pub(super) store: Arc<dyn LeaseStore>,
    pub(super) lease: Arc<Lease>,
    pub(super) stale_timeout: Duration,
    /// Until when (process time) no other replica can have taken the lease:
    /// the last successful claim or heartbeat plus `stale_timeout`.
    pub(super) safe_until: Mutex<Instant>,
    /// Fired when a heartbeat finds the lease gone.
    pub(super) lost: CancellationToken,
    /// Set once the run's terminal write is done: no more heartbeats.
    pub(super) done: AtomicBool,
    /// The execution's span, for the heartbeat loop's log lines.
    pub(super) span: tracing::Span,
}

impl LeaseKeeper {
    pub(super) async fn beat(&self) -> Result<(), StoreError> {
        let sent = Instant::now();
        match self.store.heartbeat(&self.lease, self.stale_timeout).await {
            Ok(_) => {
                *self.safe_until.lock().expect("keeper lock") = sent + self.stale_timeout;
                Ok(())
            }
            Err(e) => {
                if matches!(e, StoreError::LeaseLost { .. }) {
                    self.lost.cancel();
                }
                Err(e)
            }
        }
    }

    pub(super) fn safe_until(&self) -> Instant {
        *self.safe_until.lock().expect("keeper lock")
    }

    /// Heartbeats `keepers` every `interval`, skipping leases that are done
    /// or lost, for as long as their runs last (the caller aborts it when
    /// they are over). One loop per claimed batch rather than a task per
    /// lease or per scope: a batch of thousands costs one task and one
    /// timer. A round's heartbeats are sent concurrently, as separate
    /// tasks' would be: a slow store call holds up no other lease's beat
    /// (the store's connection pool bounds how many are in flight).
    ///
    /// A round that starts a whole interval late is counted in `late` and
    /// logged: the runtime did not run this task in time (a handler
    /// blocking its thread, most often on a current-thread runtime, where
    /// nothing else can run) or the previous round's calls were slow. A
    /// lease whose safe window passed meanwhile may have been taken over
    /// unnoticed; the round's heartbeat settles it (a taken-over lease
    /// answers `LeaseLost`, which cancels the run, and the run's terminal
    /// write is refused by the fence in any case).
    pub(super) async fn keep_alive(
        keepers: &[Arc<LeaseKeeper>],
        interval: Duration,
        late: &::metrics::Counter,
    ) -> std::convert::Infallible {
        let mut ticker = tokio::time::interval_at(Instant::now() + interval, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let due = ticker.tick().await;
            let delay = due.elapsed();
            if delay >= interval {
                late.increment(1);
                warn!(
                    delay = ?delay,
                    "heartbeats ran late: the runtime was starved (a handler blocking its thread?) or the store was slow"
                );
            }
            let live = keepers
                .iter()
                .filter(|k| !k.done.load(Ordering::Acquire) && !k.lost.is_cancelled());
            join_all(live.map(|keeper| keeper.keep_once())).await;
        }
    }

    /// One heartbeat of a live lease, logged in the execution's span.
    async fn keep_once(&self) {
        let span = self.span.clone();
        if Instant::now() >= self.safe_until() {
            span.in_scope(|| {
                warn!("the lease may have lapsed while heartbeats were late; confirming it")
            });
        }
        match self.beat().instrument(span.clone()).await {
            Ok(()) => span.in_scope(|| debug!("heartbeat")),
            Err(StoreError::LeaseLost { .. }) => span.in_scope(|| {
                warn!("lease lost: another runner took it over or swept it; cancelling the run")
            }),
            Err(e) => span.in_scope(|| warn!(error = %e, "heartbeat failed; will retry")),
        }
    }
}

impl Heartbeat for LeaseKeeper {
    fn beat(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        LeaseKeeper::beat(self).boxed()
    }
}

/// A spawned task that is aborted when this handle is dropped, so it never
/// outlives the future that owns it (a dropped `run` must not leave
/// heartbeats keeping its leases alive).
pub(super) struct AbortOnDrop<T>(pub(super) tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manager::fake_store::{lease, FakeStore};

    const STALE_TIMEOUT: Duration = Duration::from_secs(60);

    fn keeper(store: &Arc<FakeStore>) -> Arc<LeaseKeeper> {
        Arc::new(LeaseKeeper {
            store: store.clone(),
            lease: Arc::new(lease()),
            stale_timeout: STALE_TIMEOUT,
            safe_until: Mutex::new(Instant::now() + STALE_TIMEOUT),
            lost: CancellationToken::new(),
            done: AtomicBool::new(false),
            span: tracing::Span::none(),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_heartbeat_moves_the_safe_window_to_its_send_time_plus_stale_timeout() {
        let store = Arc::new(FakeStore::default());
        let keeper = keeper(&store);
        tokio::time::advance(Duration::from_secs(45)).await;
        let sent = Instant::now();
        keeper.beat().await.expect("the lease is live");
        assert_eq!(keeper.safe_until(), sent + STALE_TIMEOUT);
        assert!(!keeper.lost.is_cancelled());
    }

    #[tokio::test(start_paused = true)]
    async fn only_a_lost_lease_cancels_the_run_and_no_failure_extends_the_window() {
        let store = Arc::new(FakeStore::default());
        let keeper = keeper(&store);
        let before = keeper.safe_until();
        tokio::time::advance(Duration::from_secs(10)).await;
        store.down.store(true, Ordering::SeqCst);
        assert!(matches!(
            keeper.beat().await,
            Err(StoreError::Backend { .. })
        ));
        assert!(!keeper.lost.is_cancelled(), "an outage is not a lost lease");
        store.down.store(false, Ordering::SeqCst);
        store.lost.lock().unwrap().insert(keeper.lease.token);
        assert!(matches!(
            keeper.beat().await,
            Err(StoreError::LeaseLost { .. })
        ));
        assert!(keeper.lost.is_cancelled());
        assert_eq!(keeper.safe_until(), before);
    }

    #[tokio::test(start_paused = true)]
    async fn keep_alive_beats_each_interval_and_skips_done_and_lost_leases() {
        let store = Arc::new(FakeStore::default());
        let (live, done, lost) = (keeper(&store), keeper(&store), keeper(&store));
        done.done.store(true, Ordering::Release);
        lost.lost.cancel();
        let interval = Duration::from_secs(10);
        let keepers = [live.clone(), done, lost];
        let late = ::metrics::Counter::noop();
        // Three rounds (at 10, 20 and 30 s), then the caller stops it.
        let rounds = LeaseKeeper::keep_alive(&keepers, interval, &late);
        let stopped = tokio::time::timeout(interval * 3 + interval / 2, rounds).await;
        assert!(stopped.is_err(), "keep_alive runs until it is stopped");
        assert_eq!(*store.heartbeats.lock().unwrap(), vec![live.lease.id; 3]);
    }
}
