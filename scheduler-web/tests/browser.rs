//! The dashboard in a real browser (issue 19): headless Chromium driven
//! through chromedriver (WebDriver), against the router served on
//! 127.0.0.1 over a SQLite store each test fills.
//!
//! `CHROMEDRIVER` names the chromedriver binary (`.ci/browser.sh` installs
//! Debian's and prints its path); without it every test prints a loud
//! `SKIPPED` and passes, unless `SCHEDULER_REQUIRE_BROWSER=1` (as CI sets),
//! which fails it. `CHROMIUM` may name the browser binary when chromedriver
//! does not find it by itself. One browser runs at a time (the tests share
//! a lock): each is a few hundred MB and this runs beside the rest of the
//! suite.
//!
//! `SCHEDULER_SCREENSHOTS=DIR` makes `screenshots` save the overview, a job
//! page and an execution page of a demo-like store as PNGs in `DIR` (the
//! README shows `docs/screenshots/`); without it that test only checks the
//! pages it would take.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use common::Outcome::{Fail, Succeed};
use common::{seed, TOKEN};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use scheduler_core::model::{ScheduleForm, Steering};
use scheduler_core::plan::CatchUpMode;
use scheduler_core::{
    ClaimRequest, ExecutionAudit, JobOutput, JobSpec, LeaseStore, Manager, ManagerOptions,
    ManualClock, Operator, PlanKey, RunContext, ScheduleDefinition, ScheduleOptions, Scope, Scopes,
    Status, StoredScopes, Target, TimeControl as _,
};
use scheduler_sqlite::{SqliteLeaseStore, SqliteStoreOptions};
use scheduler_web::{router, DashboardOptions};
use serde_json::{json, Value};
use tempfile::TempDir;
use time::OffsetDateTime;
use tokio::sync::{Mutex, MutexGuard};

/// What operator-controlled text tries to run.
const SCRIPT: &str = "<script>alert(1)</script>";

/// How long a page may take to show what a test waits for.
const PAGE_WAIT: Duration = Duration::from_secs(15);

/// One browser at a time, across the tests of this binary.
static ONE_BROWSER: Mutex<()> = Mutex::const_new(());

/// The chromedriver to use, or `None` (said loudly) when `CHROMEDRIVER` is
/// unset and a browser is not required.
fn chromedriver() -> Option<PathBuf> {
    match std::env::var_os("CHROMEDRIVER").filter(|p| !p.is_empty()) {
        Some(path) => Some(PathBuf::from(path)),
        None => {
            assert!(
                std::env::var("SCHEDULER_REQUIRE_BROWSER").as_deref() != Ok("1"),
                "SCHEDULER_REQUIRE_BROWSER=1 but CHROMEDRIVER is not set \
                 (export CHROMEDRIVER=\"$(bash .ci/browser.sh)\")"
            );
            eprintln!(
                "SKIPPED: CHROMEDRIVER not set: this browser test did not run \
                 (export CHROMEDRIVER=\"$(bash .ci/browser.sh)\")"
            );
            None
        }
    }
}

/// Headless Chromium under a chromedriver of its own, on a free port, with
/// a fresh profile. [`Browser::close`] ends the session (Chromium exits);
/// dropping it kills chromedriver and whatever browser process still uses
/// the profile, so a failed test leaves nothing running.
struct Browser {
    client: Option<Client>,
    driver: Child,
    profile: TempDir,
    _one: MutexGuard<'static, ()>,
}

impl Browser {
    /// Starts one, or returns `None` when the test is to be skipped.
    async fn start() -> Option<Browser> {
        let driver_path = chromedriver()?;
        let one = ONE_BROWSER.lock().await;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let profile = tempfile::tempdir().expect("a profile directory");
        let driver = Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not start: {e}", driver_path.display()));
        let mut browser = Browser {
            client: None,
            driver,
            profile,
            _one: one,
        };
        // chromedriver listens a moment after it starts: a bounded wait for
        // its port, not a guess at how long that takes.
        let mut tries = 0;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            tries += 1;
            assert!(tries < 200, "chromedriver did not listen on {port} in 10 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut chrome = json!({
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--window-size=1400,1000",
                format!("--user-data-dir={}", browser.profile.path().display()),
            ],
        });
        if let Some(binary) = std::env::var_os("CHROMIUM") {
            chrome["binary"] = Value::from(binary.to_string_lossy().into_owned());
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), Value::from("chrome"));
        capabilities.insert("goog:chromeOptions".into(), chrome);
        // An alert stays open for the test to find, instead of being
        // dismissed by the next command.
        capabilities.insert("unhandledPromptBehavior".into(), Value::from("ignore"));
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("chromedriver starts a headless Chromium");
        browser.client = Some(client);
        Some(browser)
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("a session")
    }

    /// Opens `url`.
    async fn goto(&self, url: &str) {
        self.client()
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// The first element matching `css`, waiting for it to appear.
    async fn wait_for(&self, css: &str) -> Element {
        let found = self
            .client()
            .wait()
            .at_most(PAGE_WAIT)
            .for_element(Locator::Css(css))
            .await;
        match found {
            Ok(element) => element,
            Err(e) => panic!(
                "no {css} on {}: {e}\n{}",
                self.url().await,
                self.client().source().await.unwrap_or_default()
            ),
        }
    }

    /// Every element matching `css` now.
    async fn all(&self, css: &str) -> Vec<Element> {
        self.client()
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("find {css}: {e}"))
    }

    /// The text of the first element matching `css`, waiting for it.
    async fn text(&self, css: &str) -> String {
        self.wait_for(css).await.text().await.expect("text")
    }

    /// The page's URL.
    async fn url(&self) -> String {
        self.client()
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default()
    }

    /// Signs in at `base`/login with the token, as an operator types it.
    async fn sign_in(&self, base: &str) {
        self.goto(&format!("{base}/login")).await;
        self.wait_for("#token")
            .await
            .send_keys(TOKEN)
            .await
            .expect("type the token");
        self.wait_for("button[data-action=login]")
            .await
            .click()
            .await
            .expect("sign in");
        // The layout shows the sign-out form to a signed-in browser only.
        self.wait_for("form#logout").await;
    }

    /// `fetch(path, {method, body})` from the page (its origin, its
    /// cookies), not following redirects: the status, 0 for a redirect.
    async fn fetch(&self, method: &str, path: &str, body: Option<&str>) -> u64 {
        let script = "const [method, url, body, done] = arguments;\
            fetch(url, {method, body, redirect: 'manual', credentials: 'same-origin',\
                headers: {'content-type': 'application/x-www-form-urlencoded'}})\
            .then(r => done(r.status), e => done(String(e)));";
        let answer = self
            .client()
            .execute_async(script, vec![json!(method), json!(path), json!(body)])
            .await
            .expect("fetch runs");
        answer
            .as_u64()
            .unwrap_or_else(|| panic!("{method} {path}: {answer}"))
    }

    /// Whether an alert (or another prompt) is open.
    async fn alert_open(&self) -> bool {
        match self.client().get_alert_text().await {
            Ok(_) => true,
            Err(e) if e.is_no_such_alert() => false,
            Err(e) => panic!("alert check: {e}"),
        }
    }

    /// Where the page's content lies in the window (see [`Layout`]).
    async fn layout(&self) -> Layout {
        let sizes = self
            .client()
            .execute(
                "var root = document.documentElement;
                 var scopes = document.getElementById('scopes');
                 var rows = Array.from(document.querySelectorAll('#scopes tr[data-scope]'));
                 return [root.scrollWidth, root.clientWidth, window.innerHeight,
                   scopes ? scopes.getBoundingClientRect().top + window.scrollY : 0,
                   Math.max(0, ...rows.map(function (r) { return r.getBoundingClientRect().height; })),
                   parseFloat(getComputedStyle(document.body).lineHeight)];",
                vec![],
            )
            .await
            .expect("layout");
        let at = |i: usize| sizes[i].as_f64().expect("a number");
        Layout {
            page_width: at(0),
            viewport_width: at(1),
            viewport_height: at(2),
            scopes_top: at(3),
            tallest_scope_row: at(4),
            line_height: at(5),
        }
    }

    /// A PNG of the whole page: the window is made as tall as the page
    /// (at most 3,000 pixels) first, then set back.
    async fn screenshot(&self) -> Vec<u8> {
        let client = self.client();
        let (width, height) = client.get_window_size().await.expect("window size");
        // The page's own height (the root's scrollHeight is at least the
        // viewport's); the window is taller than the viewport by the
        // browser's own frame.
        let sizes = client
            .execute(
                "return [Math.ceil(document.documentElement.getBoundingClientRect().height), window.innerHeight];",
                vec![],
            )
            .await
            .expect("page height");
        let (page, viewport) = (sizes[0].as_u64().unwrap(), sizes[1].as_u64().unwrap());
        let frame = height.saturating_sub(viewport);
        let tall = u32::try_from((page + frame).clamp(400, 3000)).unwrap();
        client
            .set_window_size(u32::try_from(width).unwrap(), tall)
            .await
            .expect("resize");
        let png = client.screenshot().await.expect("a screenshot");
        client
            .set_window_size(
                u32::try_from(width).unwrap(),
                u32::try_from(height).unwrap(),
            )
            .await
            .expect("resize back");
        png
    }

    /// Ends the session; Chromium exits.
    async fn close(mut self) {
        if let Some(client) = self.client.take() {
            client.close().await.expect("the session ends");
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // A session not closed (a failed test) leaves Chromium behind its
        // killed driver: end the processes started on this profile.
        let profile = self.profile.path().to_string_lossy().into_owned();
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return;
        };
        for entry in procs.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&profile) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
    }
}

/// A SQLite store in a temporary directory, its store time stopped (so
/// that counts read by a test and shown by a page are of the same instant),
/// and the dashboard served over it on 127.0.0.1.
struct Fixture {
    store: Arc<SqliteLeaseStore>,
    clock: ManualClock,
    base: String,
    _dir: TempDir,
}

impl Fixture {
    /// An empty store, store time stopped at the host's time now.
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = ManualClock::new(OffsetDateTime::now_utc());
        let store = Arc::new(
            SqliteStoreOptions::new(dir.path().join("dashboard.db"))
                .clock(Arc::new(clock.clone()))
                .open()
                .await
                .expect("sqlite store"),
        );
        Fixture {
            store,
            clock,
            base: String::new(),
            _dir: dir,
        }
    }

    /// Serves the dashboard with `options` (pages not refreshing on their
    /// own, so that elements a test holds stay where they are).
    async fn serve(&mut self, options: DashboardOptions) {
        let app: Router = router(
            self.store.clone(),
            options.refresh(Duration::from_secs(3600)),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        self.base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
    }

    /// `path` on the dashboard.
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// The demo's tenants (`tenant_rollup`'s scopes); `umbrella`'s warehouse
/// is down, so its every run fails until it runs out of attempts.
const TENANTS: [&str; 12] = [
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "stark",
    "wayne",
    "wonka",
    "tyrell",
    "cyberdyne",
    "soylent",
    "oscorp",
];

/// The demo's jobs (`scheduler demo`: `cargo run -p scheduler-cli -- demo`)
/// as a replica registers them, on cadences of minutes: a fan-out to
/// tenants, a job that fails on its first attempt, one that panics, one
/// whose replica dies mid-run, and the handler kind of the stored
/// schedule `digest`.
///
/// Each run takes a job-typical while ([`work`]), so that durations look
/// like a fleet's, not like zero.
fn register_demo(manager: &Manager, clock: &ManualClock) {
    let tenants = Scopes::fixed(TENANTS.map(|t| Scope::new("tenant", t)));
    let minutes = |n: u64| Duration::from_secs(60 * n);
    let c = clock.clone();
    let rollup = JobSpec::new("tenant_rollup", tenants, move |ctx: RunContext| {
        let c = c.clone();
        async move {
            let tenant = ctx.scope().id.to_string();
            work(&c, 20 + 6 * tenant.len() as u64).await;
            if tenant == "umbrella" {
                return Err(
                    "warehouse unreachable: connect to 10.0.3.7:5432 refused (umbrella-dw)".into(),
                );
            }
            Ok(JobOutput::rows(40 * tenant.len() as i64).with("tenant", tenant))
        }
    })
    .cadence(minutes(5))
    // Every plan of the last hour is kept, so umbrella's failures are
    // retried until they run out of attempts.
    .catch_up(CatchUpMode::EveryPlan)
    .catch_up_window(minutes(60))
    .max_plans_per_tick(12)
    .retry_backoff(vec![minutes(1)]);
    let c = clock.clone();
    let flaky = JobSpec::new("flaky_report", Scopes::global(), move |ctx: RunContext| {
        let c = c.clone();
        async move {
            work(&c, 120).await;
            if ctx.attempt() == 1 {
                return Err("upstream timed out after 30 s (GET /v2/reports/daily)".into());
            }
            Ok(JobOutput::rows(1).with("report", "daily"))
        }
    })
    .cadence(minutes(10))
    .retry_backoff(vec![minutes(1)]);
    let c = clock.clone();
    let panicky = JobSpec::new(
        "panicky_import",
        Scopes::global(),
        move |ctx: RunContext| {
            let c = c.clone();
            async move {
                work(&c, 45).await;
                if ctx.plan_time().minute() == 30 {
                    panic!("malformed input file: line 4312: unexpected end of record (simulated)");
                }
                Ok(JobOutput::rows(250))
            }
        },
    )
    .cadence(minutes(15))
    .max_attempts(1);
    let c = clock.clone();
    let doomed = JobSpec::new("doomed_export", Scopes::global(), move |_: RunContext| {
        let c = c.clone();
        async move {
            work(&c, 180).await;
            Ok(JobOutput::rows(12).with("bucket", "exports-eu"))
        }
    })
    .cadence(minutes(10));
    for job in [rollup, flaky, panicky, doomed] {
        manager.register(job).unwrap();
    }
    let c = clock.clone();
    manager
        .register_kind("report", move |ctx: RunContext| {
            let c = c.clone();
            async move {
                work(&c, 60).await;
                let label = ctx.arguments().get("label").cloned().unwrap_or_default();
                Ok(JobOutput::rows(3).with("label", label))
            }
        })
        .unwrap();
}

/// A run's work in the demo: `ms` of store time, and as long a sleep,
/// since the manager measures durations with the host's clock.
async fn work(clock: &ManualClock, ms: u64) {
    clock.advance(Duration::from_millis(ms));
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// An hour of the demo on the fixture's store: two replicas take turns to
/// tick every 5 minutes of store time; `digest` is stored (every 15
/// minutes); an operator pauses `panicky_import` (it panicked) for the
/// last three ticks; before the last one a third replica claims
/// `doomed_export` and dies, and 3 minutes later its lease is stale.
async fn demo(fx: &Fixture) {
    let hour = Duration::from_secs(3600);
    let start = scheduler_core::plan::floor(OffsetDateTime::now_utc(), hour) - hour;
    fx.clock.set(start);
    let store: Arc<dyn ExecutionAudit> = fx.store.clone();
    let operator = Operator::new(store.clone());
    let mut definition = ScheduleDefinition {
        kind: "report".into(),
        schedule: ScheduleForm::Every {
            cadence: Duration::from_secs(900),
            offset: Duration::ZERO,
        },
        scopes: StoredScopes::default(),
        arguments: serde_json::Map::new(),
        paused: false,
        options: ScheduleOptions::default(),
    };
    definition
        .arguments
        .insert("label".into(), json!("weekly digest v1"));
    operator
        .create_schedule("digest", &definition)
        .await
        .unwrap();
    let five = Duration::from_secs(300);
    for tick in 0..15 {
        if tick == 12 {
            let paused = operator
                .pause(
                    &Target::job("panicky_import"),
                    "input feed broken, see INC-4711",
                    None,
                    false,
                )
                .await
                .unwrap();
            assert!(paused.warnings.is_empty(), "{:?}", paused.warnings);
        }
        if tick == 14 {
            // replica-3 claims doomed_export's plan and dies: its lease
            // goes stale a minute later.
            let now = fx.store.now().await.unwrap();
            let claimed = fx
                .store
                .claim(&ClaimRequest {
                    finishing: &[],
                    steering: Steering::NONE,
                    job_name: "doomed_export",
                    runner_id: "replica-3",
                    max_attempts: 3,
                    stale_timeout: Duration::from_secs(60),
                    allow_stale_reentry: false,
                    keys: &[PlanKey {
                        scope: Scope::global(),
                        plan_time: scheduler_core::plan::floor(now, Duration::from_secs(600)),
                    }],
                })
                .await
                .unwrap();
            assert!(claimed[0].lease().is_some(), "{claimed:?}");
        }
        // A replica announces itself when it starts and then once a
        // refresh interval of the host's time has passed, which a test's
        // stopped store time never sees: a fresh manager per tick keeps
        // both replicas live in the registry, as running ones would be
        // (ticking every 5 minutes, they count as live for 15).
        let replica = Manager::new(
            fx.store.clone(),
            ManagerOptions {
                runner_id: format!("replica-{}", tick % 2 + 1),
                tick_interval: five,
                ..Default::default()
            },
        )
        .unwrap();
        register_demo(&replica, &fx.clock);
        replica.run_once().await;
        if tick < 14 {
            fx.clock.advance(five);
        }
    }
    fx.clock.advance(Duration::from_secs(180));
}

/// Where a page's content lies, in CSS pixels.
#[derive(Debug)]
struct Layout {
    /// The content's width (more than the viewport's when it scrolls sideways).
    page_width: f64,
    /// The viewport's width, without its scroll bar.
    viewport_width: f64,
    /// The viewport's height: the first screen.
    viewport_height: f64,
    /// How far down the page the scopes table starts (0 without one).
    scopes_top: f64,
    /// The height of the tallest scope row (0 without one).
    tallest_scope_row: f64,
    /// The body's line height.
    line_height: f64,
}

/// A browser, and the dashboard with `options` over an empty store; `None`
/// when the test is to be skipped.
async fn start(options: DashboardOptions) -> Option<(Browser, Fixture)> {
    let browser = Browser::start().await?;
    let mut fx = Fixture::new().await;
    fx.serve(options).await;
    Some((browser, fx))
}

/// The actions a page offers: every `data-action` but signing in and out.
const ACTIONS: &str = "[data-action]:not([data-action=login]):not([data-action=logout])";

#[tokio::test]
async fn a_retried_execution_runs_again() {
    let Some((browser, fx)) = start(DashboardOptions::default().token(TOKEN)).await else {
        return;
    };
    let ids = seed(
        fx.store.as_ref(),
        "flaky_report",
        &[("a", Fail("first attempt fails"))],
        1,
    )
    .await;
    let id = ids[0];
    let before = fx.store.get_execution(id).await.unwrap().unwrap();
    assert_eq!((before.status, before.attempt), (Status::Failed, 1));

    browser.sign_in(&fx.base).await;
    browser.goto(&fx.url(&format!("/executions/{id}"))).await;
    assert_eq!(browser.text("td[data-field=status]").await, "FAILED");
    browser
        .wait_for("a.action[data-action=retry]")
        .await
        .click()
        .await
        .expect("click retry");
    browser
        .wait_for("#confirm-button")
        .await
        .click()
        .await
        .expect("confirm");
    let flash = browser.text("#flash").await;
    assert!(flash.contains("is due again"), "{flash}");

    let retried = fx.store.get_execution(id).await.unwrap().unwrap();
    assert_eq!(retried.status, Status::Failed, "due again, not yet run");
    assert!(
        retried.max_attempts > retried.attempt,
        "one more attempt granted: {retried:?}"
    );
    assert!(retried.next_retry_at <= Some(fx.store.now().await.unwrap()));

    // A replica that runs the job picks it up on its next tick.
    let manager = Manager::new(
        fx.store.clone(),
        ManagerOptions {
            runner_id: "runner-b".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let job = JobSpec::new(
        "flaky_report",
        Scopes::fixed([Scope::new("tenant", "a")]),
        |_: RunContext| async { Ok(JobOutput::rows(1)) },
    )
    .cadence(Duration::from_secs(60));
    manager.register(job).unwrap();
    let report = manager.run_once().await;
    assert!(report.retried >= 1, "{report:?}");
    let after = fx.store.get_execution(id).await.unwrap().unwrap();
    assert_eq!(
        (after.status, after.attempt, after.runner_id.as_deref()),
        (Status::Success, 2, Some("runner-b"))
    );

    // The page shows it too.
    browser.goto(&fx.url(&format!("/executions/{id}"))).await;
    assert_eq!(browser.text("td[data-field=status]").await, "SUCCESS");
    assert!(browser.all("a.action[data-action=retry]").await.is_empty());
    browser.close().await;
}

#[tokio::test]
async fn read_only_shows_no_action_and_refuses_action_urls() {
    let Some((browser, fx)) = start(DashboardOptions::default().token(TOKEN).read_only(true)).await
    else {
        return;
    };
    let ids = seed(
        fx.store.as_ref(),
        "flaky_report",
        &[("a", Fail("boom")), ("b", Succeed)],
        1,
    )
    .await;
    browser.sign_in(&fx.base).await;
    assert_eq!(browser.text("#mode").await, "read-only");
    for path in [
        "/".to_owned(),
        "/jobs/flaky_report".to_owned(),
        format!("/executions/{}", ids[0]),
        format!("/executions/{}", ids[1]),
    ] {
        browser.goto(&fx.url(&path)).await;
        browser.wait_for("main#main").await;
        let offered = browser.all(ACTIONS).await;
        assert!(
            offered.is_empty(),
            "{path} offers {} action(s)",
            offered.len()
        );
    }
    let retry = format!("/actions/retry?execution={}", ids[0]);
    assert_eq!(browser.fetch("GET", &retry, None).await, 404);
    assert_eq!(browser.fetch("POST", &retry, Some("csrf=")).await, 404);
    let pause = "/actions/pause?job=flaky_report";
    assert_eq!(browser.fetch("POST", pause, Some("note=x")).await, 404);
    let row = fx.store.get_execution(ids[0]).await.unwrap().unwrap();
    assert_eq!(
        (row.status, row.attempt, row.max_attempts),
        (Status::Failed, 1, 1)
    );
    browser.close().await;
}

#[tokio::test]
async fn an_action_without_a_session_is_refused() {
    let Some((browser, fx)) = start(DashboardOptions::default().token(TOKEN)).await else {
        return;
    };
    let ids = seed(fx.store.as_ref(), "flaky_report", &[("a", Fail("boom"))], 1).await;
    let retry = format!("/actions/retry?execution={}", ids[0]);

    // Not signed in: the confirmation page sends the browser to sign in...
    browser.goto(&fx.url(&retry)).await;
    browser.wait_for("#login-form").await;
    assert_eq!(browser.url().await, fx.url("/login"));
    // ... and the action itself is refused, with or without a form.
    assert_eq!(browser.fetch("POST", &retry, Some("csrf=")).await, 401);
    assert_eq!(browser.fetch("POST", &retry, None).await, 401);
    let row = fx.store.get_execution(ids[0]).await.unwrap().unwrap();
    assert_eq!(
        (row.status, row.attempt, row.max_attempts, row.next_retry_at),
        (Status::Failed, 1, 1, None),
        "nothing changed"
    );

    // Signed in, a form without the session's CSRF token is refused too.
    browser.sign_in(&fx.base).await;
    assert_eq!(
        browser.fetch("POST", &retry, Some("csrf=forged")).await,
        403
    );
    let row = fx.store.get_execution(ids[0]).await.unwrap().unwrap();
    assert_eq!((row.attempt, row.max_attempts), (1, 1), "nothing changed");
    browser.close().await;
}

#[tokio::test]
async fn script_in_a_job_name_and_an_error_renders_as_text() {
    let Some((browser, fx)) = start(DashboardOptions::default().token(TOKEN)).await else {
        return;
    };
    let ids = seed(fx.store.as_ref(), SCRIPT, &[("a", Fail(SCRIPT))], 1).await;
    browser.sign_in(&fx.base).await;

    browser
        .goto(&fx.url(&format!("/executions/{}", ids[0])))
        .await;
    assert_eq!(browser.text("#error-message").await, SCRIPT);
    let job = browser.wait_for("#execution a[data-job]").await;
    assert_eq!(job.text().await.unwrap(), SCRIPT);
    assert_eq!(job.attr("data-job").await.unwrap().as_deref(), Some(SCRIPT));
    assert!(!browser.alert_open().await, "an alert ran");
    assert!(
        browser.all("main script").await.is_empty(),
        "a script element inside the page's content"
    );

    // The overview's row and the job page, reached by its link.
    browser.goto(&fx.url("/")).await;
    let rows = browser.all("#jobs tr[data-job]").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].attr("data-job").await.unwrap().as_deref(),
        Some(SCRIPT)
    );
    let link = rows[0].find(Locator::Css("td a")).await.unwrap();
    assert_eq!(link.text().await.unwrap(), SCRIPT);
    link.click().await.unwrap();
    assert_eq!(browser.text("h1#job").await, format!("Job {SCRIPT}"));
    assert!(browser.all("main script").await.is_empty());
    assert!(!browser.alert_open().await, "an alert ran");
    browser.close().await;
}

/// The demo's jobs, as the overview names them.
const DEMO_JOBS: [&str; 5] = [
    "digest",
    "doomed_export",
    "flaky_report",
    "panicky_import",
    "tenant_rollup",
];

/// The counts the overview shows per job, in `data-count` names.
const COUNTS: [&str; 6] = [
    "running",
    "stale",
    "retry_pending",
    "exhausted",
    "stale_timeout",
    "skipped",
];

#[tokio::test]
async fn the_overview_lists_the_demo_jobs_with_the_stores_counts() {
    let Some((browser, fx)) = start(DashboardOptions::default().token(TOKEN)).await else {
        return;
    };
    demo(&fx).await;

    // What the store says, summed per job as the overview sums it.
    let mut expected: std::collections::BTreeMap<String, [u64; 6]> = Default::default();
    for s in fx.store.scope_summaries(None).await.unwrap() {
        let counts = expected.entry(s.job_name.clone()).or_default();
        for (count, add) in counts.iter_mut().zip([
            s.running,
            s.stale,
            s.retry_pending,
            s.exhausted,
            s.stale_timeout,
            s.skipped,
        ]) {
            *count += add;
        }
    }
    assert_eq!(
        expected.keys().map(String::as_str).collect::<Vec<_>>(),
        DEMO_JOBS
    );
    // The demo has something to count: a stale lease, exhausted retries.
    assert_eq!(expected["doomed_export"][1], 1, "{expected:?}");
    assert!(expected["tenant_rollup"][3] > 0, "{expected:?}");
    assert!(expected["panicky_import"][3] > 0, "{expected:?}");

    browser.sign_in(&fx.base).await;
    browser.goto(&fx.url("/")).await;
    browser.wait_for("#jobs").await;
    let mut shown = Vec::new();
    for row in browser.all("#jobs tr[data-job]").await {
        shown.push(row.attr("data-job").await.unwrap().unwrap_or_default());
    }
    shown.sort();
    assert_eq!(shown, DEMO_JOBS);
    for (job, counts) in &expected {
        for (name, count) in COUNTS.iter().zip(counts) {
            let cell = format!("#jobs tr[data-job={job}] td[data-count={name}]");
            assert_eq!(browser.text(&cell).await, count.to_string(), "{cell}");
        }
    }
    // Problems stand out; the paused job says so.
    for (job, flag) in [
        ("doomed_export", "stale"),
        ("tenant_rollup", "exhausted"),
        ("panicky_import", "paused"),
    ] {
        browser
            .wait_for(&format!("#jobs tr[data-job={job}] .flag[data-flag={flag}]"))
            .await;
    }
    for job in ["doomed_export", "tenant_rollup"] {
        let class = browser
            .wait_for(&format!("#jobs tr[data-job={job}]"))
            .await
            .attr("class")
            .await
            .unwrap()
            .unwrap_or_default();
        assert!(class.split(' ').any(|c| c == "problem"), "{job}: {class:?}");
    }
    browser.close().await;
}

/// The README's screenshots: the overview, `tenant_rollup`'s page and an
/// execution that ran out of attempts, of the demo's store, in a signed-in
/// browser. With `SCHEDULER_SCREENSHOTS=DIR` the PNGs go to DIR (relative
/// to the workspace: `overview.png`, `job.png`, `execution.png`); without
/// it the test only
/// checks that each page shows what the picture is for, and that each fits
/// the 1400-pixel window: nothing scrolls sideways, the job page's scopes
/// start on the first screen, one line each.
#[tokio::test]
async fn screenshots() {
    let Some((browser, fx)) = start(DashboardOptions::default().token(TOKEN)).await else {
        return;
    };
    demo(&fx).await;
    let umbrella = fx
        .store
        .list_executions(&scheduler_core::ExecutionFilter {
            job_name: Some("tenant_rollup".into()),
            scope: Some(Scope::new("tenant", "umbrella")),
            status: Some(Status::Failed),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.attempt == e.max_attempts)
        .expect("an exhausted execution of umbrella");
    browser.sign_in(&fx.base).await;
    let pages = [
        (
            "overview",
            "/".to_owned(),
            "#jobs tr[data-job=tenant_rollup]",
        ),
        (
            "job",
            "/jobs/tenant_rollup".to_owned(),
            "#scopes tr[data-scope]",
        ),
        (
            "execution",
            format!("/executions/{}", umbrella.id),
            "#attempts tr[data-attempt='3']",
        ),
    ];
    // A relative directory is the workspace's (cargo runs tests in the
    // crate's), so that `SCHEDULER_SCREENSHOTS=docs/screenshots` means the
    // README's pictures.
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::var_os("SCHEDULER_SCREENSHOTS").map(|d| workspace.join(d));
    for (name, path, shows) in pages {
        browser.goto(&fx.url(&path)).await;
        browser.wait_for(shows).await;
        let png = browser.screenshot().await;
        assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir).unwrap();
            let file = dir.join(format!("{name}.png"));
            std::fs::write(&file, png).unwrap();
            eprintln!("wrote {}", file.display());
        }
        // Checked after the picture is written: it shows what went wrong.
        let layout = browser.layout().await;
        assert!(
            layout.page_width <= layout.viewport_width,
            "{name} scrolls sideways at 1400 px: {layout:?}"
        );
        if name == "job" {
            assert!(
                layout.scopes_top < layout.viewport_height,
                "the scopes start below the first screen: {layout:?}"
            );
            assert!(
                layout.tallest_scope_row < 2.0 * layout.line_height,
                "a scope row takes more than one line: {layout:?}"
            );
        }
    }
    browser.close().await;
}
