//! The attempts log: one record per ended attempt of an execution, kept
//! beside the execution row, which only ever shows its current (or last)
//! attempt (`docs/contract.md` §3, "The attempts log").

use std::fmt;

use time::OffsetDateTime;
use uuid::Uuid;

use super::Name;

/// How an attempt ended, as stored in the log's `outcome` column.
///
/// The first two are what the runner wrote; the last two are the ways an
/// attempt ends when its runner never wrote a terminal state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttemptOutcome {
    /// The runner wrote SUCCESS.
    Success,
    /// The runner wrote FAILED, with its error code and message.
    Failed,
    /// The sweep closed the stale lease (`stale_timeout`).
    Swept,
    /// Another runner took the stale lease over before any sweep closed it
    /// (`stale_timeout`).
    Stolen,
}

impl AttemptOutcome {
    /// Every outcome, in this order.
    pub const ALL: [AttemptOutcome; 4] = [
        AttemptOutcome::Success,
        AttemptOutcome::Failed,
        AttemptOutcome::Swept,
        AttemptOutcome::Stolen,
    ];

    /// The text stored in the `outcome` column. A finish's outcome is the
    /// status it wrote, word for word.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Success => "SUCCESS",
            AttemptOutcome::Failed => "FAILED",
            AttemptOutcome::Swept => "SWEPT",
            AttemptOutcome::Stolen => "STOLEN",
        }
    }

    /// Parses the stored text.
    pub fn parse(s: &str) -> Option<AttemptOutcome> {
        AttemptOutcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

impl fmt::Display for AttemptOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One ended attempt of an execution: what the execution row held while
/// the attempt ran, and how it ended. Append-only: a record is written by
/// the transition that ends the attempt, in the same statement or
/// transaction, and never changed; it goes when its execution is pruned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The execution's id.
    pub execution_id: Uuid,
    /// The attempt's number (the row's `attempt` while it ran).
    pub attempt: i32,
    /// The runner that held the attempt's lease.
    pub runner_id: Option<Name>,
    /// When the attempt was claimed (store time).
    pub started_at: Option<OffsetDateTime>,
    /// When the transition that ended it happened (store time).
    pub ended_at: OffsetDateTime,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// Why it failed: the runner's code, or `stale_timeout` when the runner
    /// never wrote a terminal state; `None` for a success.
    pub error_code: Option<String>,
    /// The message, bounded as the row's is
    /// ([`bound_error_msg`](super::bound_error_msg)).
    pub error_msg: Option<String>,
    /// The handler's run time in milliseconds, when the runner reported it
    /// (a finish); `None` when the runner never wrote a terminal state.
    pub duration_ms: Option<i32>,
}
