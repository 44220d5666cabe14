//! When a job's plans fall, and the options that decide which of them a
//! tick attempts.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use super::grid::{ceil, floor};
use super::CronSchedule;
/// Re-exported from [`crate::model`], where a registered job's options
/// live as data.
pub use crate::model::CatchUpMode;

/// When a job's plans fall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Every `cadence`, on multiples of it since 0001-01-01T00:00:00Z (the
    /// seed's grid), shifted later by `offset` (less than `cadence`; zero
    /// for the seed's grid): a cadence of a day with an offset of 2 hours
    /// plans at 02:00 UTC every day.
    Every {
        /// The distance between plans.
        cadence: Duration,
        /// How far after each multiple of `cadence` the plan falls.
        offset: Duration,
    },
    /// At the occurrences of a cron expression in a time zone.
    Cron(Arc<CronSchedule>),
}

impl Schedule {
    /// Every `cadence` on the seed's grid (no offset).
    pub const fn every(cadence: Duration) -> Schedule {
        Schedule::Every {
            cadence,
            offset: Duration::ZERO,
        }
    }

    /// The newest plan time at or before `t`.
    pub fn at_or_before(&self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        match self {
            Schedule::Every { cadence, offset } => Some(floor(t - *offset, *cadence) + *offset),
            Schedule::Cron(cron) => cron.at_or_before(t),
        }
    }

    /// The first plan time strictly after `t`.
    pub fn after(&self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        match self {
            Schedule::Every { cadence, offset } => {
                Some(floor(t - *offset, *cadence) + *cadence + *offset)
            }
            Schedule::Cron(cron) => cron.after(t),
        }
    }

    /// The first plan time at or after `t`.
    pub fn at_or_after(&self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        match self {
            Schedule::Every { cadence, offset } => Some(ceil(t - *offset, *cadence) + *offset),
            Schedule::Cron(cron) => cron.at_or_after(t),
        }
    }

    /// Every plan time in `[from, to]`, oldest first, at most `limit`.
    pub fn between(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        limit: usize,
    ) -> Vec<OffsetDateTime> {
        let mut plans = Vec::new();
        let mut next = self.at_or_after(from);
        while let Some(t) = next.filter(|&t| t <= to && plans.len() < limit) {
            plans.push(t);
            // A zero cadence (only valid with a custom planner) never advances.
            next = self.after(t).filter(|&n| n > t);
        }
        plans
    }
}

/// The planning options of a job, copied out of its [`JobSpec`](crate::job::JobSpec).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planning {
    /// When plans fall.
    pub schedule: Schedule,
    /// A plan becomes eligible this long after its plan time.
    pub schedule_delay: Duration,
    /// See [`CatchUpMode`].
    pub catch_up: CatchUpMode,
    /// How far back `every_plan` replays; zero means only the latest bucket.
    pub catch_up_window: Duration,
    /// The most plans attempted per scope and tick; 0 means no cap (allowed
    /// only for `latest_only` and custom planners).
    pub max_plans_per_tick: usize,
    /// Whether `stale_timeout` rows count as retry-eligible.
    pub allow_stale_reentry: bool,
    /// Each scope's plans become eligible a stable offset inside
    /// `[0, spread)` later (see [`scope_offset`](super::scope_offset)); zero means no offset.
    pub spread: Duration,
}
