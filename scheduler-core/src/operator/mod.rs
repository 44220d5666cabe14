//! [`Operator`]: steering a schedule at run time over any store, without a
//! running manager (`docs/contract.md` §11), stored schedules (§12), and
//! what the operator sees. What the `scheduler` command and a dashboard
//! call.
//!
//! - `steer`: the requests: pause, resume, trigger, backfill, cancel,
//!   list; create, update, delete and read stored schedules; prune.
//! - `progress`: how far a trigger or a backfill got ([`ControlProgress`]).
//! - `overview`: every job and what steers it ([`Overview`]), and the
//!   plans that have no execution ([`MissedPlans`]).

mod overview;
mod progress;
mod steer;

pub use overview::{
    ControlInForce, JobOverview, MissedPlans, Overview, OverviewControls, OverviewNote,
    PauseExtent, MAX_MISSED_PER_SCOPE,
};
pub use progress::{count_instants, known_schedules, ControlProgress, Instants};
pub use steer::{
    Backfill, Operator, OperatorError, Pruned, Steered, Target, Written, MAX_BACKFILL_INSTANTS,
};
