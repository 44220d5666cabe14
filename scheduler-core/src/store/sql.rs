//! Helpers the SQL stores (`scheduler-sqlite`, `scheduler-postgres`) share,
//! so that each is written once: rendering the statement templates they
//! keep in `sql/*.sql` files, the conversion of a row limit, and the
//! grouping of an attempts-log read.
//!
//! Part of the store-author interface: not covered by semver (see the crate
//! docs); it changes with the stores.
//!
//! # Templates
//!
//! A store keeps each statement in a `.sql` file, loaded with
//! `include_str!` and rendered once (SQLite at first use, PostgreSQL when
//! the store is built, for its table and time source), so the texts are
//! fixed for the store's life and prepared once per connection. A template
//! may hold:
//!
//! - comment lines (`--` first on the line), which say why the statement is
//!   written as it is; [`render`] drops them, so the server never parses
//!   them and a fragment spliced mid-line cannot comment out the rest;
//! - placeholders `{name}` (lowercase letters, digits, `_`), replaced by
//!   values the store supplies: a table name, its store-time expression, a
//!   fragment such as `{retry_eligible}` (itself rendered first). Values are
//!   fixed text from the store's own code, never a caller's string, except
//!   identifiers the store validated first.
//!
//! Anything else in braces (`'{}'::jsonb`) is left as it is.
//!
//! # Rules
//!
//! Each rule of the lease state machine that guards several statements is
//! written once per store, as a fragment: `sql/fragments/retry_eligible.sql`
//! ([`machine::retry_eligible`](crate::machine::retry_eligible)) and
//! `steal_eligible.sql` ([`machine::steal_eligible`](crate::machine::steal_eligible)).
//! Both stores give them the same two placeholders, filled by [`rule`]:
//! `{now}`, the instant the rule is decided at, and `{allow_stale_reentry}`,
//! a boolean (the statement's parameter, or a literal). The claim and the
//! retry read decide at store time; the summaries at each row's own due
//! time ([`summary_rules`]).

use std::collections::HashMap;

use uuid::Uuid;

use crate::model::Attempt;

/// Renders `template`: drops its comment lines, trims it, and replaces each
/// placeholder `{name}` by the value paired with `name` in `values`. Values
/// are inserted as they are, not rendered again, so a value of the form
/// `{name}` keeps that placeholder for a later rendering (of a statement
/// completed per call, say).
///
/// # Panics
/// When the template names a placeholder `values` lacks: a mistake in the
/// store's own templates, which each store's tests catch by rendering every
/// statement.
pub fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    for line in template
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
    {
        let mut rest = line;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let name = after
                .find('}')
                .map(|close| &after[..close])
                .filter(|name| is_placeholder(name));
            match name {
                Some(name) => {
                    let value = values
                        .iter()
                        .find(|(key, _)| *key == name)
                        .unwrap_or_else(|| panic!("no value for the placeholder {{{name}}}"))
                        .1;
                    out.push_str(value);
                    rest = &after[name.len() + 1..];
                }
                None => {
                    out.push('{');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out.push('\n');
    }
    out.trim().to_owned()
}

fn is_placeholder(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A rule fragment rendered for one statement (see [Rules](self#rules)):
/// decided at `now`, for `allow_stale_reentry`.
pub fn rule(template: &str, now: &str, allow_stale_reentry: &str) -> String {
    render(
        template,
        &[("now", now), ("allow_stale_reentry", allow_stale_reentry)],
    )
}

/// The retry rule as `summaries.sql` counts FAILED rows
/// ([`ScopeSummary::of_rows`](crate::model::ScopeSummary::of_rows)): decided
/// at each row's own due time, `coalesce(next_retry_at, now)`, where the
/// rule asks only for an attempt left and the code. `now` is the
/// statement's store time, `[no, yes]` the store's boolean literals.
///
/// Returns the values of the statement's two placeholders: `{pending}`,
/// the rule for a job that forbids stale re-entry (a retry that will come,
/// `retry_pending`), and `{pending_if_reentrant}`, for one that allows it
/// (every FAILED row with an attempt left, of which the `stale_timeout`
/// ones are counted apart).
pub fn summary_rules(
    retry_eligible: &str,
    now: &str,
    [no, yes]: [&str; 2],
) -> [(&'static str, String); 2] {
    let at_its_due_time = format!("coalesce(next_retry_at, {now})");
    [
        ("pending", rule(retry_eligible, &at_its_due_time, no)),
        (
            "pending_if_reentrant",
            rule(retry_eligible, &at_its_due_time, yes),
        ),
    ]
}

/// The answer of [`ExecutionAudit::attempts_of`](crate::store::ExecutionAudit::attempts_of)
/// from the records one statement `found` for `ids`: one log per id, in
/// the order of `ids` (a repeated id gets its log again, an unknown one an
/// empty log), each in the order found (the statements' attempt order).
pub fn logs_of(ids: &[Uuid], found: Vec<Attempt>) -> Vec<Vec<Attempt>> {
    let mut by_id: HashMap<Uuid, Vec<Attempt>> = HashMap::new();
    for attempt in found {
        by_id.entry(attempt.execution_id).or_default().push(attempt);
    }
    ids.iter()
        .map(|id| by_id.get(id).cloned().unwrap_or_default())
        .collect()
}

/// A row limit as SQL binds it: `i64`, saturating (a limit past
/// `i64::MAX` rows is no limit at all).
pub fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_drops_comment_lines_and_fills_placeholders() {
        let template = "-- why\n  -- indented why\nSELECT {a}, '{}'::jsonb, {B}\nFROM {t}\n";
        assert_eq!(
            render(template, &[("a", "x {t} y"), ("t", "tbl"), ("unused", "z")]),
            "SELECT x {t} y, '{}'::jsonb, {B}\nFROM tbl"
        );
    }

    #[test]
    #[should_panic(expected = "no value for the placeholder {missing}")]
    fn render_refuses_a_placeholder_without_a_value() {
        render("SELECT {missing}", &[]);
    }

    #[test]
    fn logs_come_one_per_id_in_the_order_asked() {
        use crate::model::AttemptOutcome;
        let (a, b, unknown) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let record = |execution_id, attempt| Attempt {
            execution_id,
            attempt,
            runner_id: None,
            started_at: None,
            ended_at: time::OffsetDateTime::UNIX_EPOCH,
            outcome: AttemptOutcome::Failed,
            error_code: None,
            error_msg: None,
            duration_ms: None,
        };
        let found = vec![record(a, 1), record(a, 2), record(b, 1)];
        let logs = logs_of(&[b, unknown, a, b], found);
        let numbers: Vec<Vec<(Uuid, i32)>> = logs
            .iter()
            .map(|log| log.iter().map(|r| (r.execution_id, r.attempt)).collect())
            .collect();
        assert_eq!(
            numbers,
            vec![vec![(b, 1)], vec![], vec![(a, 1), (a, 2)], vec![(b, 1)]]
        );
        assert!(logs_of(&[], Vec::new()).is_empty());
    }

    #[test]
    fn limits_saturate() {
        assert_eq!(limit(7), 7);
        assert_eq!(limit(usize::MAX), i64::MAX);
    }
}
