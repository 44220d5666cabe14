//! The manager (`docs/contract.md` §7 and §8, and steering: pauses,
//! triggers, backfills, overlap) on the memory store, with
//! store time injected (a manual clock, or a clock that follows tokio's
//! paused time), by area. One test binary for all of them: each binary is
//! a link of its own, and the areas share their fixtures in [`common`].

mod common;

mod backfills;
mod claims;
mod finishing;
mod leases;
mod metrics;
mod overlap;
mod pauses;
mod replicas;
mod retries;
mod schedule;
mod shutdown;
mod stored;
mod triggers;
