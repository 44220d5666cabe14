//! Distributed periodic jobs with a database as the only coordinator.
//!
//! Services run several identical replicas; each registers the same jobs
//! ("roll up usage every 5 minutes", "per tenant, send a daily digest"). This
//! crate makes sure every planned run of every job, for every scope, is
//! executed by one replica at a time, retried on failure, taken over when its
//! runner dies, and recorded in an audit row. The [`LeaseStore`] is the only
//! coordinator: memory (`scheduler-memory`), SQLite (`scheduler-sqlite`) or
//! PostgreSQL (`scheduler-postgres`).
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use scheduler_core::{JobOutput, JobSpec, Manager, ManagerOptions, Scope, Scopes};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // Any LeaseStore: memory, SQLite or PostgreSQL.
//! let store = Arc::new(scheduler_memory::MemoryLeaseStore::new());
//! let manager = Manager::new(store, ManagerOptions::default()).expect("valid options");
//! let tenants = Scopes::fixed(["acme", "globex"].map(|t| Scope::new("tenant", t)));
//! manager
//!     .register(
//!         JobSpec::new("daily_digest", tenants, |ctx| async move {
//!             // ctx.lease_token() fences effects; ctx.cancelled() says when to stop.
//!             println!("digest for {} at {}", ctx.scope(), ctx.plan_time());
//!             Ok(JobOutput::rows(1))
//!         })
//!         .cadence(Duration::from_secs(24 * 3600)),
//!     )
//!     .expect("a valid job");
//! let report = manager.run_once().await; // or manager.run(scheduler_core::shutdown_signal()).await
//! assert_eq!(report.succeeded, 2);
//! # }
//! ```
//!
//! # Where to go next
//!
//! - **Choosing a backend**: `scheduler-postgres` for a fleet of replicas
//!   (it also connects lazily, for a service that must start while its
//!   database is down, and speaks TLS), `scheduler-sqlite` for one host
//!   (several processes may share the file), `scheduler-memory` for tests.
//! - **Stopping cleanly**: pass [`shutdown_signal`] to [`Manager::run`]
//!   (SIGINT and SIGTERM), so nothing is left RUNNING.
//! - **Options**: [`JobSpec`] (schedule, catch-up, retries, timeouts,
//!   re-entry) and [`ManagerOptions`] (runner id, capacity, grace).
//! - **Observing**: [`metrics`] lists the metrics (any `metrics` exporter,
//!   Prometheus included); every execution logs in a `tracing` span, and
//!   the `opentelemetry` feature exports those spans (`telemetry`).
//! - **Operating**: the `scheduler` command (crate `scheduler-cli`) shows
//!   status and history, retries a failed execution and prunes; it and
//!   [`Operator`] pause, resume, trigger and backfill jobs, and create,
//!   change and delete **stored schedules**: schedules kept as data, run
//!   by every replica whose code registered their kind
//!   ([`Manager::register_kind`], `docs/contract.md` §12).
//!
//! # Layers
//!
//! ```text
//!   model            pure data: scopes, executions, attempts, claims, finishes, summaries
//!     |
//!   machine  plan    pure rules: the lease state machine; which plan times a tick attempts
//!     |      |
//!   store            the traits a backend implements (LeaseStore, ExecutionAudit)
//!     |
//!   job              what code registers: JobSpec, Scopes, RunContext; stored schedules as jobs
//!     |
//!   manager          per replica: tick, planning reads, keeper, execute, completer, announce
//!   operator         over any store: pause, resume, trigger, backfill, cancel; stored schedules; the overview
//! ```
//!
//! Each layer uses only the ones above it; [`time`] (clocks, microsecond
//! helpers), [`hash`] (stable hashes), [`error`] and [`metrics`] serve all
//! of them. Nothing above
//! [`store`] does I/O or awaits.
//!
//! - [`model`]: the data model (`docs/contract.md` §3).
//! - [`machine`]: the lease state machine as pure functions (§4).
//! - [`plan`]: which plan times a tick attempts, pure (§5).
//! - [`store`]: [`LeaseStore`] and [`ExecutionAudit`], with their contract.
//! - [`job`]: [`JobSpec`], [`Scopes`], [`RunContext`] (§6).
//! - [`manager`]: [`Manager`]: ticking, running, heartbeats, shutdown (§7).
//! - [`operator`]: [`Operator`]: steering schedules at run time (§11),
//!   stored schedules (§12), and the [`Overview`] an operator sees.
//!
//! # Stability
//!
//! The items re-exported at the crate root are the user's interface. The
//! store-author interface (what a backend needs beyond the traits: the
//! [`machine`] functions, [`model::FinishColumns`], the [`time`],
//! [`hash`] and [`plan::grid`] helpers, [`store::sql`],
//! [`store::CountingStore`]) is public so the store
//! crates and their tests can share it, but, like sqlx-core's driver API,
//! it is **not covered by semver**: it changes with the stores.
//!
//! # The contract
//!
//! What the scheduler promises (the execution record, the lease state
//! machine, planning, job options, the manager) is written down in the
//! repository's `docs/contract.md`; the docs here cite it by section, e.g.
//! "`docs/contract.md` §4".
//!
//! # The seed
//!
//! "The seed", wherever these docs say it, is the Go scheduler this design
//! was ported from: a package that drives periodic jobs through the one
//! PostgreSQL table `sys_cron_executions`. Its replicas may share that table
//! with ours: the table, its columns, its constraint and index names, and
//! the plan-time grid (multiples of the cadence counted from
//! 0001-01-01T00:00:00Z) are the same. Where this crate behaves differently
//! on purpose, the docs say so; `docs/contract.md` §1 describes the seed and
//! §8 lists every departure.
#![warn(missing_docs)]

pub mod error;
pub mod hash;
pub mod job;
pub mod machine;
pub mod manager;
pub mod metrics;
pub mod model;
pub mod operator;
pub mod plan;
pub mod store;
#[cfg(feature = "opentelemetry")]
pub mod telemetry;
pub mod time;

pub use error::{BoxError, OptionsError, SpecError, StoreError};
pub use job::{JobOutput, JobSpec, RunContext, Scopes};
pub use manager::{shutdown_signal, Manager, ManagerOptions, TickReport};
pub use model::{
    Announcement, Attempt, AttemptOutcome, ClaimKind, ClaimOutcome, ClaimRequest, Control,
    ControlAction, ControlState, ErrorCode, Execution, ExecutionFilter, Finish, FinishOutcome,
    LatestExecution, Lease, LeaseRef, Origin, OverlapPolicy, PlanKey, PlannedAt, Presence, Prune,
    RegisteredJob, Replica, ReplicaInfo, ReplicaState, RetryDue, RetryRead, ScheduleDefinition,
    ScheduleOptions, ScheduleWrite, Scope, ScopeSummary, Status, StoredSchedule, StoredScopes,
    MAX_NAME_BYTES,
};
pub use operator::{
    Backfill, ControlInForce, ControlProgress, JobOverview, MissedPlans, Operator, OperatorError,
    Overview, OverviewControls, OverviewNote, PauseExtent, Pruned, Steered, Target, Written,
};
pub use plan::{CatchUpMode, Planning};
pub use store::{ExecutionAudit, LeaseStore, LeaseStoreExt};
pub use time::{Clock, ManualClock, SystemClock, TimeControl, TokioClock};
