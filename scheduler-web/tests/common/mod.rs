//! What the dashboard's tests share: calling the router, and rows to show.

#![allow(dead_code)] // each test binary uses its own part

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use scheduler_conformance::fixtures;
use scheduler_core::{ErrorCode, Finish, LeaseStore, LeaseStoreExt as _};
use serde_json::{Map, Value};
use tower::ServiceExt as _;
use uuid::Uuid;

/// The token the tests configure.
pub const TOKEN: &str = "test-token-1234";

/// An answer: status, headers, body text.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    /// A header's value as text ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// Sends one request to `router`: `headers` as (name, value) pairs, and
/// `form` (already encoded) as an urlencoded body when given.
pub async fn send(
    router: &Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    form: Option<&str>,
) -> Answer {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = match form {
        Some(form) => {
            request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            Body::from(form.to_owned())
        }
        None => Body::empty(),
    };
    let response = router
        .clone()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

/// A GET with the bearer token.
pub async fn get(router: &Router, uri: &str) -> Answer {
    let auth = format!("Bearer {TOKEN}");
    send(router, Method::GET, uri, &[("authorization", &auth)], None).await
}

/// How a seeded execution ends.
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    /// SUCCESS, with a result holding markup.
    Succeed,
    /// FAILED with this message (retry in an hour when attempts are left).
    Fail(&'a str),
    /// Left RUNNING.
    Run,
}

/// Claims one plan of `job` per scope (`tenant/ID`) at store time floored
/// to the minute, with `max_attempts`, and ends each as its outcome says.
/// Returns the ids in order.
pub async fn seed(
    store: &dyn LeaseStore,
    job: &str,
    scopes: &[(&str, Outcome<'_>)],
    max_attempts: i32,
) -> Vec<Uuid> {
    let tenant_ids: Vec<&str> = scopes.iter().map(|(id, _)| *id).collect();
    let leases = fixtures::claim_now(store, job, "runner-a", &tenant_ids, max_attempts).await;
    for (lease, (_, how)) in leases.iter().zip(scopes) {
        let finish = match how {
            Outcome::Fail(message) => Some(Finish::failure(
                Duration::from_millis(7),
                ErrorCode::HandlerError,
                message,
                Duration::from_secs(3600),
            )),
            Outcome::Succeed => {
                let mut result = Map::new();
                result.insert("note".into(), Value::from("<b>bold</b>"));
                Some(Finish::success(Duration::from_millis(12), 5, result))
            }
            Outcome::Run => None,
        };
        if let Some(finish) = finish {
            store.finish(lease, &finish).await.unwrap();
        }
    }
    leases.iter().map(|lease| lease.id).collect()
}

/// The value of `name="csrf"`'s hidden input in `html`.
pub fn csrf_in(html: &str) -> String {
    let at = html
        .find(r#"name="csrf" value=""#)
        .expect("the page has a CSRF field");
    let rest = &html[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}
