//! Terminal writes, and the bounds that keep them from ever failing: an
//! error message and a result are made storable before any store sees them
//! (`docs/contract.md` §7).

use std::time::Duration;

use serde_json::{Map, Value};

use super::{bound_text, ErrorCode};

/// The longest `error_msg` stored, in bytes (`docs/contract.md` §7).
pub const MAX_ERROR_MSG_BYTES: usize = 4000;

/// The largest `result` stored, in bytes of its JSON encoding
/// (`docs/contract.md` §7).
pub const MAX_RESULT_BYTES: usize = 16 * 1024;

/// The key under which an oversized result's marker records the original size.
pub const RESULT_TOO_LARGE_KEY: &str = "result_too_large_bytes";

/// A terminal write. Built only through [`Finish::success`] and
/// [`Finish::failure`], which enforce the `result` and `error_msg` limits, so
/// no store can be handed a value that would make the write itself fail.
#[derive(Debug, Clone, PartialEq)]
pub struct Finish {
    pub(crate) outcome: FinishOutcome,
    pub(crate) duration_ms: i32,
}

/// The two kinds of terminal write. Exhaustive on purpose: a new kind must
/// break every store at compile time, not at run time.
#[derive(Debug, Clone, PartialEq)]
pub enum FinishOutcome {
    /// The handler returned `Ok`.
    Success {
        /// From the handler.
        rows_affected: i64,
        /// Within the size limit.
        result: Map<String, Value>,
    },
    /// The attempt failed.
    Failure {
        /// Why.
        error_code: ErrorCode,
        /// Within the length limit, NUL-free.
        error_msg: String,
        /// `next_retry_at = now + retry_after` while attempts remain.
        retry_after: Duration,
    },
}

impl Finish {
    /// A successful run. An oversized result is replaced by a small marker
    /// (`docs/contract.md` §7): the handler's effects already happened, so
    /// the row must still become SUCCESS.
    pub fn success(duration: Duration, rows_affected: i64, result: Map<String, Value>) -> Self {
        Finish {
            outcome: FinishOutcome::Success {
                rows_affected,
                result: bound_result(result),
            },
            duration_ms: duration_ms(duration),
        }
    }

    /// A failed attempt; the message is cut to the limit on a character
    /// boundary and stripped of NUL characters.
    pub fn failure(
        duration: Duration,
        error_code: ErrorCode,
        error_msg: &str,
        retry_after: Duration,
    ) -> Self {
        Finish {
            outcome: FinishOutcome::Failure {
                error_code,
                error_msg: bound_error_msg(error_msg),
                retry_after,
            },
            duration_ms: duration_ms(duration),
        }
    }

    /// What the write records.
    pub fn outcome(&self) -> &FinishOutcome {
        &self.outcome
    }

    /// The handler's run time in whole milliseconds (saturating).
    pub fn duration_ms(&self) -> i32 {
        self.duration_ms
    }
}

/// A [`Finish`] as the columns it writes, for the SQL stores to bind: each
/// field is what the terminal write sets, `None` where the kind of write
/// leaves the column alone (a failure keeps `rows_affected` and `result`)
/// or clears it (a success clears the error and the retry time).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FinishColumns<'a> {
    /// `SUCCESS` or `FAILED`.
    pub status: super::Status,
    /// The handler's run time in whole milliseconds.
    pub duration_ms: i32,
    /// A success's rows affected.
    pub rows_affected: Option<i64>,
    /// A success's result.
    pub result: Option<&'a Map<String, Value>>,
    /// A failure's code.
    pub error_code: Option<ErrorCode>,
    /// A failure's message.
    pub error_msg: Option<&'a str>,
    /// A failure's wait before its retry (`next_retry_at = now +
    /// retry_after` while an attempt is left).
    pub retry_after: Option<Duration>,
}

impl Finish {
    /// The columns this write sets.
    pub fn columns(&self) -> FinishColumns<'_> {
        let none = FinishColumns {
            status: super::Status::Success,
            duration_ms: self.duration_ms,
            rows_affected: None,
            result: None,
            error_code: None,
            error_msg: None,
            retry_after: None,
        };
        // No catch-all: `FinishOutcome` is exhaustive so that a new kind of
        // terminal write fails to compile here, not at run time.
        match &self.outcome {
            FinishOutcome::Success {
                rows_affected,
                result,
            } => FinishColumns {
                rows_affected: Some(*rows_affected),
                result: Some(result),
                ..none
            },
            FinishOutcome::Failure {
                error_code,
                error_msg,
                retry_after,
            } => FinishColumns {
                status: super::Status::Failed,
                error_code: Some(*error_code),
                error_msg: Some(error_msg),
                retry_after: Some(*retry_after),
                ..none
            },
        }
    }
}

fn duration_ms(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

/// Cuts an error message to [`MAX_ERROR_MSG_BYTES`] on a UTF-8 character
/// boundary after removing NUL characters (PostgreSQL text rejects them, and
/// a rejected message would make the terminal write itself fail).
pub fn bound_error_msg(msg: &str) -> String {
    bound_text(msg, MAX_ERROR_MSG_BYTES)
}

/// Makes a handler's result storable: NUL characters are removed from every
/// string and key (PostgreSQL `jsonb` rejects `\u0000`), and a result whose
/// encoding exceeds [`MAX_RESULT_BYTES`] is replaced by
/// `{"result_too_large_bytes": N}` and logged, so the row still ends SUCCESS.
pub fn bound_result(result: Map<String, Value>) -> Map<String, Value> {
    if result.is_empty() {
        // The usual result: nothing to strip, and `{}` fits (no encoding
        // made to measure it).
        return result;
    }
    let result = strip_nul_map(result);
    let size = Value::Object(result.clone()).to_string().len();
    if size <= MAX_RESULT_BYTES {
        return result;
    }
    tracing::warn!(
        size_bytes = size,
        limit_bytes = MAX_RESULT_BYTES,
        "handler result too large; storing a marker instead"
    );
    let mut marker = Map::new();
    marker.insert(RESULT_TOO_LARGE_KEY.to_owned(), Value::from(size));
    marker
}

fn strip_nul_map(map: Map<String, Value>) -> Map<String, Value> {
    map.into_iter()
        .map(|(k, v)| (k.replace('\0', ""), strip_nul(v)))
        .collect()
}

fn strip_nul(value: Value) -> Value {
    match value {
        Value::String(s) if s.contains('\0') => Value::String(s.replace('\0', "")),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_nul).collect()),
        Value::Object(map) => Value::Object(strip_nul_map(map)),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_are_cut_on_char_boundaries_without_nul() {
        let msg = format!("a\0b{}", "é".repeat(3000));
        let bounded = bound_error_msg(&msg);
        assert!(bounded.len() <= MAX_ERROR_MSG_BYTES);
        assert!(bounded.len() >= MAX_ERROR_MSG_BYTES - 1);
        assert!(bounded.starts_with("abé"));
        assert!(!bounded.contains('\0'));
        assert_eq!(bound_error_msg("short"), "short");
    }

    #[test]
    fn oversized_results_become_a_marker_and_nul_is_stripped() {
        let mut big = Map::new();
        big.insert("blob".into(), Value::from("x".repeat(MAX_RESULT_BYTES)));
        let bounded = bound_result(big);
        assert_eq!(bounded.len(), 1);
        assert!(bounded[RESULT_TOO_LARGE_KEY].as_u64().unwrap() > MAX_RESULT_BYTES as u64);

        let mut small = Map::new();
        small.insert("k\0".into(), serde_json::json!(["a\0b", {"c": "\0"}]));
        let bounded = bound_result(small);
        assert_eq!(
            Value::Object(bounded),
            serde_json::json!({"k": ["ab", {"c": ""}]})
        );
    }

    #[test]
    fn columns_name_what_each_kind_of_write_sets() {
        let ok = Finish::success(Duration::from_millis(5), 3, Map::new());
        let c = ok.columns();
        assert_eq!(
            (
                c.status,
                c.duration_ms,
                c.rows_affected,
                c.error_code,
                c.retry_after
            ),
            (super::super::Status::Success, 5, Some(3), None, None)
        );
        let failed = Finish::failure(
            Duration::ZERO,
            ErrorCode::RunTimeout,
            "slow",
            Duration::from_secs(9),
        );
        let c = failed.columns();
        assert_eq!(
            (
                c.status,
                c.rows_affected,
                c.result,
                c.error_code,
                c.error_msg,
                c.retry_after
            ),
            (
                super::super::Status::Failed,
                None,
                None,
                Some(ErrorCode::RunTimeout),
                Some("slow"),
                Some(Duration::from_secs(9))
            )
        );
    }
}
