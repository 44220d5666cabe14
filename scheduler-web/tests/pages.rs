//! The overview and job pages on the memory store (store time injected):
//! the jobs and their counts, problem flags, the scope list's filter, order
//! and pages, strips read only for the scopes shown; and the overview on
//! SQLite.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use common::{get, seed, Outcome, TOKEN};
use scheduler_conformance::fixtures;
use scheduler_core::store::CountingStore;
use scheduler_core::{
    ExecutionAudit, JobOutput, JobSpec, LeaseStore, ManualClock, Operator, Scope, Scopes, Target,
    TimeControl as _,
};
use scheduler_memory::MemoryLeaseStore;
use scheduler_web::{router, DashboardOptions};
use time::macros::datetime;
use time::OffsetDateTime;

const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);
const SCRIPT: &str = "<script>alert(1)</script>";

/// Announces replica `runner_id` starting, running `rollup` (every 5
/// minutes, tenants a, b, c) and a job named [`SCRIPT`].
async fn announce_as(store: &dyn LeaseStore, runner_id: &str) {
    let tenants = Scopes::fixed(["a", "b", "c"].map(|t| Scope::new("tenant", t)));
    let noop = |_| async { Ok(JobOutput::rows(0)) };
    let jobs = vec![
        JobSpec::new("rollup", tenants.clone(), noop)
            .cadence(Duration::from_secs(300))
            .registration(),
        JobSpec::new(SCRIPT, tenants, noop)
            .cadence(Duration::from_secs(3600))
            .registration(),
    ];
    fixtures::announce(store, fixtures::replica(runner_id, jobs)).await;
}

/// Announces a live replica, r1, starting now: see [`announce_as`].
async fn announce(store: &dyn LeaseStore) {
    announce_as(store, "r1").await;
}

/// The `<tr>` holding `attribute` (e.g. `data-job="rollup"`) in `html`.
fn row<'a>(html: &'a str, attribute: &str) -> &'a str {
    let at = html
        .find(attribute)
        .unwrap_or_else(|| panic!("no row with {attribute} in {html}"));
    let start = html[..at].rfind("<tr").unwrap();
    let end = at + html[at..].find("</tr>").unwrap();
    &html[start..end]
}

/// The text of the cell `data-count="name"` in `row`.
fn count<'a>(row: &'a str, name: &str) -> &'a str {
    let marker = format!(r#"data-count="{name}">"#);
    let at = row
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {row}"))
        + marker.len();
    &row[at..at + row[at..].find('<').unwrap()]
}

#[tokio::test]
async fn the_overview_lists_every_job_with_its_counts_and_flags() {
    // The jobs were first deployed an hour ago (r0, gone since): the plans
    // of that hour are missed plans.
    let clock = ManualClock::new(NOW - Duration::from_secs(3600));
    let store = Arc::new(MemoryLeaseStore::with_clock(Arc::new(clock.clone())));
    announce_as(store.as_ref(), "r0").await;
    clock.set(NOW);
    announce(store.as_ref()).await;
    // rollup at 12:00: a succeeded, b failed for good, c still running;
    // none of the plans before ran.
    seed(
        store.as_ref(),
        "rollup",
        &[
            ("a", Outcome::Succeed),
            ("b", Outcome::Fail(SCRIPT)),
            ("c", Outcome::Run),
        ],
        1,
    )
    .await;
    seed(store.as_ref(), "legacy", &[("x", Outcome::Succeed)], 1).await;
    Operator::new(store.clone())
        .pause(&Target::job("future"), "before its deploy", None, false)
        .await
        .unwrap();
    clock.advance(Duration::from_secs(30));
    let router = router(store.clone(), DashboardOptions::default().token(TOKEN));
    let page = get(&router, "/").await;
    assert_eq!(page.status, StatusCode::OK);
    let html = &page.body;
    assert!(html.contains(r#"id="jobs""#));

    let rollup = row(html, r#"data-job="rollup""#);
    assert!(rollup.contains("problem"), "flagged: {rollup}");
    assert!(rollup.contains(r#"data-flag="exhausted""#));
    assert!(rollup.contains(r#"data-flag="missed""#));
    assert!(!rollup.contains(r#"data-flag="stale""#));
    let expected = [
        ("running", "1"),
        ("stale", "0"),
        ("retry_pending", "0"),
        ("exhausted", "1"),
        ("stale_timeout", "0"),
        ("skipped", "0"),
        // The hour before 12:00:30 holds the plans 11:05 to 12:00; only
        // 12:00 ran, so 11 missed on each of the three scopes.
        ("missed", "33"),
    ];
    for (name, value) in expected {
        assert_eq!(count(rollup, name), value, "{name} in {rollup}");
    }
    assert!(rollup.contains("every 5 minutes"), "{rollup}");
    assert!(
        rollup.contains("2026-03-01T12:05:00Z"),
        "next plan: {rollup}"
    );
    assert!(rollup.contains("30s ago"), "last success: {rollup}");
    assert!(rollup.contains("code") && rollup.contains("1 live"));

    let legacy = row(html, r#"data-job="legacy""#);
    assert!(!legacy.contains("problem"), "{legacy}");
    assert_eq!(count(legacy, "missed"), "-", "no schedule, no report");
    assert!(legacy.contains("rows only"));
    let future = row(html, r#"data-job="future""#);
    assert!(future.contains(r#"data-flag="paused""#) && future.contains("whole job"));
    assert!(html.contains(r#"id="controls""#) && html.contains("before its deploy"));
    assert!(html.contains(r#"data-action="cancel""#));

    assert!(!html.contains(SCRIPT), "a job name is text");
    assert!(html.contains("data-job=\"&lt;script&gt;alert(1)&lt;/script&gt;\""));
    assert!(html.contains(">&lt;script&gt;alert(1)&lt;/script&gt;</a>"));
}

#[tokio::test]
async fn the_job_page_filters_sorts_and_pages_its_scopes() {
    let clock = ManualClock::new(NOW);
    let memory = Arc::new(MemoryLeaseStore::with_clock(Arc::new(clock.clone())));
    let ids: Vec<String> = (0..120).map(|i| format!("s{i:03}")).collect();
    let scopes: Vec<(&str, Outcome)> = ids
        .iter()
        .map(|id| match id.as_str() {
            "s077" => (id.as_str(), Outcome::Fail("boom")),
            _ => (id.as_str(), Outcome::Succeed),
        })
        .collect();
    seed(memory.as_ref(), "fleet", &scopes, 1).await;
    // Scope s005 has 25 executions: its strip shows the newest 20.
    for _ in 0..24 {
        clock.advance(Duration::from_secs(60));
        seed(memory.as_ref(), "fleet", &[("s005", Outcome::Succeed)], 1).await;
    }
    let store = Arc::new(CountingStore::new(memory.clone()));
    let router = router(store.clone(), DashboardOptions::default().token(TOKEN));

    store.take();
    let page = get(&router, "/jobs/fleet").await;
    assert_eq!(page.status, StatusCode::OK);
    let html = &page.body;
    assert!(html.contains("Scopes 1–50 of 120"), "{html}");
    assert!(html.contains(r#"data-scope="tenant/s000""#));
    assert!(!html.contains(r#"data-scope="tenant/s050""#));
    assert!(html.contains("page 1 of 3"));
    let calls = store.take();
    assert_eq!(
        calls.get("list_executions"),
        Some(&50),
        "one strip read per scope shown, none for the rest: {calls:?}"
    );
    let strip = row(html, r#"data-scope="tenant/s005""#);
    assert_eq!(strip.matches("class=\"cell").count(), 20, "{strip}");
    assert!(html.contains(r#"id="settings""#) && html.contains("not known"));

    let last = get(&router, "/jobs/fleet?page=3").await;
    assert!(last.body.contains("Scopes 101–120 of 120"));
    assert!(last.body.contains(r#"data-scope="tenant/s119""#));
    let filtered = get(&router, "/jobs/fleet?q=s07&sort=problems").await;
    assert!(
        filtered.body.contains("Scopes 1–10 of 10"),
        "{}",
        filtered.body
    );
    let first_row = filtered.body.find("data-scope=").unwrap();
    assert!(
        filtered.body[first_row..].starts_with(r#"data-scope="tenant/s077""#),
        "the problem scope first"
    );
    assert!(row(&filtered.body, r#"data-scope="tenant/s077""#).contains("problem"));
    let latest = get(&router, "/jobs/fleet?sort=latest").await;
    let first_row = latest.body.find("data-scope=").unwrap();
    assert!(latest.body[first_row..].starts_with(r#"data-scope="tenant/s005""#));

    assert_eq!(
        get(&router, "/jobs/fleet?page=0").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(&router, "/jobs/fleet?sort=size").await.status,
        StatusCode::BAD_REQUEST
    );
    let unknown = get(&router, "/jobs/nothing").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.body.contains("no job"));
    let refreshed = common::send(
        &router,
        axum::http::Method::GET,
        "/jobs/fleet",
        &[
            ("authorization", &format!("Bearer {TOKEN}")),
            ("x-dashboard-fragment", "main"),
        ],
        None,
    )
    .await;
    assert!(refreshed.body.starts_with("<h1") && !refreshed.body.contains("<html"));
}

#[tokio::test]
async fn the_job_page_shows_registered_settings_and_actions() {
    let clock = ManualClock::new(NOW);
    let store = Arc::new(MemoryLeaseStore::with_clock(Arc::new(clock.clone())));
    announce(store.as_ref()).await;
    seed(store.as_ref(), "rollup", &[("a", Outcome::Succeed)], 3).await;
    let router = router(store.clone(), DashboardOptions::default().token(TOKEN));
    let html = get(&router, "/jobs/rollup").await.body;
    assert!(html.contains(r#"data-setting="max attempts""#));
    assert!(html.contains(r#"data-action="pause""#));
    assert!(html.contains("/actions/pause?job=rollup&amp;scope_kind=tenant&amp;scope_id=a"));
    assert!(html.contains(r#"data-action="backfill""#));
    let read_only = router_read_only(store.clone());
    let html = get(&read_only, "/jobs/rollup").await.body;
    assert!(!html.contains("data-action="), "{html}");
}

fn router_read_only(store: Arc<dyn ExecutionAudit>) -> axum::Router {
    router(
        store,
        DashboardOptions::default().token(TOKEN).read_only(true),
    )
}

#[tokio::test]
async fn the_overview_reads_a_sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("jobs.db").display());
    let store = Arc::new(
        scheduler_sqlite::SqliteLeaseStore::connect(&url)
            .await
            .unwrap(),
    );
    announce(store.as_ref()).await;
    seed(
        store.as_ref(),
        "rollup",
        &[("a", Outcome::Fail(SCRIPT)), ("b", Outcome::Run)],
        2,
    )
    .await;
    let router = router(store, DashboardOptions::default().token(TOKEN));
    let page = get(&router, "/").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let rollup = row(&page.body, r#"data-job="rollup""#);
    assert_eq!(count(rollup, "retry_pending"), "1");
    assert_eq!(count(rollup, "running"), "1");
    assert_eq!(count(rollup, "exhausted"), "0");
    let job = get(&router, "/jobs/rollup").await;
    assert_eq!(job.status, StatusCode::OK);
    assert!(!job.body.contains(SCRIPT));
    assert!(row(&job.body, r#"data-scope="tenant/a""#).contains(r#"data-status="FAILED""#));
}
