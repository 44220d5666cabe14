//! Cron schedules in an IANA time zone, with an explicit DST policy.
//!
//! Plan times are the UTC instants of the occurrences. Local times that the
//! zone skips or repeats are resolved like this:
//!
//! - **Spring forward** (a local time that does not exist): the occurrence
//!   runs once, at the first valid instant after the gap (`30 2 * * *` on
//!   2026-03-08 in New York runs at 03:00 EDT).
//! - **Fall back** (a local time that occurs twice): the occurrence runs
//!   once, at its first occurrence (`30 1 * * *` on 2026-11-01 in New York
//!   runs at 01:30 EDT, not again at 01:30 EST; `*/30 * * * *` runs at 01:00
//!   and 01:30 EDT, then 02:00 EST).

use std::fmt;

use croner::parser::{CronParser, Seconds};
use croner::Cron;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use time::OffsetDateTime;

use crate::time::to_micros;

/// A parsed cron expression and its time zone.
#[derive(Clone)]
pub struct CronSchedule {
    cron: Cron,
    zone: TimeZone,
    expression: String,
    zone_name: String,
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cron({:?} in {})", self.expression, self.zone_name)
    }
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.expression == other.expression && self.zone_name == other.zone_name
    }
}

impl Eq for CronSchedule {}

/// How far a search for an occurrence may look, in either direction. A
/// pattern with no occurrence in that span (e.g. `0 0 30 2 *`) has none.
const SEARCH_LIMIT_DAYS: i64 = 366 * 5;

impl CronSchedule {
    /// Parses a 5-field (or 6-field, with seconds) cron expression and an
    /// IANA zone name such as `Europe/Berlin` (or `UTC`).
    ///
    /// # Errors
    /// A readable message when the expression or the zone is invalid.
    pub fn parse(expression: &str, zone: &str) -> Result<Self, String> {
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(expression)
            .map_err(|e| format!("invalid cron expression {expression:?}: {e}"))?;
        let tz = TimeZone::get(zone).map_err(|e| format!("unknown time zone {zone:?}: {e}"))?;
        Ok(CronSchedule {
            cron,
            zone: tz,
            expression: expression.to_owned(),
            zone_name: zone.to_owned(),
        })
    }

    /// The expression as given.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The zone name as given.
    pub fn zone_name(&self) -> &str {
        &self.zone_name
    }

    fn zoned(&self, t: OffsetDateTime) -> Option<Zoned> {
        let ts = Timestamp::from_nanosecond(t.unix_timestamp_nanos()).ok()?;
        Some(ts.to_zoned(self.zone.clone()))
    }

    fn instant(z: &Zoned) -> OffsetDateTime {
        let t = OffsetDateTime::from_unix_timestamp_nanos(z.timestamp().as_nanosecond())
            .expect("a cron occurrence is in range");
        to_micros(t)
    }

    /// Whether `z` is the second of two instants showing the same local
    /// time (fall back): those are skipped, the first one runs.
    fn is_repeat(&self, z: &Zoned) -> bool {
        let first = self.zone.to_ambiguous_zoned(z.datetime()).earlier();
        matches!(first, Ok(first) if first.timestamp() < z.timestamp())
    }

    fn within_limit(&self, origin: OffsetDateTime, found: OffsetDateTime) -> bool {
        (found - origin).whole_days().abs() <= SEARCH_LIMIT_DAYS
    }

    /// The newest occurrence at or before `t`.
    pub fn at_or_before(&self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        let mut from = self.zoned(t)?;
        let mut inclusive = true;
        loop {
            let found = self.cron.find_previous_occurrence(&from, inclusive).ok()?;
            if !self.within_limit(t, Self::instant(&found)) {
                return None;
            }
            if !self.is_repeat(&found) {
                return Some(Self::instant(&found));
            }
            from = found;
            inclusive = false;
        }
    }

    /// The first occurrence strictly after `t`.
    pub fn after(&self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        self.next_from(t, false)
    }

    /// The first occurrence at or after `t`.
    pub fn at_or_after(&self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        self.next_from(t, true)
    }

    fn next_from(&self, t: OffsetDateTime, inclusive: bool) -> Option<OffsetDateTime> {
        let mut from = self.zoned(t)?;
        let mut inclusive = inclusive;
        loop {
            let found = self.cron.find_next_occurrence(&from, inclusive).ok()?;
            if !self.within_limit(t, Self::instant(&found)) {
                return None;
            }
            if !self.is_repeat(&found) {
                return Some(Self::instant(&found));
            }
            from = found;
            inclusive = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    /// Every occurrence in `[from, to]`, as UTC instants.
    fn between(s: &CronSchedule, from: OffsetDateTime, to: OffsetDateTime) -> Vec<OffsetDateTime> {
        let mut out = Vec::new();
        let mut next = s.at_or_after(from);
        while let Some(t) = next.filter(|t| *t <= to) {
            out.push(t);
            next = s.after(t);
        }
        out
    }

    fn sched(expr: &str, zone: &str) -> CronSchedule {
        CronSchedule::parse(expr, zone).unwrap()
    }

    /// The occurrences of `expr` in `zone` inside `window` are `expected`.
    fn check(
        zone: &str,
        window: (OffsetDateTime, OffsetDateTime),
        expr: &str,
        expected: &[OffsetDateTime],
        why: &str,
    ) {
        assert_eq!(
            between(&sched(expr, zone), window.0, window.1),
            expected,
            "{expr} in {zone}: {why}"
        );
    }

    #[test]
    fn new_york_spring_forward_runs_a_missing_time_once_after_the_gap() {
        // 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00 UTC).
        let day = (
            datetime!(2026-03-08 05:00 UTC),
            datetime!(2026-03-08 09:00 UTC),
        );
        check(
            "America/New_York",
            day,
            "30 2 * * *",
            &[datetime!(2026-03-08 07:00 UTC)],
            "02:30 does not exist: once, at 03:00 EDT",
        );
        check(
            "America/New_York",
            day,
            "30 1 * * *",
            &[datetime!(2026-03-08 06:30 UTC)],
            "01:30 EST is unaffected",
        );
        check(
            "America/New_York",
            day,
            "*/30 * * * *",
            &[
                datetime!(2026-03-08 05:00 UTC), // 00:00 EST
                datetime!(2026-03-08 05:30 UTC),
                datetime!(2026-03-08 06:00 UTC), // 01:00 EST
                datetime!(2026-03-08 06:30 UTC), // 01:30 EST
                datetime!(2026-03-08 07:00 UTC), // 03:00 EDT: 02:00 and 02:30 fold into it
                datetime!(2026-03-08 07:30 UTC),
                datetime!(2026-03-08 08:00 UTC),
                datetime!(2026-03-08 08:30 UTC),
                datetime!(2026-03-08 09:00 UTC),
            ],
            "",
        );
    }

    #[test]
    fn new_york_fall_back_runs_a_repeated_time_once_at_its_first_occurrence() {
        // 2026-11-01: 02:00 EDT falls back to 01:00 EST (06:00 UTC).
        let day = (
            datetime!(2026-11-01 04:00 UTC),
            datetime!(2026-11-01 08:00 UTC),
        );
        check(
            "America/New_York",
            day,
            "30 1 * * *",
            &[datetime!(2026-11-01 05:30 UTC)],
            "01:30 EDT only",
        );
        check(
            "America/New_York",
            day,
            "30 2 * * *",
            &[datetime!(2026-11-01 07:30 UTC)],
            "",
        );
        check(
            "America/New_York",
            day,
            "*/30 * * * *",
            &[
                datetime!(2026-11-01 04:00 UTC), // 00:00 EDT
                datetime!(2026-11-01 04:30 UTC),
                datetime!(2026-11-01 05:00 UTC), // 01:00 EDT
                datetime!(2026-11-01 05:30 UTC), // 01:30 EDT; the EST repeats are skipped
                datetime!(2026-11-01 07:00 UTC), // 02:00 EST
                datetime!(2026-11-01 07:30 UTC),
                datetime!(2026-11-01 08:00 UTC),
            ],
            "",
        );
    }

    #[test]
    fn berlin_transitions_follow_the_same_policy() {
        // 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
        let spring = (
            datetime!(2026-03-28 23:00 UTC),
            datetime!(2026-03-29 02:00 UTC),
        );
        check(
            "Europe/Berlin",
            spring,
            "30 2 * * *",
            &[datetime!(2026-03-29 01:00 UTC)],
            "",
        );
        check(
            "Europe/Berlin",
            spring,
            "30 1 * * *",
            &[datetime!(2026-03-29 00:30 UTC)],
            "01:30 CET is unaffected",
        );
        check(
            "Europe/Berlin",
            spring,
            "*/30 * * * *",
            &[
                datetime!(2026-03-28 23:00 UTC), // 00:00 CET
                datetime!(2026-03-28 23:30 UTC),
                datetime!(2026-03-29 00:00 UTC), // 01:00 CET
                datetime!(2026-03-29 00:30 UTC),
                datetime!(2026-03-29 01:00 UTC), // 03:00 CEST
                datetime!(2026-03-29 01:30 UTC),
                datetime!(2026-03-29 02:00 UTC),
            ],
            "",
        );
        // 2026-10-25: 03:00 CEST falls back to 02:00 CET (01:00 UTC).
        let autumn = (
            datetime!(2026-10-24 23:00 UTC),
            datetime!(2026-10-25 03:00 UTC),
        );
        check(
            "Europe/Berlin",
            autumn,
            "30 2 * * *",
            &[datetime!(2026-10-25 00:30 UTC)],
            "02:30 CEST only",
        );
        check(
            "Europe/Berlin",
            autumn,
            "30 1 * * *",
            &[datetime!(2026-10-24 23:30 UTC)],
            "",
        );
        check(
            "Europe/Berlin",
            autumn,
            "*/30 * * * *",
            &[
                datetime!(2026-10-24 23:00 UTC), // 01:00 CEST
                datetime!(2026-10-24 23:30 UTC),
                datetime!(2026-10-25 00:00 UTC), // 02:00 CEST
                datetime!(2026-10-25 00:30 UTC), // 02:30 CEST; the CET repeats are skipped
                datetime!(2026-10-25 02:00 UTC), // 03:00 CET
                datetime!(2026-10-25 02:30 UTC),
                datetime!(2026-10-25 03:00 UTC),
            ],
            "",
        );
    }

    #[test]
    fn previous_occurrences_apply_the_same_policy() {
        let s = sched("30 1 * * *", "America/New_York");
        // After both 01:30s of 2026-11-01, the newest occurrence is the first.
        assert_eq!(
            s.at_or_before(datetime!(2026-11-01 07:00 UTC)),
            Some(datetime!(2026-11-01 05:30 UTC))
        );
        let weekdays = sched("0 9 * * MON-FRI", "Europe/Berlin");
        // Monday 2026-03-09 08:00 UTC (09:00 CET): the occurrence itself.
        assert_eq!(
            weekdays.at_or_before(datetime!(2026-03-09 08:00 UTC)),
            Some(datetime!(2026-03-09 08:00 UTC))
        );
        // Sunday: the newest occurrence is Friday's.
        assert_eq!(
            weekdays.at_or_before(datetime!(2026-03-08 12:00 UTC)),
            Some(datetime!(2026-03-06 08:00 UTC))
        );
        assert_eq!(
            weekdays.after(datetime!(2026-03-06 08:00 UTC)),
            Some(datetime!(2026-03-09 08:00 UTC))
        );
    }

    #[test]
    fn bad_expressions_and_zones_are_refused_with_a_message() {
        let err = CronSchedule::parse("61 * * * *", "UTC").unwrap_err();
        assert!(err.contains("invalid cron expression"), "{err}");
        let err = CronSchedule::parse("0 9 * * *", "Mars/Olympus").unwrap_err();
        assert!(err.contains("unknown time zone \"Mars/Olympus\""), "{err}");
        let never = sched("0 0 30 2 *", "UTC");
        assert_eq!(never.after(datetime!(2026-01-01 00:00 UTC)), None);
    }
}
