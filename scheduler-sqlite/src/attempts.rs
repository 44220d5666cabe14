//! The attempts log's statements, as the transitions that end attempts (and
//! the prune) run them in their own IMMEDIATE transactions: a finish's
//! record read back from the row it wrote (`finish_log.sql`), the sweep's
//! from what its `RETURNING` says (`sweep_log.sql`), and the deletion of
//! pruned rows' logs (`prune_log.sql`). A takeover logs with
//! `claim_steal_log.sql` (see `claim.rs`); a run the overlap policy
//! canceled, with `sweep_log.sql` again, every value bound (see
//! `admission.rs`).

use rusqlite::{named_params, Row, Transaction};
use scheduler_core::machine::{Ending, EndingColumns};
use scheduler_core::Attempt;
use time::OffsetDateTime;

use crate::codec::{micros, uuid_text};
use crate::statements::SQL;

/// [`EndingColumns`] owned, so it can travel to the writer's thread.
#[derive(Debug, Clone)]
pub(crate) struct Ended {
    pub(crate) outcome: &'static str,
    pub(crate) error_code: Option<String>,
    pub(crate) error_msg: Option<String>,
    pub(crate) duration_ms: Option<i32>,
}

impl Ended {
    /// What `ending` records ([`Ending::columns`]).
    pub(crate) fn of(ending: Ending<'_>) -> Self {
        let EndingColumns {
            outcome,
            error_code,
            error_msg,
            duration_ms,
        } = ending.columns();
        Ended {
            outcome: outcome.as_str(),
            error_code: error_code.map(str::to_owned),
            error_msg: error_msg.map(str::to_owned),
            duration_ms,
        }
    }
}

/// An attempt the sweep ended, as its `RETURNING` says: the execution's id
/// (stored form), and the columns the sweep leaves as they were.
#[derive(Debug)]
pub(crate) struct Swept {
    id: String,
    attempt: i32,
    runner_id: Option<String>,
    /// Microseconds, as stored.
    started_at: Option<i64>,
}

impl Swept {
    /// A row of `sweep.sql`'s `RETURNING`.
    pub(crate) fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Swept {
            id: row.get(0)?,
            attempt: row.get(1)?,
            runner_id: row.get(2)?,
            started_at: row.get(3)?,
        })
    }
}

/// Appends the record of the attempt `finish.sql` just ended on row `id`
/// (stored form).
pub(crate) fn log_finished(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(&SQL.finish_log)?
        .execute(named_params! { ":id": id })
        .map(drop)
}

/// Appends the record of an attempt the sweep ended at `now`, as `ended`
/// ([`Ending::Sweep`]) says.
pub(crate) fn log_swept(
    tx: &Transaction<'_>,
    now: OffsetDateTime,
    swept: &Swept,
    ended: &Ended,
) -> rusqlite::Result<()> {
    tx.prepare_cached(&SQL.sweep_log)?
        .execute(named_params! {
            ":id": swept.id,
            ":attempt": swept.attempt,
            ":runner_id": swept.runner_id,
            ":started_at": swept.started_at,
            ":now": micros(now),
            ":outcome": ended.outcome,
            ":error_code": ended.error_code,
            ":error_msg": ended.error_msg,
            ":duration_ms": ended.duration_ms,
        })
        .map(drop)
}

/// Appends `attempt`, as the machine computed it
/// ([`machine::ended_attempt`](scheduler_core::machine::ended_attempt)).
pub(crate) fn log_ended(tx: &Transaction<'_>, attempt: &Attempt) -> rusqlite::Result<()> {
    tx.prepare_cached(&SQL.sweep_log)?
        .execute(named_params! {
            ":id": uuid_text(attempt.execution_id),
            ":attempt": attempt.attempt,
            ":runner_id": attempt.runner_id.as_deref(),
            ":started_at": attempt.started_at.map(micros),
            ":now": micros(attempt.ended_at),
            ":outcome": attempt.outcome.as_str(),
            ":error_code": attempt.error_code,
            ":error_msg": attempt.error_msg,
            ":duration_ms": attempt.duration_ms,
        })
        .map(drop)
}

/// Deletes the attempts logs of the executions `ids` (stored form) that
/// `prune.sql` just deleted.
pub(crate) fn delete_logs(tx: &Transaction<'_>, ids: &[String]) -> rusqlite::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    // Encoding strings cannot fail.
    let ids = serde_json::Value::from(ids).to_string();
    tx.prepare_cached(&SQL.prune_log)?
        .execute(named_params! { ":ids": ids })
        .map(drop)
}
