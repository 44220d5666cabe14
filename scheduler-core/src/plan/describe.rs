//! Schedules in plain words, for people ([`Schedule::describe`],
//! [`Planning::describe`]), and in a machine form other programs plan from
//! ([`Schedule::form`], [`Schedule::from_form`], [`next_plan_time`]): what
//! a replica announces of each job (`docs/contract.md` §7), so that the
//! CLI, and later a dashboard, show a schedule without the job's code.
//!
//! Words are given for the shapes people write most, and a faithful
//! fallback, the expression itself, for anything else: a description that
//! guessed at an unusual expression would mislead the operator reading it.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use super::{CronSchedule, Planning, Schedule};
use crate::model::{RegisteredJob, ScheduleForm};

impl Schedule {
    /// The schedule in words: `every 5 minutes`, `every day`, `09:00 on
    /// weekdays, Europe/Berlin`, `at minute 5 of every hour, UTC`; for a
    /// cron expression of another shape, ``cron `0 9 1-7 * 1` in UTC``.
    /// Delay and spread are [`Planning::describe`]'s.
    pub fn describe(&self) -> String {
        match self {
            Schedule::Every { cadence, offset } if offset.is_zero() => every(*cadence),
            Schedule::Every { cadence, offset } => {
                format!("{}, offset {}", every(*cadence), short(*offset))
            }
            Schedule::Cron(cron) => cron_words(cron.expression())
                .map(|words| match words {
                    Words::Zoneless(w) => w,
                    Words::Zoned(w) => format!("{w}, {}", cron.zone_name()),
                })
                .unwrap_or_else(|| format!("cron `{}` in {}", cron.expression(), cron.zone_name())),
        }
    }

    /// The schedule in machine form.
    pub fn form(&self) -> ScheduleForm {
        match self {
            Schedule::Every { cadence, offset } => ScheduleForm::Every {
                cadence: *cadence,
                offset: *offset,
            },
            Schedule::Cron(cron) => ScheduleForm::Cron {
                expression: cron.expression().to_owned(),
                zone: cron.zone_name().to_owned(),
            },
        }
    }

    /// The schedule a machine form describes; `None` for a custom planner,
    /// a form this version does not know, a zero cadence, or a cron
    /// expression or zone that does not parse here (announced by another
    /// version, or cut to the storable length).
    pub fn from_form(form: &ScheduleForm) -> Option<Schedule> {
        match form {
            ScheduleForm::Every { cadence, offset } if !cadence.is_zero() && offset < cadence => {
                Some(Schedule::Every {
                    cadence: *cadence,
                    offset: *offset,
                })
            }
            ScheduleForm::Cron { expression, zone } => CronSchedule::parse(expression, zone)
                .ok()
                .map(|cron| Schedule::Cron(Arc::new(cron))),
            _ => None,
        }
    }
}

impl Planning {
    /// The schedule in words ([`Schedule::describe`]) with the delay and
    /// spread when set: `every 5 minutes + 30s delay, spread over 1m`.
    pub fn describe(&self) -> String {
        let mut words = self.schedule.describe();
        if !self.schedule_delay.is_zero() {
            words.push_str(&format!(" + {} delay", short(self.schedule_delay)));
        }
        if !self.spread.is_zero() {
            words.push_str(&format!(", spread over {}", short(self.spread)));
        }
        words
    }
}

/// The next plan time of a registered job at store time `now`: the first
/// plan time whose plan becomes eligible after `now` (so after `now -
/// schedule_delay`; per-scope spread offsets aside). `None` when the job
/// cannot be planned from its form ([`Schedule::from_form`]) or has no
/// occurrence left.
pub fn next_plan_time(job: &RegisteredJob, now: OffsetDateTime) -> Option<OffsetDateTime> {
    Schedule::from_form(&job.schedule_form)?.after(now - job.schedule_delay)
}

/// `every day`, `every 5 minutes`, `every 90 seconds`: the largest unit
/// that divides the cadence.
fn every(cadence: Duration) -> String {
    const UNITS: [(u128, &str); 6] = [
        (86_400_000_000, "day"),
        (3_600_000_000, "hour"),
        (60_000_000, "minute"),
        (1_000_000, "second"),
        (1_000, "millisecond"),
        (1, "microsecond"),
    ];
    let micros = cadence.as_micros();
    if micros == 0 {
        return "no cadence".to_owned();
    }
    let (size, unit) = UNITS
        .into_iter()
        .find(|(size, _)| micros % size == 0)
        .expect("a microsecond divides every cadence");
    match micros / size {
        1 => format!("every {unit}"),
        n => format!("every {n} {unit}s"),
    }
}

/// A duration as its non-zero parts: `30s`, `1m 30s`, `2h`, `1s 500ms`.
fn short(d: Duration) -> String {
    const PARTS: [(u128, &str); 6] = [
        (86_400_000_000, "d"),
        (3_600_000_000, "h"),
        (60_000_000, "m"),
        (1_000_000, "s"),
        (1_000, "ms"),
        (1, "µs"),
    ];
    let mut left = d.as_micros();
    let mut parts = Vec::new();
    for (size, unit) in PARTS {
        if left >= size {
            parts.push(format!("{}{unit}", left / size));
            left %= size;
        }
    }
    if parts.is_empty() {
        "0s".to_owned()
    } else {
        parts.join(" ")
    }
}

/// Words for a cron expression, and whether its zone matters to them.
enum Words {
    /// The same in every zone (`every 15 minutes`).
    Zoneless(String),
    /// Local times: the zone follows.
    Zoned(String),
}

/// Words for the common shapes of a 5-field expression (or a 6-field one
/// whose seconds are `0`); `None` for anything else.
fn cron_words(expression: &str) -> Option<Words> {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    let [minute, hour, dom, month, dow] = match fields.as_slice() {
        [m, h, d, mo, w] => [*m, *h, *d, *mo, *w],
        ["0", m, h, d, mo, w] => [*m, *h, *d, *mo, *w],
        _ => return None,
    };
    let any = |field: &str| field == "*" || field == "?";
    if !any(month) {
        return None;
    }
    let day_of_month = if any(dom) {
        None
    } else {
        Some(number(dom, 1, 31)?)
    };
    let days = match (any(dow), day_of_month) {
        (true, _) => None,
        // Every day of the week, alone, is every day (with a day of the
        // month it is cron's "either" rule, left to the fallback below).
        (false, None) => Some(weekdays(dow)?).filter(|set| set != &[true; 7]),
        (false, Some(_)) => Some(weekdays(dow)?),
    };
    let daily = days.is_none() && day_of_month.is_none();
    if daily && any(hour) {
        // Minute patterns: uniform steps that divide the hour are the same
        // in every zone (even one offset by 45 minutes).
        return match step(minute) {
            Some(1) => Some(Words::Zoneless("every minute".to_owned())),
            Some(n) if 60 % n == 0 => Some(Words::Zoneless(format!("every {n} minutes"))),
            Some(_) => None,
            None => Some(Words::Zoned(format!(
                "at minute {} of every hour",
                number(minute, 0, 59)?
            ))),
        };
    }
    let minute = number(minute, 0, 59)?;
    if daily {
        if let Some(n) = step(hour) {
            return (24 % n == 0).then(|| {
                let every = if n == 1 {
                    "every hour".to_owned()
                } else {
                    format!("every {n} hours")
                };
                Words::Zoned(format!("{every} at minute {minute}"))
            });
        }
    }
    let at = format!("{:02}:{minute:02}", number(hour, 0, 23)?);
    Some(Words::Zoned(match (days, day_of_month) {
        (None, None) => format!("{at} every day"),
        (Some(days), None) => format!("{at} on {}", day_names(days)),
        (None, Some(d)) => format!("{at} on day {d} of every month"),
        // Both restricted: cron's "either" rule, which words would hide.
        (Some(_), Some(_)) => return None,
    }))
}

/// A plain number in `[min, max]`.
fn number(field: &str, min: u32, max: u32) -> Option<u32> {
    if field.is_empty() || !field.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    field.parse().ok().filter(|n| (min..=max).contains(n))
}

/// The step of `*` (1) or `*/N`; `None` for anything else.
fn step(field: &str) -> Option<u32> {
    if field == "*" {
        return Some(1);
    }
    number(field.strip_prefix("*/")?, 1, 59)
}

/// Day names, Monday first, as cron numbers them (0 and 7 are Sunday).
const DAYS: [(&str, &str, u32); 7] = [
    ("Monday", "MON", 1),
    ("Tuesday", "TUE", 2),
    ("Wednesday", "WED", 3),
    ("Thursday", "THU", 4),
    ("Friday", "FRI", 5),
    ("Saturday", "SAT", 6),
    ("Sunday", "SUN", 0),
];

/// The days of a day-of-week field of days and ranges (`1-5`, `MON,WED`,
/// `sat-sun`), as a set indexed by cron's number (Sunday 0); `None` for
/// steps, `L`, `#` and other forms.
fn weekdays(field: &str) -> Option<[bool; 7]> {
    let day = |text: &str| -> Option<u32> {
        let upper = text.to_ascii_uppercase();
        DAYS.iter()
            .find(|(_, abbr, _)| *abbr == upper)
            .map(|d| d.2)
            .or_else(|| number(text, 0, 7).map(|n| n % 7))
    };
    let mut set = [false; 7];
    for item in field.split(',') {
        let (from, to) = match item.split_once('-') {
            Some((a, b)) => (day(a)?, day(b)?),
            None => (day(item)?, day(item)?),
        };
        // Sunday as 7 ends a range (`6-7`); any other backwards range is
        // a form left to the fallback.
        let to = if to == 0 && from > 0 { 7 } else { to };
        if from > to {
            return None;
        }
        for d in from..=to {
            set[(d % 7) as usize] = true;
        }
    }
    Some(set)
}

/// `weekdays`, `weekends`, `Monday`, `Monday and Friday`, `Monday,
/// Wednesday and Friday`.
fn day_names(set: [bool; 7]) -> String {
    let weekdays = [false, true, true, true, true, true, false];
    let weekends = [true, false, false, false, false, false, true];
    if set == weekdays {
        return "weekdays".to_owned();
    }
    if set == weekends {
        return "weekends".to_owned();
    }
    let names: Vec<&str> = DAYS
        .iter()
        .filter(|(_, _, n)| set[*n as usize])
        .map(|(name, _, _)| *name)
        .collect();
    match names.as_slice() {
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
        [] => unreachable!("a day-of-week field names at least one day"),
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::model::{CatchUpMode, ScopeCount};

    fn cron(expression: &str, zone: &str) -> String {
        Schedule::Cron(Arc::new(CronSchedule::parse(expression, zone).unwrap())).describe()
    }

    #[test]
    fn cadences_in_their_largest_unit() {
        let words = |secs: u64| Schedule::every(Duration::from_secs(secs)).describe();
        assert_eq!(words(300), "every 5 minutes");
        assert_eq!(words(30), "every 30 seconds");
        assert_eq!(words(86_400), "every day");
        assert_eq!(words(3_600), "every hour");
        assert_eq!(words(7_200), "every 2 hours");
        assert_eq!(words(90), "every 90 seconds");
        assert_eq!(words(60), "every minute");
        assert_eq!(
            Schedule::every(Duration::from_millis(1500)).describe(),
            "every 1500 milliseconds"
        );
        assert_eq!(Schedule::every(Duration::ZERO).describe(), "no cadence");
    }

    #[test]
    fn delay_and_spread_follow_the_schedule() {
        let planning = |delay: u64, spread: u64| Planning {
            schedule: Schedule::every(Duration::from_secs(300)),
            schedule_delay: Duration::from_secs(delay),
            catch_up: CatchUpMode::LatestOnly,
            catch_up_window: Duration::ZERO,
            max_plans_per_tick: 0,
            allow_stale_reentry: false,
            spread: Duration::from_secs(spread),
        };
        assert_eq!(planning(0, 0).describe(), "every 5 minutes");
        assert_eq!(planning(30, 0).describe(), "every 5 minutes + 30s delay");
        assert_eq!(
            planning(0, 60).describe(),
            "every 5 minutes, spread over 1m"
        );
        assert_eq!(
            planning(90, 61).describe(),
            "every 5 minutes + 1m 30s delay, spread over 1m 1s"
        );
        assert_eq!(short(Duration::from_millis(1500)), "1s 500ms");
        assert_eq!(short(Duration::from_secs(2 * 86_400 + 3_600)), "2d 1h");
    }

    #[test]
    fn common_cron_shapes_in_words() {
        for (expression, zone, words) in [
            // Minute patterns: the same in every zone.
            ("*/15 * * * *", "Asia/Kathmandu", "every 15 minutes"),
            ("* * * * *", "UTC", "every minute"),
            ("*/20 * * * *", "UTC", "every 20 minutes"),
            ("5 * * * *", "UTC", "at minute 5 of every hour, UTC"),
            ("0 */2 * * *", "UTC", "every 2 hours at minute 0, UTC"),
            // Times of day.
            ("0 9 * * *", "UTC", "09:00 every day, UTC"),
            ("0 0 9 * * *", "UTC", "09:00 every day, UTC"),
            ("0 9 * * 0-6", "UTC", "09:00 every day, UTC"),
            (
                "0 9 * * 1-5",
                "Europe/Berlin",
                "09:00 on weekdays, Europe/Berlin",
            ),
            (
                "0 9 * * MON-FRI",
                "Europe/Berlin",
                "09:00 on weekdays, Europe/Berlin",
            ),
            (
                "0 9 * * 1-5",
                "America/New_York",
                "09:00 on weekdays, America/New_York",
            ),
            ("0 9 * * 1", "UTC", "09:00 on Monday, UTC"),
            ("0 9 * * mon", "UTC", "09:00 on Monday, UTC"),
            ("30 18 * * 6,0", "UTC", "18:30 on weekends, UTC"),
            ("30 18 * * 6-7", "UTC", "18:30 on weekends, UTC"),
            (
                "0 7 * * 1,3,5",
                "UTC",
                "07:00 on Monday, Wednesday and Friday, UTC",
            ),
            ("0 7 * * SUN,TUE", "UTC", "07:00 on Tuesday and Sunday, UTC"),
            ("0 0 1 * *", "UTC", "00:00 on day 1 of every month, UTC"),
        ] {
            assert_eq!(cron(expression, zone), words, "{expression} in {zone}");
        }
    }

    #[test]
    fn other_cron_shapes_fall_back_to_the_expression() {
        for (expression, zone) in [
            ("30 * * * * *", "UTC"),
            ("0 9 1-7 * 1", "UTC"),
            ("0 9 * 1 *", "UTC"),
            ("0 9,17 * * *", "UTC"),
            ("*/7 * * * *", "UTC"),
            ("0 9 * * 1-5/2", "UTC"),
            ("0 9 L * *", "UTC"),
            ("0 */5 * * *", "UTC"),
            ("@daily", "UTC"),
        ] {
            assert_eq!(
                cron(expression, zone),
                format!("cron `{expression}` in {zone}")
            );
        }
    }

    #[test]
    fn forms_round_trip_and_plan_the_next_time() {
        let berlin = Schedule::Cron(Arc::new(
            CronSchedule::parse("0 9 * * 1-5", "Europe/Berlin").unwrap(),
        ));
        let every = Schedule::every(Duration::from_secs(300));
        for schedule in [&berlin, &every] {
            assert_eq!(
                Schedule::from_form(&schedule.form()).as_ref(),
                Some(schedule)
            );
        }
        assert_eq!(Schedule::from_form(&ScheduleForm::Custom), None);
        assert_eq!(Schedule::from_form(&ScheduleForm::Unknown), None);
        let cut = ScheduleForm::Cron {
            expression: "0 9 * *".into(),
            zone: "UTC".into(),
        };
        assert_eq!(Schedule::from_form(&cut), None);

        let job = |form: ScheduleForm, delay: u64| RegisteredJob {
            name: "j".into(),
            schedule_form: form,
            schedule_delay: Duration::from_secs(delay),
            scopes: ScopeCount::Fixed(1),
            ..Default::default()
        };
        // Sunday 2026-03-08: the next weekday 09:00 in Berlin is Monday's (08:00 UTC).
        let sunday = datetime!(2026-03-08 12:00 UTC);
        assert_eq!(
            next_plan_time(&job(berlin.form(), 0), sunday),
            Some(datetime!(2026-03-09 08:00 UTC))
        );
        let now = datetime!(2026-03-05 12:02:10 UTC);
        assert_eq!(
            next_plan_time(&job(every.form(), 0), now),
            Some(datetime!(2026-03-05 12:05 UTC))
        );
        // With a 3-minute delay the 12:00 plan is not eligible until 12:03.
        assert_eq!(
            next_plan_time(&job(every.form(), 180), now),
            Some(datetime!(2026-03-05 12:00 UTC))
        );
        assert_eq!(next_plan_time(&job(ScheduleForm::Custom, 0), now), None);
    }
}
