//! Jobs: what code registers with a manager.
//!
//! - [`spec`]: [`JobSpec`] (name, schedule, options, handler), its
//!   validation, and [`JobOutput`], what a handler returns.
//! - [`scopes`]: [`Scopes`], where a job's scopes come from.
//! - [`context`]: [`RunContext`], what a handler gets.
//! - [`stored`]: stored schedules as jobs: their validation
//!   ([`validate_definition`]), every write's decision ([`apply_write`]).

pub mod context;
pub mod scopes;
pub mod spec;
pub mod stored;

pub(crate) use context::Heartbeat;
pub use context::RunContext;
pub use scopes::Scopes;
pub use spec::{HandlerFuture, JobOutput, JobSpec};
pub use stored::{apply_write, validate_definition, KindHandler};
