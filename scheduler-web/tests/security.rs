//! Sign-in, CSRF, headers, read-only mode, escaping and the execution page,
//! through the router on the memory store.

mod common;

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use axum::Router;
use common::{csrf_in, get, seed, send, Outcome, TOKEN};
use scheduler_core::{ExecutionAudit, LeaseStore, Status};
use scheduler_memory::MemoryLeaseStore;
use scheduler_web::{router, DashboardOptions};

const SCRIPT: &str = "<script>alert(1)</script>";

/// A dashboard with the token over a fresh memory store.
fn dashboard(options: DashboardOptions) -> (Arc<MemoryLeaseStore>, Router) {
    let store = Arc::new(MemoryLeaseStore::new());
    let router = router(store.clone(), options);
    (store, router)
}

/// Signs in at `/login` and returns the `Cookie` header to send.
async fn sign_in(router: &Router) -> String {
    let answer = send(
        router,
        Method::POST,
        "/login",
        &[],
        Some(&format!("token={TOKEN}")),
    )
    .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    let cookie = answer.header("set-cookie").to_owned();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie} lacks {flag}");
    }
    cookie.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn healthz_is_public_and_says_when_the_store_is_down() {
    let (store, router) = dashboard(DashboardOptions::default().token(TOKEN));
    let answer = send(&router, Method::GET, "/healthz", &[], None).await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (StatusCode::OK, "ok\n")
    );
    for (name, value) in [
        ("content-security-policy", "default-src 'self'"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "same-origin"),
        ("x-content-type-options", "nosniff"),
    ] {
        assert_eq!(answer.header(name), value, "{name}");
    }
    store.set_failing(true);
    let answer = send(&router, Method::GET, "/healthz", &[], None).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.body, "store unreachable\n");
}

#[tokio::test]
async fn metrics_render_the_given_recorder_or_are_absent() {
    let (_, router) = dashboard(DashboardOptions::default());
    let answer = send(&router, Method::GET, "/metrics", &[], None).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("dashboard_test_total").increment(3);
    });
    let (_, router) = dashboard(DashboardOptions::default().prometheus(recorder.handle()));
    let answer = send(&router, Method::GET, "/metrics", &[], None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.header("content-type").starts_with("text/plain"));
    assert!(
        answer.body.contains("dashboard_test_total 3"),
        "{}",
        answer.body
    );
}

/// With table metrics, a scrape sets the table gauges from the overview:
/// the counts the store's summaries give. The only test of this binary
/// that installs the global recorder, which the gauges are set through.
#[tokio::test]
async fn a_scrape_sets_the_table_gauges_from_the_overview() {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .unwrap();
    let options = DashboardOptions::default()
        .prometheus(handle)
        .table_metrics(true);
    let (store, router) = dashboard(options);
    seed(
        store.as_ref(),
        "report",
        &[
            ("bad", Outcome::Fail("boom")),
            ("worse", Outcome::Fail("boom")),
            ("good", Outcome::Succeed),
            ("busy", Outcome::Run),
        ],
        1,
    )
    .await;
    let summaries = store.scope_summaries(Some("report")).await.unwrap();
    let exhausted: u64 = summaries.iter().map(|s| s.exhausted).sum();
    let running: u64 = summaries.iter().map(|s| s.running).sum();
    assert_eq!((exhausted, running), (2, 1));
    let answer = send(&router, Method::GET, "/metrics", &[], None).await;
    assert_eq!(answer.status, StatusCode::OK);
    let line = |series: &str| {
        answer
            .body
            .lines()
            .find(|l| l.starts_with(series))
            .unwrap_or_else(|| panic!("no {series} in {}", answer.body))
            .to_owned()
    };
    assert_eq!(
        line(r#"scheduler_table_executions{job="report",state="exhausted"}"#),
        format!(r#"scheduler_table_executions{{job="report",state="exhausted"}} {exhausted}"#)
    );
    assert_eq!(
        line(r#"scheduler_table_executions{job="report",state="running"}"#),
        format!(r#"scheduler_table_executions{{job="report",state="running"}} {running}"#)
    );
    assert_eq!(
        line(r#"scheduler_table_paused{job="report"}"#),
        r#"scheduler_table_paused{job="report"} 0"#
    );
    assert!(line(r#"scheduler_table_last_success_timestamp_seconds{job="report"}"#).len() > 10);
}

#[tokio::test]
async fn without_the_token_pages_redirect_and_actions_are_refused() {
    let (store, router) = dashboard(DashboardOptions::default().token(TOKEN));
    let ids = seed(
        store.as_ref(),
        "report",
        &[("bad", Outcome::Fail("boom"))],
        1,
    )
    .await;
    let before = store.get_execution(ids[0]).await.unwrap();
    let page = format!("/executions/{}", ids[0]);
    let answer = send(&router, Method::GET, &page, &[], None).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.header("location"), "/login");
    let retry = format!("/actions/retry?execution={}", ids[0]);
    let answer = send(&router, Method::POST, &retry, &[], Some("csrf=")).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    let wrong = send(
        &router,
        Method::GET,
        &page,
        &[("authorization", "Bearer nope")],
        None,
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let answer = send(&router, Method::POST, "/login", &[], Some("token=nope")).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(answer.header("set-cookie").is_empty());
    assert_eq!(
        store.get_execution(ids[0]).await.unwrap(),
        before,
        "not retried"
    );
}

#[tokio::test]
async fn a_signed_in_browser_retries_with_its_csrf_token_only() {
    let (store, router) = dashboard(DashboardOptions::default().token(TOKEN));
    let ids = seed(
        store.as_ref(),
        "report",
        &[("bad", Outcome::Fail("boom"))],
        1,
    )
    .await;
    let before = store.get_execution(ids[0]).await.unwrap();
    let cookie = sign_in(&router).await;
    let cookie = [("cookie", cookie.as_str())];
    let page = send(
        &router,
        Method::GET,
        &format!("/executions/{}", ids[0]),
        &cookie,
        None,
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains(r#"data-action="retry""#),
        "{}",
        page.body
    );
    let retry = format!("/actions/retry?execution={}", ids[0]);
    let confirm = send(&router, Method::GET, &retry, &cookie, None).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.body.contains(r#"id="confirm""#));
    assert!(confirm.body.contains("becomes due at once"));
    let csrf = csrf_in(&confirm.body);

    let forged = send(&router, Method::POST, &retry, &cookie, Some("csrf=forged")).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let missing = send(&router, Method::POST, &retry, &cookie, Some("")).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    let cross_site = [
        cookie[0],
        ("host", "dash.test"),
        ("origin", "https://evil.test"),
    ];
    let form = format!("csrf={csrf}");
    let answer = send(&router, Method::POST, &retry, &cross_site, Some(&form)).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(
        store.get_execution(ids[0]).await.unwrap(),
        before,
        "nothing refused may retry"
    );

    let same_site = [
        cookie[0],
        ("host", "dash.test"),
        ("origin", "https://dash.test"),
    ];
    let done = send(&router, Method::POST, &retry, &same_site, Some(&form)).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains(r#"id="flash""#) && done.body.contains("is due again"));
    let row = store.get_execution(ids[0]).await.unwrap().unwrap();
    assert_eq!(row.status, Status::Failed);
    assert!(
        row.next_retry_at <= Some(store.now().await.unwrap()),
        "due now"
    );
    assert_eq!(row.max_attempts, 2, "one more attempt granted");

    // Retrying it again is no 500: the row is not exhausted any more, but
    // a SUCCESS row is refused with the store's reason.
    let ok = seed(store.as_ref(), "report", &[("good", Outcome::Succeed)], 1).await;
    let retry_ok = format!("/actions/retry?execution={}", ok[0]);
    let refused = send(&router, Method::POST, &retry_ok, &cookie, Some(&form)).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert!(refused.body.contains(r#"class="flash error""#));

    let logout = send(&router, Method::POST, "/logout", &cookie, Some(&form)).await;
    assert_eq!(logout.status, StatusCode::SEE_OTHER);
    let after = send(&router, Method::GET, "/healthz", &cookie, None).await;
    assert_eq!(after.status, StatusCode::OK);
    let after = send(&router, Method::GET, &retry, &cookie, None).await;
    assert_eq!(after.status, StatusCode::SEE_OTHER, "the session ended");
}

#[tokio::test]
async fn scripts_act_with_the_bearer_token_and_bad_input_is_explained() {
    let (store, router) = dashboard(DashboardOptions::default().token(TOKEN));
    let ids = seed(
        store.as_ref(),
        "report",
        &[("bad", Outcome::Fail("boom"))],
        1,
    )
    .await;
    let auth = format!("Bearer {TOKEN}");
    let bearer = [("authorization", auth.as_str())];
    let retry = format!("/actions/retry?execution={}", ids[0]);
    let done = send(&router, Method::POST, &retry, &bearer, Some("")).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let pause = "/actions/pause?job=report";
    let bad = send(
        &router,
        Method::POST,
        pause,
        &bearer,
        Some("until=tomorrow"),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("not an RFC 3339 instant"), "{}", bad.body);
    let past = send(
        &router,
        Method::POST,
        pause,
        &bearer,
        Some("until=2000-01-01T00:00:00Z"),
    )
    .await;
    assert_eq!(past.status, StatusCode::BAD_REQUEST);
    assert!(past.body.contains("is not in the future"), "{}", past.body);
    let paused = send(
        &router,
        Method::POST,
        pause,
        &bearer,
        Some("note=deploy+%3Cb%3E"),
    )
    .await;
    assert_eq!(paused.status, StatusCode::OK, "{}", paused.body);
    assert!(
        paused.body.contains("no live replica runs job"),
        "the warning shows"
    );
    let again = send(&router, Method::POST, pause, &bearer, Some("")).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    let unknown = get(&router, "/actions/explode?job=report").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let missing = get(&router, "/actions/pause").await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    let half_scope = get(&router, "/actions/pause?job=report&scope_kind=tenant").await;
    assert_eq!(half_scope.status, StatusCode::BAD_REQUEST);
    let cancel = get(
        &router,
        &format!("/actions/cancel?control={}", uuid::Uuid::nil()),
    )
    .await;
    assert_eq!(cancel.status, StatusCode::OK);
    let cancelled = send(
        &router,
        Method::POST,
        &format!("/actions/cancel?control={}", uuid::Uuid::nil()),
        &bearer,
        Some(""),
    )
    .await;
    assert_eq!(
        cancelled.status,
        StatusCode::NOT_FOUND,
        "{}",
        cancelled.body
    );
}

#[tokio::test]
async fn read_only_and_tokenless_dashboards_have_no_actions() {
    for options in [
        DashboardOptions::default().token(TOKEN).read_only(true),
        DashboardOptions::default(),
    ] {
        let (store, router) = dashboard(options);
        let ids = seed(
            store.as_ref(),
            "report",
            &[("bad", Outcome::Fail("boom"))],
            1,
        )
        .await;
        let before = store.get_execution(ids[0]).await.unwrap();
        let page = get(&router, &format!("/executions/{}", ids[0])).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            !page.body.contains("data-action=\"retry\""),
            "{}",
            page.body
        );
        assert!(!page.body.contains("/actions/"));
        let retry = format!("/actions/retry?execution={}", ids[0]);
        assert_eq!(get(&router, &retry).await.status, StatusCode::NOT_FOUND);
        let auth = format!("Bearer {TOKEN}");
        let posted = send(
            &router,
            Method::POST,
            &retry,
            &[("authorization", &auth)],
            Some(""),
        )
        .await;
        assert_eq!(posted.status, StatusCode::NOT_FOUND);
        assert_eq!(
            store.get_execution(ids[0]).await.unwrap(),
            before,
            "not retried"
        );
    }
}

#[tokio::test]
async fn the_execution_page_shows_every_field_escaped() {
    let (store, router) = dashboard(DashboardOptions::default().token(TOKEN));
    let job = format!("job {SCRIPT}");
    let ids = seed(
        store.as_ref(),
        &job,
        &[
            ("bad", Outcome::Fail(SCRIPT)),
            ("ok", Outcome::Succeed),
            ("live", Outcome::Run),
        ],
        1,
    )
    .await;
    let page = get(&router, &format!("/executions/{}", ids[0])).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        !page.body.contains(SCRIPT),
        "nothing unescaped: {}",
        page.body
    );
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.body.contains(r#"id="error-message""#));
    assert!(page.body.contains("handler_error"));
    assert!(page.body.contains("runner-a"));
    assert!(page.body.contains("7 ms"), "the attempt's duration");
    assert!(page.body.contains(r#"data-attempt="1""#));
    // A finished row's lease is history: its last heartbeat, no "ago", no
    // staleness; a failure with no result says so.
    assert!(page.body.contains("last heartbeat"));
    assert!(!page.body.contains("stale after") && !page.body.contains(" ago)"));
    assert!(page
        .body
        .contains(r#"<p class="meta" id="result">none</p>"#));
    assert!(page
        .body
        .contains("/jobs/job%20%3Cscript%3Ealert%281%29%3C%2Fscript%3E"));
    let ok = get(&router, &format!("/executions/{}", ids[1])).await;
    assert!(
        ok.body.contains("&lt;b&gt;bold&lt;/b&gt;"),
        "the result JSON, escaped"
    );
    assert!(
        ok.body.contains("{\n  &quot;note&quot;: "),
        "pretty-printed"
    );
    assert!(!ok.body.contains("<b>bold"));
    let live = get(&router, &format!("/executions/{}", ids[2])).await;
    assert!(live.body.contains("stale after"), "a running row's lease");
    assert!(live.body.contains(" ago)"), "how long since its heartbeat");

    let fragment = send(
        &router,
        Method::GET,
        &format!("/executions/{}", ids[0]),
        &[
            ("authorization", &format!("Bearer {TOKEN}")),
            ("x-dashboard-fragment", "main"),
        ],
        None,
    )
    .await;
    assert_eq!(fragment.header("x-dashboard-fragment"), "main");
    assert!(!fragment.body.contains("<html") && fragment.body.contains("id=\"attempts\""));

    let bad = get(&router, "/executions/not-a-uuid").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let unknown = get(&router, &format!("/executions/{}", uuid::Uuid::nil())).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.body.contains("no execution with id"));
    assert_eq!(get(&router, "/nowhere").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn mounted_under_a_prefix_links_follow_it() {
    let store = Arc::new(MemoryLeaseStore::new());
    let ids = seed(
        store.as_ref(),
        "report",
        &[("bad", Outcome::Fail("boom"))],
        1,
    )
    .await;
    let app = Router::new().nest(
        "/ops",
        router(store.clone(), DashboardOptions::default().token(TOKEN)),
    );
    let page = get(&app, &format!("/ops/executions/{}", ids[0])).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(r#"href="/ops/assets/dashboard.css""#));
    assert!(page.body.contains(r#"href="/ops/jobs/report""#));
    assert!(page
        .body
        .contains(&format!("/ops/actions/retry?execution={}", ids[0])));
    let overview = get(&app, "/ops").await;
    assert_eq!(overview.status, StatusCode::OK);
    assert!(
        overview.body.contains(r#"id="home" href="/ops""#),
        "{}",
        overview.body
    );
    let anonymous = send(&app, Method::GET, "/ops/jobs/report", &[], None).await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert_eq!(anonymous.header("location"), "/ops/login");
    let css = send(&app, Method::GET, "/ops/assets/dashboard.css", &[], None).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.header("content-type").starts_with("text/css"));
}
