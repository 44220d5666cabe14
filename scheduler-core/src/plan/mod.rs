//! Planning: which plan times a tick attempts (`docs/contract.md` §5).
//! Pure: no I/O, no clock; it computes over [`crate::model`] only.
//!
//! - [`grid`]: the cadence grid ([`floor`], [`ceil`]) and the stable
//!   per-scope offsets of a spread ([`scope_offset`], [`stable_hash`]).
//! - [`schedule`]: when plans fall ([`Schedule`]: a cadence or a
//!   [`CronSchedule`]) and a job's planning options ([`Planning`],
//!   [`CatchUpMode`]).
//! - [`cron`]: cron expressions in IANA time zones, with a DST policy.
//! - [`describe`]: schedules in plain words ([`Schedule::describe`]) and
//!   in the machine form a replica announces ([`Schedule::form`],
//!   [`next_plan_time`]).
//! - [`catch_up`]: the plan times of one scope for one tick
//!   ([`plan_scope`]), and the instants around them.

pub mod catch_up;
pub mod cron;
pub mod describe;
pub mod grid;
pub mod schedule;

pub use catch_up::{
    cursor_from, latest_plan, next_eligible, normalise_custom, oldest_allowed, plan_scope,
    FIRST_RUN_GRACE,
};
pub use cron::CronSchedule;
pub use describe::next_plan_time;
pub use grid::{ceil, floor, scope_offset, stable_hash};
pub use schedule::{CatchUpMode, Planning, Schedule};

#[cfg(test)]
mod tests;
