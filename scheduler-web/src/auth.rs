//! Who is asking: the token check (a bearer header or a session cookie),
//! the in-memory sessions `/login` opens, the CSRF token each session
//! carries, and the same-origin rule for every POST.
//!
//! Scripts send `Authorization: Bearer TOKEN` on every request; they need
//! no CSRF token, since a browser never adds that header by itself. A
//! browser signs in once at `/login` and gets a random session id in a
//! cookie (HttpOnly, SameSite=Strict, Path=/); each POST it makes must
//! then carry the session's CSRF token in the `csrf` form field.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::app::{base_of, App};

/// The session cookie's name.
pub(crate) const COOKIE: &str = "scheduler_session";

/// How long a session lasts after sign-in, however active.
const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// The most sessions kept at once: signing in beyond it drops the oldest,
/// so that a script signing in in a loop cannot grow memory without end.
const MAX_SESSIONS: usize = 1000;

/// Who a request comes from, as the guard found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Viewer {
    /// No token is configured: everyone may read, nobody may act.
    Open,
    /// A token is configured and this request has none (public routes
    /// only: `/healthz`, `/login`, the assets).
    Anonymous,
    /// The request carried the token as a bearer header.
    Bearer,
    /// The request carried a live session cookie.
    Session {
        /// The session id (the cookie's value).
        id: String,
        /// The token its POSTs must carry.
        csrf: String,
    },
}

impl Viewer {
    /// Whether the request proved it knows the token.
    pub(crate) fn signed_in(&self) -> bool {
        matches!(self, Viewer::Bearer | Viewer::Session { .. })
    }

    /// The CSRF token forms must carry (empty for a bearer, who needs
    /// none).
    pub(crate) fn csrf(&self) -> &str {
        match self {
            Viewer::Session { csrf, .. } => csrf,
            _ => "",
        }
    }

    /// Whether a POST with form field `csrf` may act: a bearer always, a
    /// session only with its own token.
    pub(crate) fn csrf_ok(&self, csrf: &str) -> bool {
        match self {
            Viewer::Bearer => true,
            Viewer::Session { csrf: expected, .. } => same_secret(expected, csrf),
            Viewer::Open | Viewer::Anonymous => false,
        }
    }
}

/// One signed-in browser.
#[derive(Debug)]
struct Session {
    csrf: String,
    opened: Instant,
}

/// The open sessions, by id, in memory: a restart signs everyone out.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    open: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Opens a session and returns its id.
    pub(crate) fn open(&self) -> String {
        let id = random_token();
        let mut open = self.open.lock().expect("sessions lock");
        open.retain(|_, s| s.opened.elapsed() < SESSION_LIFETIME);
        if open.len() >= MAX_SESSIONS {
            if let Some(oldest) = open
                .iter()
                .min_by_key(|(_, s)| s.opened)
                .map(|(id, _)| id.clone())
            {
                open.remove(&oldest);
            }
        }
        open.insert(
            id.clone(),
            Session {
                csrf: random_token(),
                opened: Instant::now(),
            },
        );
        id
    }

    /// The CSRF token of live session `id`, if it is one.
    fn csrf_of(&self, id: &str) -> Option<String> {
        let open = self.open.lock().expect("sessions lock");
        open.get(id)
            .filter(|s| s.opened.elapsed() < SESSION_LIFETIME)
            .map(|s| s.csrf.clone())
    }

    /// Ends session `id`.
    pub(crate) fn close(&self, id: &str) {
        self.open.lock().expect("sessions lock").remove(id);
    }
}

/// 32 bytes from the operating system's random source, as hex.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two secrets in time independent of where they differ.
pub(crate) fn same_secret(expected: &str, given: &str) -> bool {
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

/// The `Set-Cookie` value that stores session `id` (or, with `None`,
/// removes the cookie).
pub(crate) fn session_cookie(id: Option<&str>) -> String {
    match id {
        Some(id) => format!("{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/"),
        None => format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether a POST comes from a page of this dashboard: no `Origin`
/// header (a script), or one whose host and port are the `Host` header's.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let authority = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest.trim_end_matches('/'));
    matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
}

/// Routes anyone may reach, signed in or not.
fn public(path: &str) -> bool {
    path == "/healthz" || path == "/login" || path.starts_with("/assets/")
}

/// The middleware before every route: refuses a cross-origin POST (403),
/// finds the [`Viewer`], and, when a token is configured, sends a browser
/// without it to `/login` (a GET) or refuses the request (401).
pub(crate) async fn guard(State(app): State<App>, mut request: Request, next: Next) -> Response {
    let headers = request.headers();
    if request.method() == Method::POST && !same_origin(headers) {
        return (
            StatusCode::FORBIDDEN,
            "refused: this form was posted from another site",
        )
            .into_response();
    }
    let viewer = match app.options().token.as_deref() {
        None => Viewer::Open,
        Some(token) => {
            let bearer = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            match bearer {
                Some(given) if same_secret(token, given.trim()) => Viewer::Bearer,
                Some(_) => return unauthorized("the bearer token is wrong"),
                None => match cookie(headers, COOKIE)
                    .and_then(|id| app.sessions().csrf_of(id).map(|csrf| (id, csrf)))
                {
                    Some((id, csrf)) => Viewer::Session {
                        id: id.to_owned(),
                        csrf,
                    },
                    None => Viewer::Anonymous,
                },
            }
        }
    };
    if viewer == Viewer::Anonymous && !public(request.uri().path()) {
        if matches!(*request.method(), Method::GET | Method::HEAD) {
            let login = format!("{}/login", base_of(request.extensions()));
            return (StatusCode::SEE_OTHER, [(header::LOCATION, login)]).into_response();
        }
        return unauthorized("sign in first: send `Authorization: Bearer TOKEN`, or use /login");
    }
    request.extensions_mut().insert(viewer);
    next.run(request).await
}

/// 401 with a bearer challenge.
fn unauthorized(why: &'static str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        why,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn an_origin_must_name_the_host() {
        let mut headers = HeaderMap::new();
        assert!(same_origin(&headers), "a script sends no Origin");
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&headers));
        headers.insert(header::ORIGIN, HeaderValue::from_static("http://evil.test"));
        assert!(!same_origin(&headers));
        headers.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&headers));
    }

    #[test]
    fn cookies_and_secrets() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; scheduler_session=abc; b=2"),
        );
        assert_eq!(cookie(&headers, COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "c"), None);
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }

    #[test]
    fn sessions_open_and_close() {
        let sessions = Sessions::default();
        let id = sessions.open();
        let csrf = sessions.csrf_of(&id).expect("open");
        assert_eq!(csrf.len(), 64);
        assert!(sessions.csrf_of("nope").is_none());
        sessions.close(&id);
        assert!(sessions.csrf_of(&id).is_none());
    }
}
