//! How far a trigger or a backfill got ([`Operator::progress`]): its rows
//! by status, and a backfill's planned instants, in all and before its
//! cursor, counted from the job's schedule as the registry knows it
//! ([`known_schedules`], [`count_instants`]).

use std::collections::BTreeMap;
use std::fmt;

use time::OffsetDateTime;

use super::{Operator, OperatorError, MAX_BACKFILL_INSTANTS};
use crate::model::{Control, ControlAction, Progress, Replica, ScheduleForm};
use crate::plan::Schedule;

/// A count of planned instants, which stops at a bound for schedules that
/// must be walked one instant at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instants {
    /// How many (at most the bound when `capped`).
    pub count: u64,
    /// There are more than `count`.
    pub capped: bool,
}

impl fmt::Display for Instants {
    /// `12`, or `100000+` when capped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.count)?;
        if self.capped {
            f.write_str("+")?;
        }
        Ok(())
    }
}

/// The planned instants of `schedule` in `[from, to)`, as a backfill's are
/// counted. A cadence's are counted by arithmetic, whatever their number
/// (a confirmed backfill may hold millions); a cron schedule's are walked,
/// up to [`MAX_BACKFILL_INSTANTS`].
pub fn count_instants(schedule: &Schedule, from: OffsetDateTime, to: OffsetDateTime) -> Instants {
    let none = Instants {
        count: 0,
        capped: false,
    };
    if from >= to {
        return none;
    }
    let last = to - time::Duration::microseconds(1);
    match schedule {
        Schedule::Every { cadence, .. } => {
            let Some(first) = schedule.at_or_after(from) else {
                return none;
            };
            let step = i128::try_from(cadence.as_micros())
                .unwrap_or(i128::MAX)
                .max(1);
            let count = if first > last {
                0
            } else {
                let span = (last - first).whole_microseconds();
                u64::try_from(span / step + 1).unwrap_or(u64::MAX)
            };
            Instants {
                count,
                capped: false,
            }
        }
        Schedule::Cron(_) => {
            let found = schedule
                .between(from, last, MAX_BACKFILL_INSTANTS + 1)
                .len();
            Instants {
                count: found.min(MAX_BACKFILL_INSTANTS) as u64,
                capped: found > MAX_BACKFILL_INSTANTS,
            }
        }
    }
}

/// Each job's schedule as the registry knows it: from the replica seen
/// most recently that announced the job, live or not (a backfill's range
/// is counted the same either way). Jobs with a custom planner or a form
/// this version cannot read have none.
pub fn known_schedules(replicas: &[Replica]) -> BTreeMap<String, Schedule> {
    let mut newest: BTreeMap<&str, (OffsetDateTime, &ScheduleForm)> = BTreeMap::new();
    for r in replicas {
        for job in &r.info.jobs {
            let seen = newest
                .entry(&job.name)
                .or_insert((r.last_seen_at, &job.schedule_form));
            if r.last_seen_at > seen.0 {
                *seen = (r.last_seen_at, &job.schedule_form);
            }
        }
    }
    newest
        .into_iter()
        .filter_map(|(name, (_, form))| Schedule::from_form(form).map(|s| (name.to_owned(), s)))
        .collect()
}

/// How far a trigger or a backfill got: its rows by status, and for a
/// backfill its planned instants, in all and before its cursor (those
/// claimed for every target scope), when the job's schedule is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlProgress {
    /// The control's rows by status.
    pub rows: Progress,
    /// A backfill's planned instants per scope: all, and those done.
    pub instants: Option<(Instants, Instants)>,
}

impl Operator {
    /// The progress of `control` (`None` for a pause), reading its rows;
    /// a backfill's instants are counted from `schedules` (see
    /// [`known_schedules`]).
    ///
    /// # Errors
    /// [`OperatorError::Store`] when its rows cannot be read.
    pub async fn progress(
        &self,
        control: &Control,
        schedules: &BTreeMap<String, Schedule>,
    ) -> Result<Option<ControlProgress>, OperatorError> {
        if matches!(control.action, ControlAction::Pause { .. }) {
            return Ok(None);
        }
        let rows = self.store.control_progress(control.id).await?;
        let instants = match (&control.action, schedules.get(&control.job_name)) {
            (&ControlAction::Backfill { from, to }, Some(schedule)) => {
                let cursor = control.cursor.unwrap_or(from).min(to);
                Some((
                    count_instants(schedule, from, to),
                    count_instants(schedule, from, cursor),
                ))
            }
            _ => None,
        };
        Ok(Some(ControlProgress { rows, instants }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use time::macros::datetime;

    #[test]
    fn instants_are_counted_as_the_operator_counts_them() {
        let from = datetime!(2026-03-01 11:00 UTC);
        let to = datetime!(2026-03-01 12:00 UTC);
        let five = Schedule::every(Duration::from_secs(300));
        // 11:00 .. 11:55: 12, the end excluded.
        assert_eq!(count_instants(&five, from, to).count, 12);
        assert_eq!(
            count_instants(&five, from + Duration::from_secs(1), to).count,
            11
        );
        assert_eq!(count_instants(&five, from, from).count, 0);
        let year = count_instants(&five, to - Duration::from_secs(365 * 86_400), to);
        assert_eq!((year.count, year.capped), (105_120, false));
        let cron = Schedule::Cron(std::sync::Arc::new(
            crate::plan::CronSchedule::parse("*/5 * * * *", "UTC").unwrap(),
        ));
        assert_eq!(count_instants(&cron, from, to).count, 12);
        let many = count_instants(&cron, to - Duration::from_secs(365 * 86_400), to);
        assert!(many.capped && many.to_string().ends_with('+'), "{many:?}");
    }
}
