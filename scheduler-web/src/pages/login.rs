//! `/login` and `/logout`: a browser signs in with the token once and
//! keeps a session cookie; scripts send the token on every request
//! instead.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::html;
use serde::Deserialize;

use crate::app::Cx;
use crate::auth::{same_secret, session_cookie, Viewer};
use crate::render::{page, Failure};

/// The sign-in form's fields.
#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    token: String,
}

/// The sign-out form's fields.
#[derive(Debug, Deserialize)]
pub(crate) struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// `GET /login`: the sign-in form.
pub(crate) async fn login_form(cx: Cx) -> Response {
    login_page(&cx, StatusCode::OK, None)
}

/// `POST /login`: with the right token, opens a session, sets its cookie
/// and goes to the overview; otherwise the form again, with 401.
pub(crate) async fn login(cx: Cx, Form(form): Form<LoginForm>) -> Response {
    let token = cx.app.options().token.as_deref().unwrap_or_default();
    if token.is_empty() || !same_secret(token, form.token.trim()) {
        return login_page(&cx, StatusCode::UNAUTHORIZED, Some("That token is wrong."));
    }
    let id = cx.app.sessions().open();
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, session_cookie(Some(&id))),
            (header::LOCATION, cx.link("/")),
        ],
    )
        .into_response()
}

/// `POST /logout`: ends the session (its CSRF token must come along) and
/// removes the cookie.
pub(crate) async fn logout(cx: Cx, Form(form): Form<LogoutForm>) -> Result<Response, Failure> {
    let Viewer::Session { id, .. } = &cx.viewer else {
        return Err(cx.fail(
            StatusCode::BAD_REQUEST,
            "no session to end: sign-out is for browsers",
        ));
    };
    if !cx.viewer.csrf_ok(&form.csrf) {
        return Err(cx.fail(
            StatusCode::FORBIDDEN,
            "refused: the form's CSRF token is wrong; reload the page",
        ));
    }
    cx.app.sessions().close(id);
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, session_cookie(None)),
            (header::LOCATION, cx.link("/login")),
        ],
    )
        .into_response())
}

/// The sign-in form, with `error` above it.
fn login_page(cx: &Cx, status: StatusCode, error: Option<&str>) -> Response {
    page(
        cx,
        status,
        "Sign in",
        false,
        html! {
            h1 { "Sign in" }
            @if let Some(error) = error {
                p #flash .flash .error { (error) }
            }
            form #login-form method="post" action=(cx.link("/login")) {
                label for="token" { "Token" }
                input #token type="password" name="token" autocomplete="current-password" required autofocus;
                button type="submit" data-action="login" { "Sign in" }
            }
            p .hint { "The token is the one the dashboard was started with (--token-file or SCHEDULER_WEB_TOKEN)." }
        },
    )
}
