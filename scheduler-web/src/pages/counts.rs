//! [`Counts`]: the counts by state of one scope, or summed over a job's
//! scopes, with the problems they flag; what the overview's job rows and
//! the job page's scope rows show alike.

use maud::{html, Markup};
use scheduler_core::operator::MissedPlans;
use scheduler_core::ScopeSummary;
use time::OffsetDateTime;

/// Counts by state, and the newest success.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counts {
    running: u64,
    stale: u64,
    retry_pending: u64,
    exhausted: u64,
    stale_timeout: u64,
    skipped: u64,
    /// Missed plans in the window; `None` when the schedule is unknown
    /// (nothing was looked for).
    missed: Option<usize>,
    /// The missed-plan report stopped counting.
    missed_capped: bool,
    /// When the newest success finished.
    pub(crate) last_success: Option<OffsetDateTime>,
}

impl Counts {
    /// Adds one scope's summary.
    pub(crate) fn add(&mut self, s: &ScopeSummary) {
        self.running += s.running;
        self.stale += s.stale;
        self.retry_pending += s.retry_pending;
        self.exhausted += s.exhausted;
        self.stale_timeout += s.stale_timeout;
        self.skipped += s.skipped;
        self.last_success = self.last_success.max(s.last_success_finished_at);
    }

    /// Adds one scope's missed plans (and so says they were looked for).
    pub(crate) fn add_missed(&mut self, m: &MissedPlans) {
        *self.missed.get_or_insert(0) += m.plans.len();
        self.missed_capped |= m.capped;
    }

    /// Says missed plans were looked for, even if no scope had any.
    pub(crate) fn looked_for_missed(&mut self) {
        self.missed.get_or_insert(0);
    }

    /// The problems these counts show, as `data-flag` names: a stale
    /// lease, exhausted retries, rows awaiting an operator, missed plans.
    pub(crate) fn problems(&self) -> Vec<&'static str> {
        [
            (self.stale > 0, "stale"),
            (self.exhausted > 0, "exhausted"),
            (self.stale_timeout > 0, "stale_timeout"),
            (self.missed.unwrap_or(0) > 0, "missed"),
        ]
        .into_iter()
        .filter_map(|(on, flag)| on.then_some(flag))
        .collect()
    }

    /// The counts of rows by state, named as the `data-count` cells and
    /// the `state` label of [`crate::TABLE_EXECUTIONS`].
    pub(crate) fn by_state(&self) -> [(&'static str, u64); 6] {
        [
            ("running", self.running),
            ("stale", self.stale),
            ("retry_pending", self.retry_pending),
            ("exhausted", self.exhausted),
            ("stale_timeout", self.stale_timeout),
            ("skipped", self.skipped),
        ]
    }

    /// Missed plans in the window; `None` when nothing was looked for.
    pub(crate) fn missed(&self) -> Option<usize> {
        self.missed
    }

    /// One `<td data-count=NAME>` per count, in the order of
    /// [`HEADERS`]; a count that raises a problem flag is marked `alert`
    /// (the flag names are the count names).
    pub(crate) fn cells(&self) -> Markup {
        let problems = self.problems();
        let missed = match self.missed {
            None => "-".to_owned(),
            Some(n) if self.missed_capped => format!("{n}+"),
            Some(n) => n.to_string(),
        };
        let counts = self
            .by_state()
            .map(|(name, n)| (name, n.to_string()))
            .into_iter()
            .chain([("missed", missed)]);
        html! {
            @for (name, value) in counts {
                td .num .zero[value == "0" || value == "-"] .alert[problems.contains(&name)] data-count=(name) { (value) }
            }
        }
    }
}

/// The column heads of [`Counts::cells`], with what each counts.
pub(crate) const HEADERS: [(&str, &str); 7] = [
    ("running", "RUNNING rows with a live lease"),
    ("stale", "RUNNING rows whose lease went stale: the runner stopped heartbeating"),
    ("retry pending", "FAILED rows with attempts left, waiting for their retry"),
    ("exhausted", "FAILED rows with no attempt left"),
    ("stale timeout", "stale_timeout rows: the sweep closed them for a job that forbids stale re-entry: only an operator's retry runs them again"),
    ("skipped", "plans skipped by the overlap policy"),
    ("missed (1h)", "missed plans: plans of the last hour with no execution that no pause held back; - when the schedule is not known"),
];

/// The head cells of [`HEADERS`].
pub(crate) fn head_cells() -> Markup {
    html! {
        @for (name, what) in HEADERS {
            th .num title=(what) { (name) }
        }
    }
}

/// The flags for `problems`, and `paused` when paused.
pub(crate) fn flags(problems: &[&'static str], paused: Option<&str>) -> Markup {
    html! {
        @for flag in problems {
            span .flag data-flag=(flag) { (flag.replace('_', " ")) }
        }
        @if let Some(paused) = paused {
            span .flag data-flag="paused" { "paused" @if !paused.is_empty() { " (" (paused) ")" } }
        }
    }
}
