//! This replica's entry in the replica registry (`docs/contract.md` §7,
//! "The replica registry"): announced at the first tick of a run, refreshed
//! at most once per [`refresh_interval`], announced again at the next tick
//! after a job is registered, and marked stopped when `run` stops cleanly.
//!
//! The announcement rides on the tick, after its store-time read, so it
//! costs one store call per manager and interval, never one per job: an
//! idle tick stays at two calls per job (a sweep and a retry read) plus
//! the tick's store-time read, its read of the jobs' controls and, at most
//! once an interval, this one.
//! Its timing uses tokio's clock like the loop's sleeps (so paused tests
//! drive it); whether a replica is live is judged in store time, from the
//! `last_seen_at` the store wrote, with room for a late tick
//! ([`LIVE_WITHIN_REFRESHES`](crate::model::LIVE_WITHIN_REFRESHES)).

use std::time::Duration;

use tokio::time::Instant;
use tracing::warn;

use super::options::host_name;
use super::tick::TickOutcome;
use super::Manager;
use crate::model::{Announcement, Presence, ReplicaInfo};

/// The shortest refresh interval, whatever the tick interval: a manager
/// ticking every second refreshes every 15 s, not every second.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(15);

/// How often a manager with `tick_interval` refreshes its announcement:
/// `max(tick_interval, 15 s)`. Never shorter than the tick interval, since
/// refreshes ride on ticks, and never so short that the registry costs
/// more than a statement per replica every 15 s.
pub fn refresh_interval(tick_interval: Duration) -> Duration {
    tick_interval.max(MIN_REFRESH_INTERVAL)
}

/// What the manager remembers of its announcements.
#[derive(Debug, Default)]
pub(super) struct Registry {
    /// When this run's last announcement reached the store; `None` before
    /// the first of a run, so the next tick announces a start.
    last: Option<Instant>,
    /// A job was registered since then.
    changed: bool,
}

impl Registry {
    /// A job was registered: announce it at the next tick.
    pub(super) fn job_registered(&mut self) {
        self.changed = true;
    }
}

impl Manager {
    /// This replica, as it announces itself now.
    fn replica_info(&self) -> ReplicaInfo {
        let options = &self.inner.options;
        ReplicaInfo {
            runner_id: options.runner_id.clone(),
            host: host_name(),
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            refresh_interval: refresh_interval(options.tick_interval),
            jobs: self
                .jobs()
                .iter()
                .chain(&self.stored_now())
                .map(|j| j.registration())
                .collect(),
            kinds: self.kinds(),
        }
        .bounded()
    }

    /// The tick's part: a start at the first tick of a run, a refresh once
    /// the interval has passed or a job was registered, else nothing. A
    /// failed call counts as a tick error and is tried again next tick.
    pub(super) async fn announce_if_due(&self, out: &mut TickOutcome) {
        let presence = {
            let registry = self.inner.registry.lock().expect("registry lock");
            let interval = refresh_interval(self.inner.options.tick_interval);
            match registry.last {
                None => Presence::Started,
                Some(_) if registry.changed => Presence::Alive,
                Some(last) if last.elapsed() >= interval => Presence::Alive,
                Some(_) => return,
            }
        };
        if self.announce(presence).await {
            let mut registry = self.inner.registry.lock().expect("registry lock");
            registry.last = Some(Instant::now());
            registry.changed = false;
        } else {
            out.report.errors += 1;
        }
    }

    /// The end of a clean `run`: the replica is marked stopped, and the
    /// next tick (of a later run) announces a start again. A store that
    /// cannot be reached now leaves the replica to be seen as vanished.
    pub(super) async fn announce_stopped(&self) {
        self.inner.registry.lock().expect("registry lock").last = None;
        self.announce(Presence::Stopped).await;
    }

    /// One announcement; whether it reached the store.
    async fn announce(&self, presence: Presence) -> bool {
        let announcement = Announcement {
            replica: self.replica_info(),
            presence,
        };
        match self.inner.store.announce(&announcement).await {
            Ok(()) => true,
            Err(e) => {
                warn!(error = %e, presence = presence.as_str(), "replica announcement failed");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refresh_interval_is_the_tick_interval_but_at_least_15_s() {
        assert_eq!(
            refresh_interval(Duration::from_secs(1)),
            MIN_REFRESH_INTERVAL
        );
        assert_eq!(
            refresh_interval(Duration::from_secs(30)),
            Duration::from_secs(30)
        );
    }
}
