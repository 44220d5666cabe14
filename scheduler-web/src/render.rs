//! What every page shares: the layout around `<main>` (or `<main>`'s
//! content alone, for the page script), failures as pages, and how
//! instants, spans and names in links are written.
//!
//! Every piece of operator-controlled text goes through maud's `(expr)`
//! splices, which escape it; nothing here uses `PreEscaped` on such text.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};
use scheduler_core::time::Rfc3339;
use scheduler_core::{OperatorError, StoreError};
use time::OffsetDateTime;

use crate::app::{Cx, FRAGMENT_HEADER};

/// A page: the layout with `main` inside, or `main`'s content alone when
/// the page script asked for it. `live` pages re-fetch themselves; forms
/// and confirmations do not.
pub(crate) fn page(cx: &Cx, status: StatusCode, title: &str, live: bool, main: Markup) -> Response {
    let mut response = if cx.fragment {
        let mut response = (status, main).into_response();
        response
            .headers_mut()
            .insert(FRAGMENT_HEADER, HeaderValue::from_static("main"));
        response
    } else {
        (status, layout(cx, title, live, main)).into_response()
    };
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static(FRAGMENT_HEADER));
    response
}

/// The whole document around `main`.
fn layout(cx: &Cx, title: &str, live: bool, main: Markup) -> Markup {
    let options = cx.app.options();
    let mode = if options.token.is_none() {
        Some("read-only: no token configured")
    } else if options.read_only {
        Some("read-only")
    } else {
        None
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · scheduler" }
                link rel="stylesheet" href=(cx.link("/assets/dashboard.css"));
                script src=(cx.link("/assets/dashboard.js")) defer {}
            }
            body data-refresh-ms=(options.refresh.as_millis()) {
                header #top {
                    a #home href=(cx.link("/")) { "scheduler" }
                    @if let Some(mode) = mode {
                        span #mode .badge { (mode) }
                    }
                    @if options.token.is_some() {
                        @if let crate::auth::Viewer::Session { .. } = cx.viewer {
                            form #logout method="post" action=(cx.link("/logout")) {
                                input type="hidden" name="csrf" value=(cx.viewer.csrf());
                                button type="submit" data-action="logout" { "Sign out" }
                            }
                        } @else if !cx.viewer.signed_in() {
                            a #login href=(cx.link("/login")) { "Sign in" }
                        }
                    }
                }
                main #main data-live=(if live { "on" } else { "off" }) { (main) }
            }
        }
    }
}

/// A request that could not be served, shown as a page with its status.
pub(crate) struct Failure {
    cx: Cx,
    status: StatusCode,
    message: String,
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("error");
        page(
            &self.cx,
            self.status,
            title,
            false,
            html! {
                h1 { (title) }
                p #flash .flash .error { (self.message) }
                p { a href=(self.cx.link("/")) { "Back to the overview" } }
            },
        )
    }
}

impl Cx {
    /// A failure page with `status` saying `message`.
    pub(crate) fn fail(&self, status: StatusCode, message: impl Into<String>) -> Failure {
        Failure {
            cx: self.clone(),
            status,
            message: message.into(),
        }
    }

    /// A store error as a failure page, with [`store_status`].
    pub(crate) fn store_failed(&self, error: StoreError) -> Failure {
        self.fail(store_status(&error), error.to_string())
    }

    /// An operator's error as a failure page, with [`operator_status`].
    pub(crate) fn operator_failed(&self, error: OperatorError) -> Failure {
        self.fail(operator_status(&error), error.to_string())
    }
}

/// The status an operator's error answers with: 400 for a request that
/// makes no sense as asked, 404 for an unknown control, and
/// [`store_status`] for the store's.
pub(crate) fn operator_status(error: &OperatorError) -> StatusCode {
    match error {
        OperatorError::Refused(_) | OperatorError::Invalid(_) => StatusCode::BAD_REQUEST,
        OperatorError::UnknownControl(_) => StatusCode::NOT_FOUND,
        OperatorError::Store(e) => store_status(e),
    }
}

/// The status a store error answers with: 404 for an unknown row, 409 for
/// a refusal by state, 400 for input no store can keep, 503 for the rest
/// (the store failed; trying later may work).
pub(crate) fn store_status(error: &StoreError) -> StatusCode {
    match error {
        StoreError::NotFound { .. } => StatusCode::NOT_FOUND,
        StoreError::Conflict(_) => StatusCode::CONFLICT,
        StoreError::InvalidInput(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// An instant in a `<time>` element: its [`compact`] form, with the full
/// RFC 3339 in `datetime` and in the tooltip; `-` for none.
pub(crate) fn instant(t: Option<OffsetDateTime>) -> Markup {
    match t {
        Some(t) => {
            let full = Rfc3339(t).to_string();
            html! { time datetime=(full) title=(full) { (compact(t)) } }
        }
        None => html! { "-" },
    }
}

/// An instant as the pages write it: UTC to the second with a space for
/// the `T` (`2026-12-07 17:15:00Z`), shorter to scan in a table column
/// than RFC 3339 with its fraction, which the tooltip keeps.
pub(crate) fn compact(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// How long before `now` the instant `t` was: `3m 20s ago`, `never`, or
/// `in 5s` for one after `now`.
pub(crate) fn ago(now: OffsetDateTime, t: Option<OffsetDateTime>) -> String {
    match t {
        None => "never".to_owned(),
        Some(t) if t <= now => format!("{} ago", span(now - t)),
        Some(t) => format!("in {}", span(t - now)),
    }
}

/// A span in its two largest units: `2d 3h`, `5m 12s`, `40s`, `120ms`.
pub(crate) fn span(d: time::Duration) -> String {
    let ms = d.whole_milliseconds().unsigned_abs();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = ms / 1000;
    let units = [(86_400, "d"), (3600, "h"), (60, "m"), (1, "s")];
    let parts: Vec<String> = units
        .iter()
        .scan(secs, |left, &(size, unit)| {
            let n = *left / size;
            *left %= size;
            Some((n, unit))
        })
        .skip_while(|(n, _)| *n == 0)
        .take(2)
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    parts.join(" ")
}

/// `text` as one path segment or query value of a link: every byte but
/// the unreserved ones (`A-Z a-z 0-9 - . _ ~`) percent-encoded, so a job
/// named `a/b?c` links to its own page.
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_show_two_units() {
        assert_eq!(span(time::Duration::milliseconds(120)), "120ms");
        assert_eq!(span(time::Duration::seconds(40)), "40s");
        assert_eq!(span(time::Duration::seconds(312)), "5m 12s");
        assert_eq!(span(time::Duration::seconds(3600)), "1h");
        assert_eq!(
            span(time::Duration::seconds(2 * 86_400 + 3 * 3600 + 5)),
            "2d 3h"
        );
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::hours(1);
        assert_eq!(ago(now, None), "never");
        assert_eq!(ago(now, Some(now - time::Duration::seconds(5))), "5s ago");
        assert_eq!(ago(now, Some(now + time::Duration::seconds(5))), "in 5s");
    }

    #[test]
    fn instants_are_compact_with_the_full_form_kept() {
        let t = time::macros::datetime!(2026-12-07 18:15:00.546 +01:00);
        assert_eq!(compact(t), "2026-12-07 17:15:00Z");
        let shown = instant(Some(t)).into_string();
        assert_eq!(
            shown,
            r#"<time datetime="2026-12-07T17:15:00.546Z" title="2026-12-07T17:15:00.546Z">2026-12-07 17:15:00Z</time>"#
        );
        assert_eq!(instant(None).into_string(), "-");
    }

    #[test]
    fn names_in_links_are_encoded() {
        assert_eq!(encode("daily_digest"), "daily_digest");
        assert_eq!(encode("a/b?c d"), "a%2Fb%3Fc%20d");
        assert_eq!(encode("<é>"), "%3C%C3%A9%3E");
    }
}
