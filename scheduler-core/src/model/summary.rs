//! What operators read: filters over executions and per-scope summaries.

use time::OffsetDateTime;

use super::{ErrorCode, Execution, LatestExecution, Scope, Status};

/// Filters for [`ExecutionAudit::list_executions`](crate::store::ExecutionAudit::list_executions). Results come newest plan time
/// first (ties by id, descending).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecutionFilter {
    /// Only this job.
    pub job_name: Option<String>,
    /// Only this scope.
    pub scope: Option<Scope>,
    /// Only this status.
    pub status: Option<Status>,
    /// Only plan times at or after this instant.
    pub plan_time_from: Option<OffsetDateTime>,
    /// At most this many rows; `None` means no limit.
    pub limit: Option<usize>,
}

/// A prune: retention of terminal rows (see
/// [`ExecutionAudit::prune_finished`](crate::store::ExecutionAudit::prune_finished)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prune {
    /// Terminal rows whose `finished_at` is before this instant go.
    pub finished_before: OffsetDateTime,
    /// At most this many rows per call, so that one call never holds many
    /// row locks or writes much at once.
    pub limit: usize,
    /// Count what would go; delete nothing (and ignore `limit`).
    pub dry_run: bool,
}

impl Prune {
    /// A dry run: how many terminal rows finished before `finished_before`.
    pub fn count(finished_before: OffsetDateTime) -> Self {
        Prune {
            finished_before,
            limit: 0,
            dry_run: true,
        }
    }

    /// One batch: delete up to `limit` terminal rows finished before
    /// `finished_before`, oldest first.
    pub fn batch(finished_before: OffsetDateTime, limit: usize) -> Self {
        Prune {
            finished_before,
            limit,
            dry_run: false,
        }
    }
}

/// One execution's place in time: its scope and plan time, all the
/// missed-plan report reads of a row (see
/// [`ExecutionAudit::plan_times_since`](crate::store::ExecutionAudit::plan_times_since)).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PlannedAt {
    /// The execution's scope.
    pub scope: Scope,
    /// The execution's plan time.
    pub plan_time: OffsetDateTime,
}

/// What an operator needs to know about one `(job, scope)` (see
/// [`ExecutionAudit::scope_summaries`](crate::store::ExecutionAudit::scope_summaries)). Counts are over all of the scope's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeSummary {
    /// The job.
    pub job_name: String,
    /// The scope.
    pub scope: Scope,
    /// The row with the highest plan time.
    pub latest: LatestExecution,
    /// The highest plan time that ended SUCCESS.
    pub last_success_plan_time: Option<OffsetDateTime>,
    /// When that row finished.
    pub last_success_finished_at: Option<OffsetDateTime>,
    /// RUNNING rows whose lease is live (`stale_after >= now`).
    pub running: u64,
    /// RUNNING rows whose lease went stale (`stale_after < now`), not yet swept.
    pub stale: u64,
    /// FAILED rows with attempts left, other than `stale_timeout` ones:
    /// retries pending (due now or later).
    pub retry_pending: u64,
    /// The earliest `next_retry_at` among them (null counts as due now).
    pub next_retry_at: Option<OffsetDateTime>,
    /// FAILED rows with no attempt left.
    pub exhausted: u64,
    /// FAILED `stale_timeout` rows with attempts left: retried automatically
    /// for reentrant jobs, waiting for an operator otherwise.
    pub stale_timeout: u64,
    /// FAILED rows the overlap policy ended without a run of their own
    /// (`overlap_skipped`, `overlap_canceled`), whatever their attempts;
    /// counted here only.
    pub skipped: u64,
}

impl ScopeSummary {
    /// Summarises one scope's rows (any order; at least one row) at store
    /// time `now`: the reference every store's summary must equal.
    pub fn of_rows(rows: &[Execution], now: OffsetDateTime) -> Option<ScopeSummary> {
        let latest = rows.iter().max_by_key(|r| r.plan_time)?;
        let last_success = rows
            .iter()
            .filter(|r| r.status == Status::Success)
            .max_by_key(|r| r.plan_time);
        let mut summary = ScopeSummary {
            job_name: latest.job_name.to_string(),
            scope: latest.scope.clone(),
            latest: latest.latest_view(),
            last_success_plan_time: last_success.map(|r| r.plan_time),
            last_success_finished_at: last_success.and_then(|r| r.finished_at),
            running: 0,
            stale: 0,
            retry_pending: 0,
            next_retry_at: None,
            exhausted: 0,
            stale_timeout: 0,
            skipped: 0,
        };
        for r in rows {
            let stale_code = r.error_code.as_deref() == Some(ErrorCode::StaleTimeout.as_str());
            let overlap = ErrorCode::is_overlap(r.error_code.as_deref());
            match r.status {
                Status::Failed if overlap => summary.skipped += 1,
                Status::Running if r.stale_after.is_some_and(|s| s < now) => summary.stale += 1,
                Status::Running => summary.running += 1,
                Status::Failed if r.attempt >= r.max_attempts => summary.exhausted += 1,
                Status::Failed if stale_code => summary.stale_timeout += 1,
                Status::Failed => {
                    summary.retry_pending += 1;
                    let due = r.next_retry_at.unwrap_or(now);
                    summary.next_retry_at = Some(summary.next_retry_at.map_or(due, |d| d.min(due)));
                }
                Status::Success => {}
            }
        }
        Some(summary)
    }
}
