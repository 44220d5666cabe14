//! How the CLI speaks: failures with their exit codes, writing to stdout
//! without panicking, tables, and instants in UTC or local time, always
//! labelled.

use std::fmt;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;

/// Why a command did not succeed, and so which exit code it ends with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The command line is wrong (exit 2): nothing was done.
    Usage(String),
    /// The command could not do its work (exit 1): the store, the file
    /// system or the output failed.
    Runtime(String),
}

impl Failure {
    /// The process exit code: 2 for usage, 1 for the rest.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Failure::Usage(_) => ExitCode::from(2),
            Failure::Runtime(_) => ExitCode::from(1),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(m) | Failure::Runtime(m) => f.write_str(m),
        }
    }
}

/// Most failures come from a store or the file system: runtime errors.
impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure::Runtime(message)
    }
}

/// Writes `text` to stdout. A write that fails (a full disk, `/dev/full`,
/// a closed pipe) is a runtime failure with one line, never a panic, which
/// `print!` would be.
pub fn emit(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::Runtime(format!("cannot write the output: {e}")))
}

/// [`emit`] of one JSON document and a newline.
pub fn emit_json(document: &Value) -> Result<(), Failure> {
    emit(&format!("{document}\n"))
}

/// Where instants are shown: UTC (the default) or the local time zone
/// (`--local-time`: `TZ`, else the system's zone).
#[derive(Debug, Clone)]
pub enum Zone {
    /// Coordinated universal time.
    Utc,
    /// The system's time zone.
    Local(jiff::tz::TimeZone),
}

impl Zone {
    /// The zone `--local-time` asks for.
    pub fn local() -> Zone {
        Zone::Local(jiff::tz::TimeZone::system())
    }

    /// The label a column of instants carries, e.g. `(UTC)` or
    /// `(America/New_York)`.
    pub fn label(&self) -> String {
        match self {
            Zone::Utc => "(UTC)".to_owned(),
            Zone::Local(tz) => format!("({})", tz.iana_name().unwrap_or("local time")),
        }
    }

    /// `2026-03-05 12:30:00`, with milliseconds when there are any, in this
    /// zone; `-` for none.
    pub fn ts(&self, t: Option<OffsetDateTime>) -> String {
        let Some(t) = t else {
            return "-".to_owned();
        };
        let millis = t.millisecond();
        let seconds = match self {
            Zone::Utc => format!(
                "{} {:02}:{:02}:{:02}",
                t.date(),
                t.hour(),
                t.minute(),
                t.second()
            ),
            Zone::Local(tz) => {
                let micros = i64::try_from(t.unix_timestamp_nanos() / 1_000).unwrap_or(0);
                match jiff::Timestamp::from_microsecond(micros) {
                    Ok(stamp) => stamp
                        .to_zoned(tz.clone())
                        .strftime("%Y-%m-%d %H:%M:%S")
                        .to_string(),
                    Err(_) => t.to_string(),
                }
            }
        };
        match millis {
            0 => seconds,
            ms => format!("{seconds}.{ms:03}"),
        }
    }
}

/// How long ago `t` was, from `now`: `5m 3s ago`, `never`.
pub fn ago(now: OffsetDateTime, t: Option<OffsetDateTime>) -> String {
    match t {
        Some(t) if t <= now => {
            let secs = (now - t).whole_seconds().max(0) as u64;
            format!(
                "{} ago",
                humantime::format_duration(Duration::from_secs(secs))
            )
        }
        Some(_) => "in the future".to_owned(),
        None => "never".to_owned(),
    }
}

/// An instant for JSON: RFC 3339 in UTC (`…Z`), or null.
pub fn json_ts(t: Option<OffsetDateTime>) -> Value {
    t.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .map(Value::String)
    .unwrap_or(Value::Null)
}

/// Text an operator or a replica chose (a job name, a note, a reason) as
/// it may be printed: escaped as [`str::escape_debug`] does, so that a
/// newline, a tab or a terminal escape sequence can neither break a table's
/// layout nor reach the terminal (the jobs and replicas tables escaped
/// names so already).
pub fn escape(text: &str) -> String {
    text.escape_debug().to_string()
}

/// [`escape`]d text for a table cell, cut to at most `max` characters
/// with `...` (`--json` prints it whole); `-` for none.
pub fn text_cell(text: &str, max: usize) -> String {
    if text.is_empty() {
        return "-".to_owned();
    }
    let escaped = escape(text);
    if escaped.chars().count() <= max {
        return escaped;
    }
    escaped
        .chars()
        .take(max.saturating_sub(3))
        .collect::<String>()
        + "..."
}

/// Rows as an aligned table, header first.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push_str(&line(row.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn tables_align_columns() {
        let out = table(&["a", "bb"], &[vec!["xxx".into(), "y".into()]]);
        assert_eq!(out, "a    bb\nxxx  y\n");
    }

    #[test]
    fn operator_text_is_escaped_and_cut_so_it_cannot_break_a_table() {
        assert_eq!(escape("a\nb\t\u{1b}[31m"), "a\\nb\\t\\u{1b}[31m");
        assert_eq!(text_cell("", 10), "-");
        assert_eq!(text_cell("deploy", 10), "deploy");
        let cut = text_cell(&"x".repeat(50), 10);
        assert_eq!((cut.chars().count(), cut.ends_with("...")), (10, true));
        let out = table(
            &["note", "n"],
            &[vec![text_cell("two\nlines", 40), "1".into()]],
        );
        assert_eq!(out.lines().count(), 2, "{out}");
    }

    #[test]
    fn instants_are_shown_in_the_zone_they_are_labelled_with() {
        let t = datetime!(2026-07-01 12:30:00.250 UTC);
        assert_eq!(Zone::Utc.ts(Some(t)), "2026-07-01 12:30:00.250");
        assert_eq!(Zone::Utc.label(), "(UTC)");
        let new_york = Zone::Local(jiff::tz::TimeZone::get("America/New_York").unwrap());
        assert_eq!(new_york.ts(Some(t)), "2026-07-01 08:30:00.250");
        assert_eq!(new_york.label(), "(America/New_York)");
        assert_eq!(Zone::Utc.ts(None), "-");
    }

    #[test]
    fn usage_failures_exit_2_and_runtime_failures_exit_1() {
        assert_eq!(Failure::Usage("x".into()).exit_code(), ExitCode::from(2));
        assert_eq!(Failure::Runtime("x".into()).exit_code(), ExitCode::from(1));
    }
}
